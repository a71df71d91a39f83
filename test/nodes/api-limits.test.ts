// Nova paging as Nova does it (max_limit, *_links rel next, marker errors), Keystone refresh relative
// to the token's lifetime, and bounded memory on hostile answers (body size, page count) from Nova,
// Keystone and Consul: typed errors, counted in hm9k_nodes_api_rejected_total.
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulWatcher } from '../../src/clients/consul.js';
import { KeystoneClient, OpenStackError, parseCloudsYaml } from '../../src/clients/keystone.js';
import type { LimitedApi, RejectReason } from '../../src/clients/limits.js';
import { NovaClient } from '../../src/clients/nova.js';
import { StaticSecrets } from '../../src/clients/secrets.js';
import { nodesConfig } from '../../src/nodes/config.js';
import { NodeDeps } from '../../src/nodes/deps.js';
import { NovaSim } from '../../src/sim/nova.js';

const rejections = () => {
  const seen: string[] = [];
  return { seen, hook: (api: LimitedApi, reason: RejectReason) => { seen.push(`${api}/${reason}`); } };
};

describe('Nova paging against the simulator with max_limit 2', () => {
  const sim = new NovaSim({ maxLimit: 2, migrationStepMs: 20 });
  let ks: KeystoneClient;
  beforeAll(async () => {
    await sim.start();
    sim.addHost('cmp1');
    sim.addHost('cmp2');
    for (let i = 0; i < 5; i++) sim.addServer('cmp1');
    sim.addServer('cmp2');
    ks = new KeystoneClient(parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'));
  });
  afterAll(async () => { await sim.stop(); });
  const get = async (path: string, mv = '2.53') => {
    const res = await fetch(`${sim.url}/compute/v2.1${path}`, { headers: { 'x-auth-token': await ks.authToken(), 'openstack-api-version': `compute ${mv}` } });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('the simulator caps limit at max_limit and links the next page as Nova does (marker = last id)', async () => {
    const first = await get('/servers/detail?all_tenants=1&host=cmp1&limit=1000');
    expect(first.status).toBe(200);
    expect(first.body.servers).toHaveLength(2);
    const link = first.body.servers_links;
    expect(link).toHaveLength(1);
    expect(link[0].rel).toBe('next');
    const href = new URL(link[0].href);
    expect(href.pathname).toBe('/compute/v2.1/servers/detail');
    expect(href.searchParams.get('marker')).toBe(first.body.servers[1].id);
    expect(href.searchParams.get('host')).toBe('cmp1');
    // The last page (1 item, fewer than the limit) has no link.
    const second = await get(`/servers/detail?all_tenants=1&host=cmp1&limit=1000&marker=${first.body.servers[1].id}`);
    const third = await get(`/servers/detail?all_tenants=1&host=cmp1&limit=1000&marker=${second.body.servers[1].id}`);
    expect(third.body.servers).toHaveLength(1);
    expect(third.body.servers_links).toBeUndefined();
  });
  it('the simulator refuses a bad marker and a bad limit with Nova\'s 400 bodies', async () => {
    expect(await get('/servers/detail?all_tenants=1&marker=nope')).toEqual({ status: 400, body: { badRequest: { code: 400, message: 'marker [nope] not found' } } });
    // Real Zed's words (its query schema: limit '^[0-9]*$'), see nova-sim-parity.test.ts.
    expect(await get('/servers/detail?all_tenants=1&limit=x')).toEqual({ status: 400, body: { badRequest: { code: 400, message: "Invalid input for query parameters limit. Value: x. 'x' does not match '^[0-9]*$'" } } });
    expect(await get('/servers/detail?all_tenants=1&limit=-1')).toEqual({ status: 400, body: { badRequest: { code: 400, message: "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'" } } });
    expect(await get('/os-migrations?marker=nope', '2.59')).toEqual({ status: 400, body: { badRequest: { code: 400, message: 'Marker nope could not be found.' } } });
  });
  it('listServers follows every next link: all 5 servers of the host, each once (today: 2)', async () => {
    const nova = new NovaClient(ks);
    const servers = await nova.listServers('cmp1');
    expect(servers).toHaveLength(5);
    expect(new Set(servers.map((s) => s.id)).size).toBe(5);
    expect(await nova.listServers(undefined)).toHaveLength(6);
  });
  it('migrations: paged from 2.59 (migrations_links, marker = uuid), every one read', async () => {
    const nova = new NovaClient(ks);
    const [svc] = await nova.listServices('cmp1');
    sim.setAlive('cmp1', false);
    await nova.forceDown(svc!.id, true);
    for (const s of await nova.listServers('cmp1')) await nova.evacuate(s.id, { microversion: '2.94' });
    const before = sim.requests.filter((r) => r === 'GET /compute/v2.1/os-migrations').length;
    const migs = await nova.migrations({ sourceCompute: 'cmp1', type: 'evacuation' });
    expect(migs).toHaveLength(5);
    expect(new Set(migs.map((m) => m.uuid)).size).toBe(5);
    expect(sim.requests.filter((r) => r === 'GET /compute/v2.1/os-migrations').length - before).toBe(3);
  });
  it('an older Nova (below 2.59) answers os-migrations unpaged, and hm9k reads it whole', async () => {
    const old = new NovaSim({ maxLimit: 2, maxMicroversion: '2.58' });
    await old.start();
    try {
      old.addHost('h1');
      for (let i = 0; i < 3; i++) old.migrations.push({ id: i + 1, uuid: `u${i}`, instance_uuid: `s${i}`, source_compute: 'h1', dest_compute: 'h2', status: 'done', migration_type: 'evacuation', created_at: new Date().toISOString(), updated_at: new Date().toISOString() });
      const nova = new NovaClient(new KeystoneClient(parseCloudsYaml(old.cloudsYaml('sim'), 'sim')));
      expect(await nova.migrations({ sourceCompute: 'h1' })).toHaveLength(3);
    } finally {
      await old.stop();
    }
  });
});

/** A scriptable HTTP server: Keystone + Nova answers chosen per test (hostile answers included). */
describe('hostile Nova and Keystone answers', () => {
  let server: Server;
  let base = '';
  let handler: (path: string, res: import('node:http').ServerResponse) => void = () => {};
  const hits: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      hits.push(`${req.method} ${path}`);
      if (req.method === 'POST' && path.startsWith('/identity/v3/auth/tokens')) {
        req.resume();
        res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': 'tok' });
        res.end(JSON.stringify({ token: { issued_at: new Date().toISOString(), expires_at: new Date(Date.now() + 3_600_000).toISOString(), catalog: [{ type: 'compute', endpoints: [{ interface: 'public', region_id: 'R', url: `${base}/compute/v2.1` }] }] } }));
        return;
      }
      if (path === '/compute/v2.1/') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ version: { version: '2.96', min_version: '2.1' } }));
        return;
      }
      handler(path, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); });
  const cloud = () => ({ authUrl: `${base}/identity/v3`, username: 'u', password: 'p', userDomainName: 'Default', projectName: 'admin', projectDomainName: 'Default', interface: 'public' as const });
  const page = (servers: { id: string }[], next?: string) => JSON.stringify({ servers, ...(next !== undefined ? { servers_links: [{ rel: 'next', href: next }] } : {}) });

  it('a body over the limit is refused while reading (chunked, no Content-Length): typed, counted, not retried', async () => {
    const r = rejections();
    handler = (_p, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = `{"servers": [${'{"id":"x"},'.repeat(10_000)}`;
      for (let i = 0; i < 20; i++) res.write(chunk); // ~2 MB, never ends validly
      res.end(']}');
    };
    hits.length = 0;
    const nova = new NovaClient(new KeystoneClient(cloud()), { maxBodyBytes: 256 * 1024, onReject: r.hook, retryDelayMs: 1 });
    const err = await nova.listServers('h').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackError);
    expect((err as OpenStackError).kind).toBe('tooLarge');
    expect((err as OpenStackError).message).toMatch(/larger than the limit of 262144 bytes/);
    expect(r.seen).toEqual(['nova/body_too_large']);
    expect(hits.filter((h) => h.startsWith('GET /compute/v2.1/servers/detail'))).toHaveLength(1);
  });
  it('a declared Content-Length over the limit is refused before reading', async () => {
    const r = rejections();
    handler = (_p, res) => {
      const body = page([{ id: 'a' }]).padEnd(300_000, ' ');
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.end(body);
    };
    const err = await new NovaClient(new KeystoneClient(cloud()), { maxBodyBytes: 256 * 1024, onReject: r.hook }).listServers('h').catch((e: unknown) => e);
    expect((err as OpenStackError).kind).toBe('tooLarge');
    expect((err as OpenStackError).message).toContain('Content-Length 300000');
    expect(r.seen).toEqual(['nova/body_too_large']);
  });
  it('endless pages are cut at maxPages: typed error, counted, the partial list never returned', async () => {
    const r = rejections();
    let n = 0;
    handler = (_p, res) => {
      n++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(page([{ id: `s${n}` }], `${base}/compute/v2.1/servers/detail?marker=s${n}`));
    };
    const err = await new NovaClient(new KeystoneClient(cloud()), { maxPages: 5, onReject: r.hook }).listServers('h').catch((e: unknown) => e);
    expect((err as OpenStackError).kind).toBe('tooManyPages');
    expect((err as OpenStackError).message).toMatch(/more than 5 pages/);
    expect(n).toBe(5);
    expect(r.seen).toEqual(['nova/too_many_pages']);
  });
  it('a next link that loops (marker seen before) is refused, not followed forever', async () => {
    const r = rejections();
    handler = (_p, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(page([{ id: 'a' }, { id: 'b' }], `${base}/compute/v2.1/servers/detail?marker=b`));
    };
    const err = await new NovaClient(new KeystoneClient(cloud()), { onReject: r.hook }).listServers('h').catch((e: unknown) => e);
    expect((err as OpenStackError).message).toMatch(/paging loops/);
    expect(r.seen).toEqual(['nova/bad_paging']);
  });
  it('the next link\'s host is never contacted (the token stays with the catalog endpoint): only its marker is used', async () => {
    hits.length = 0;
    handler = (p, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const marker = new URL(p, base).searchParams.get('marker');
      if (!marker) res.end(page([{ id: 'a' }], 'http://attacker.invalid:1/steal?marker=a'));
      else res.end(page([{ id: 'b' }]));
    };
    const servers = await new NovaClient(new KeystoneClient(cloud())).listServers('h');
    expect(servers.map((s) => s.id)).toEqual(['a', 'b']);
    const gets = hits.filter((h) => h.startsWith('GET /compute/v2.1/servers/detail'));
    expect(gets).toHaveLength(2);
    expect(gets[1]).toContain('marker=a');
    expect(gets[1]).toContain('host=h');
  });
  it('a Keystone token answer over the limit is refused and counted', async () => {
    const r = rejections();
    const big = createServer((req, res) => {
      req.resume();
      res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': 't' });
      res.end(JSON.stringify({ token: { expires_at: new Date(Date.now() + 3_600_000).toISOString(), catalog: [], pad: 'x'.repeat(200_000) } }));
    });
    await new Promise<void>((res) => big.listen(0, '127.0.0.1', () => res()));
    try {
      const ks = new KeystoneClient({ ...cloud(), authUrl: `http://127.0.0.1:${(big.address() as { port: number }).port}/v3` }, { maxBodyBytes: 100_000, onReject: r.hook });
      const err = await ks.authToken().catch((e: unknown) => e);
      expect((err as OpenStackError).kind).toBe('tooLarge');
      expect(r.seen).toEqual(['keystone/body_too_large']);
    } finally {
      big.closeAllConnections();
      await new Promise((res) => big.close(res));
    }
  });
});

describe('hostile Consul answers', () => {
  it('an answer over the limit is refused: the observer is unhealthy (unknown, never down), counted in the metric', async () => {
    // A "Consul" whose health answer never stops growing.
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '7', 'x-consul-knownleader': 'true' });
      if (req.url?.startsWith('/v1/catalog/nodes')) return res.end(JSON.stringify([{ Node: 'a' }]));
      res.write('[');
      for (let i = 0; i < 400; i++) res.write(`${JSON.stringify({ Node: 'a', CheckID: 'serfHealth', Status: 'passing', Output: 'x'.repeat(1000) })},`);
      res.end(JSON.stringify({ Node: 'a', CheckID: 'serfHealth', Status: 'passing' }) + ']');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const metrics = new Registry();
    const deps = new NodeDeps(nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', maxResponseBytes: 100_000 }), new StaticSecrets({}), metrics);
    const w = new ConsulWatcher({ address: `http://127.0.0.1:${(server.address() as { port: number }).port}`, waitMs: 1000, minLoopMs: 10, errorBackoffMs: 50, maxBodyBytes: 100_000, onReject: deps.onReject });
    const errors: Error[] = [];
    w.on('observerError', (e: Error) => errors.push(e));
    w.start();
    try {
      const deadline = Date.now() + 10_000;
      while (!errors.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(errors[0]?.message).toMatch(/answer larger than 100000 bytes/);
      expect((errors[0] as { kind?: string }).kind).toBe('tooLarge');
      expect(w.view.healthy).toBe(false);
      expect(w.nodeState('a').state).toBe('unknown');
      const m = await metrics.getSingleMetric('hm9k_nodes_api_rejected_total')!.get();
      expect(m.values.find((v) => v.labels.api === 'consul' && v.labels.reason === 'body_too_large')?.value).toBeGreaterThanOrEqual(1);
    } finally {
      await w.stop();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('Keystone token refresh relative to the token lifetime', () => {
  // Tokens live 20 s (the held-out world's setting); the client's clock is driven by the test.
  const sim = new NovaSim({ tokenTtlMs: 20_000 });
  beforeAll(async () => { await sim.start(); sim.addHost('cmp1'); });
  afterAll(async () => { await sim.stop(); });

  it('a 20 s token is refreshed once per 80% of its life, single-flight under concurrency (today: nearly every call)', async () => {
    let now = Date.now();
    const ks = new KeystoneClient(parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'), { now: () => now });
    const nova = new NovaClient(ks);
    const before = sim.tokenRequests;
    // 40 s of calls on the client's clock, 5 at once every second.
    for (let t = 0; t < 40; t++) {
      await Promise.all(Array.from({ length: 5 }, () => nova.listServices('cmp1')));
      now += 1000;
    }
    // Fetched at 0 and then every 16 s (80% of 20 s): at 0, 16 and 32.
    expect(sim.tokenRequests - before).toBe(3);
    expect(ks.authentications).toBe(3);
  });
  it('concurrent first calls share one token request', async () => {
    const ks = new KeystoneClient(parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'));
    const before = sim.tokenRequests;
    await Promise.all(Array.from({ length: 20 }, () => ks.authToken()));
    expect(sim.tokenRequests - before).toBe(1);
  });
  it('a 401 re-authenticates once; a Nova rejecting every token cannot make every call ask Keystone', async () => {
    const now = Date.now();
    const ks = new KeystoneClient(parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'), { now: () => now });
    const nova = new NovaClient(ks, { retries: 0 });
    await nova.listServices('cmp1');
    const before = sim.tokenRequests;
    sim.revokeTokens();
    expect(await nova.listServices('cmp1')).toHaveLength(1);
    expect(sim.tokenRequests - before).toBe(1);
    // Now every token is refused for a while: 20 calls, at most one more token request.
    sim.failNext = { status: 401, count: 1000, match: /os-services/ };
    try {
      for (let i = 0; i < 20; i++) {
        const err = await nova.listServices('cmp1').catch((e: unknown) => e);
        expect((err as OpenStackError).status).toBe(401);
      }
      expect(sim.tokenRequests - before).toBeLessThanOrEqual(2);
    } finally {
      sim.failNext = undefined;
    }
  });
});
