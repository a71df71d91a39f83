// Fuzz: the pure fence state machine under random observation sequences, with a simulated shell
// that carries out every action and reports its outcome (as the engine does). fast-check draws the
// policy, the fleet size, the number of steps and the seed of the world's evolution (networks flap,
// hosts lose power, BMCs turn unreadable, operators acknowledge fences, the policy is paused or put in
// dryRun mid-way). Invariants:
// - never evacuate (nor force down / disable) before a power-off the BMC confirmed;
// - never two power-offs for one fence id; never a fence in a storm; one fence per node until acked,
//   and a fence record cleared only by the acknowledgement of its id;
// - dryRun: no external action at all (only notify/event/corroborate, which act on nothing);
// - paused: no new fence and no external action (a fence in progress holds where it is).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACK_FENCE_ANNOTATION, NETWORKS } from '../../src/api/index.js';
import { resolvePolicy } from '../../src/nodes/config.js';
import { decide, isStorm, stepState } from '../../src/nodes/fence/machine.js';
import type { FleetSummary, NetworkObservation, NodeSnapshot } from '../../src/nodes/fence/types.js';
import { EXTERNAL, THREE_NETWORKS, carryOut, decideContext, fleetSummary, healthyNode, networkObservation, rng, snapshot, type SimNode } from '../support/fence-world.js';
import { budget, check } from './support.js';

interface Node extends SimNode {
  fenceIds: string[];
  acked: Set<string>;
  confirmedOff: Set<string>;
  /** The node's last decisions, named in a failure message. */
  trace: string[];
}

const scenario = fc.record({
  seed: fc.integer(),
  nodes: fc.integer({ min: 2, max: 8 }),
  steps: fc.integer({ min: 50, max: 300 }),
  maxUnhealthy: fc.oneof(fc.constantFrom('40%', '50%', '100%', '0%'), fc.integer({ min: 0, max: 4 })),
  remediations: fc.integer({ min: 1, max: 3 }),
  failureThreshold: fc.integer({ min: 1, max: 3 }),
  forceDownService: fc.boolean(),
  evacuation: fc.boolean(),
  /** From which step the policy is in dryRun / paused (never when -1). */
  dryRunFrom: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 300 })),
  pausedFrom: fc.oneof(fc.constant(-1), fc.constant(-1), fc.integer({ min: 0, max: 300 })),
});

interface Totals { fences: number; evacuations: number; powerOffs: number; dryRunSteps: number; pausedSteps: number }

function run(sc: { seed: number; nodes: number; steps: number; maxUnhealthy: string | number; remediations: number; failureThreshold: number; forceDownService: boolean; evacuation: boolean; dryRunFrom: number; pausedFrom: number }, t: Totals, checkModes: boolean): void {
  const r = rng(sc.seed);
  const base = {
    networks: THREE_NETWORKS,
    detection: { interval: '1s', failureThreshold: sc.failureThreshold, recoveryGracePeriod: '2s', healthyDelay: '1s' },
    recovery: { attempts: 1, settleTime: '1s' },
    fencing: { forceDownService: sc.forceDownService },
    evacuation: { enabled: sc.evacuation },
  };
  const policyAt = (step: number) => resolvePolicy({
    ...base,
    safety: {
      maxUnhealthy: sc.maxUnhealthy, maxConcurrentRemediations: sc.remediations,
      dryRun: checkModes && sc.dryRunFrom >= 0 && step >= sc.dryRunFrom,
      paused: checkModes && sc.pausedFrom >= 0 && step >= sc.pausedFrom,
    },
  });
  let now = Date.parse('2025-01-01T00:00:00Z');
  const N = sc.nodes;
  const nodes: Node[] = Array.from({ length: N }, () => ({ ...healthyNode(now), fenceIds: [], acked: new Set<string>(), confirmedOff: new Set<string>(), trace: [] }));
  const powerOffsPerFence = new Map<string, number>();
  for (let step = 0; step < sc.steps; step++) {
    now += 1000;
    const policy = policyAt(step);
    if (policy.safety.dryRun) t.dryRunSteps++;
    if (policy.safety.paused) t.pausedSteps++;
    for (const w of nodes) {
      for (const n of NETWORKS) {
        const o = w.nets[n];
        const x = r();
        const next: NetworkObservation['state'] = x < 0.06 ? 'down' : x < 0.09 ? 'unknown' : x < 0.2 ? 'up' : o.state;
        if (next !== o.state) w.nets[n] = networkObservation(next, now);
        else if (next === 'down') w.nets[n] = { ...o, consecutiveDown: o.consecutiveDown + 1, observersUp: r() < 0.1 ? 1 : 0 };
      }
      if (r() < 0.01) w.power = w.power === 'on' ? 'off' : r() < 0.5 ? 'on' : 'unknown';
      if (w.status.fence && r() < 0.05) w.ann[ACK_FENCE_ANNOTATION] = w.status.fence.id;
    }
    for (let i = 0; i < N; i++) {
      const w = nodes[i]!;
      const all = nodes.map((x, j) => snapshot(x, j, now));
      const fleet = fleetSummary(all, i, policy);
      const unhealthy = fleet.policy.unhealthy;
      const hadFence = w.status.fence?.id;
      const d = decide(all[i]!, policy, fleet, decideContext(now));
      let st = d.status;
      w.trace.push(`step ${step}: ${w.status.phase ?? '-'} -> ${st.phase} fence=${st.fence?.id ?? '-'}${st.fence?.acknowledged ? ' (acked)' : ''} ann=${w.ann[ACK_FENCE_ANNOTATION] ?? '-'} power=${w.power} actions=${d.actions.map((a) => a.type).join(',')}`);
      if (w.trace.length > 25) w.trace.shift();
      const newFence = st.fence && st.fence.id !== hadFence ? st.fence.id : undefined;
      if (newFence) {
        t.fences++;
        expect(isStorm(policy.safety.maxUnhealthy, N, unhealthy), 'fence started in a storm').toBe(false);
        const prevId = w.fenceIds.at(-1);
        if (prevId) expect(w.acked.has(prevId), `second fence of n${i} without an acknowledgement of ${prevId}:\n${w.trace.join('\n')}`).toBe(true);
        w.fenceIds.push(newFence);
        if (checkModes) expect(policy.safety.paused, 'a fence started while paused').toBe(false);
      }
      if (st.fence?.acknowledged) w.acked.add(st.fence.id);
      if (hadFence && st.fence?.id !== hadFence) {
        // A fence record is cleared only by the operator's acknowledgement of its id.
        expect(w.ann[ACK_FENCE_ANNOTATION], `fence ${hadFence} of n${i} cleared without its acknowledgement:\n${w.trace.join('\n')}`).toBe(hadFence);
        w.acked.add(hadFence);
      }
      if (checkModes && policy.safety.dryRun) {
        const ext = d.actions.filter((a) => EXTERNAL.has(a.type)).map((a) => a.type);
        expect(ext, `dryRun: external actions at step ${step} on n${i} (phase ${d.status.phase})`).toEqual([]);
      }
      if (checkModes && policy.safety.paused) {
        const ext = d.actions.filter((a) => EXTERNAL.has(a.type)).map((a) => a.type);
        expect(ext, `paused: external actions at step ${step} on n${i} (phase ${d.status.phase})`).toEqual([]);
      }
      for (const a of d.actions) {
        if (a.type === 'evacuate' || a.type === 'forceDown' || a.type === 'disable') {
          expect(w.confirmedOff.has(a.fenceId), `${a.type} for fence ${a.fenceId} before a confirmed power-off`).toBe(true);
          expect(stepState(st.fence, 'confirmOff')).toBe('succeeded');
          expect(w.power).not.toBe('on');
          if (a.type === 'evacuate') t.evacuations++;
        }
        if (a.type === 'powerOff') {
          const n = (powerOffsPerFence.get(a.fenceId) ?? 0) + 1;
          powerOffsPerFence.set(a.fenceId, n);
          expect(n, `two power-offs for fence ${a.fenceId}`).toBe(1);
          t.powerOffs++;
        }
        st = carryOut(a, st, w, r, now);
        if (a.type === 'powerOff' && w.power === 'off') w.confirmedOff.add(a.fenceId); // the BMC confirmed it
      }
      w.status = st;
    }
  }
}

const RUNS = 25;
describe('fuzz: fence state machine', () => {
  it('found: a host the BMC reports on again after the confirmed power-off is neither forced down nor evacuated', () => {
    const now = Date.parse('2025-01-01T00:10:00Z');
    const policy = resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:2' }] } }, recovery: { commands: { storage: 'x' } } });
    const at = new Date(now - 5000).toISOString();
    const down: NetworkObservation = { state: 'down', since: now - 60_000, consecutiveDown: 20, observersUp: 0, observersDown: 1, observersUnknown: 0 };
    const snapshot = (power: 'on' | 'off'): NodeSnapshot => ({
      name: 'n0', spec: { host: 'n0', bmc: { address: 'b', credentialsSecret: 'c' } }, annotations: {},
      status: { phase: 'Fencing', fence: { id: 'n0-x', reason: 'storage down', startedAt: at, leaseHolder: 'h', leaseTransitions: 1, powerOffConfirmedAt: at, steps: [{ name: 'powerOff', state: 'succeeded', at }, { name: 'confirmOff', state: 'succeeded', at }] } },
      obs: { networks: { storage: down }, power: { state: power, since: now - 1000 }, nova: { apiState: 'up', nodeSide: 'unknown', evacuationMigrations: 0 } },
    });
    const fleet: FleetSummary = { policy: { matched: 3, unhealthy: 1, inFlight: 0 }, global: { total: 3, unhealthy: 1, inFlight: 0 } };
    const ctx = { now, lease: { holder: 'h', transitions: 1 }, globalMaxUnhealthy: '100%', globalMaxConcurrentRemediations: 10 };
    const on = decide(snapshot('on'), policy, fleet, ctx);
    expect(on.actions.map((a) => a.type).filter((t) => EXTERNAL.has(t))).toEqual([]);
    expect(on.actions.some((a) => a.type === 'notify')).toBe(true);
    // Off again: the fence carries on.
    expect(decide(snapshot('off'), policy, fleet, ctx).actions.map((a) => a.type)).toContain('forceDown');
  });

  it('confirmed power-off before Nova steps; one power-off per fence id; no fence in a storm; one fence until acked', { timeout: budget(RUNS, 150) }, async () => {
    const t: Totals = { fences: 0, evacuations: 0, powerOffs: 0, dryRunSteps: 0, pausedSteps: 0 };
    // Some seeds reach no evacuation in RUNS cases (the BMC may report the host on again, the fence
    // may fail): run further batches, each with its own printed seed, until the evacuation path has
    // been exercised too, so the invariants below never pass vacuously and no seed makes CI fail.
    for (let batch = 0; batch < 10 && (batch === 0 || t.evacuations === 0); batch++) {
      await check('fence machine sequences', fc.property(scenario, (sc) => run(sc, t, false)), RUNS);
    }
    console.log(`fuzz fence machine sequences: ${t.fences} fences, ${t.powerOffs} power-offs, ${t.evacuations} evacuations`);
    expect(t.fences).toBeGreaterThan(0);
    // A replayed seed (HM9K_FUZZ_SEED) repeats one batch: its coverage is what it is.
    if (process.env.HM9K_FUZZ_SEED === undefined) expect(t.evacuations).toBeGreaterThan(0);
  });

  // dryRun and paused switched on at a random step, also mid-fence (issue 9 item 5).
  it('dryRun acts on nothing and paused starts nothing, in every phase (also when switched on mid-fence)', { timeout: budget(RUNS, 150) }, async () => {
    const t: Totals = { fences: 0, evacuations: 0, powerOffs: 0, dryRunSteps: 0, pausedSteps: 0 };
    await check('fence machine dryRun/paused', fc.property(scenario.filter((s) => s.dryRunFrom >= 0 || s.pausedFrom >= 0), (sc) => run(sc, t, true)), RUNS);
    console.log(`fuzz fence machine dryRun/paused: ${t.dryRunSteps} dryRun steps, ${t.pausedSteps} paused steps, ${t.fences} fences`);
    expect(t.dryRunSteps).toBeGreaterThan(0);
    expect(t.pausedSteps).toBeGreaterThan(0);
  });
});
