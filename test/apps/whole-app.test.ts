// The whole app half against a real nats-server, the CC simulator and a DEA fleet publishing real
// heartbeats, at 1/10 of HM9000's production timings. The Kubernetes side is the in-memory runtime
// (test/apps/support/fake-runtime.ts); DesiredApp projection against the real apiserver is in
// test/apps/projection-kube.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startApps, scaleTimings, type AppsHandle } from '../../src/apps/index.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import { DeaFleet } from '../../src/sim/dea.js';
import { NatsServer } from '../support/nats.js';
import { waitFor } from '../support/proc.js';
import { fakeRuntime, type FakeRuntime } from './support/fake-runtime.js';
import { crashKey } from '../../src/apps/types.js';

let nats: NatsServer;
let nc: NatsConnection;
let fleet: DeaFleet;
let cc: CloudControllerSim;
let rt: FakeRuntime;
let apps: AppsHandle;
let slow = false;

const apiAuth = `Basic ${Buffer.from('hm:pw').toString('base64')}`;
const runningIndices = (app: string) => fleet.instances(app).filter((i) => i.state === 'RUNNING' || i.state === 'STARTING').map((i) => i.index).sort();

beforeAll(async () => {
  nats = await NatsServer.start();
  nc = await connect({ servers: nats.url });
  fleet = new DeaFleet({ nats: nc, count: 3, heartbeatPeriodMs: 1000, startupMs: 200, evacuationTimeoutMs: 3000 });
  cc = new CloudControllerSim({ dea: fleet });
  await cc.listen();
  for (const [guid, n] of [['web', 3], ['api', 2], ['worker', 1], ['crashy', 2], ['fast', 2]] as const) {
    cc.setApp({ guid, version: `${guid}-v1`, instances: n, state: 'STARTED', package_state: 'STAGED' });
    for (let i = 0; i < n; i++) fleet.place(fleet.deaIds()[i % 3]!, guid, `${guid}-v1`, i);
  }
  fleet.start();
  rt = fakeRuntime();
  apps = await startApps(
    rt,
    {
      nats: { servers: [nats.url] },
      cc: { url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password' },
      sendVia: 'http',
      store: { kind: 'memory' },
      api: { port: 0, user: 'hm', password: 'pw', heartbeatEndpoint: true },
      desiredAppNamespace: 'cf',
      configOverride: (c) => {
        const s = scaleTimings(c, 10);
        return slow ? { ...s, analyzeIntervalMs: 600_000, sendIntervalMs: 600_000 } : s;
      },
    },
    { desiredAppApi: rt.desiredAppApi },
  );
}, 60_000);

afterAll(async () => {
  await apps?.stop();
  await fleet?.stopAll();
  await cc?.close();
  await nc?.close();
  await nats?.stop();
});

describe('whole app half (1/10 timings)', () => {
  it('becomes fresh, answers /bulk_app_state, projects DesiredApps, and changes nothing in a healthy fleet', async () => {
    await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh and sending', 30_000);
    const res = await fetch(`http://127.0.0.1:${apps.apiPort}/bulk_app_state`, { method: 'POST', headers: { authorization: apiAuth }, body: JSON.stringify([{ droplet: 'web', version: 'web-v1' }, { droplet: 'nope', version: 'x' }]) });
    const body = await res.json();
    expect(Object.keys(body)).toEqual(['web']);
    expect(body.web.instance_heartbeats).toHaveLength(3);
    expect(body.web.instance_heartbeats[0]).toHaveProperty('dea_guid');
    expect((await fetch(`http://127.0.0.1:${apps.apiPort}/bulk_app_state`, { method: 'POST', body: '[]' })).status).toBe(401);
    expect(rt.desiredAppApi.calls.filter((c) => c.op === 'create').map((c) => c.name).sort()).toEqual(['api', 'crashy', 'fast', 'web', 'worker']);
    expect(cc.starts()).toEqual([]);
    expect(cc.stops()).toEqual([]);
    // The AppHealthPolicy status is written only when a policy exists; DesiredApp status is.
    await waitFor(() => rt.statusWrites.some((w) => w.kind === 'DesiredApp' && w.name === 'web'), 'DesiredApp status');
  });

  it('an HTTP heartbeat is re-published on NATS (202); an unparseable one is 400', async () => {
    const url = `http://127.0.0.1:${apps.apiPort}/dea/heartbeat`;
    const headers = { authorization: apiAuth };
    expect((await fetch(url, { method: 'POST', body: '', headers })).status).toBe(400);
    expect((await fetch(url, { method: 'POST', body: '{"dea":', headers })).status).toBe(400);
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<string>((resolve, reject) => {
      const sub = nc.subscribe('dea.heartbeat', { callback: (_e, m) => { if (m.string().includes('http-dea')) { sub.unsubscribe(); resolve(m.string()); } } });
      timer = setTimeout(() => { sub.unsubscribe(); reject(new Error('the HTTP heartbeat never appeared on NATS within 20 s')); }, 20_000);
    });
    // The subscription must be on the server before hm9k publishes: a flush round-trips it. Without
    // it, on a loaded machine hm9k's publish could pass the server first and the test waited forever.
    await nc.flush();
    expect((await fetch(url, { method: 'POST', body: JSON.stringify({ dea: 'http-dea', droplets: [] }), headers })).status).toBe(202);
    expect(JSON.parse(await seen).dea).toBe('http-dea');
    clearTimeout(timer);
  });

  it('an unauthenticated forged heartbeat (a real DEA reporting nothing) is refused with 401 and changes nothing (issue 14 item 5)', async () => {
    const victim = fleet.deaIds()[2]!;
    const before = apps.store.instancesByApp();
    const forged = JSON.stringify({ dea: victim, droplets: [] });
    const seen: string[] = [];
    const sub = nc.subscribe('dea.heartbeat', { callback: (_e, m) => { if (m.string() === forged) seen.push(m.string()); } });
    await nc.flush(); // registered before the request, or a leak could go unseen
    const res = await fetch(`http://127.0.0.1:${apps.apiPort}/dea/heartbeat`, { method: 'POST', body: forged });
    expect(res.status).toBe(401);
    await nc.flush();
    sub.unsubscribe();
    expect(seen).toEqual([]);
    expect(fleet.instances().filter((i) => i.dea === victim).every((i) => apps.store.instancesOf(i.appGuid).some((s) => s.instance === i.guid))).toBe(true);
    expect(before.size).toBeGreaterThan(0);
  });

  it('extra instances are stopped (is_duplicate false)', async () => {
    const extra = fleet.place(fleet.deaIds()[1]!, 'worker', 'worker-v1', 3);
    await waitFor(() => !fleet.instances('worker').some((i) => i.guid === extra), 'extra stopped', 20_000);
    const stop = cc.stops().find((r) => (r.body as { instance_guid: string }).instance_guid === extra)!;
    expect(stop.body).toMatchObject({ droplet: 'worker', instance_index: 3, is_duplicate: false });
    expect(runningIndices('worker')).toEqual([0]);
  });

  it('a DEA dies: its instances are restarted elsewhere after presence TTL + grace', async () => {
    const victim = fleet.deaIds()[0]!;
    const lost = fleet.instances().filter((i) => i.dea === victim && ['web', 'api', 'worker'].includes(i.appGuid));
    expect(lost.length).toBeGreaterThan(0);
    fleet.kill(victim);
    await waitFor(() => runningIndices('web').join() === '0,1,2' && runningIndices('api').join() === '0,1' && runningIndices('worker').join() === '0', 'restarted elsewhere', 30_000);
    for (const i of lost) {
      const start = cc.starts().find((r) => (r.body as { droplet: string; instance_index: number }).droplet === i.appGuid && (r.body as { instance_index: number }).instance_index === i.index);
      expect(start, `start for ${i.appGuid}/${i.index}`).toBeDefined();
    }
    expect(fleet.instances().every((i) => i.dea !== victim)).toBe(true);
  });

  it('a crash loop is restarted on the backoff schedule (immediately 3 times, then with growing delays)', async () => {
    fleet.crashOnStart.add('crashy');
    const first = fleet.instances('crashy').find((i) => i.index === 0)!;
    fleet.crash(first.guid);
    const key = crashKey('crashy', 'crashy-v1', 0);
    await waitFor(() => (apps.store.crashCounts().get(key)?.count ?? 0) >= 4, 'crash count 4', 40_000);
    const starts = cc.starts().filter((r) => (r.body as { droplet: string }).droplet === 'crashy');
    expect(starts.length).toBeGreaterThanOrEqual(3);
    // With a stored count of 4 the next start waits startingBackoff x 2 = 6 s (1/10 of 60 s).
    const pending = apps.store.pending().starts.get('crashy/crashy-v1/0');
    const c = apps.store.crashCounts().get(key)!;
    expect(pending).toMatchObject({ reason: 'CRASHED', sentOn: 0 });
    expect(pending!.sendOn - c.updatedAt).toBe(3000 * 2 ** (c.count - 1 - 3));
    fleet.crashOnStart.delete('crashy');
  });

  it('CC answers empty: nothing is stopped (shrink guard), and the guard is reported', async () => {
    const stopsBefore = cc.stops().length;
    const running = fleet.instances().length;
    cc.inject({ kind: 'empty', endpoint: 'bulk', times: -1 });
    await waitFor(() => apps.fetcher.shrinkHold !== undefined, 'shrink guard', 20_000);
    const fetchesBefore = cc.requests.filter((r) => r.endpoint === 'bulk').length;
    await waitFor(() => cc.requests.filter((r) => r.endpoint === 'bulk').length > fetchesBefore, 'another guarded fetch', 20_000);
    await new Promise((r) => setTimeout(r, 3000)); // several analysis and send cycles
    expect(cc.stops().length).toBe(stopsBefore);
    expect(fleet.instances().length).toBeGreaterThanOrEqual(running);
    expect(apps.lastDecisions()?.acted).toBe(true);
    cc.clearFailures();
    await waitFor(() => apps.fetcher.shrinkHold === undefined, 'guard lifted after a normal answer', 20_000);
  });

  it('a crash leads to a CC start request at once (fast path), not at the next analysis cycle', async () => {
    slow = true; // the periodic analyzer and sender now run every 10 minutes
    await new Promise((r) => setTimeout(r, 2500)); // let the last periodic cycle pass
    const target = fleet.instances('fast').find((i) => i.index === 1)!;
    const before = cc.starts().length;
    fleet.crash(target.guid);
    await waitFor(() => cc.starts().slice(before).some((r) => (r.body as { droplet: string }).droplet === 'fast'), 'fast-path start', 10_000);
    await waitFor(() => runningIndices('fast').join() === '0,1', 'fast restarted', 10_000);
    slow = false;
  });
});
