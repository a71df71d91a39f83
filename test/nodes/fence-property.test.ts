// Property test: random fleets and observations through the pure state machine with a simulated
// shell. Invariants: never evacuate without confirmed power-off; never start a fence in a storm;
// never two fences for one node without an acknowledgement; never power on without positive evidence
// (seen Healthy under watch since the last Unknown or fence, Nova readable; issue 9 item 4); no
// external action while paused or in dry run, and a held fence resumes once unpaused (item 5); an
// acknowledgement counts only after the fence's summary went out (item 12).
import { describe, expect, it } from 'vitest';
import { ACK_FENCE_ANNOTATION, NETWORKS } from '../../src/api/index.js';
import { resolvePolicy } from '../../src/nodes/config.js';
import { decide, isStorm, stepState } from '../../src/nodes/fence/machine.js';
import type { NetworkObservation } from '../../src/nodes/fence/types.js';
import { EXTERNAL, THREE_NETWORKS, carryOut, decideContext, fleetSummary, healthyNode, networkObservation, rng, snapshot, type SimNode } from '../support/fence-world.js';

interface World extends SimNode {
  fenceIds: string[];
  acked: Set<string>;
  /** Ground truth for the power-on rule: seen Healthy, watched since, nothing fenced. */
  seenHealthy: boolean;
  /** Fence ids whose summary (fenced or fence-failed email) went out. */
  reported: Set<string>;
}

type Mode = 'normal' | 'paused' | 'dryRun';

const totals = { fences: 0, evacuations: 0, storms: 0 };
describe('fence state machine properties', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]) {
    it(`random fleet, seed ${seed}`, () => {
      const r = rng(seed);
      const sticky = seed > 8;
      const safety = { maxUnhealthy: r() < 0.5 ? '40%' : 2, maxConcurrentRemediations: 1 + Math.floor(r() * 2) };
      const spec = {
        networks: THREE_NETWORKS,
        detection: { interval: '1s', failureThreshold: 2, recoveryGracePeriod: '2s', healthyDelay: '1s' },
        recovery: { attempts: 1, settleTime: '1s' },
      };
      const policies: Record<Mode, ReturnType<typeof resolvePolicy>> = {
        normal: resolvePolicy({ ...spec, safety }),
        paused: resolvePolicy({ ...spec, safety: { ...safety, paused: true } }),
        dryRun: resolvePolicy({ ...spec, safety: { ...safety, dryRun: true } }),
      };
      let mode: Mode = 'normal';
      let policy = policies.normal;
      const N = 3 + Math.floor(r() * 6);
      let now = Date.parse('2025-01-01T00:00:00Z');
      const worlds: World[] = Array.from({ length: N }, () => ({ ...healthyNode(now), fenceIds: [], acked: new Set<string>(), seenHealthy: false, reported: new Set<string>() }));
      let evacuations = 0;
      let fences = 0;
      const STEPS = 400;
      const SETTLE = 150;
      for (let step = 0; step < STEPS + SETTLE; step++) {
        now += 1000;
        const settling = step >= STEPS;
        // The policy is paused or in dry run now and then (a fence may be in progress), then lifted.
        if (settling) mode = 'normal';
        else if (r() < 0.03) mode = mode !== 'normal' ? 'normal' : r() < 0.5 ? 'paused' : 'dryRun';
        policy = policies[mode];
        // Evolve the world randomly (frozen while settling, so that held fences can finish).
        for (const w of settling ? [] : worlds) {
          for (const n of NETWORKS) {
            const o = w.nets[n];
            const x = r();
            // Seeds 1-8: noisy networks (storms, blips); seeds 9-16: rare, lasting failures (fences).
            const next: NetworkObservation['state'] = !sticky
              ? x < 0.06 ? 'down' : x < 0.09 ? 'unknown' : x < 0.2 ? 'up' : o.state
              : o.state === 'up' ? (x < 0.006 ? 'down' : x < 0.009 ? 'unknown' : 'up') : o.state === 'down' ? (x < 0.03 ? 'up' : 'down') : x < 0.2 ? 'up' : 'unknown';
            if (next !== o.state) w.nets[n] = networkObservation(next, now);
            else if (next === 'down') w.nets[n] = { ...o, consecutiveDown: o.consecutiveDown + 1, observersUp: r() < (sticky ? 0.02 : 0.1) ? 1 : 0 };
          }
          if (r() < (sticky ? 0.002 : 0.01)) w.power = w.power === 'on' ? 'off' : r() < 0.5 ? 'on' : 'unknown';
          if (w.status.fence && r() < 0.05) { w.ann[ACK_FENCE_ANNOTATION] = w.status.fence.id; }
          // An operator repairs a host now and then (powers it on by hand), never one fenced and not acknowledged.
          if (w.power !== 'on' && (!w.status.fence || w.status.fence.acknowledged) && r() < (sticky ? 0.03 : 0.005)) w.power = 'on';
          if (r() < 0.05) w.nova = w.nova === 'up' ? 'unknown' : 'up';
          // The ComputeNode is deleted and re-created (empty status) now and then, outside a fence.
          if (!w.status.fence && r() < 0.01) { w.status = {}; w.ann = {}; w.seenHealthy = false; }
        }
        // The shell: nodes decided one at a time (as under the shell's lock), fleet from current status.
        for (let i = 0; i < N; i++) {
          const w = worlds[i]!;
          const all = worlds.map((x, j) => snapshot(x, j, now));
          const fleet = fleetSummary(all, i, policy);
          const unhealthy = fleet.policy.unhealthy;
          const hadFence = w.status.fence?.id;
          const d = decide(all[i]!, policy, fleet, decideContext(now));
          let st = d.status;
          const newFence = st.fence && st.fence.id !== hadFence ? st.fence.id : undefined;
          if (newFence) {
            fences++;
            // Invariant: never fence in a storm.
            expect(isStorm(policy.safety.maxUnhealthy, N, unhealthy)).toBe(false);
            // Invariant: never two fences for one node without an acknowledgement of the previous one.
            const prevId = w.fenceIds.at(-1);
            if (prevId) expect(w.acked.has(prevId)).toBe(true);
            w.fenceIds.push(newFence);
          }
          // Item 5: paused or dry run = no external action, whatever the phase.
          if (mode !== 'normal') expect(d.actions.filter((a) => EXTERNAL.has(a.type)).map((a) => a.type)).toEqual([]);
          // Item 4: a power-on only with positive evidence and Nova readable.
          if (d.actions.some((a) => a.type === 'powerOn')) {
            expect(w.seenHealthy).toBe(true);
            expect(w.nova).toBe('up');
          }
          // Item 12: an acknowledgement counts only once the fence's summary went out.
          if (st.fence?.acknowledged && !w.acked.has(st.fence.id)) expect(w.reported.has(st.fence.id)).toBe(true);
          for (const a of d.actions) if (a.type === 'notify' && st.fence && (a.key === `fenced-${st.fence.id}` || a.key === `fence-failed-${st.fence.id}`)) w.reported.add(st.fence.id);
          if (hadFence && d.actions.some((a) => a.type === 'notify' && (a.key === `fenced-${hadFence}` || a.key === `fence-failed-${hadFence}`))) w.reported.add(hadFence);
          if (st.fence?.acknowledged) w.acked.add(st.fence.id);
          // A failed fence acknowledged is forgotten in the same decision.
          if (hadFence && !st.fence && w.ann[ACK_FENCE_ANNOTATION] === hadFence) w.acked.add(hadFence);
          if (d.status.phase === 'Healthy' && !d.status.fence) w.seenHealthy = true;
          if (d.status.phase === 'Unknown' || d.status.fence) w.seenHealthy = false;
          for (const a of d.actions) {
            if (a.type === 'evacuate') {
              // Invariant: never evacuate without confirmed power-off.
              expect(stepState(st.fence, 'confirmOff')).toBe('succeeded');
              expect(st.fence?.powerOffConfirmedAt).toBeTruthy();
              expect(w.power).not.toBe('on');
              evacuations++;
            }
            st = carryOut(a, st, w, r, now);
          }
          w.status = st;
        }
      }
      // Item 5: once unpaused (and the world holds still), no fence stays held mid-way.
      for (const w of worlds) if (w.status.fence) expect(['Fenced', 'FenceFailed']).toContain(w.status.phase);
      totals.fences += fences;
      totals.evacuations += evacuations;
    });
  }
  it('exercises fences and evacuations across seeds', () => {
    // Guards against a generator that never reaches a fence or an evacuation.
    expect(totals.fences).toBeGreaterThan(0);
    expect(totals.evacuations).toBeGreaterThan(0);
  });
});
