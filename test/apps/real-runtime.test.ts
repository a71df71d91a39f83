// The whole app half under the REAL controller runtime (createRuntime: informers, status writer,
// event recorder, Lease leader election, probe server) against the shared kube-apiserver, with a
// real nats-server, the Cloud Controller simulator and a DEA fleet, at 1/20 of HM9000's production
// timings (set through the AppHealthPolicy spec, as an operator would). Each scenario asserts which
// actions reached CC (the simulator's record) and which did not, and what the apiserver shows:
// AppHealthPolicy and DesiredApp status, and Events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CustomObjectsApi, EventsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { API_VERSION, GROUP, VERSION, type AppHealthPolicy, type AppHealthPolicySpec, type DesiredApp } from '../../src/api/index.js';
import { startApps, type AppsHandle } from '../../src/apps/index.js';
import { createRuntime, type ManagedRuntime } from '../../src/kube/runtime.js';
import { CloudControllerSim, type CcRequest } from '../../src/sim/cc.js';
import { DeaFleet } from '../../src/sim/dea.js';
import type { StartMessage, StopMessage } from '../../src/apps/types.js';
import { kubeConfig, testNamespace } from '../support/controlplane.js';
import { NatsServer } from '../support/nats.js';
import { waitFor } from '../support/proc.js';

const hasControlPlane = !!process.env.HM9K_CP_STATE;
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

// 1/20 of production: heartbeats every 500 ms, freshness 1.5 s, grace 1.5 s, fetch every 3 s.
const CYCLE_MS = 500;
const spec: AppHealthPolicySpec = {
  timings: {
    heartbeatPeriod: '500ms', presenceTTL: '1500ms', actualFreshnessTTL: '1500ms', desiredFreshnessTTL: '6s', gracePeriod: '1500ms',
    fetchInterval: '3s', fetchTimeout: '1500ms', analyzeInterval: '500ms', sendInterval: '500ms', flushInterval: '50ms', keepAlive: '1500ms',
  },
  crashBackoff: { startingBackoff: '1500ms', maxBackoff: '48s' },
  // The stop budget is switched on only for the stop-hold scenario (minStopsForHold 1000 = never).
  guards: { maxShrinkPercent: 30, maxStopPercent: 20, stopWindow: '15s', minStopsForHold: 1000 },
};
const APPS: [string, number, number[]][] = [
  // guid, instances, DEA index of each instance (dea-3 holds only 'evac')
  ['evac', 2, [3, 3]],
  ['shrink', 3, [0, 1, 2]],
  ['roll', 2, [0, 1]],
  ['dup', 1, [2]],
  ['halt', 2, [0, 1]],
  ['pz', 1, [2]],
  ['dry', 1, [0]],
  ['steady', 3, [0, 1, 2]],
];

let ns: string;
let policyName: string;
let kc: KubeConfig;
let co: CustomObjectsApi;
let nats: NatsServer;
let nc: NatsConnection;
let fleet: DeaFleet;
let cc: CloudControllerSim;
let rt: ManagedRuntime;
let apps: AppsHandle;
let leadershipLost = false;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const body = <T>(r: CcRequest) => r.body as T;
const startsFor = (app: string) => cc.starts().filter((r) => body<StartMessage>(r).droplet === app);
const stopsFor = (app: string) => cc.stops().filter((r) => body<StopMessage>(r).droplet === app);
const actionCount = () => cc.starts().length + cc.stops().length;
const live = (app: string) => fleet.instances(app).filter((i) => i.state === 'RUNNING' || i.state === 'STARTING');
const indices = (app: string) => live(app).map((i) => i.index).sort().join(',');
const getDA = async (name: string) => (await co.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', name })) as DesiredApp;
const listDA = async () => ((await co.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps' })) as { items: DesiredApp[] }).items;
const getPolicy = async () => (await co.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', name: policyName })) as AppHealthPolicy;
const patchPolicy = (patch: unknown) => co.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', name: policyName, body: patch }, merge);
const patchDA = (name: string, patch: unknown) => co.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps', name, body: patch }, merge);
const cond = (o: { status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } }, type: string) => o.status?.conditions?.find((c) => c.type === type);
/** Events (events.k8s.io/v1) about one object. */
const eventsAbout = async (namespace: string, name: string) =>
  (await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace })).items.filter((e) => e.regarding?.name === name).map((e) => ({ reason: e.reason ?? '', note: e.note ?? '', type: e.type ?? '' }));
const eventsSent = async () => ((await rt.metrics.getSingleMetric('hm9k_events_total')?.get())?.values ?? []).reduce((a, v) => a + v.value, 0);
/** Waits for n analysis/send cycles of the app half. */
const cycles = (n: number) => sleep(n * CYCLE_MS);
const converged = async (name: string) => cond(await getDA(name), 'Converged')?.status === 'True';

describe.skipIf(!hasControlPlane)('app half under the real runtime (real apiserver, NATS, CC and DEA simulators, 1/20 timings)', () => {
  beforeAll(async () => {
    kc = kubeConfig();
    co = kc.makeApiClient(CustomObjectsApi);
    ns = await testNamespace('apps-rt');
    policyName = ns; // cluster-scoped: one per test file
    await co.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', body: { apiVersion: API_VERSION, kind: 'AppHealthPolicy', metadata: { name: policyName }, spec } });

    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    fleet = new DeaFleet({ nats: nc, count: 4, heartbeatPeriodMs: CYCLE_MS, startupMs: 100, evacuationTimeoutMs: 600_000 });
    cc = new CloudControllerSim({ dea: fleet });
    await cc.listen();
    for (const [guid, n, deas] of APPS) {
      cc.setApp({ guid, version: `${guid}-v1`, instances: n, state: 'STARTED', package_state: 'STAGED' });
      for (let i = 0; i < n; i++) fleet.place(`dea-${deas[i]}`, guid, `${guid}-v1`, i);
    }

    rt = await createRuntime({
      component: 'apps',
      namespace: ns,
      kubeConfig: kc,
      logger: pino({ level: process.env.HM9K_TEST_LOG ?? 'silent' }),
      bindAddress: '127.0.0.1',
      probePort: 0,
      metricsPort: 0,
      handleSignals: false,
      leaderElection: { leaseName: 'hm9k-apps', leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500, onLost: () => (leadershipLost = true) },
    });
    apps = await startApps(rt, {
      nats: { servers: [nats.url] },
      cc: { url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password' },
      sendVia: 'http',
      store: { kind: 'memory' },
      api: { port: 0, host: '127.0.0.1', user: 'hm', password: 'pw' },
      desiredAppNamespace: ns,
      policyName,
      defaultSpec: spec,
    });
    rt.onStop(() => apps.stop());
    await rt.start();
  }, 120_000);

  afterAll(async () => {
    await rt?.stop();
    await fleet?.stopAll();
    await cc?.close();
    await nc?.close();
    await nats?.stop();
    await co?.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'apphealthpolicies', name: policyName }).catch(() => undefined);
  });

  const apiAuth = `Basic ${Buffer.from('hm:pw').toString('base64')}`;
  const bulk = async () => (await fetch(`http://127.0.0.1:${apps.apiPort}/bulk_app_state`, { method: 'POST', headers: { authorization: apiAuth }, body: JSON.stringify([{ droplet: 'steady', version: 'steady-v1' }]) })).json();
  const probeReady = async () => (await fetch(`http://127.0.0.1:${rt.ports().probes}/readyz`)).status;
  const apiReady = async () => (await fetch(`http://127.0.0.1:${apps.apiPort}/readyz`)).status;

  it('not fresh: /bulk_app_state answers {} and /readyz is 503 (runtime probe server and API server); fresh: both ready', async () => {
    // No DEA heartbeats yet: not fresh, however long the process runs.
    await waitFor(() => rt.leader.isLeader(), 'leadership', 20_000);
    await cycles(4);
    expect(await probeReady()).toBe(503);
    expect(await apiReady()).toBe(503);
    expect(await bulk()).toEqual({});

    fleet.start();
    await waitFor(async () => (await probeReady()) === 200, 'runtime /readyz 200', 20_000);
    expect(await apiReady()).toBe(200);
    const answer = (await bulk()) as Record<string, { instance_heartbeats: unknown[] }>;
    expect(answer.steady?.instance_heartbeats).toHaveLength(3);

    // NATS goes away: freshness is lost, the replica leaves the Service and answers {}.
    await nats.stop();
    await waitFor(async () => (await probeReady()) === 503, 'runtime /readyz 503 without heartbeats', 20_000);
    expect(await apiReady()).toBe(503);
    expect(await bulk()).toEqual({});
    await nats.restart();
    await waitFor(async () => (await probeReady()) === 200, 'ready again', 30_000);
    expect(Object.keys(await bulk())).toEqual(['steady']);
  });

  it('converges without acting on a healthy fleet, then stays quiet: no status write, no Event over several cycles', async () => {
    await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'leading, fresh and sending', 30_000);
    await waitFor(async () => (await listDA()).length === APPS.length, 'DesiredApps projected', 20_000);
    await waitFor(async () => {
      for (const [guid] of APPS) if (!(await converged(guid))) return false;
      return true;
    }, 'every DesiredApp Converged', 30_000);
    await waitFor(async () => cond(await getPolicy(), 'ActualStateFresh')?.status === 'True' && cond(await getPolicy(), 'DesiredStateFresh')?.status === 'True', 'policy fresh', 20_000);
    expect(actionCount()).toBe(0);
    const p = await getPolicy();
    expect(p.status?.counts).toMatchObject({ desiredApps: APPS.length, desiredInstances: 15, running: 15, missing: 0, crashed: 0, undesired: 0 });
    expect((await getDA('steady')).status).toMatchObject({ running: 3, missing: 0, crashed: 0 });

    // Steady state: several analysis cycles and at least two fetches write nothing to the apiserver.
    await cycles(3); // let writes already in flight land
    const writes = await rt.status.requestCount();
    const events = await eventsSent();
    const fetches = cc.requests.filter((r) => r.endpoint === 'bulk').length;
    await waitFor(() => cc.requests.filter((r) => r.endpoint === 'bulk').length >= fetches + 2, 'two more fetches', 20_000);
    await cycles(4);
    expect(await rt.status.requestCount()).toBe(writes);
    expect(await eventsSent()).toBe(events);
    expect(actionCount()).toBe(0);
  });

  it('DEA evacuation: droplet.exited DEA_EVACUATION starts the index elsewhere at once, then the evacuating one is stopped (EVACUATION_COMPLETE, is_duplicate)', async () => {
    const old = fleet.instances('evac');
    expect(old.map((i) => i.dea)).toEqual(['dea-3', 'dea-3']);
    fleet.evacuate('dea-3');
    // dea_ng announces each evacuating instance with droplet.exited DEA_EVACUATION.
    for (const i of old) nc.publish('droplet.exited', JSON.stringify({ droplet: i.appGuid, version: i.version, instance: i.guid, index: i.index, reason: 'DEA_EVACUATION', exit_status: 0, exit_description: 'evacuation' }));
    await waitFor(() => startsFor('evac').length >= 2, 'evacuation starts', 10_000);
    expect(startsFor('evac').map((r) => body<StartMessage>(r).instance_index).sort()).toEqual([0, 1]);
    await waitFor(() => stopsFor('evac').length >= 2, 'evacuation-complete stops', 15_000);
    // Each index was started elsewhere while its old instance still ran (evacuating, its DEA never
    // exited): the replacement's start precedes the old one's stop.
    expect(fleet.log.some((e) => e.op === 'exit' && e.dea === 'dea-3')).toBe(false);
    for (const o of old) {
      const started = fleet.log.findIndex((e) => e.op === 'start' && e.appGuid === 'evac' && e.index === o.index);
      const stopped = fleet.log.findIndex((e) => e.op === 'stop' && e.instance === o.guid);
      expect(started).toBeGreaterThanOrEqual(0);
      expect(started).toBeLessThan(stopped);
    }
    const stops = stopsFor('evac').map((r) => body<StopMessage>(r));
    expect(stops.map((s) => s.instance_guid).sort()).toEqual(old.map((i) => i.guid).sort());
    expect(stops.every((s) => s.is_duplicate === true)).toBe(true);
    await waitFor(() => indices('evac') === '0,1' && fleet.instances('evac').every((i) => i.dea !== 'dea-3' && i.state === 'RUNNING'), 'evac runs elsewhere', 15_000);
    expect(startsFor('evac')).toHaveLength(2); // one start per index, no second (missing) start
    await waitFor(async () => {
      const reasons = (await eventsAbout(ns, 'evac')).map((e) => e.reason);
      return reasons.filter((r) => r === 'StartEvacuation').length >= 1 && reasons.includes('StopEvacuationComplete');
    }, 'Events StartEvacuation and StopEvacuationComplete on the DesiredApp', 15_000);
    expect((await eventsAbout(ns, 'evac')).map((e) => e.reason)).not.toContain('StartMissing');
    await waitFor(() => converged('evac'), 'evac Converged', 15_000);
  });

  it('scale down: the extra instances are stopped (EXTRA, is_duplicate false), nothing else', async () => {
    const before = cc.requests.length;
    const extra = live('shrink').filter((i) => i.index > 0).map((i) => i.guid).sort();
    cc.updateApp('shrink', { instances: 1 });
    await waitFor(() => indices('shrink') === '0', 'extras stopped', 20_000);
    const stops = stopsFor('shrink').map((r) => body<StopMessage>(r));
    expect(stops.map((s) => s.instance_guid).sort()).toEqual(extra);
    expect(stops.every((s) => s.is_duplicate === false && s.instance_index > 0)).toBe(true);
    expect(startsFor('shrink')).toEqual([]);
    await waitFor(async () => (await getDA('shrink')).spec.instances === 1 && (await converged('shrink')), 'DesiredApp shrink updated and Converged', 20_000);
    await waitFor(async () => (await getDA('shrink')).status?.running === 1, 'status running 1', 10_000);
    expect((await getDA('shrink')).status).toMatchObject({ running: 1, missing: 0, lastAction: { kind: 'stop', reason: 'EXTRA', outcome: 'sent' } });
    expect(cc.requests.slice(before).filter((r) => (r.endpoint === 'start' || r.endpoint === 'stop') && body<StartMessage>(r)?.droplet !== 'shrink')).toEqual([]);
  });

  it('a new version is rolled out: new-version instances started, old-version ones stopped', async () => {
    const oldGuids = live('roll').map((i) => i.guid).sort();
    cc.updateApp('roll', { version: 'roll-v2' });
    await waitFor(() => live('roll').length === 2 && live('roll').every((i) => i.version === 'roll-v2' && i.state === 'RUNNING'), 'roll-v2 running alone', 25_000);
    const starts = startsFor('roll').map((r) => body<StartMessage>(r));
    expect(starts.map((s) => `${s.version}/${s.instance_index}`).sort()).toEqual(['roll-v2/0', 'roll-v2/1']);
    const stops = stopsFor('roll').map((r) => body<StopMessage>(r));
    expect(stops.map((s) => s.instance_guid).sort()).toEqual(oldGuids);
    expect(stops.every((s) => s.version === 'roll-v1')).toBe(true);
    await waitFor(async () => (await getDA('roll')).spec.version === 'roll-v2' && (await converged('roll')), 'DesiredApp roll at v2 and Converged', 20_000);
  });

  it('duplicates: exactly one instance survives', async () => {
    const extra = fleet.place('dea-1', 'dup', 'dup-v1', 0);
    await waitFor(() => live('dup').length === 1, 'one dup left', 20_000);
    // The later staggered stop comes due and is dropped at verification: still exactly one.
    await waitFor(() => ![...apps.store.pending().stops.values()].some((m) => m.appGuid === 'dup' && m.sentOn === 0), 'no dup stop left queued', 20_000);
    await cycles(4);
    expect(live('dup')).toHaveLength(1);
    const stops = stopsFor('dup').map((r) => body<StopMessage>(r));
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({ instance_index: 0, is_duplicate: true });
    expect([extra]).toContain(stops[0]!.instance_guid); // the newest one goes
    expect(startsFor('dup')).toEqual([]);
  });

  it('an app STOPPED in CC: every instance stopped, none started', async () => {
    const guids = live('halt').map((i) => i.guid).sort();
    cc.updateApp('halt', { state: 'STOPPED' });
    await waitFor(() => live('halt').length === 0, 'halt stopped everywhere', 20_000);
    expect(stopsFor('halt').map((r) => body<StopMessage>(r).instance_guid).sort()).toEqual(guids);
    expect(startsFor('halt')).toEqual([]);
    await waitFor(async () => (await getDA('halt')).spec.state === 'STOPPED', 'DesiredApp halt STOPPED', 20_000);
  });

  it('every DesiredApp object deleted by a person: nothing is stopped or started, the objects are recreated', async () => {
    const before = actionCount();
    const running = fleet.instances().map((i) => i.guid).sort();
    const uids = new Map((await listDA()).map((o) => [o.metadata.name, o.metadata.uid]));
    await co.deleteCollectionNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: 'desiredapps' });
    await waitFor(async () => {
      const now = await listDA();
      return now.length === uids.size && now.every((o) => uids.get(o.metadata.name) !== o.metadata.uid);
    }, 'every object recreated', 20_000);
    await cycles(6);
    expect(actionCount()).toBe(before);
    expect(fleet.instances().map((i) => i.guid).sort()).toEqual(running);
    await waitFor(async () => (await getDA('steady')).status?.running === 3, 'status written again on the new object', 20_000);
  });

  it('paused: true on a DesiredApp stops every action for that app; unpaused, it is repaired', async () => {
    await patchDA('pz', { spec: { paused: true } });
    await waitFor(async () => cond(await getDA('pz'), 'Paused')?.status === 'True', 'Paused condition', 20_000);
    const extra = fleet.place('dea-0', 'pz', 'pz-v1', 1); // an extra to stop...
    fleet.crash(live('pz').find((i) => i.index === 0)!.guid); // ...and a crash to restart
    await cycles(8); // > grace, several send cycles, the crash fast path
    expect(startsFor('pz')).toEqual([]);
    expect(stopsFor('pz')).toEqual([]);
    expect(fleet.instances('pz').some((i) => i.guid === extra)).toBe(true);
    await patchDA('pz', { spec: { paused: false } });
    await waitFor(() => indices('pz') === '0' && !fleet.instances('pz').some((i) => i.guid === extra), 'pz repaired', 20_000);
    expect(startsFor('pz').map((r) => body<StartMessage>(r).instance_index)).toEqual([0]);
    expect(stopsFor('pz').map((r) => body<StopMessage>(r).instance_guid)).toEqual([extra]);
  });

  it('dryRun: decides and reports (status, Event) but sends nothing; off again, the action is sent', async () => {
    await patchPolicy({ spec: { dryRun: true } });
    await waitFor(() => apps.config().dryRun, 'dryRun seen by the app half', 10_000);
    const extra = fleet.place('dea-1', 'dry', 'dry-v1', 1);
    await waitFor(async () => (await getDA('dry')).status?.lastAction?.outcome === 'dryRun', 'lastAction dryRun', 20_000);
    expect((await getDA('dry')).status?.lastAction).toMatchObject({ kind: 'stop', reason: 'EXTRA', index: 1 });
    await waitFor(async () => (await eventsAbout(ns, 'dry')).some((e) => e.reason === 'StopExtra' && e.note.startsWith('dryRun:')), 'dryRun Event', 15_000);
    await cycles(6);
    expect(stopsFor('dry')).toEqual([]);
    expect(fleet.instances('dry').some((i) => i.guid === extra)).toBe(true);
    await patchPolicy({ spec: { dryRun: false } });
    await waitFor(() => !fleet.instances('dry').some((i) => i.guid === extra), 'extra stopped after dryRun off', 20_000);
    expect(stopsFor('dry').map((r) => body<StopMessage>(r).instance_guid)).toEqual([extra]);
  });

  it('stop hold: stops over budget are held (StopHold with a hold id, Event), starts go on; a stale id does not release it, the hold id does', async () => {
    await patchPolicy({ spec: { guards: { minStopsForHold: 5 } } });
    await waitFor(() => apps.config().guards.minStopsForHold === 5, 'guards seen', 10_000);
    // Six instances of an app CC does not know: 6 stops due against 20% of ~21 running.
    const rogue = [0, 1, 2, 0, 1, 2].map((d, i) => fleet.place(`dea-${d}`, 'rogue', 'rogue-v1', i));
    const crashed = live('steady').find((i) => i.index === 1)!;
    fleet.crash(crashed.guid);
    await waitFor(async () => cond(await getPolicy(), 'StopHold')?.status === 'True', 'StopHold condition', 20_000);
    const held = await getPolicy();
    const holdId = held.status!.stopHold!.id;
    expect(holdId).toMatch(/^hold-/);
    expect(cond(held, 'StopHold')!.message).toContain(`hm9k.io/release-stop-hold=${holdId}`);
    expect(held.status!.stopHold!.stopsHeld).toBeGreaterThanOrEqual(6);
    await waitFor(async () => (await eventsAbout('default', policyName)).some((e) => e.reason === 'StopHold' && e.type === 'Warning' && e.note.includes(holdId)), 'StopHold Event', 15_000);
    // Starts go on while stops are held.
    await waitFor(() => startsFor('steady').some((r) => body<StartMessage>(r).instance_index === 1), 'steady restarted during the hold', 15_000);
    expect(stopsFor('rogue')).toEqual([]);

    // A stale acknowledgement does not release it.
    await patchPolicy({ metadata: { annotations: { 'hm9k.io/release-stop-hold': 'hold-stale' } } });
    await waitFor(() => apps.store !== undefined && rt.informer('AppHealthPolicy').get(policyName)?.metadata.annotations?.['hm9k.io/release-stop-hold'] === 'hold-stale', 'annotation seen', 10_000);
    await cycles(6);
    expect(stopsFor('rogue')).toEqual([]);
    expect(fleet.instances('rogue')).toHaveLength(6);
    expect((await getPolicy()).status?.stopHold?.id).toBe(holdId);
    await waitFor(async () => (await eventsAbout('default', policyName)).some((e) => e.reason === 'StaleStopHoldRelease'), 'stale release Event', 15_000);

    // The hold id releases it: the held stops go.
    await patchPolicy({ metadata: { annotations: { 'hm9k.io/release-stop-hold': holdId } } });
    await waitFor(() => fleet.instances('rogue').length === 0, 'rogue stopped after release', 20_000);
    expect(stopsFor('rogue').map((r) => body<StopMessage>(r).instance_guid).sort()).toEqual([...rogue].sort());
    await waitFor(async () => {
      const p = await getPolicy();
      return cond(p, 'StopHold')?.status === 'False' && p.status?.releasedHoldId === holdId && !p.status?.stopHold;
    }, 'StopHold False, releasedHoldId', 15_000);
    await waitFor(async () => (await eventsAbout('default', policyName)).some((e) => e.reason === 'StopHoldReleased' && e.note.includes(holdId)), 'released Event', 15_000);
    await patchPolicy({ spec: { guards: { minStopsForHold: 1000 } }, metadata: { annotations: { 'hm9k.io/release-stop-hold': null } } });
    expect(leadershipLost).toBe(false);
  });

  it('CC suddenly marks most apps STOPPED: nothing is stopped (ShrinkGuard with an id, Event); a stale id does not release it, the id does', async () => {
    const flipped = ['evac', 'roll', 'dup', 'pz', 'dry', 'steady'].filter((g) => live(g).length > 0);
    const before = new Map(flipped.map((g) => [g, stopsFor(g).length]));
    const running = new Map(flipped.map((g) => [g, live(g).length]));
    for (const g of flipped) cc.updateApp(g, { state: 'STOPPED' });
    await waitFor(async () => cond(await getPolicy(), 'ShrinkGuard')?.status === 'True', 'ShrinkGuard condition', 20_000);
    const msg = cond(await getPolicy(), 'ShrinkGuard')!.message!;
    const id = /release-stop-hold=(\S+)/.exec(msg)![1]!;
    await waitFor(async () => (await eventsAbout('default', policyName)).some((e) => e.reason === 'ShrinkGuard' && e.note.includes(id)), 'ShrinkGuard Event', 15_000);
    // Several fetches and analysis cycles later: not one stop, every instance still running.
    await cycles(10);
    for (const g of flipped) {
      expect(stopsFor(g).length, g).toBe(before.get(g));
      expect(live(g).length, g).toBe(running.get(g));
    }
    // A stale id releases nothing.
    await patchPolicy({ metadata: { annotations: { 'hm9k.io/release-stop-hold': 'hold-stale' } } });
    await cycles(10);
    for (const g of flipped) expect(stopsFor(g).length, g).toBe(before.get(g));
    // The guard's id confirms the shrink: the stopped apps' instances are stopped.
    await patchPolicy({ metadata: { annotations: { 'hm9k.io/release-stop-hold': id } } });
    await waitFor(() => flipped.every((g) => live(g).length === 0), 'STOPPED apps stopped after the release', 30_000);
    await waitFor(async () => cond(await getPolicy(), 'ShrinkGuard')?.status === 'False', 'ShrinkGuard False', 20_000);
    expect(leadershipLost).toBe(false);
  });
});
