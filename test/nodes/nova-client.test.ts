// Keystone + Nova clients against the Nova simulator, and nock for edge cases.
import '../support/node20.js';
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeystoneClient, OpenStackError, parseCloudsYaml } from '../../src/clients/keystone.js';
import { NovaClient } from '../../src/clients/nova.js';
import { NovaSim } from '../../src/sim/nova.js';

describe('Nova/Keystone clients against the simulator', () => {
  const sim = new NovaSim({ migrationStepMs: 50, serviceDownTimeMs: 60_000 });
  let nova: NovaClient;
  let ks: KeystoneClient;
  beforeAll(async () => {
    await sim.start();
    sim.addHost('cmp1');
    sim.addHost('cmp2');
    for (let i = 0; i < 5; i++) sim.addServer('cmp1', { vm_state: i === 4 ? 'stopped' : 'active' });
    sim.addServer('cmp2');
    ks = new KeystoneClient(parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'));
    nova = new NovaClient(ks, { retryDelayMs: 10 });
  });
  afterAll(async () => { await sim.stop(); });

  it('negotiates a microversion >= 2.53 and caps the wanted one', async () => {
    expect(await nova.microversion()).toBe('2.96');
    expect(await nova.use('2.94')).toBe('2.94');
    expect(await nova.use('2.99')).toBe('2.96');
  });
  it('lists services and pages through servers', async () => {
    const svcs = await nova.listServices('cmp1');
    expect(svcs).toHaveLength(1);
    expect(svcs[0]).toMatchObject({ host: 'cmp1', state: 'up', status: 'enabled', forced_down: false });
    const servers = await nova.listServers('cmp1', 2);
    expect(servers).toHaveLength(5);
    expect(new Set(servers.map((s) => s.id)).size).toBe(5);
  });
  it('evacuate is refused while the service is up (400), works after force-down; migrations progress to done', async () => {
    const [svc] = await nova.listServices('cmp1');
    // An ACTIVE one (ids are random: the first by id may be the stopped server).
    const srv = (await nova.listServers('cmp1')).find((x) => x.status === 'ACTIVE');
    const err = await nova.evacuate(srv!.id, { microversion: '2.94' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackError);
    expect((err as OpenStackError).status).toBe(400);
    expect((err as OpenStackError).message).toContain('still in use');
    sim.setAlive('cmp1', false);
    await nova.forceDown(svc!.id, true);
    await nova.disable(svc!.id, 'hm9k fence cmp1-x');
    const after = (await nova.listServices('cmp1'))[0]!;
    expect(after).toMatchObject({ state: 'down', forced_down: true, status: 'disabled', disabled_reason: 'hm9k fence cmp1-x' });
    // Held in pre-migrating while the second request is checked (else a loaded machine may finish it first).
    sim.stallEvacuationOf.add(srv!.id);
    expect(await nova.evacuate(srv!.id, { microversion: '2.94' })).toBe('2.94');
    const busy = await nova.evacuate(srv!.id, { microversion: '2.94' }).catch((e: unknown) => e);
    expect((busy as OpenStackError).status).toBe(409);
    sim.stallEvacuationOf.delete(srv!.id);
    let migs = await nova.migrations({ sourceCompute: 'cmp1', instanceUuid: srv!.id, type: 'evacuation' });
    expect(['accepted', 'pre-migrating', 'done']).toContain(migs[0]?.status);
    // Wait for the outcome with a deadline (a loaded machine delays the simulator's timers).
    for (const deadline = Date.now() + 15_000; migs[0]?.status !== 'done' && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 30));
      migs = await nova.migrations({ sourceCompute: 'cmp1', instanceUuid: srv!.id, type: 'evacuation' });
    }
    expect(migs[0]?.status).toBe('done');
    const moved = await nova.getServer(srv!.id);
    expect(moved['OS-EXT-SRV-ATTR:host']).toBe('cmp2');
    expect(moved.status).toBe('ACTIVE');
    // Un-forcing is refused while done migrations remain; after nova-compute restarts it works.
    const unforce = await nova.forceDown(svc!.id, false).catch((e: unknown) => e);
    expect((unforce as OpenStackError).status).toBe(400);
    sim.setAlive('cmp1', true);
    expect((await nova.forceDown(svc!.id, false)).forced_down).toBe(false);
    expect((await nova.enable(svc!.id)).status).toBe('enabled');
  });
  it('re-authenticates once on 401', async () => {
    sim.revokeTokens();
    const svcs = await nova.listServices('cmp2');
    expect(svcs[0]?.host).toBe('cmp2');
  });
  it('retries a GET on 5xx, but not a POST', async () => {
    sim.failNext = { status: 503, count: 1 };
    expect((await nova.listServices('cmp2')).length).toBe(1);
    const [srv] = await nova.listServers('cmp2');
    sim.failNext = { status: 500, count: 1, match: /POST/ };
    const err = await nova.evacuate(srv!.id, { microversion: '2.94' }).catch((e: unknown) => e);
    expect((err as OpenStackError).status).toBe(500);
    sim.failNext = undefined;
  });
  it('times out a slow Nova (typed timeout)', async () => {
    const quick = new NovaClient(ks, { timeoutMs: 100, retries: 0 });
    await quick.microversion();
    sim.delayMs = 400;
    try {
      const err = await quick.listServices('cmp2').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenStackError);
      expect((err as OpenStackError).kind).toBe('timeout');
    } finally {
      sim.delayMs = 0;
    }
  });
  it('wrong password is a typed 401', async () => {
    const bad = new NovaClient(new KeystoneClient({ ...parseCloudsYaml(sim.cloudsYaml('sim'), 'sim'), password: 'nope' }));
    const err = await bad.listServices().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenStackError);
    expect((err as OpenStackError).status).toBe(401);
  });
});

describe('Nova/Keystone clients: edge cases (nock)', () => {
  const base = 'http://nova.invalid';
  const cloud = { authUrl: `${base}/identity/v3`, username: 'u', password: 'p', userDomainName: 'Default', projectName: 'admin', projectDomainName: 'Default', interface: 'public' as const };
  const tokenBody = (exp: number) => ({ token: { expires_at: new Date(exp).toISOString(), catalog: [{ type: 'compute', endpoints: [{ interface: 'public', region_id: 'R', url: `${base}/compute/v2.1` }] }] } });
  beforeAll(() => { nock.disableNetConnect(); nock.enableNetConnect('127.0.0.1'); });
  afterEach(() => { nock.cleanAll(); });
  afterAll(() => { nock.enableNetConnect(); });

  it('re-authenticates at 80% of the token lifetime (token cache)', async () => {
    let now = Date.now();
    const issued = (exp: number, at: number) => ({ token: { ...tokenBody(exp).token, issued_at: new Date(at).toISOString() } });
    const scope = nock(base)
      .post('/identity/v3/auth/tokens').reply(201, issued(now + 600_000, now), { 'X-Subject-Token': 't1' })
      .post('/identity/v3/auth/tokens').reply(201, issued(now + 2_000_000, now), { 'X-Subject-Token': 't2' });
    const ks = new KeystoneClient(cloud, { now: () => now });
    expect(await ks.authToken()).toBe('t1');
    expect(await ks.authToken()).toBe('t1');
    now += 470_000;
    expect(await ks.authToken()).toBe('t1');
    now += 20_000;
    expect(await ks.authToken()).toBe('t2');
    scope.done();
  });
  it('a failed refresh keeps the still-valid token and retries Keystone only after the interval', async () => {
    let now = Date.now();
    const issued = (exp: number, at: number) => ({ token: { ...tokenBody(exp).token, issued_at: new Date(at).toISOString() } });
    const scope = nock(base)
      .post('/identity/v3/auth/tokens').reply(201, issued(now + 100_000, now), { 'X-Subject-Token': 't1' })
      .post('/identity/v3/auth/tokens').reply(503, { error: { code: 503, message: 'down' } })
      .post('/identity/v3/auth/tokens').reply(201, issued(now + 200_000, now), { 'X-Subject-Token': 't2' });
    const ks = new KeystoneClient(cloud, { now: () => now });
    expect(await ks.authToken()).toBe('t1');
    now += 85_000; // past 80% of 100 s: refresh, Keystone answers 503
    expect(await ks.authToken()).toBe('t1');
    expect(await ks.authToken()).toBe('t1'); // no second request within 5 s
    expect(ks.authentications).toBe(2);
    now += 5_000;
    expect(await ks.authToken()).toBe('t2');
    scope.done();
  });
  it('Keystone down with no usable token: calls get the last failure, Keystone is asked on a doubling back-off, not once per call', async () => {
    let now = Date.now();
    const scope = nock(base)
      .post('/identity/v3/auth/tokens').times(4).reply(503, { error: { code: 503, message: 'down' } })
      .post('/identity/v3/auth/tokens').reply(201, tokenBody(now + 3_600_000), { 'X-Subject-Token': 't1' });
    const ks = new KeystoneClient(cloud, { now: () => now, authRetryMs: 250, minReauthIntervalMs: 1000 });
    // A caller polling every 100 ms for 2.8 s; the back-off goes 250, 500, 1000 ms (capped at minReauthIntervalMs).
    const errors: number[] = [];
    for (let i = 0; i < 28; i++) {
      const err = await ks.authToken().then(() => undefined, (e: unknown) => e);
      if (err === undefined) break;
      expect(err).toBeInstanceOf(OpenStackError);
      errors.push((err as OpenStackError).status);
      now += 100;
    }
    expect(errors).toHaveLength(28);
    expect(errors.every((s) => s === 503)).toBe(true);
    expect(ks.authentications).toBe(4); // at 0, 300, 800 and 1800 ms: 4 requests for 28 calls
    expect(await ks.authToken()).toBe('t1'); // 2800 ms: the back-off has passed, Keystone is back
    expect(ks.authentications).toBe(5);
    scope.done();
  });
  it('401 twice is an error, not a loop', async () => {
    nock(base).post('/identity/v3/auth/tokens').times(2).reply(201, tokenBody(Date.now() + 3_600_000), { 'X-Subject-Token': 't' })
      .get('/compute/v2.1/').reply(200, { version: { version: '2.96', min_version: '2.1' } })
      .get(/os-services/).times(2).reply(401, { error: { code: 401, message: 'nope' } });
    const nova = new NovaClient(new KeystoneClient(cloud));
    const err = await nova.listServices('x').catch((e: unknown) => e);
    expect((err as OpenStackError).status).toBe(401);
  });
  it('malformed JSON is a typed error', async () => {
    nock(base).post('/identity/v3/auth/tokens').reply(201, tokenBody(Date.now() + 3_600_000), { 'X-Subject-Token': 't' })
      .get('/compute/v2.1/').reply(200, { version: { version: '2.96', min_version: '2.1' } })
      .get(/os-services/).reply(200, '{"services": [');
    const err = await new NovaClient(new KeystoneClient(cloud)).listServices('x').catch((e: unknown) => e);
    expect((err as OpenStackError).kind).toBe('malformed');
  });
  it('a Nova older than 2.53 is refused', async () => {
    nock(base).post('/identity/v3/auth/tokens').reply(201, tokenBody(Date.now() + 3_600_000), { 'X-Subject-Token': 't' })
      .get('/compute/v2.1/').reply(200, { version: { version: '2.42', min_version: '2.1' } });
    const err = await new NovaClient(new KeystoneClient(cloud)).listServices('x').catch((e: unknown) => e);
    expect((err as OpenStackError).message).toContain('2.53');
  });
  it('keystone token without X-Subject-Token is malformed', async () => {
    nock(base).post('/identity/v3/auth/tokens').reply(201, tokenBody(Date.now() + 3_600_000));
    const err = await new KeystoneClient(cloud).authToken().catch((e: unknown) => e);
    expect((err as OpenStackError).kind).toBe('malformed');
  });
  it('clouds.yaml without the cloud is a config error', () => {
    expect(() => parseCloudsYaml('clouds: {}', 'x')).toThrow(/no cloud/);
  });
});
