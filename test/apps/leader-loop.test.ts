// The leader loop (src/apps/leader) with the real fetcher (against the CC simulator over HTTP),
// store, analyzer, sender and status reporter, on a clock the test drives: only the leader acts,
// a new leader waits one keep-alive plus one grace period before its first send, a lost Lease
// stops everything, and the fast path sends an evacuation start at once.
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CcClient } from '../../src/clients/cc.js';
import { AnalysisCycle } from '../../src/apps/analyzer/cycle.js';
import { resolveAppsConfig, type AppsConfig } from '../../src/apps/config.js';
import { Fetcher } from '../../src/apps/fetcher/index.js';
import { ProjectionSync } from '../../src/apps/fetcher/projection-sync.js';
import { LeaderLoop, holdMaybeSent } from '../../src/apps/leader/index.js';
import { PolicySource } from '../../src/apps/policy.js';
import { Sender } from '../../src/apps/sender/index.js';
import { AppEvents } from '../../src/apps/status/events.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { StatusReporter } from '../../src/apps/status/reporter.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import type { StartMessage, StopMessage } from '../../src/hm9000/messages.js';
import { CloudControllerSim } from '../../src/sim/cc.js';
import type { AppHealthPolicy } from '../../src/api/index.js';
import type { PendingStart } from '../../src/apps/types.js';
import type { Informer } from '../../src/kube/contract.js';
import { waitFor } from '../support/proc.js';
import { fakeRuntime, MapInformer } from './support/fake-runtime.js';

const T0 = 1_700_000_000_000;
const log = pino({ level: 'silent' });

async function harness() {
  const cc = new CloudControllerSim();
  await cc.listen();
  cc.setApp({ guid: 'web', version: 'v1', instances: 2, state: 'STARTED', package_state: 'STAGED' });
  const rt = fakeRuntime();
  const policies = new PolicySource(rt.informer('AppHealthPolicy') as Informer<AppHealthPolicy>, {});
  const config = (): AppsConfig => policies.config();
  const cfg = resolveAppsConfig(undefined);
  const store = new MemoryStore(cfg.actualFreshnessTtlMs);
  const metrics = new AppsMetrics(new Registry());
  const client = new CcClient({ url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password', timeoutMs: 5000, batchSize: 500 });
  const fetcher = new Fetcher({ cc: client, store, config, metrics, logger: log });
  // Fetches run in the background of a tick: the harness waits for them before the next tick.
  const fetches: Promise<unknown>[] = [];
  const fetchOnce = fetcher.fetchOnce.bind(fetcher);
  fetcher.fetchOnce = (...a) => {
    const p = fetchOnce(...a);
    fetches.push(p);
    return p;
  };
  const projection = new ProjectionSync({ store, namespace: 'cf', logger: log });
  const sent: (StartMessage | StopMessage)[] = [];
  const events = new AppEvents({ events: rt.events, policy: () => policies.policy(), objectFor: () => undefined, releaseAnnotation: () => undefined });
  const sender = new Sender({ store, config, metrics, logger: log, transport: { sendStart: async (m) => void sent.push(m), sendStop: async (m) => void sent.push(m) }, onOutcome: (r) => events.action(r) });
  const clock = { now: T0 };
  const reporter: StatusReporter = new StatusReporter({ status: rt.status, policies, store, fetcher, sender, projection, logger: log, leading: () => loop.isLeading() });
  const analysis = new AnalysisCycle({ store, config, overrides: () => projection.overrides(), metrics, logger: log, onDecisions: (d, p) => reporter.decisions(d, p) });
  const readyFlag = { value: true };
  // Ready as in startApps: the policy choice must be possible (with no AppHealthPolicy: the defaults).
  const loop: LeaderLoop = new LeaderLoop({ leader: rt.leader, ready: () => readyFlag.value && policies.observe(), config, store, fetcher, projection, analysis, sender, reporter, events, metrics, logger: log, now: () => clock.now });
  // One DEA reports web[0] only; heartbeats flushed for a whole freshness TTL before T0.
  const heartbeat = (at: number) => {
    store.applyHeartbeat({ dea: 'dea-0', droplets: [{ droplet: 'web', version: 'v1', instance: 'i0', index: 0, state: 'RUNNING', state_timestamp: 1 }] }, at);
    store.recordFlush(at);
  };
  for (let t = T0 - cfg.actualFreshnessTtlMs; t <= T0; t += cfg.heartbeatPeriodMs) heartbeat(t);
  /** Moves the clock, with heartbeats flushed on the way, and runs one tick (and waits for its fetch). */
  const tickAt = async (t: number) => {
    for (let h = clock.now + cfg.heartbeatPeriodMs; h <= t; h += cfg.heartbeatPeriodMs) heartbeat(h);
    clock.now = t;
    heartbeat(t);
    await loop.tick();
    await Promise.all(fetches.splice(0));
  };
  return { cc, rt, store, sent, loop, cfg, clock, tickAt, sender, readyFlag, policies: rt.informer('AppHealthPolicy') as unknown as MapInformer<AppHealthPolicy>, close: async () => { await loop.stop(); await reporter.stop(); await cc.close(); } };
}

describe('leader loop', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.close());

  it('a replica that does not lead fetches, analyzes and sends nothing', async () => {
    h.rt.leaderFlag.value = false;
    for (let i = 0; i < 10; i++) await h.tickAt(T0 + i * h.cfg.analyzeIntervalMs);
    expect(h.cc.requests).toEqual([]);
    expect(h.store.pending().starts.size).toBe(0);
    expect(h.loop.isLeading()).toBe(false);
  });

  it('fetch -> analyze -> send: a new leader sends its first start only after one keep-alive plus one grace period', async () => {
    const { cfg } = h;
    const allowed = T0 + cfg.keepAliveMs + cfg.gracePeriodMs;
    await h.tickAt(T0); // becomes leader, fetches
    expect(h.loop.isActive()).toBe(false);
    for (let t = T0 + cfg.analyzeIntervalMs; t < allowed; t += cfg.analyzeIntervalMs) await h.tickAt(t);
    await h.tickAt(allowed - 1);
    expect(h.store.pending().starts.size).toBe(1); // web[1] is missing: queued
    expect(h.sent).toEqual([]);
    await h.tickAt(allowed);
    expect(h.loop.isActive()).toBe(true);
    expect(h.sent).toEqual([expect.objectContaining({ droplet: 'web', version: 'v1', instance_index: 1 })]);
  });

  it('a lost Lease: nothing more is fetched or sent', async () => {
    const { cfg } = h;
    await h.tickAt(T0);
    h.rt.leaderFlag.value = false;
    const requests = h.cc.requests.length;
    for (let t = T0 + cfg.analyzeIntervalMs; t < T0 + 5 * cfg.fetchIntervalMs; t += cfg.analyzeIntervalMs) await h.tickAt(t);
    expect(h.loop.isLeading()).toBe(false);
    expect(h.cc.requests.length).toBe(requests);
    expect(h.sent).toEqual([]);
  });

  it('no policy can be followed (two, none named): a leader fetches and sends nothing, the fast path neither; it resumes when one can', async () => {
    const { cfg } = h;
    const allowed = T0 + cfg.keepAliveMs + cfg.gracePeriodMs;
    for (let t = T0; t <= allowed; t += cfg.analyzeIntervalMs) await h.tickAt(t);
    expect(h.sent.length).toBe(1);
    h.sent.length = 0;
    h.readyFlag.value = false;
    const requests = h.cc.requests.length;
    h.cc.setApp({ guid: 'api', version: 'v1', instances: 1, state: 'STARTED', package_state: 'STAGED' });
    let t = allowed;
    for (; t < allowed + 3 * cfg.fetchIntervalMs; t += cfg.analyzeIntervalMs) await h.tickAt(t);
    h.store.applyExited({ droplet: 'web', version: 'v1', instance: 'i0', index: 0, reason: 'DEA_EVACUATION' }, h.clock.now);
    h.loop.fastPath({ droplet: 'web', version: 'v1', instance: 'i0', index: 0, reason: 'DEA_EVACUATION' });
    await h.tickAt(t);
    expect(h.cc.requests.length).toBe(requests);
    expect(h.sent).toEqual([]);
    h.readyFlag.value = true;
    await h.tickAt(t + cfg.analyzeIntervalMs);
    expect(h.cc.requests.length).toBeGreaterThan(requests);
  });

  it("no policy can be followed: each candidate's status says Followed=False and why, once; the one left says Followed=True", async () => {
    const { cfg } = h;
    const ahp = (name: string): AppHealthPolicy => ({ apiVersion: 'hm9k.io/v1alpha1', kind: 'AppHealthPolicy', metadata: { name, uid: `uid-${name}`, generation: 1 }, spec: {} });
    h.policies.set(ahp('foundation'));
    h.policies.set(ahp('trial'));
    for (let t = T0; t < T0 + 5 * cfg.analyzeIntervalMs; t += cfg.analyzeIntervalMs) await h.tickAt(t);
    await waitFor(() => h.rt.statusWrites.length >= 2, 'both candidates written', 5000);
    for (let i = 0; i < 5; i++) await h.tickAt(h.clock.now + cfg.analyzeIntervalMs);
    const writes = h.rt.statusWrites.filter((w) => w.kind === 'AppHealthPolicy');
    expect(writes.map((w) => w.name).sort()).toEqual(['foundation', 'trial']); // once each: steady state is quiet
    for (const w of writes) {
      const conds = (w.status as AppHealthPolicy['status'])!.conditions!;
      expect(conds).toEqual([expect.objectContaining({ type: 'Followed', status: 'False', reason: 'AmbiguousPolicies' })]);
      expect(conds[0]!.message).toMatch(/2 AppHealthPolicies \(foundation, trial\) and apps.policyName names none/);
    }
    expect(h.cc.requests).toEqual([]); // and nothing was fetched or acted on
    h.policies.delete('trial');
    await h.tickAt(h.clock.now + cfg.analyzeIntervalMs);
    await waitFor(() => h.rt.statusWrites.some((w) => w.name === 'foundation' && (w.status as AppHealthPolicy['status'])!.conditions!.some((c) => c.type === 'Followed' && c.status === 'True')), 'foundation followed', 5000);
    const last = h.rt.statusWrites.filter((w) => w.name === 'foundation').at(-1)!.status as AppHealthPolicy['status'];
    expect(last!.conditions!.find((c) => c.type === 'Followed')).toMatchObject({ status: 'True', reason: 'OnlyPolicy' });
  });

  it('a switch of the followed policy fetches at once, not after the rest of the fetch interval', async () => {
    const { cfg } = h;
    await h.tickAt(T0);
    const requests = h.cc.requests.length;
    await h.tickAt(T0 + cfg.analyzeIntervalMs);
    expect(h.cc.requests.length).toBe(requests); // the next fetch is a fetch interval away
    h.loop.policySwitched();
    await h.tickAt(T0 + 2 * cfg.analyzeIntervalMs);
    expect(h.cc.requests.length).toBeGreaterThan(requests);
  });

  it('fast path: an evacuating DEA has its instance started elsewhere at once, without waiting for a tick', async () => {
    const { cfg } = h;
    const allowed = T0 + cfg.keepAliveMs + cfg.gracePeriodMs;
    for (let t = T0; t <= allowed; t += cfg.analyzeIntervalMs) await h.tickAt(t);
    h.sent.length = 0;
    h.clock.now = allowed + 1;
    h.store.applyExited({ droplet: 'web', version: 'v1', instance: 'i0', index: 0, reason: 'DEA_EVACUATION' }, h.clock.now);
    h.loop.fastPath({ droplet: 'web', version: 'v1', instance: 'i0', index: 0, reason: 'DEA_EVACUATION' });
    await waitFor(() => h.sent.length > 0, 'evacuation start sent', 5000);
    expect(h.sent).toEqual([expect.objectContaining({ droplet: 'web', instance_index: 0 })]);
    expect(h.store.pending().starts.get('web/v1/0')).toMatchObject({ reason: 'EVACUATION', priority: 2 });
  });
});

describe('holdMaybeSent (a new leader and the sends its predecessor may have made)', () => {
  const base = { appGuid: 'web', version: 'v1', keepAliveMs: 30_000, skipVerification: false, priority: 1, reason: 'CRASHED' as const, kind: 'start' as const };
  const at = (index: number, m: Partial<PendingStart>): PendingStart => ({ ...base, messageId: `m${index}`, index, sendOn: T0, sentOn: 0, ...m });
  it.each([
    ['never attempted: due as it was', at(0, {}), undefined],
    ['attempted, not recorded as sent: waits', at(1, { attemptedAt: T0 - 5000 }), T0 + 20_000],
    ['attempted and sent (keep-alive): untouched', at(2, { attemptedAt: T0 - 5000, sentOn: T0 - 4000 }), undefined],
    ['attempted, already due later than the hold: untouched', at(3, { attemptedAt: T0 - 5000, sendOn: T0 + 60_000 }), undefined],
  ])('%s', (_what, m, sendOn) => {
    const held = holdMaybeSent({ starts: new Map([[`web/v1/${m.index}`, m]]), stops: new Map() }, T0 + 20_000);
    expect(held.map((h) => h.sendOn)).toEqual(sendOn === undefined ? [] : [sendOn]);
  });
});
