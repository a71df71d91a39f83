// Table tests of the pure drain state machine (issue 12 items 4-5): start (hardware, operator),
// gates (Nova unreadable, paused, dry run, storm, concurrency), disable, per-server rules
// (concurrency, tracking, deadline, not migratable, never twice, crash-safety), finish
// (LeaveDisabled, PowerOff as a fence), undrain, and the hand-over to the fence path mid-drain.
import { describe, expect, it } from 'vitest';
import { DRAIN_ANNOTATION, UNDRAIN_ANNOTATION, type ComputeNodeStatus, type FencePolicySpec } from '../../src/api/index.js';
import type { NovaMigration, NovaServer } from '../../src/clients/nova.js';
import { resolvePolicy } from '../../src/nodes/config.js';
import { applyMigrateAnswer, classifyMigrateError, drainTick, lookupsNeeded, recount, type Drain, type DrainView } from '../../src/nodes/drain/machine.js';
import { applyOutcome, decide, isUnhealthy } from '../../src/nodes/fence/machine.js';
import type { DecideContext, FleetSummary, HardwareObservation, NetworkObservation, NodeObservations, NodeSnapshot } from '../../src/nodes/fence/types.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const S = 1000;
const iso = (t: number) => new Date(t).toISOString();
const spec: FencePolicySpec = {
  networks: { management: { consul: [{ address: 'http://127.0.0.1:1' }] }, storage: { consul: [{ address: 'http://127.0.0.1:2' }] } },
  detection: { interval: '1s', failureThreshold: 3, recoveryGracePeriod: '6s', healthyDelay: '3s' },
  recovery: { attempts: 0, settleTime: '3s' },
  drain: { concurrency: 2, perServerTimeout: '60s' },
};
const policy = resolvePolicy(spec);
const withSpec = (s: Partial<FencePolicySpec>) => resolvePolicy({ ...spec, ...s });
const calm: FleetSummary = { policy: { matched: 10, unhealthy: 0, inFlight: 0 }, global: { total: 10, unhealthy: 0, inFlight: 0 } };
const ctx = (now = T0): DecideContext => ({ now, lease: { holder: 'hm9k-0', transitions: 1 }, globalMaxUnhealthy: '50%', globalMaxConcurrentRemediations: 5 });
const up = (): NetworkObservation => ({ state: 'up', since: T0 - 100 * S, consecutiveDown: 0, observersUp: 1, observersDown: 0, observersUnknown: 0 });
const down = (): NetworkObservation => ({ state: 'down', since: T0 - 100 * S, consecutiveDown: 10, observersUp: 0, observersDown: 1, observersUnknown: 0, reason: 'serfHealth critical' });

const cpuHot = (action: 'Drain' | 'Notify' | 'Ok', bmc: 'readable' | 'unknown' = 'readable'): HardwareObservation => ({
  decision: {
    action, bmc, pending: [],
    reasons: action === 'Ok' ? [] : [{ condition: action === 'Drain' ? 'cpuTemperatureCritical' : 'sensorNonCritical', sensor: 'CPU Temp', detail: 'CPU Temp 97 degrees C is critical', action, samples: 3 }],
  },
  sensors: [{ name: 'CPU Temp', number: 1, kind: 'cpuTemperature', state: action === 'Drain' ? 'critical' : 'ok', value: 97, unit: 'degrees C', states: [], faults: [] }],
});

function obs(p: Partial<NodeObservations> = {}): NodeObservations {
  return {
    networks: { management: up(), storage: up() },
    nova: { apiState: 'up', status: 'enabled', forcedDown: false, nodeSide: 'up', evacuationMigrations: 0, servers: 3 },
    power: { state: 'on', since: T0 - 100 * S },
    ...p,
  };
}
function node(status: ComputeNodeStatus, o: NodeObservations, annotations: Record<string, string> = {}): NodeSnapshot {
  return { name: 'cmp1', spec: { host: 'cmp1', bmc: { address: '127.0.0.1', credentialsSecret: 'bmc' } }, annotations, status, obs: o };
}
const types = (d: { actions: { type: string }[] }) => d.actions.map((a) => a.type).filter((t) => t !== 'event');
const events = (d: { actions: { type: string; reason?: string }[] }) => d.actions.filter((a) => a.type === 'event').map((a) => a.reason);
const notes = (d: { actions: { type: string; key?: string }[] }) => d.actions.filter((a) => a.type === 'notify').map((a) => a.key);
const healthy: ComputeNodeStatus = { phase: 'Healthy', phaseSince: iso(T0 - 100 * S) };

function drainRecord(p: Partial<Drain> = {}): Drain {
  return recount({ id: 'cmp1-d1', reason: 'hardware: CPU hot', source: 'hardware', startedAt: iso(T0), leaseHolder: 'hm9k-0', leaseTransitions: 1, disabled: 'succeeded', total: 0, migrated: 0, failed: 0, left: 0, servers: [], ...p });
}

describe('drain decisions (node level)', () => {
  it('a hardware Drain rule starts a drain: record first, disable with the drain marker, Event and email', () => {
    const d = decide(node(healthy, obs({ hardware: cpuHot('Drain') })), policy, calm, ctx());
    expect(d.status.phase).toBe('Draining');
    expect(d.status.drain).toMatchObject({ source: 'hardware', disabled: 'pending', leaseHolder: 'hm9k-0' });
    expect(d.actions).toContainEqual({ type: 'drainDisable', drainId: d.status.drain!.id, reason: `hm9k drain ${d.status.drain!.id}` });
    expect(events(d)).toContain('DrainStarted');
    expect(notes(d)).toContain(`drain-start-${d.status.drain!.id}`);
    expect(d.inFlight).toBe(true);
    expect(d.status.hardware?.state).toBe('drain');
  });

  it('Notify and Ok hardware, or an unreadable BMC, never start a drain', () => {
    for (const h of [cpuHot('Notify'), cpuHot('Ok'), { ...cpuHot('Drain'), decision: { ...cpuHot('Drain').decision, bmc: 'unknown' as const } }]) {
      const d = decide(node(healthy, obs({ hardware: h })), policy, calm, ctx());
      expect(d.status.drain).toBeUndefined();
      expect(types(d)).not.toContain('drainDisable');
    }
  });

  it('hardware Notify: one Event and one email on the change, nothing in steady state', () => {
    const first = decide(node(healthy, obs({ hardware: cpuHot('Notify') })), policy, calm, ctx());
    expect(events(first)).toContain('HardwareDegraded');
    expect(notes(first)).toEqual(['hardware-sensorNonCritical']);
    const again = decide(node(first.status, obs({ hardware: cpuHot('Notify') })), policy, calm, ctx(T0 + S));
    expect(again.actions).toEqual([]);
    expect(again.status).toEqual(first.status);
  });

  it('the operator annotation starts a drain; the value undrained never starts another', () => {
    const d = decide(node(healthy, obs(), { [DRAIN_ANNOTATION]: 'rack move' }), policy, calm, ctx());
    expect(d.status.drain).toMatchObject({ source: 'operator', operatorReason: 'rack move' });
    const after = decide(node({ ...healthy, undrained: { id: 'x', at: iso(T0), operatorReason: 'rack move' } }, obs(), { [DRAIN_ANNOTATION]: 'rack move' }), policy, calm, ctx());
    expect(after.status.drain).toBeUndefined();
    const again = decide(node({ ...healthy, undrained: { id: 'x', at: iso(T0), operatorReason: 'rack move' } }, obs(), { [DRAIN_ANNOTATION]: 'rack move 2' }), policy, calm, ctx());
    expect(again.status.drain?.operatorReason).toBe('rack move 2');
  });

  it.each([
    ['Nova unreadable', obs({ hardware: cpuHot('Drain'), nova: { apiState: 'unknown', nodeSide: 'unknown', evacuationMigrations: 0 } }), policy, calm, 'Nova unreadable'],
    ['paused', obs({ hardware: cpuHot('Drain') }), withSpec({ safety: { paused: true } }), calm, 'policy paused'],
    ['dry run', obs({ hardware: cpuHot('Drain') }), withSpec({ safety: { dryRun: true } }), calm, 'dry run'],
    ['storm', obs({ hardware: cpuHot('Drain') }), policy, { policy: { matched: 10, unhealthy: 5, inFlight: 0 }, global: { total: 10, unhealthy: 5, inFlight: 0 } }, 'storm'],
    ['concurrency (another drain in flight)', obs({ hardware: cpuHot('Drain') }), policy, { policy: { matched: 10, unhealthy: 1, inFlight: 1, draining: 1 }, global: { total: 10, unhealthy: 1, inFlight: 1, draining: 1 } }, 'maxConcurrentRemediations'],
    ['concurrency (a fence in flight)', obs({ hardware: cpuHot('Drain') }), policy, { policy: { matched: 10, unhealthy: 1, inFlight: 1, draining: 0 }, global: { total: 10, unhealthy: 1, inFlight: 1, draining: 0 } }, 'maxConcurrentRemediations'],
  ] as const)('no drain starts when %s', (_n, o, p, fleet, why) => {
    const d = decide(node(healthy, o), p, fleet, ctx());
    expect(d.status.drain).toBeUndefined();
    expect(types(d)).toEqual(['notify']);
    expect(d.status.waitingFor).toContain(why);
    expect(events(d)).toContain('DrainHeld');
  });

  it('a failing host starts no drain: the base flow (Suspect, fence) owns it', () => {
    const d = decide(node(healthy, obs({ hardware: cpuHot('Drain'), networks: { management: up(), storage: down() } })), policy, calm, ctx());
    expect(d.status.drain).toBeUndefined();
  });

  it('disable done -> a drain tick each decision while servers move; paused holds the tick', () => {
    const st: ComputeNodeStatus = { phase: 'Draining', phaseSince: iso(T0), drain: drainRecord({ disabled: 'pending' }) };
    const afterDisable = applyOutcome(st, { type: 'drainDisable', ok: true, message: 'disabled' }, T0);
    expect(afterDisable.drain?.disabled).toBe('succeeded');
    const d = decide(node(afterDisable, obs({ hardware: cpuHot('Drain') })), policy, calm, ctx());
    expect(types(d)).toEqual(['drainTick']);
    expect(d.status.phase).toBe('Draining');
    expect(d.status.phaseSince).toBe(iso(T0)); // the phase kept keeps its start (quiet steady state)
    const held = decide(node(afterDisable, obs({ hardware: cpuHot('Drain') })), withSpec({ safety: { paused: true } }), calm, ctx());
    expect(types(held)).toEqual([]);
    expect(held.status.conditions?.find((c) => c.type === 'Paused')?.status).toBe('True');
  });

  it('a failed disable is tried again (idempotent PUT), nothing is migrated before it succeeds', () => {
    const st = applyOutcome({ phase: 'Draining', drain: drainRecord({ disabled: 'pending' }) }, { type: 'drainDisable', ok: false, message: '503' }, T0);
    const d = decide(node(st, obs()), policy, calm, ctx());
    expect(types(d)).toEqual(['drainDisable']);
  });

  it('finished and empty: Drained, left disabled (default), one end email, then quiet', () => {
    const dr = drainRecord({ result: 'empty', finishedAt: iso(T0), total: 2, servers: [{ id: 'a', state: 'migrated', to: 'cmp2' }, { id: 'b', state: 'migrated', to: 'cmp3' }] });
    const d = decide(node({ phase: 'Draining', drain: dr }, obs()), policy, calm, ctx());
    expect(d.status.phase).toBe('Drained');
    expect(types(d)).toEqual(['notify']);
    expect(notes(d)).toEqual(['drain-end-cmp1-d1']);
    expect(events(d)).toContain('DrainComplete');
    expect(d.status.conditions?.find((c) => c.type === 'Drained')).toMatchObject({ status: 'True', reason: 'HostEmpty' });
    const again = decide(node(d.status, obs()), policy, calm, ctx(T0 + S));
    expect(again.actions).toEqual([]);
    expect(again.status).toEqual(d.status);
    // Drained capacity counts for storm protection; it is not in flight.
    expect(again.inFlight).toBe(false);
    expect(isUnhealthy(node(d.status, obs()), policy)).toBe(true);
  });

  it('finished with servers that need hands: the end email lists them', () => {
    const dr = drainRecord({ result: 'incomplete', total: 2, servers: [{ id: 'a', state: 'migrated', to: 'cmp2' }, { id: 'b', state: 'skipped', error: 'vm_state paused: cannot be live-migrated' }] });
    const d = decide(node({ phase: 'Draining', drain: dr }, obs()), policy, calm, ctx());
    const mail = d.actions.find((a) => a.type === 'notify') as { body: string };
    expect(mail.body).toContain('b: skipped (vm_state paused');
    expect(events(d)).toContain('DrainIncomplete');
  });

  it('whenEmpty PowerOff: an empty host is fenced (powered off, confirmed), the drain ends in the fence', () => {
    const p = withSpec({ drain: { whenEmpty: 'PowerOff' } });
    const dr = drainRecord({ result: 'empty', total: 1, servers: [{ id: 'a', state: 'migrated', to: 'cmp2' }] });
    const d = decide(node({ phase: 'Draining', drain: dr }, obs()), p, calm, ctx());
    expect(d.status.phase).toBe('Fencing');
    expect(types(d)).toContain('powerOff');
    expect(d.status.fence?.reason).toContain('drain cmp1-d1 finished');
    // An incomplete drain is never powered off.
    const inc = decide(node({ phase: 'Draining', drain: { ...dr, result: 'incomplete' } }, obs()), p, calm, ctx());
    expect(inc.status.fence).toBeUndefined();
    expect(inc.status.phase).toBe('Drained');
  });

  it('undrain: refused while migrations are in flight, then enables nova-compute and forgets the drain', () => {
    const busy = drainRecord({ servers: [{ id: 'a', state: 'requested', since: iso(T0) }] });
    const w = decide(node({ phase: 'Draining', drain: busy }, obs(), { [UNDRAIN_ANNOTATION]: 'cmp1-d1' }), policy, calm, ctx());
    expect(types(w)).toEqual([]);
    expect(w.status.waitingFor).toContain('1 live migration(s) in flight');
    const wrong = decide(node({ phase: 'Drained', drain: drainRecord({ result: 'empty' }) }, obs(), { [UNDRAIN_ANNOTATION]: 'other' }), policy, calm, ctx());
    expect(types(wrong)).not.toContain('drainEnable');
    expect(events(wrong)).toContain('UndrainRejected');
    expect(wrong.status.waitingFor).toContain('hm9k.io/undrain=other does not match drain id cmp1-d1');
    const wrongAgain = decide(node(wrong.status, obs(), { [UNDRAIN_ANNOTATION]: 'other' }), policy, calm, ctx(T0 + S));
    expect(wrongAgain.actions).toEqual([]);
    expect(wrongAgain.status).toEqual(wrong.status);
    const ok = decide(node({ phase: 'Drained', drain: drainRecord({ result: 'empty', source: 'operator', operatorReason: 'rack' }) }, obs(), { [UNDRAIN_ANNOTATION]: 'cmp1-d1' }), policy, calm, ctx());
    expect(types(ok)).toEqual(['drainEnable']);
    const back = applyOutcome(ok.status, { type: 'drainEnable', ok: true, message: 'enabled' }, T0);
    expect(back.drain).toBeUndefined();
    expect(back.undrained).toMatchObject({ id: 'cmp1-d1', operatorReason: 'rack' });
    expect(back.phase).toBe('Healthy');
  });

  it('undrain with the hardware fault still there: no new hardware drain until it reads non-Drain once', () => {
    const st: ComputeNodeStatus = { ...healthy, hardware: { state: 'drain' }, undrained: { id: 'cmp1-d1', at: iso(T0), hardwareHeld: true } };
    const d = decide(node(st, obs({ hardware: cpuHot('Drain') })), policy, calm, ctx());
    expect(d.status.drain).toBeUndefined();
    const cleared = decide(node(d.status, obs({ hardware: cpuHot('Ok') })), policy, calm, ctx(T0 + S));
    expect(cleared.status.undrained?.hardwareHeld).toBeUndefined();
    const again = decide(node(cleared.status, obs({ hardware: cpuHot('Drain') })), policy, calm, ctx(T0 + 2 * S));
    expect(again.status.drain?.source).toBe('hardware');
  });

  it('hand-over mid-drain: the host fails, the fence path takes over; the drain is marked handedOver, no more ticks', () => {
    const dr = drainRecord({ total: 3, servers: [{ id: 'a', state: 'migrated', to: 'cmp2' }, { id: 'b', state: 'requested', since: iso(T0) }, { id: 'c', state: 'pending' }] });
    const failing = obs({ networks: { management: up(), storage: down() }, corroboration: { network: 'storage', at: T0 + S, result: 'failing' } });
    const d = decide(node({ phase: 'Draining', drain: dr }, failing), policy, calm, ctx(T0 + 2 * S));
    expect(d.status.phase).toBe('Fencing');
    expect(types(d)).toContain('powerOff');
    expect(types(d)).not.toContain('drainTick');
    expect(d.status.drain?.result).toBe('handedOver');
    expect(events(d)).toContain('DrainHandedOver');
    // Later decisions stay on the fence path.
    const next = decide(node(d.status, failing), policy, calm, ctx(T0 + 3 * S));
    expect(types(next)).not.toContain('drainTick');
    // Fence returned to service: the drain ends with it.
    const back = applyOutcome(next.status, { type: 'returnToService', ok: true, waiting: false, message: 'ok' }, T0);
    expect(back.drain).toBeUndefined();
  });

  it('a host failing (Suspect) mid-drain holds the drain: no tick until it is healthy again', () => {
    const dr = drainRecord({ total: 1, servers: [{ id: 'b', state: 'requested', since: iso(T0) }] });
    const d = decide(node({ phase: 'Draining', drain: dr }, obs({ networks: { management: up(), storage: { ...down(), since: T0 } } })), policy, calm, ctx(T0 + S));
    expect(d.status.phase).toBe('Suspect');
    expect(types(d)).not.toContain('drainTick');
    expect(d.status.drain?.result).toBeUndefined();
  });

  it('a lost drain record is rebuilt from the Nova marker (the host stays disabled, servers are read again)', () => {
    const d = decide(node(healthy, obs({ nova: { apiState: 'up', status: 'disabled', disabledReason: 'hm9k drain cmp1-d7', nodeSide: 'up', evacuationMigrations: 0 } })), policy, calm, ctx());
    expect(d.status.drain).toMatchObject({ id: 'cmp1-d7', disabled: 'succeeded' });
    expect(types(d)).toEqual(['drainTick']);
    expect(events(d)).toContain('DrainRebuilt');
  });
});

// Per-server rules -------------------------------------------------------------------------------

const srv = (id: string, p: Partial<NovaServer> = {}): NovaServer => ({ id, status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': 'cmp1', 'OS-EXT-STS:vm_state': 'active', 'OS-EXT-STS:task_state': null, ...p });
const mig = (id: number, server: string, status: string): NovaMigration => ({ id, instance_uuid: server, source_compute: 'cmp1', status, migration_type: 'live-migration' });
const view = (onHost: NovaServer[], p: Partial<DrainView> = {}): DrainView => ({ onHost, elsewhere: new Map(), migrations: [], microversion: '2.25', ...p });
const tick = (d: Drain, v: DrainView, now = T0, p = policy) => drainTick(d, 'cmp1', v, p, { now, settleMs: 10 * S });

describe('drain tick (per server)', () => {
  it('plans every server on the host and requests at most `concurrency`, intent (requested, since) in the record', () => {
    const r = tick(drainRecord(), view([srv('s3'), srv('s1'), srv('s2')], { migrations: [mig(7, 'old', 'completed')] }));
    expect(r.drain).toMatchObject({ planned: true, total: 3, left: 3, priorMigrationId: '7', microversion: '2.25' });
    expect(r.requests).toEqual([{ id: 's1' }, { id: 's2' }]);
    expect(r.drain.servers.map((s) => [s.id, s.state])).toEqual([['s1', 'requested'], ['s2', 'requested'], ['s3', 'pending']]);
    expect(r.drain.servers[0]!.since).toBe(iso(T0));
  });

  it('policy target hosts are used round robin', () => {
    const r = tick(drainRecord(), view([srv('s1'), srv('s2')]), T0, withSpec({ drain: { concurrency: 2, targetHosts: ['cmp7', 'cmp8'] } }));
    expect(r.requests).toEqual([{ id: 's1', host: 'cmp7' }, { id: 's2', host: 'cmp8' }]);
  });

  it.each([
    ['paused', { 'OS-EXT-STS:vm_state': 'paused', status: 'PAUSED' }, 'vm_state paused'],
    ['shelved', { 'OS-EXT-STS:vm_state': 'shelved', status: 'SHELVED' }, 'vm_state shelved'],
    ['error', { 'OS-EXT-STS:vm_state': 'error', status: 'ERROR' }, 'vm_state error'],
    ['stopped', { 'OS-EXT-STS:vm_state': 'stopped', status: 'SHUTOFF' }, 'vm_state stopped'],
  ] as const)('a %s server is skipped and reported, never requested', (_n, p, why) => {
    const r = tick(drainRecord(), view([srv('s1', p)]));
    expect(r.requests).toEqual([]);
    expect(r.drain.servers[0]).toMatchObject({ state: 'skipped' });
    expect(r.drain.servers[0]!.error).toContain(why);
    expect(r.drain.result).toBe('incomplete');
  });

  it('a busy server (task_state set) waits under the deadline, then is reported', () => {
    const r = tick(drainRecord(), view([srv('s1', { 'OS-EXT-STS:task_state': 'rebooting' })]));
    expect(r.requests).toEqual([]);
    expect(r.drain.servers[0]).toMatchObject({ state: 'pending', since: iso(T0) });
    const late = tick(r.drain, view([srv('s1', { 'OS-EXT-STS:task_state': 'rebooting' })]), T0 + 61 * S);
    expect(late.drain.servers[0]).toMatchObject({ state: 'skipped' });
    expect(late.drain.servers[0]!.error).toContain('task_state rebooting');
  });

  it('tracked through the host: moved with no task_state -> migrated; the last one empties the host', () => {
    const d = drainRecord({ planned: true, total: 1, priorMigrationId: '0', servers: [{ id: 's1', state: 'requested', since: iso(T0), answer: 'accepted' }] });
    const running = tick(d, view([srv('s1', { 'OS-EXT-STS:task_state': 'migrating' })], { migrations: [mig(3, 's1', 'running')] }), T0 + S);
    expect(running.drain.servers[0]).toMatchObject({ state: 'requested', migrationId: '3' });
    expect(running.drain.result).toBeUndefined();
    const done = tick(running.drain, view([], { elsewhere: new Map([['s1', srv('s1', { 'OS-EXT-SRV-ATTR:host': 'cmp2' })]]), migrations: [mig(3, 's1', 'completed')] }), T0 + 2 * S);
    expect(done.drain.servers[0]).toMatchObject({ state: 'migrated', to: 'cmp2', migrationId: '3' });
    expect(done.drain).toMatchObject({ result: 'empty', migrated: 1, left: 0 });
    expect(lookupsNeeded(running.drain, [])).toEqual(['s1']);
  });

  it('a failed live migration (Nova rolled back) is reported, not retried', () => {
    const d = drainRecord({ planned: true, total: 1, priorMigrationId: '0', servers: [{ id: 's1', state: 'requested', since: iso(T0), answer: 'accepted' }] });
    const r = tick(d, view([srv('s1')], { migrations: [mig(4, 's1', 'error')] }), T0 + S);
    expect(r.drain.servers[0]).toMatchObject({ state: 'failed', migrationId: '4' });
    expect(r.requests).toEqual([]);
    expect(r.drain.result).toBe('incomplete');
  });

  it('the per-server deadline reports a migration that never ends', () => {
    const d = drainRecord({ planned: true, total: 1, priorMigrationId: '0', servers: [{ id: 's1', state: 'requested', since: iso(T0), answer: 'accepted' }] });
    const r = tick(d, view([srv('s1', { 'OS-EXT-STS:task_state': 'migrating' })], { migrations: [mig(4, 's1', 'running')] }), T0 + 61 * S);
    expect(r.drain.servers[0]!.state).toBe('failed');
    expect(r.drain.servers[0]!.error).toContain('perServerTimeout');
  });

  it('crash-safe: a recorded request with no answer is re-sent only after the settle window without a trace in Nova', () => {
    const d = drainRecord({ planned: true, total: 1, priorMigrationId: '0', servers: [{ id: 's1', state: 'requested', since: iso(T0) }] });
    const soon = tick(d, view([srv('s1')]), T0 + 5 * S);
    expect(soon.requests).toEqual([]);
    expect(soon.drain.servers[0]!.state).toBe('requested');
    const later = tick(d, view([srv('s1')]), T0 + 11 * S);
    expect(later.requests).toEqual([{ id: 's1' }]);
    // A trace in Nova (its migration of this drain) means it was sent: never twice.
    const traced = tick(d, view([srv('s1', { 'OS-EXT-STS:task_state': 'migrating' })], { migrations: [mig(5, 's1', 'running')] }), T0 + 11 * S);
    expect(traced.requests).toEqual([]);
    expect(traced.drain.servers[0]).toMatchObject({ state: 'requested', migrationId: '5' });
  });

  it('never twice: a pending server already being migrated (or moved) is tracked, not requested', () => {
    const d = drainRecord({ planned: true, total: 2, priorMigrationId: '2', servers: [{ id: 's1', state: 'pending' }, { id: 's2', state: 'pending' }] });
    const r = tick(d, view([srv('s1', { 'OS-EXT-STS:task_state': 'migrating' })], { elsewhere: new Map([['s2', srv('s2', { 'OS-EXT-SRV-ATTR:host': 'cmp3' })]]), migrations: [mig(3, 's1', 'running'), mig(1, 's2', 'completed')] }));
    expect(r.requests).toEqual([]);
    expect(r.drain.servers.map((s) => s.state)).toEqual(['requested', 'requested']);
    const next = tick(r.drain, view([srv('s1', { 'OS-EXT-STS:task_state': 'migrating' })], { elsewhere: new Map([['s2', srv('s2', { 'OS-EXT-SRV-ATTR:host': 'cmp3' })]]), migrations: [mig(3, 's1', 'running')] }), T0 + S);
    expect(next.drain.servers[1]).toMatchObject({ state: 'migrated', to: 'cmp3' });
  });

  it('migrations of earlier drains (ids up to priorMigrationId) do not count', () => {
    const d = drainRecord({ planned: true, total: 1, priorMigrationId: '9', servers: [{ id: 's1', state: 'pending' }] });
    const r = tick(d, view([srv('s1')], { migrations: [mig(9, 's1', 'error')] }));
    expect(r.requests).toEqual([{ id: 's1' }]);
  });

  it('a server that appears on the host later is added (never forgotten); a deleted one is reported', () => {
    const d = drainRecord({ planned: true, total: 1, priorMigrationId: '0', servers: [{ id: 's1', state: 'pending' }] });
    const r = tick(d, view([srv('s2')], { elsewhere: new Map([['s1', null]]) }));
    expect(r.drain.servers.map((s) => [s.id, s.state])).toEqual([['s1', 'skipped'], ['s2', 'requested']]);
    expect(r.drain.total).toBe(2);
  });

  it('answers: 202 accepted; 5xx/timeout unknown (kept requested); 409 back to pending; 400 No valid host failed', () => {
    const d = drainRecord({ planned: true, total: 1, servers: [{ id: 's1', state: 'requested', since: iso(T0) }] });
    expect(applyMigrateAnswer(d, 's1', { kind: 'accepted' }, T0).servers[0]).toMatchObject({ state: 'requested', answer: 'accepted' });
    expect(applyMigrateAnswer(d, 's1', classifyMigrateError(Object.assign(new Error('timeout'), { status: 0 })), T0).servers[0]).toMatchObject({ state: 'requested', answer: 'unknown' });
    expect(applyMigrateAnswer(d, 's1', classifyMigrateError(Object.assign(new Error('busy'), { status: 409 })), T0).servers[0]).toMatchObject({ state: 'pending', since: iso(T0) });
    const nv = applyMigrateAnswer(d, 's1', classifyMigrateError(Object.assign(new Error('No valid host was found.'), { status: 400 })), T0);
    expect(nv.servers[0]).toMatchObject({ state: 'failed' });
    expect(nv.failed).toBe(1);
    // 409 for the whole deadline: reported, not retried forever.
    const c = applyMigrateAnswer(d, 's1', { kind: 'conflict', message: 'busy' }, T0);
    expect(tick(c, view([srv('s1')]), T0 + 61 * S).drain.servers[0]!.state).toBe('skipped');
  });
});
