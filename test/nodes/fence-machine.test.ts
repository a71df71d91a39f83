// Table tests of the pure fence state machine: every phase transition, thresholds, grace, storm,
// maintenance, pause, dry run, latch, return to service.
import { describe, expect, it } from 'vitest';
import { ACK_FENCE_ANNOTATION, type ComputeNodeStatus, type FencePolicySpec } from '../../src/api/index.js';
import { resolvePolicy, maxUnhealthyAllowed, validatePolicy } from '../../src/nodes/config.js';
import { applyOutcome, decide } from '../../src/nodes/fence/machine.js';
import type { DecideContext, FleetSummary, NetworkObservation, NodeObservations, NodeSnapshot } from '../../src/nodes/fence/types.js';

const T0 = Date.parse('2025-01-01T00:00:00Z');
const S = 1000;
const spec: FencePolicySpec = {
  networks: { management: { consul: [{ address: 'http://127.0.0.1:1' }] }, storage: { consul: [{ address: 'http://127.0.0.1:2' }] }, tenant: { consul: [{ address: 'http://127.0.0.1:3' }] } },
  detection: { interval: '1s', failureThreshold: 3, recoveryGracePeriod: '6s', healthyDelay: '3s' },
  recovery: { attempts: 2, settleTime: '3s' },
};
const policy = resolvePolicy(spec);
const withSafety = (safety: FencePolicySpec['safety']) => resolvePolicy({ ...spec, safety });
const calm: FleetSummary = { policy: { matched: 10, unhealthy: 1, inFlight: 0 }, global: { total: 10, unhealthy: 1, inFlight: 0 } };
const ctx = (now: number): DecideContext => ({ now, lease: { holder: 'hm9k-0', transitions: 1 }, globalMaxUnhealthy: '50%', globalMaxConcurrentRemediations: 5 });

const up = (since = T0 - 100 * S): NetworkObservation => ({ state: 'up', since, consecutiveDown: 0, observersUp: 1, observersDown: 0, observersUnknown: 0 });
const down = (n: number, since = T0): NetworkObservation => ({ state: 'down', since, consecutiveDown: n, observersUp: 0, observersDown: 1, observersUnknown: 0, reason: 'serfHealth critical' });
const unknownNet = (): NetworkObservation => ({ state: 'unknown', since: T0, consecutiveDown: 0, observersUp: 0, observersDown: 0, observersUnknown: 1, reason: 'No cluster leader' });

function obs(p: Partial<NodeObservations> & { storage?: NetworkObservation; management?: NetworkObservation; tenant?: NetworkObservation } = {}): NodeObservations {
  return {
    networks: { management: p.management ?? up(), storage: p.storage ?? up(), tenant: p.tenant ?? up() },
    nova: p.nova ?? { apiState: 'up', status: 'enabled', forcedDown: false, nodeSide: 'up', evacuationMigrations: 0, servers: 3 },
    power: p.power ?? { state: 'on', since: T0 - 100 * S },
    ...(p.corroboration ? { corroboration: p.corroboration } : {}),
  };
}
function node(status: ComputeNodeStatus, o: NodeObservations, extra: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    name: 'cmp1', spec: { host: 'cmp1', bmc: { address: '127.0.0.1', credentialsSecret: 'bmc' }, ssh: { address: '127.0.0.1', credentialsSecret: 'ssh' } },
    annotations: {}, status, obs: o, ...extra,
  };
}
const types = (d: { actions: { type: string }[] }) => d.actions.map((a) => a.type).filter((t) => t !== 'event');

/** A fence record in a given stage. */
function fenced(stage: 'pending' | 'offConfirmed' | 'offFailed' | 'forced' | 'disabled' | 'evacuated', ack = false): ComputeNodeStatus {
  let s: ComputeNodeStatus = {
    phase: 'Fencing',
    fence: { id: 'cmp1-f1', reason: 'storage down', startedAt: new Date(T0).toISOString(), leaseHolder: 'hm9k-0', leaseTransitions: 1, steps: [{ name: 'powerOff', state: 'pending' }] },
  };
  if (stage === 'pending') return s;
  s = applyOutcome(s, { type: 'powerOff', ok: stage !== 'offFailed', confirmed: stage !== 'offFailed', message: 'x' }, T0);
  if (stage === 'offFailed' || stage === 'offConfirmed') return { ...s, phase: stage === 'offFailed' ? 'FenceFailed' : 'Fencing' };
  s = applyOutcome(s, { type: 'forceDown', ok: true, message: 'ok' }, T0);
  if (stage === 'forced') return s;
  s = applyOutcome(s, { type: 'disable', ok: true, message: 'ok' }, T0);
  if (stage === 'disabled') return s;
  s = applyOutcome(s, { type: 'evacuationFinished', ok: true, message: 'ok' }, T0);
  s.evacuation = { startedAt: new Date(T0).toISOString(), microversion: '2.94', total: 1, done: 1, failed: 0, servers: [{ id: 's1', from: 'cmp1', to: 'cmp2', state: 'done' }] };
  s.phase = 'Fenced';
  if (ack) s.fence!.acknowledged = true;
  return s;
}

describe('start-up quietness (issue 10)', () => {
  it('not observed yet -> Unknown without an Event; the first real observation decides and is evented', () => {
    const first = decide(node({}, { networks: {}, power: { state: 'unknown', since: T0 } } as NodeObservations), policy, calm, ctx(T0));
    expect(first.status.phase).toBe('Unknown');
    expect(first.actions.filter((a) => a.type === 'event')).toEqual([]);
    // Consul answers and one network cannot be read: Unknown for a reason, a Warning.
    const unknown = decide(node({ phase: 'Healthy' }, obs({ storage: unknownNet() })), policy, calm, ctx(T0 + S));
    expect(unknown.actions.filter((a) => a.type === 'event')).toEqual([expect.objectContaining({ type: 'event', eventType: 'Warning', reason: 'PhaseUnknown' })]);
  });
});

describe('config', () => {
  it('applies defaults: storage RecoverThenFence, others Notify, durations in ms', () => {
    const p = resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:8500/' }] }, management: { consul: [{ address: 'http://b:8500' }] } } });
    expect(p.networks.storage?.action).toBe('RecoverThenFence');
    expect(p.networks.management?.action).toBe('Notify');
    expect(p.networks.storage?.observers[0]?.address).toBe('http://a:8500');
    expect(p.detection.intervalMs).toBe(10_000);
    expect(p.fencing.powerOffTimeoutMs).toBe(20_000);
    expect(p.evacuation.microversion).toBe('2.94');
    expect(p.safety.maxUnhealthy).toBe('30%');
  });
  it('maxUnhealthy rounds down (never in favour of fencing)', () => {
    expect(maxUnhealthyAllowed('40%', 5)).toBe(2);
    expect(maxUnhealthyAllowed('30%', 5)).toBe(1);
    expect(maxUnhealthyAllowed('30%', 3)).toBe(0);
    expect(maxUnhealthyAllowed(2, 100)).toBe(2);
    expect(() => maxUnhealthyAllowed('x', 1)).toThrow();
  });
  it('validation rejects old microversions and missing recovery commands', () => {
    expect(validatePolicy({ ...spec, evacuation: { microversion: '2.40' } })).toEqual([expect.stringContaining('2.53')]);
    expect(validatePolicy({ networks: { tenant: { consul: [{ address: 'http://a:1' }], action: 'Recover' } } })).toEqual([expect.stringContaining('recovery.commands.tenant')]);
    expect(validatePolicy(spec)).toEqual([]);
  });
});

describe('fence state machine: detection', () => {
  const cases: { name: string; status: ComputeNodeStatus; o: NodeObservations; now?: number; phase: string; actions: string[]; fleet?: FleetSummary; pol?: typeof policy }[] = [
    { name: 'all up -> Healthy', status: {}, o: obs(), phase: 'Healthy', actions: [] },
    { name: 'not observed yet -> Unknown', status: {}, o: { networks: {} }, phase: 'Unknown', actions: [] },
    { name: 'consul unknown -> Unknown, no action', status: { phase: 'Healthy' }, o: obs({ storage: unknownNet() }), phase: 'Unknown', actions: [] },
    { name: 'down below threshold -> Degraded', status: { phase: 'Healthy' }, o: obs({ storage: down(2) }), phase: 'Degraded', actions: [] },
    { name: 'failing within grace -> Suspect', status: { phase: 'Degraded' }, o: obs({ storage: down(3) }), now: T0 + 5 * S, phase: 'Suspect', actions: [] },
    { name: 'management failing after grace -> Notify only', status: { phase: 'Suspect' }, o: obs({ management: down(9) }), now: T0 + 7 * S, phase: 'Degraded', actions: ['notify'] },
    { name: 'tenant failing after grace -> Notify only', status: { phase: 'Suspect' }, o: obs({ tenant: down(9) }), now: T0 + 7 * S, phase: 'Degraded', actions: ['notify'] },
    { name: 'storage failing after grace -> recover', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Recovering', actions: ['recover'] },
    { name: 'recovery within settle -> wait', status: { phase: 'Recovering', recovery: { attempts: 1, kind: 'storage', lastAttempt: new Date(T0 + 6 * S).toISOString() } }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Recovering', actions: [] },
    { name: 'recovery settled -> second attempt', status: { phase: 'Recovering', recovery: { attempts: 1, kind: 'storage', lastAttempt: new Date(T0 + 6 * S).toISOString() } }, o: obs({ storage: down(9) }), now: T0 + 10 * S, phase: 'Recovering', actions: ['recover'] },
    { name: 'recovery exhausted -> corroborate', status: { phase: 'Recovering', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9) }), now: T0 + 14 * S, phase: 'Suspect', actions: ['corroborate'] },
    { name: 'stale corroboration -> corroborate again', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 9 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Suspect', actions: ['corroborate'] },
    { name: 'corroborated -> Fencing, power off', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Fencing', actions: ['powerOff'] },
    { name: 'node says storage works -> notify, no fence', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'works' } }), now: T0 + 14 * S, phase: 'Degraded', actions: ['notify'] },
    { name: 'observers disagree -> no fence', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: { ...down(9), observersUp: 1 }, corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Suspect', actions: ['notify'] },
    { name: 'storm blocks fence', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Suspect', actions: ['notify'], fleet: { policy: { matched: 5, unhealthy: 3, inFlight: 0 }, global: { total: 5, unhealthy: 3, inFlight: 0 } }, pol: withSafety({ maxUnhealthy: '40%' }) },
    { name: 'global ceiling blocks fence', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Suspect', actions: ['notify'], fleet: { policy: { matched: 2, unhealthy: 1, inFlight: 0 }, global: { total: 10, unhealthy: 6, inFlight: 0 } }, pol: withSafety({ maxUnhealthy: 1 }) },
    { name: 'storm blocks recovery', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Suspect', actions: ['notify'], fleet: { policy: { matched: 5, unhealthy: 3, inFlight: 0 }, global: { total: 5, unhealthy: 3, inFlight: 0 } }, pol: withSafety({ maxUnhealthy: '40%' }) },
    { name: 'maxConcurrentRemediations holds', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Suspect', actions: ['notify'], fleet: { policy: { matched: 10, unhealthy: 2, inFlight: 1 }, global: { total: 10, unhealthy: 2, inFlight: 1 } } },
    // A drain elsewhere (a planned live migration) does not hold a failed host's recovery or fence.
    { name: 'another node draining: recovery goes on', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Recovering', actions: ['recover'], fleet: { policy: { matched: 10, unhealthy: 2, inFlight: 1, draining: 1 }, global: { total: 10, unhealthy: 2, inFlight: 1, draining: 1 } } },
    { name: 'another node draining: the fence goes on', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Fencing', actions: ['powerOff'], fleet: { policy: { matched: 10, unhealthy: 2, inFlight: 1, draining: 1 }, global: { total: 10, unhealthy: 2, inFlight: 1, draining: 1 } } },
    { name: 'paused: nothing', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Suspect', actions: ['notify'], pol: withSafety({ paused: true }) },
    { name: 'dry run: would fence', status: { phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, o: obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } }), now: T0 + 14 * S, phase: 'Suspect', actions: ['notify'], pol: withSafety({ dryRun: true }) },
    { name: 'dry run: no recovery either', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 7 * S, phase: 'Suspect', actions: ['notify'], pol: withSafety({ dryRun: true }) },
    { name: 'maintenance: untouched', status: { phase: 'Suspect' }, o: obs({ storage: down(9) }), now: T0 + 60 * S, phase: 'Maintenance', actions: [] },
    { name: 'recovered within healthyDelay -> still Recovering', status: { phase: 'Recovering', recovery: { attempts: 1, kind: 'storage', lastAttempt: new Date(T0).toISOString() } }, o: obs({ storage: up(T0 + 5 * S) }), now: T0 + 6 * S, phase: 'Recovering', actions: [] },
    { name: 'recovered after healthyDelay -> Healthy + mail', status: { phase: 'Recovering', recovery: { attempts: 1, kind: 'storage', lastAttempt: new Date(T0).toISOString() } }, o: obs({ storage: up(T0 + 5 * S) }), now: T0 + 9 * S, phase: 'Healthy', actions: ['notify'] },
    { name: 'powered off while healthy -> power on', status: { phase: 'Healthy', watchedHealthyAt: new Date(T0 - 100 * S).toISOString() }, o: obs({ power: { state: 'off', since: T0 } }), phase: 'Recovering', actions: ['powerOn'] },
    { name: 'power-on exhausted -> notify', status: { phase: 'Recovering', recovery: { attempts: 2, kind: 'powerOn', lastAttempt: new Date(T0).toISOString() } }, o: obs({ power: { state: 'off', since: T0 } }), now: T0 + 5 * S, phase: 'Degraded', actions: ['notify'] },
    { name: 'powered off with Nova fence marker -> no power on', status: { phase: 'Healthy' }, o: obs({ power: { state: 'off', since: T0 }, nova: { apiState: 'down', nodeSide: 'unknown', evacuationMigrations: 0, disabledReason: 'hm9k fence x', status: 'disabled', forcedDown: true } }), phase: 'Fenced', actions: ['notify'] },
    { name: 'powered off with evacuation migrations -> no power on', status: { phase: 'Healthy' }, o: obs({ power: { state: 'off', since: T0 }, nova: { apiState: 'down', nodeSide: 'unknown', evacuationMigrations: 2 } }), phase: 'Degraded', actions: ['notify'] },
    { name: 'powered off while Suspect -> no power on', status: { phase: 'Suspect' }, o: obs({ power: { state: 'off', since: T0 }, storage: down(9) }), now: T0 + 2 * S, phase: 'Suspect', actions: [] },
    { name: 'nova-compute down -> restart over SSH', status: { phase: 'Healthy' }, o: obs({ nova: { apiState: 'down', status: 'enabled', forcedDown: false, nodeSide: 'down', evacuationMigrations: 0 } }), phase: 'Recovering', actions: ['recover'] },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const n = node(t.status, t.o, t.name.startsWith('maintenance') ? { spec: { host: 'cmp1', maintenance: true } } : {});
      const d = decide(n, t.pol ?? policy, t.fleet ?? calm, ctx(t.now ?? T0));
      expect(d.status.phase).toBe(t.phase);
      expect(types(d)).toEqual(t.actions);
    });
  }
  it('records recovery intent before running it (attempt counted first)', () => {
    const d = decide(node({ phase: 'Suspect' }, obs({ storage: down(9) })), policy, calm, ctx(T0 + 7 * S));
    expect(d.status.recovery).toMatchObject({ attempts: 1, kind: 'storage' });
    expect(d.actions.find((a) => a.type === 'recover')).toMatchObject({ command: 'systemctl restart storage-network', attempt: 1 });
  });
  it('fence intent carries lease holder and transitions', () => {
    const d = decide(node({ phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0).toISOString() } }, obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 5 * S, result: 'failing' } })), policy, calm, ctx(T0 + 14 * S));
    expect(d.status.fence).toMatchObject({ leaseHolder: 'hm9k-0', leaseTransitions: 1, steps: [{ name: 'powerOff', state: 'pending' }] });
    expect(d.inFlight).toBe(true);
  });
  it('requireSsh: unreachable corroboration blocks the fence', () => {
    const p = resolvePolicy({ ...spec, detection: { ...spec.detection, corroboration: { requireSsh: true } } });
    const d = decide(node({ phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0).toISOString() } }, obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 5 * S, result: 'unreachable' } })), p, calm, ctx(T0 + 14 * S));
    expect(d.status.phase).toBe('Suspect');
    expect(d.status.fence).toBeUndefined();
  });
  it('no BMC: cannot fence, notify', () => {
    const n = node({ phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0).toISOString() } }, obs({ storage: down(9), corroboration: { network: 'storage', at: T0 + 5 * S, result: 'failing' } }), { spec: { host: 'cmp1', ssh: { address: 'a', credentialsSecret: 's' } } });
    const d = decide(n, policy, calm, ctx(T0 + 14 * S));
    expect(d.status.fence).toBeUndefined();
    expect(types(d)).toEqual(['notify']);
  });
  it('steady state is stable: deciding twice yields the same status', () => {
    const d1 = decide(node({}, obs()), policy, calm, ctx(T0));
    const d2 = decide(node(d1.status, obs()), policy, calm, ctx(T0 + 60 * S));
    expect(d2.status).toEqual(d1.status);
    expect(d2.actions).toEqual([]);
  });
});

describe('fence state machine: fencing, evacuation, latch, return to service', () => {
  const ack = { [ACK_FENCE_ANNOTATION]: 'cmp1-f1' };
  const offObs = obs({ storage: down(9), power: { state: 'off', since: T0 } });
  const cases: { name: string; status: ComputeNodeStatus; o?: NodeObservations; ann?: Record<string, string>; phase: string; actions: string[]; pol?: typeof policy }[] = [
    { name: 'pending power-off (e.g. after restart) -> power off again (idempotent)', status: fenced('pending'), phase: 'Fencing', actions: ['powerOff'] },
    { name: 'power off confirmed -> force down', status: fenced('offConfirmed'), o: offObs, phase: 'Fencing', actions: ['forceDown'] },
    { name: 'power off not confirmed -> FenceFailed, notify, never evacuate', status: fenced('offFailed'), o: offObs, phase: 'FenceFailed', actions: ['notify'] },
    { name: 'FenceFailed acknowledged -> re-evaluated', status: fenced('offFailed'), o: obs(), ann: ack, phase: 'Degraded', actions: [] },
    { name: 'forced down -> disable with marker', status: fenced('forced'), o: offObs, phase: 'Fencing', actions: ['disable'] },
    { name: 'disabled -> evacuate', status: fenced('disabled'), o: offObs, phase: 'Evacuating', actions: ['evacuate'] },
    { name: 'evacuation disabled -> Fenced', status: fenced('disabled'), o: offObs, phase: 'Fenced', actions: ['notify'], pol: resolvePolicy({ ...spec, evacuation: { enabled: false } }) },
    { name: 'evacuated -> Fenced latched, never powered on', status: { ...fenced('evacuated'), phase: 'Evacuating' }, o: offObs, phase: 'Fenced', actions: ['notify'] },
    { name: 'Fenced stays latched even when everything looks healthy', status: fenced('evacuated'), o: obs(), phase: 'Fenced', actions: [] },
    { name: 'stale ack (other id) does not clear the latch', status: fenced('evacuated'), o: obs(), ann: { [ACK_FENCE_ANNOTATION]: 'cmp1-old' }, phase: 'Fenced', actions: [] },
    { name: 'ack while host still off -> wait, no power-on', status: fenced('evacuated'), o: offObs, ann: ack, phase: 'Fenced', actions: [] },
    { name: 'ack and host repaired -> return to service', status: fenced('evacuated'), o: obs(), ann: ack, phase: 'Fenced', actions: ['returnToService'] },
    { name: 'maintenance pauses a fence', status: fenced('disabled'), o: offObs, phase: 'Maintenance', actions: [] },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const n = node(t.status, t.o ?? obs(), { annotations: t.ann ?? {}, ...(t.name.startsWith('maintenance') ? { spec: { host: 'cmp1', maintenance: true } } : {}) });
      const d = decide(n, t.pol ?? policy, calm, ctx(T0 + 100 * S));
      expect(d.status.phase).toBe(t.phase);
      expect(types(d)).toEqual(t.actions);
      if (t.phase === 'FenceFailed' || t.status.fence?.steps.some((s) => s.state === 'failed' && s.name === 'confirmOff')) expect(types(d)).not.toContain('evacuate');
    });
  }
  it('the fenced email says what happened and what the operator must do', () => {
    const d = decide(node({ ...fenced('evacuated'), phase: 'Evacuating' }, offObs), policy, calm, ctx(T0 + 100 * S));
    const mail = d.actions.find((a) => a.type === 'notify');
    expect(mail).toMatchObject({ severity: 'critical' });
    if (mail?.type !== 'notify') throw new Error('no mail');
    expect(mail.subject).toContain('cmp1');
    expect(mail.body).toContain('s1: done -> cmp2');
    expect(mail.body).toContain(`${ACK_FENCE_ANNOTATION}=cmp1-f1`);
  });
  it('return to service clears the latch -> Healthy', () => {
    const s = applyOutcome(fenced('evacuated', true), { type: 'returnToService', ok: true, waiting: false, message: 'enabled' }, T0);
    expect(s.phase).toBe('Healthy');
    expect(s.fence).toBeUndefined();
    const w = applyOutcome(fenced('evacuated', true), { type: 'returnToService', ok: false, waiting: true, message: 'Nova refused to un-force (400)' }, T0);
    expect(w.fence).toBeDefined();
    expect(w.waitingFor).toContain('400');
  });
  it('Nova marker rebuilds the latch when the record is lost', () => {
    const o = obs({ nova: { apiState: 'down', status: 'disabled', forcedDown: true, disabledReason: 'hm9k fence cmp1-zz', nodeSide: 'unknown', evacuationMigrations: 0 } });
    const d = decide(node({ phase: 'Healthy' }, o), policy, calm, ctx(T0));
    expect(d.status.phase).toBe('Fenced');
    expect(d.status.fence?.id).toBe('cmp1-zz');
    expect(types(d)).not.toContain('powerOn');
    expect(types(d)).not.toContain('evacuate');
  });
  it('paused holds fence steps', () => {
    const d = decide(node(fenced('disabled'), offObs), withSafety({ paused: true }), calm, ctx(T0));
    expect(types(d)).toEqual([]);
  });
});

describe('the story a person reads (Events and conditions)', () => {
  const evs = (d: { actions: { type: string }[] }) => d.actions.filter((a): a is { type: 'event'; reason: string; note: string; eventType: string } => a.type === 'event');

  it('a stale acknowledgement is rejected with an Event; the right one is accepted', () => {
    const stale = decide(node(fenced('evacuated'), obs(), { annotations: { [ACK_FENCE_ANNOTATION]: 'cmp1-old' } }), policy, calm, ctx(T0 + 10 * S));
    expect(stale.status.fence?.acknowledged).toBeFalsy();
    expect(evs(stale).map((e) => e.reason)).toEqual(['AcknowledgementRejected']);
    expect(evs(stale)[0]!.note).toMatch(/stale.*cmp1-old.*cmp1-f1/);
    const right = decide(node(fenced('evacuated'), obs(), { annotations: { [ACK_FENCE_ANNOTATION]: 'cmp1-f1' } }), policy, calm, ctx(T0 + 10 * S));
    expect(right.status.fence?.acknowledged).toBe(true);
    expect(evs(right).map((e) => e.reason)).toContain('FenceAcknowledged');
  });

  it('a held fence says why on the node (storm), and a phase change rides on the decision\'s own Event', () => {
    const stormy: FleetSummary = { policy: { matched: 5, unhealthy: 3, inFlight: 0 }, global: { total: 5, unhealthy: 3, inFlight: 0 } };
    const st: ComputeNodeStatus = { phase: 'Recovering', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0).toISOString(), lastResult: 'failed: exit 1' } };
    const o = obs({ storage: down(20, T0 - 60 * S), corroboration: { network: 'storage', at: T0 + 5 * S, result: 'failing' } });
    const d = decide(node(st, o), withSafety({ maxUnhealthy: '40%' }), stormy, ctx(T0 + 10 * S));
    expect(d.status.phase).toBe('Suspect');
    const e = evs(d);
    expect(e.map((x) => x.reason)).toEqual(['FenceHeldStorm']);
    expect(e[0]!.note).toMatch(/storm: 3 of 5 nodes unhealthy.*nothing fenced \[phase Recovering -> Suspect\]/);
  });

  it('conditions explain a fence in words', () => {
    const latched = decide(node(fenced('evacuated'), obs({ power: { state: 'off', since: T0 } })), policy, calm, ctx(T0 + 10 * S));
    const f = latched.status.conditions!.find((c) => c.type === 'Fenced')!;
    expect(f).toMatchObject({ status: 'True', reason: 'Latched' });
    expect(f.message).toContain(`${ACK_FENCE_ANNOTATION}=cmp1-f1`);
    const failed = decide(node(fenced('offFailed'), obs({ power: { state: 'unknown', since: T0, error: 'BMC not answering' } })), policy, calm, ctx(T0 + 10 * S));
    expect(failed.status.conditions!.find((c) => c.type === 'Fenced')).toMatchObject({ status: 'False', reason: 'PowerOffNotConfirmed' });
    const nets = decide(node({ phase: 'Healthy' }, obs({ storage: down(1) })), policy, calm, ctx(T0 + S));
    expect(nets.status.conditions!.find((c) => c.type === 'NetworkHealthy')!.message).toMatch(/storage since .* \(serfHealth critical\)/);
  });
});

describe('issue 9 item 4: a power-on needs positive evidence, on every reconcile', () => {
  const off = { state: 'off' as const, since: T0 };
  const novaUp = { apiState: 'down' as const, status: 'enabled' as const, forcedDown: false, nodeSide: 'unknown' as const, evacuationMigrations: 0 };
  const novaUnknown = { apiState: 'unknown' as const, nodeSide: 'unknown' as const, evacuationMigrations: 0 };
  /** Feeds each decision's status into the next one, as the shell does. */
  function run(status: ComputeNodeStatus, o: NodeObservations, n: number, pol = policy) {
    const all: ReturnType<typeof decide>[] = [];
    for (let i = 0; i < n; i++) {
      const d = decide(node(status, o), pol, calm, ctx(T0 + (10 + i * 10) * S));
      all.push(d);
      status = d.status;
    }
    return all;
  }
  it('a re-created ComputeNode (empty status) with Nova unreadable is never powered on', () => {
    const ds = run({}, obs({ power: off, nova: novaUnknown }), 6);
    for (const d of ds) expect(types(d)).not.toContain('powerOn');
    expect(ds.at(-1)!.status.waitingFor).toMatch(/no evidence.*Nova state unknown/);
  });
  it('the Degraded phase written by a refusal is not evidence: still refused on reconcile 2 and later', () => {
    const ds = run({}, obs({ power: off, nova: novaUp }), 4);
    expect(ds[0]!.status.phase).toBe('Degraded');
    for (const d of ds) expect(types(d)).not.toContain('powerOn');
  });
  it('Nova unreadable blocks a power-on even for a node seen Healthy', () => {
    const ds = run({ phase: 'Healthy', watchedHealthyAt: new Date(T0 - 100 * S).toISOString() }, obs({ power: off, nova: novaUnknown }), 3);
    for (const d of ds) expect(types(d)).not.toContain('powerOn');
    expect(ds[0]!.status.waitingFor).toContain('Nova state unknown');
  });
  it('evidence: recorded when the node is Healthy, kept in status, then a power-on is allowed', () => {
    const h = decide(node({}, obs()), policy, calm, ctx(T0));
    expect(h.status.phase).toBe('Healthy');
    expect(h.status.watchedHealthyAt).toBe(new Date(T0).toISOString());
    const again = decide(node(h.status, obs()), policy, calm, ctx(T0 + 60 * S));
    expect(again.status.watchedHealthyAt).toBe(h.status.watchedHealthyAt);
    const d = decide(node(h.status, obs({ power: off, nova: novaUp })), policy, calm, ctx(T0 + 70 * S));
    expect(types(d)).toEqual(['powerOn']);
  });
  it('Unknown, Maintenance and a fence each clear the evidence', () => {
    const seen: ComputeNodeStatus = { phase: 'Healthy', watchedHealthyAt: new Date(T0).toISOString() };
    const u = decide(node(seen, obs({ storage: unknownNet() })), policy, calm, ctx(T0 + S));
    expect(u.status.phase).toBe('Unknown');
    expect(u.status.watchedHealthyAt).toBeUndefined();
    const afterUnknown = run(u.status, obs({ power: off, nova: novaUp }), 3);
    for (const d of afterUnknown) expect(types(d)).not.toContain('powerOn');
    const m = decide(node(seen, obs(), { spec: { host: 'cmp1', maintenance: true } }), policy, calm, ctx(T0 + S));
    expect(m.status.watchedHealthyAt).toBeUndefined();
    const f = decide(node({ ...fenced('pending'), watchedHealthyAt: seen.watchedHealthyAt }, obs()), policy, calm, ctx(T0 + S));
    expect(f.status.watchedHealthyAt).toBeUndefined();
  });
});

describe('issue 9 item 5: dryRun and paused hold every external action in every phase', () => {
  const EXTERNAL = ['powerOff', 'forceDown', 'disable', 'evacuate', 'returnToService', 'powerOn', 'recover'];
  const offObs = obs({ storage: down(9), power: { state: 'off', since: T0 } });
  const ack = { [ACK_FENCE_ANNOTATION]: 'cmp1-f1' };
  const stages: { name: string; status: ComputeNodeStatus; o: NodeObservations; ann?: Record<string, string>; action: string; phase: string }[] = [
    { name: 'fence pending (power-off not yet confirmed)', status: fenced('pending'), o: obs({ storage: down(9) }), action: 'powerOff', phase: 'Fencing' },
    { name: 'power-off confirmed', status: fenced('offConfirmed'), o: offObs, action: 'forceDown', phase: 'Fencing' },
    { name: 'forced down', status: fenced('forced'), o: offObs, action: 'disable', phase: 'Fencing' },
    { name: 'disabled', status: { ...fenced('disabled'), phase: 'Evacuating' }, o: offObs, action: 'evacuate', phase: 'Evacuating' },
    { name: 'acknowledged fence, host repaired', status: { ...fenced('evacuated', true) }, o: obs(), ann: ack, action: 'returnToService', phase: 'Fenced' },
    { name: 'acknowledged before power-off confirmed (legacy record)', status: { ...fenced('pending'), fence: { ...fenced('pending').fence!, acknowledged: true } }, o: obs(), ann: ack, action: 'powerOff', phase: 'Fencing' },
  ];
  for (const flag of ['dryRun', 'paused'] as const) {
    for (const t of stages) {
      it(`${flag}: ${t.name} -> holds where it is, says so, acts on nothing`, () => {
        const d = decide(node(t.status, t.o, { annotations: t.ann ?? {} }), withSafety({ [flag]: true }), calm, ctx(T0 + 100 * S));
        expect(types(d).filter((a) => EXTERNAL.includes(a))).toEqual([]);
        expect(d.status.phase).toBe(t.phase);
        expect(d.status.fence?.id).toBe('cmp1-f1');
        const c = d.status.conditions!.find((x) => x.type === 'Paused');
        expect(c).toMatchObject({ status: 'True', reason: flag === 'dryRun' ? 'DryRun' : 'PolicyPaused' });
        expect(c!.message).toContain('holding: fence cmp1-f1: would');
        expect(d.status.waitingFor).toContain(flag === 'dryRun' ? 'dry run: would' : 'policy paused: would');
        // Held again on the next decision, quietly (no new Event once the hold is recorded).
        const d2 = decide(node(d.status, t.o, { annotations: t.ann ?? {} }), withSafety({ [flag]: true }), calm, ctx(T0 + 110 * S));
        expect(types(d2).filter((a) => EXTERNAL.includes(a))).toEqual([]);
        expect(d2.actions.filter((a) => a.type === 'event')).toEqual([]);
        // Resumes where it stood once the flag is off.
        const r = decide(node(d.status, t.o, { annotations: t.ann ?? {} }), policy, calm, ctx(T0 + 120 * S));
        expect(types(r)).toContain(t.action);
        expect(r.status.conditions!.find((x) => x.type === 'Paused')).toBeUndefined();
      });
    }
  }
  it('dryRun: a powered-off host seen Healthy is not powered on', () => {
    const d = decide(node({ phase: 'Healthy', watchedHealthyAt: new Date(T0).toISOString() }, obs({ power: { state: 'off', since: T0 } })), withSafety({ dryRun: true }), calm, ctx(T0 + S));
    expect(types(d)).not.toContain('powerOn');
    expect(d.status.conditions!.find((x) => x.type === 'Paused')!.message).toContain('would power on');
  });
});

describe('issue 9 item 12: acknowledging a fence still in progress', () => {
  const ack = { [ACK_FENCE_ANNOTATION]: 'cmp1-f1' };
  const offObs = obs({ storage: down(9), power: { state: 'off', since: T0 } });
  const evs = (d: { actions: { type: string }[] }) => d.actions.filter((a): a is { type: 'event'; reason: string; note: string; eventType: string } => a.type === 'event');
  it('is refused (Event + condition) and does not cancel the fence', () => {
    const d = decide(node(fenced('pending'), obs({ storage: down(9) }), { annotations: ack }), policy, calm, ctx(T0 + S));
    expect(d.status.fence?.acknowledged).toBeFalsy();
    expect(types(d)).toEqual(['powerOff']);
    expect(evs(d).map((e) => e.reason)).toContain('AcknowledgementRefused');
    expect(d.status.conditions!.find((c) => c.type === 'Acknowledged')).toMatchObject({ status: 'False', reason: 'FenceInProgress' });
    // Still refused mid-fence, without a second Event.
    const d2 = decide(node(applyOutcome(d.status, { type: 'powerOff', ok: true, confirmed: true, message: 'off' }, T0 + 2 * S), offObs, { annotations: ack }), policy, calm, ctx(T0 + 3 * S));
    expect(d2.status.fence?.acknowledged).toBeFalsy();
    expect(types(d2)).toEqual(['forceDown']);
    expect(evs(d2).map((e) => e.reason)).not.toContain('AcknowledgementRefused');
  });
  it('the fenced summary goes out when the fence completes; the acknowledgement counts on the next decision', () => {
    const d = decide(node({ ...fenced('evacuated'), phase: 'Evacuating' }, obs(), { annotations: ack }), policy, calm, ctx(T0 + S));
    expect(d.status.phase).toBe('Fenced');
    expect(d.status.fence?.acknowledged).toBeFalsy();
    const mail = d.actions.find((a) => a.type === 'notify');
    expect(mail).toMatchObject({ key: 'fenced-cmp1-f1', subject: expect.stringContaining('fenced, 1/1 servers evacuated') });
    expect(types(d)).not.toContain('returnToService');
    const next = decide(node(d.status, obs(), { annotations: ack }), policy, calm, ctx(T0 + 2 * S));
    expect(next.status.fence?.acknowledged).toBe(true);
    expect(types(next)).toEqual(['returnToService']);
    expect(next.status.conditions!.find((c) => c.type === 'Acknowledged')).toBeUndefined();
  });
  it('a record acknowledged mid-fence (before this rule) still sends the summary', () => {
    const s = fenced('evacuated', true);
    const d = decide(node({ ...s, phase: 'Evacuating' }, offObs, { annotations: ack }), policy, calm, ctx(T0 + S));
    expect(d.actions.find((a) => a.type === 'notify')).toMatchObject({ key: 'fenced-cmp1-f1' });
  });
  it('a failed fence: refused while Fencing, accepted once FenceFailed was reported', () => {
    const failing = { ...fenced('offFailed'), phase: 'Fencing' as const };
    const d = decide(node(failing, obs(), { annotations: ack }), policy, calm, ctx(T0 + S));
    expect(d.status.phase).toBe('FenceFailed');
    expect(d.actions.find((a) => a.type === 'notify')).toMatchObject({ key: 'fence-failed-cmp1-f1' });
    const next = decide(node(d.status, obs(), { annotations: ack }), policy, calm, ctx(T0 + 2 * S));
    expect(next.status.fence).toBeUndefined();
    expect(next.status.phase).toBe('Degraded');
  });
});

describe('issue 9 items 7 and 8: the fenced summary after a finished evacuation', () => {
  const offObs = obs({ storage: down(9), power: { state: 'off', since: T0 } });
  it('a stuck server reported failed: the fence ends Fenced (slot freed) and the email names the server', () => {
    let s = fenced('disabled');
    s.evacuation = {
      startedAt: new Date(T0).toISOString(), microversion: '2.94', total: 2, done: 1, failed: 1, planned: 2, servers: [
        { id: 's-ok', from: 'cmp1', to: 'cmp2', state: 'done' },
        { id: 's-stuck', from: 'cmp1', state: 'failed', error: 'task_state rebooting for more than 300000 ms: needs an operator' },
      ],
    };
    s = applyOutcome({ ...s, phase: 'Evacuating' }, { type: 'evacuationFinished', ok: false, message: '1/2 done, 1 failed' }, T0);
    const d = decide(node(s, offObs), policy, calm, ctx(T0 + S));
    expect(d.status.phase).toBe('Fenced');
    expect(d.inFlight).toBe(false);
    const mail = d.actions.find((a) => a.type === 'notify');
    if (mail?.type !== 'notify') throw new Error('no mail');
    expect(mail.subject).toContain('fenced, 1/2 servers evacuated');
    expect(mail.body).toMatch(/need your attention:\n {2}s-stuck: failed \(task_state rebooting.*needs an operator\)/);
  });
  it('230 servers: exact counts in the subject, omitted ones said, not silently cut', () => {
    let s = fenced('disabled');
    s.evacuation = {
      startedAt: new Date(T0).toISOString(), microversion: '2.94', total: 230, done: 230, failed: 0, planned: 230, omitted: { done: 100, failed: 0 },
      servers: Array.from({ length: 130 }, (_, i) => ({ id: `s${i}`, from: 'cmp1', to: 'cmp2', state: 'done' as const })),
    };
    s = applyOutcome({ ...s, phase: 'Evacuating' }, { type: 'evacuationFinished', ok: true, message: '230/230 done' }, T0);
    const d = decide(node(s, offObs), policy, calm, ctx(T0 + S));
    const mail = d.actions.find((a) => a.type === 'notify');
    if (mail?.type !== 'notify') throw new Error('no mail');
    expect(mail.subject).toContain('fenced, 230/230 servers evacuated');
    expect(mail.body).toContain('230 done, 0 failed of 230');
    expect(mail.body).toContain('... and 180 more evacuated');
    expect(d.status.conditions!.find((c) => c.type === 'Evacuated')).toMatchObject({ status: 'True', reason: 'EvacuationDone' });
  });
});

describe('issue 9 item 6: the same host fenced again after a return to service', () => {
  it('a Nova read taken before the re-enable (marker of the fence just returned) does not rebuild the latch', () => {
    const back = applyOutcome(fenced('evacuated', true), { type: 'returnToService', ok: true, waiting: false, message: 'un-forced and enabled' }, T0);
    expect(back.returnedFenceId).toBe('cmp1-f1');
    const stale = obs({ nova: { apiState: 'up', status: 'disabled', forcedDown: true, disabledReason: 'hm9k fence cmp1-f1', nodeSide: 'up', evacuationMigrations: 0 } });
    const d = decide(node(back, stale, { annotations: { [ACK_FENCE_ANNOTATION]: 'cmp1-f1' } }), policy, calm, ctx(T0 + S));
    expect(d.status.fence).toBeUndefined();
    expect(d.status.phase).not.toBe('Fenced');
    // The host fails again: recovery, then a new fence with a new id.
    const failing = obs({ storage: down(9, T0), corroboration: { network: 'storage', at: T0 + 13 * S, result: 'failing' } });
    const f = decide(node({ ...d.status, phase: 'Suspect', recovery: { attempts: 2, kind: 'storage', lastAttempt: new Date(T0 + 10 * S).toISOString() } }, failing), policy, calm, ctx(T0 + 14 * S));
    expect(types(f)).toEqual(['powerOff']);
    expect(f.status.fence?.id).not.toBe('cmp1-f1');
  });
  it('a marker of another fence still rebuilds the latch', () => {
    const o = obs({ nova: { apiState: 'down', status: 'disabled', forcedDown: true, disabledReason: 'hm9k fence cmp1-f2', nodeSide: 'unknown', evacuationMigrations: 0 } });
    const d = decide(node({ phase: 'Healthy', returnedFenceId: 'cmp1-f1' }, o), policy, calm, ctx(T0));
    expect(d.status.fence?.id).toBe('cmp1-f2');
    expect(d.status.phase).toBe('Fenced');
  });
});

describe('issue 9 item 4: evidence needs the BMC read as on', () => {
  it('Healthy by the networks with the power not read yet records no evidence; a later off is not powered on', () => {
    const o = obs();
    delete o.power;
    const h = decide(node({}, o), policy, calm, ctx(T0));
    expect(h.status.phase).toBe('Healthy');
    expect(h.status.watchedHealthyAt).toBeUndefined();
    const d = decide(node(h.status, obs({ power: { state: 'off', since: T0 + S } })), policy, calm, ctx(T0 + 2 * S));
    expect(types(d)).not.toContain('powerOn');
  });
});
