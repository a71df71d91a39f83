// Fuzz: Nova answers (version document, os-services, servers/detail, os-migrations) and Keystone
// token answers through the real KeystoneClient + NovaClient, the Nova monitor and the evacuation
// planner, served by a local HTTP server that returns generated bodies. Never an unhandled rejection
// or a TypeError escaping: a bad answer is an OpenStackError (the monitor counts it in
// hm9k_nodes_source_errors_total{source="nova"} and sets nova state unknown); an accepted answer
// yields only well-typed observations.
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComputeNode } from '../../src/api/index.js';
import { KeystoneClient, OpenStackError } from '../../src/clients/keystone.js';
import { NovaClient } from '../../src/clients/nova.js';
import { nodesConfig, resolvePolicy } from '../../src/nodes/config.js';
import type { NodeDeps } from '../../src/nodes/deps.js';
import { planEvacuation } from '../../src/nodes/evacuate.js';
import { NovaMonitor } from '../../src/nodes/monitors/nova.js';
import type { FleetView, NetworkMonitor } from '../../src/nodes/monitors/network.js';
import { ObservationStore } from '../../src/nodes/observations.js';
import { budget, check, mutated, weirdValue } from './support.js';

const logger = pino({ level: 'silent' });
const host = fc.constantFrom('cmp1', 'cmp2', 'other');
const service = fc.record({
  id: fc.uuid(), binary: fc.constant('nova-compute'), host, zone: fc.constant('nova'), status: fc.constantFrom('enabled', 'disabled'), state: fc.constantFrom('up', 'down'),
  updated_at: fc.constant('2024-01-01T00:00:00Z'), disabled_reason: fc.option(fc.string({ maxLength: 20 })), forced_down: fc.boolean(),
});
const server = fc.record({
  id: fc.uuid(), name: fc.string({ maxLength: 8 }), status: fc.constantFrom('ACTIVE', 'SHUTOFF', 'ERROR', 'REBUILD'),
  'OS-EXT-SRV-ATTR:host': fc.option(host), 'OS-EXT-STS:vm_state': fc.constantFrom('active', 'stopped', 'error'), 'OS-EXT-STS:task_state': fc.option(fc.constant('rebuilding')),
  metadata: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
});
const migration = fc.record({
  id: fc.nat(), instance_uuid: fc.uuid(), source_compute: host, dest_compute: fc.option(host), status: fc.constantFrom('accepted', 'pre-migrating', 'done', 'completed', 'failed', 'error'),
  migration_type: fc.constant('evacuation'),
});
const body = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 8, arbitrary: valid.map((v) => ({ status: 200, text: JSON.stringify(v) })) },
    { weight: 4, arbitrary: mutated(valid).map((text) => ({ status: 200, text })) },
    { weight: 1, arbitrary: weirdValue.map((v) => ({ status: 200, text: JSON.stringify(v) ?? '' })) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(400, 403, 404, 409, 413, 500, 503), fc.string({ maxLength: 40 })).map(([status, text]) => ({ status, text })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((text) => ({ status: 200, text })) },
  );
const answers = fc.record({
  token: body(fc.record({ token: fc.record({ expires_at: fc.constant('2099-01-01T00:00:00Z'), catalog: fc.constant([{ type: 'compute', endpoints: [{ interface: 'public', url: 'SELF/compute/v2.1' }] }]) }) })),
  version: body(fc.record({ version: fc.record({ version: fc.constantFrom('2.53', '2.79', '2.95', '2.1'), min_version: fc.constant('2.1') }) })),
  services: body(fc.record({ services: fc.array(service, { maxLength: 4 }) })),
  servers: body(fc.record({ servers: fc.array(server, { maxLength: 4 }) })),
  migrations: body(fc.record({ migrations: fc.array(migration, { maxLength: 4 }) })),
});
type Answers = Record<'token' | 'version' | 'services' | 'servers' | 'migrations', { status: number; text: string }>;

let srv: Server;
let base = '';
let current: Answers;
beforeAll(async () => {
  srv = createServer((req, res) => {
    req.resume();
    const p = (req.url ?? '').split('?')[0]!;
    const a = p.endsWith('/auth/tokens') ? current.token : p.endsWith('/os-services') ? current.services : p.endsWith('/servers/detail') ? current.servers : p.endsWith('/os-migrations') ? current.migrations : p.endsWith('/v2.1/') ? current.version : { status: 404, text: '{"itemNotFound":{"code":404,"message":"nope"}}' };
    const text = a.text.replaceAll('SELF', base);
    res.writeHead(a.status === 200 && p.endsWith('/auth/tokens') ? 201 : a.status, { 'content-type': 'application/json', 'x-subject-token': 'tok' });
    res.end(text);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
});
afterAll(async () => {
  srv.closeAllConnections();
  await new Promise((r) => srv.close(r));
});

const node = (name: string): ComputeNode => ({ apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name }, spec: { host: name } });
const policy = resolvePolicy({ networks: { management: { consul: [{ address: 'http://a:1' }] }, storage: { consul: [{ address: 'http://a:2' }] }, tenant: { consul: [{ address: 'http://a:3' }] } } });

function nova() {
  const ks = new KeystoneClient({ authUrl: base, username: 'u', password: 'p', userDomainName: 'Default', projectName: 'p', projectDomainName: 'Default', interface: 'public' }, { timeoutMs: 2000 });
  return new NovaClient(ks, { timeoutMs: 2000, retries: 0 });
}

/** A failure from the client must be an OpenStackError (a typed, reportable error), never a TypeError. */
async function typed<T>(p: Promise<T>): Promise<T | OpenStackError> {
  try {
    return await p;
  } catch (err) {
    if (!(err instanceof OpenStackError)) throw new Error(`untyped error escaped the Nova client: ${(err as Error)?.stack ?? String(err)}`);
    return err;
  }
}

const RUNS = 100;
describe('fuzz: Nova and Keystone answers', () => {
  it('found: `null` answers, non-object list entries and a malformed catalog are OpenStackErrors, not TypeErrors', async () => {
    const ok = (v: unknown) => ({ status: 200, text: JSON.stringify(v) });
    const good: Answers = {
      token: ok({ token: { expires_at: '2099-01-01T00:00:00Z', catalog: [{ type: 'compute', endpoints: [{ interface: 'public', url: 'SELF/compute/v2.1' }] }] } }),
      version: ok({ version: { version: '2.79', min_version: '2.1' } }),
      services: ok({ services: [] }), servers: ok({ servers: [] }), migrations: ok({ migrations: [] }),
    };
    const cases: [Partial<Answers>, (c: NovaClient) => Promise<unknown>][] = [
      [{ version: ok(null) }, (c) => c.listServices()],
      [{ version: ok({ version: { version: 253 } }) }, (c) => c.listServices()],
      [{ services: ok({ services: [null] }) }, (c) => c.listServices()],
      [{ servers: ok({ servers: [null, 'x'] }) }, (c) => planEvacuation(c, 'cmp1', policy, Date.now())],
      [{ migrations: ok({ migrations: [null] }) }, (c) => c.migrations({ type: 'evacuation' })],
      [{ token: ok({ token: { expires_at: '2099-01-01T00:00:00Z', catalog: [{ type: 'compute', endpoints: 'x' }] } }) }, (c) => c.listServices()],
      [{ token: ok(null) }, (c) => c.listServices()],
    ];
    for (const [patch, call] of cases) {
      current = { ...good, ...patch };
      const r = await typed(call(nova()));
      expect(r, JSON.stringify(patch)).toBeInstanceOf(OpenStackError);
    }
  });

  it('found: an integer service id (Nova before 2.53) is handed on as its decimal string, as the types say', async () => {
    const service = { id: 7, binary: 'nova-compute', host: 'cmp1', zone: 'nova', status: 'enabled', state: 'up', updated_at: '2024-01-01T00:00:00Z', disabled_reason: null, forced_down: false };
    const ok = (v: unknown) => ({ status: 200, text: JSON.stringify(v) });
    current = {
      token: ok({ token: { expires_at: '2099-01-01T00:00:00Z', catalog: [{ type: 'compute', endpoints: [{ interface: 'public', url: 'SELF/compute/v2.1' }] }] } }),
      version: ok({ version: { version: '2.79', min_version: '2.1' } }),
      services: ok({ services: [service] }), servers: ok({ servers: [] }), migrations: ok({ migrations: [] }),
    };
    const got = await typed(nova().listServices());
    expect(got).not.toBeInstanceOf(OpenStackError);
    expect((got as { id: unknown }[])[0]?.id).toBe('7');
  });

  it('NovaClient: every failure is an OpenStackError; accepted lists hold objects with the fields hm9k reads', { timeout: budget(RUNS, 40) }, async () => {
    await check('nova client', fc.asyncProperty(answers, async (a) => {
      current = a as Answers;
      const c = nova();
      const services = await typed(c.listServices());
      if (!(services instanceof OpenStackError)) for (const s of services) expect(s && typeof s === 'object' && typeof s.host === 'string' && typeof s.id === 'string').toBe(true);
      const servers = await typed(c.listServers('cmp1', 3));
      if (!(servers instanceof OpenStackError)) for (const s of servers) expect(s && typeof s === 'object' && typeof s.id === 'string' && s.id.length > 0).toBe(true);
      const migs = await typed(c.migrations({ type: 'evacuation', sourceCompute: 'cmp1' }));
      if (!(migs instanceof OpenStackError)) for (const m of migs) expect(m && typeof m === 'object' && typeof m.status === 'string' && typeof m.instance_uuid === 'string').toBe(true);
    }), RUNS);
  });

  it('Nova monitor: a poll never rejects; a bad answer -> counted, state unknown; observations well typed', { timeout: budget(RUNS, 40) }, async () => {
    const registry = new Registry();
    const errors = new Counter({ name: 'hm9k_nodes_source_errors_total', help: 'x', labelNames: ['source'], registers: [registry] });
    const count = async () => (await errors.get()).values.find((v) => v.labels.source === 'nova')?.value ?? 0;
    let unknown = 0;
    let known = 0;
    await check('nova monitor', fc.asyncProperty(answers, async (a) => {
      current = a as Answers;
      const store = new ObservationStore();
      const c = nova();
      const deps = { novaClient: async () => c, config: nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'sim', serverCountIntervalMs: 0 }) } as unknown as NodeDeps;
      const fleet: FleetView = { nodes: () => [node('cmp1'), node('cmp2')], policyOf: () => ({ name: 'p', policy }), policies: () => [] };
      const network = { nodeSideNova: () => 'unknown' } as unknown as NetworkMonitor;
      const mon = new NovaMonitor(deps, store, fleet, network, logger, errors);
      const before = await count();
      await mon.poll();
      for (const n of ['cmp1', 'cmp2']) {
        const o = store.get(n).nova!;
        expect(['up', 'down', 'unknown']).toContain(o.apiState);
        expect(Number.isInteger(o.evacuationMigrations) && o.evacuationMigrations >= 0).toBe(true);
        if (o.status !== undefined) expect(['enabled', 'disabled']).toContain(o.status);
        if (o.disabledReason !== undefined) expect(typeof o.disabledReason).toBe('string');
        if (o.apiState === 'unknown') unknown++; else known++;
      }
      if (store.get('cmp1').nova!.apiState === 'unknown' && store.get('cmp2').nova!.apiState === 'unknown') {
        // Either Nova answered and listed neither host, or the failure was counted.
        const listed = (() => { try { return (JSON.parse(a.services.text) as { services: { host: string }[] }).services.some((s) => s.host === 'cmp1' || s.host === 'cmp2'); } catch { return false; } })();
        if (listed) expect(await count()).toBeGreaterThan(before);
      }
    }), RUNS);
    expect(unknown).toBeGreaterThan(0);
    expect(known).toBeGreaterThan(0);
  });

  it('evacuation plan: never a server without an id; a bad list is an OpenStackError', { timeout: budget(RUNS, 40) }, async () => {
    await check('nova evacuation plan', fc.asyncProperty(answers, async (a) => {
      current = a as Answers;
      const plan = await typed(planEvacuation(nova(), 'cmp1', policy, Date.now()));
      if (plan instanceof OpenStackError) return;
      expect(plan.total).toBe(plan.servers.length);
      for (const s of plan.servers) expect(typeof s.id === 'string' && s.id.length > 0).toBe(true);
    }), RUNS);
  });
});
