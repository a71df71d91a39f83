// A simulated fleet for the pure fence state machine (src/nodes/fence/machine.ts): the world's
// nodes, their snapshots, the fleet summary the shell computes, and a shell that carries out each
// action the machine asks for and feeds its outcome back, as src/nodes/engine.ts does. Shared by the
// property test (test/nodes/fence-property.test.ts) and the fuzzer (test/fuzz/fence-machine.fuzz.test.ts),
// which differ only in how the world evolves and which invariants they check.
import { ACK_FENCE_ANNOTATION, NETWORKS, type ComputeNodeStatus, type NetworkName } from '../../src/api/index.js';
import type { ResolvedPolicy } from '../../src/nodes/config.js';
import { applyOutcome, isUnhealthy } from '../../src/nodes/fence/machine.js';
import type { Action, FleetSummary, NetworkObservation, NodeObservations, NodeSnapshot } from '../../src/nodes/fence/types.js';

export { rng } from './rng.js';

/** Actions that touch something outside hm9k (BMC, SSH, Nova). */
export const EXTERNAL = new Set<Action['type']>(['recover', 'powerOn', 'powerOff', 'forceDown', 'disable', 'evacuate', 'returnToService']);

/** Three observed networks, one observer each, as every simulated node has. */
export const THREE_NETWORKS = { management: { consul: [{ address: 'http://a:1' }] }, storage: { consul: [{ address: 'http://a:2' }] }, tenant: { consul: [{ address: 'http://a:3' }] } };

export interface SimNode {
  nets: Record<NetworkName, NetworkObservation>;
  power: 'on' | 'off' | 'unknown';
  ann: Record<string, string>;
  status: ComputeNodeStatus;
  corroboration?: NodeObservations['corroboration'];
  /** Nova's API as hm9k reads it. */
  nova: 'up' | 'unknown';
}

export function networkObservation(state: NetworkObservation['state'], since: number): NetworkObservation {
  return { state, since, consecutiveDown: state === 'down' ? 1 : 0, observersUp: state === 'up' ? 1 : 0, observersDown: state === 'down' ? 1 : 0, observersUnknown: state === 'unknown' ? 1 : 0 };
}

/** A healthy, powered node whose networks have been up for a while. */
export function healthyNode(now: number): SimNode {
  return { nets: Object.fromEntries(NETWORKS.map((n) => [n, networkObservation('up', now - 100_000)])) as SimNode['nets'], power: 'on', ann: {}, status: {}, nova: 'up' };
}

export function snapshot(w: SimNode, i: number, now: number): NodeSnapshot {
  return {
    name: `n${i}`, spec: { host: `n${i}`, bmc: { address: 'b', credentialsSecret: 'c' }, ssh: { address: 's', credentialsSecret: 'c' } },
    annotations: w.ann, status: w.status,
    obs: { networks: w.nets, power: { state: w.power, since: now }, nova: { apiState: w.nova, nodeSide: w.nova === 'up' ? 'up' : 'unknown', evacuationMigrations: 0 }, ...(w.corroboration ? { corroboration: w.corroboration } : {}) },
  };
}

/** The fleet as the shell sees it when deciding node i (one policy, every node matched). */
export function fleetSummary(snaps: readonly NodeSnapshot[], i: number, policy: ResolvedPolicy): FleetSummary {
  const unhealthy = snaps.filter((s) => isUnhealthy(s, policy)).length;
  const inFlight = snaps.filter((s, j) => j !== i && ['Recovering', 'Fencing', 'Evacuating'].includes(s.status.phase ?? '')).length;
  return { policy: { matched: snaps.length, unhealthy, inFlight }, global: { total: snaps.length, unhealthy, inFlight } };
}

export const decideContext = (now: number) => ({ now, lease: { holder: 'h', transitions: 1 }, globalMaxUnhealthy: '100%', globalMaxConcurrentRemediations: 10 });

/**
 * The shell: carries out one action on the world (the BMC confirms a power-off 70% of the time,
 * evacuations succeed 80%, Nova calls 90%, a recovery command fixes the network 30%) and returns the
 * status with the outcome applied. Actions that act on nothing outside (notify, event) pass through.
 */
export function carryOut(a: Action, st: ComputeNodeStatus, w: SimNode, r: () => number, now: number): ComputeNodeStatus {
  switch (a.type) {
    case 'evacuate':
      return applyOutcome(st, { type: 'evacuationFinished', ok: r() < 0.8, message: 'sim' }, now);
    case 'forceDown':
    case 'disable':
      return applyOutcome(st, { type: a.type, ok: r() < 0.9, message: 'sim' }, now);
    case 'powerOff': {
      const x = r();
      const confirmed = w.power === 'off' || (w.power === 'on' && x < 0.7);
      if (confirmed) w.power = 'off';
      return applyOutcome(st, { type: 'powerOff', ok: confirmed, confirmed, message: 'sim' }, now);
    }
    case 'powerOn':
      if (r() < 0.5) w.power = 'on';
      return applyOutcome(st, { type: 'powerOn', ok: true, message: 'sim' }, now);
    case 'corroborate':
      w.corroboration = { network: a.network, at: now, result: r() < 0.7 ? 'failing' : r() < 0.5 ? 'works' : 'unreachable' };
      return st;
    case 'recover':
      if (r() < 0.3) w.nets[a.kind as NetworkName] = networkObservation('up', now);
      return applyOutcome(st, { type: 'recover', ok: true, message: 'sim' }, now);
    case 'returnToService': {
      const next = applyOutcome(st, { type: 'returnToService', ok: true, waiting: r() < 0.3, message: 'sim' }, now);
      if (!next.fence) delete w.ann[ACK_FENCE_ANNOTATION];
      return next;
    }
    default:
      return st;
  }
}
