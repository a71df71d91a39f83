// Property test: random fleets and observations through the pure state machine with a simulated
// shell. Invariants: never evacuate without confirmed power-off; never start a fence in a storm;
// never two fences for one node without an acknowledgement.
import { describe, expect, it } from 'vitest';
import { ACK_FENCE_ANNOTATION, NETWORKS, type ComputeNodeStatus, type NetworkName } from '../../src/api/index.js';
import { resolvePolicy } from '../../src/nodes/config.js';
import { applyOutcome, decide, isStorm, isUnhealthy, stepState } from '../../src/nodes/fence/machine.js';
import type { FleetSummary, NetworkObservation, NodeObservations, NodeSnapshot } from '../../src/nodes/fence/types.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface World {
  nets: Record<NetworkName, NetworkObservation>;
  power: 'on' | 'off' | 'unknown';
  ann: Record<string, string>;
  status: ComputeNodeStatus;
  corroboration?: NodeObservations['corroboration'];
  fenceIds: string[];
  acked: Set<string>;
}

const totals = { fences: 0, evacuations: 0, storms: 0 };
describe('fence state machine properties', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`random fleet, seed ${seed}`, () => {
      const r = rng(seed);
      const policy = resolvePolicy({
        networks: { management: { consul: [{ address: 'http://a:1' }] }, storage: { consul: [{ address: 'http://a:2' }] }, tenant: { consul: [{ address: 'http://a:3' }] } },
        detection: { interval: '1s', failureThreshold: 2, recoveryGracePeriod: '2s', healthyDelay: '1s' },
        recovery: { attempts: 1, settleTime: '1s' },
        safety: { maxUnhealthy: r() < 0.5 ? '40%' : 2, maxConcurrentRemediations: 1 + Math.floor(r() * 2) },
      });
      const N = 3 + Math.floor(r() * 6);
      let now = Date.parse('2025-01-01T00:00:00Z');
      const worlds: World[] = Array.from({ length: N }, () => ({
        nets: Object.fromEntries(NETWORKS.map((n) => [n, { state: 'up', since: now - 100_000, consecutiveDown: 0, observersUp: 1, observersDown: 0, observersUnknown: 0 }])) as World['nets'],
        power: 'on', ann: {}, status: {}, fenceIds: [], acked: new Set(),
      }));
      let evacuations = 0;
      let fences = 0;
      for (let step = 0; step < 400; step++) {
        now += 1000;
        // Evolve the world randomly.
        for (const w of worlds) {
          for (const n of NETWORKS) {
            const o = w.nets[n];
            const x = r();
            const next: NetworkObservation['state'] = x < 0.06 ? 'down' : x < 0.09 ? 'unknown' : x < 0.2 ? 'up' : o.state;
            if (next !== o.state) w.nets[n] = { ...o, state: next, since: now, consecutiveDown: next === 'down' ? 1 : 0, observersUp: next === 'up' ? 1 : 0, observersDown: next === 'down' ? 1 : 0, observersUnknown: next === 'unknown' ? 1 : 0 };
            else if (next === 'down') w.nets[n] = { ...o, consecutiveDown: o.consecutiveDown + 1, observersUp: r() < 0.1 ? 1 : 0 };
          }
          if (r() < 0.01) w.power = w.power === 'on' ? 'off' : r() < 0.5 ? 'on' : 'unknown';
          if (w.status.fence && r() < 0.05) { w.ann[ACK_FENCE_ANNOTATION] = w.status.fence.id; }
        }
        const snaps = (w: World, i: number): NodeSnapshot => ({
          name: `n${i}`, spec: { host: `n${i}`, bmc: { address: 'b', credentialsSecret: 'c' }, ssh: { address: 's', credentialsSecret: 'c' } },
          annotations: w.ann, status: w.status,
          obs: { networks: w.nets, power: { state: w.power, since: now }, nova: { apiState: 'up', nodeSide: 'up', evacuationMigrations: 0 }, ...(w.corroboration ? { corroboration: w.corroboration } : {}) },
        });
        // The shell: nodes decided one at a time (as under the shell's lock), fleet from current status.
        for (let i = 0; i < N; i++) {
          const w = worlds[i]!;
          const all = worlds.map(snaps);
          const unhealthy = all.filter((s) => isUnhealthy(s, policy)).length;
          const inFlight = worlds.filter((o, j) => j !== i && ['Recovering', 'Fencing', 'Evacuating'].includes(o.status.phase ?? '')).length;
          const fleet: FleetSummary = { policy: { matched: N, unhealthy, inFlight }, global: { total: N, unhealthy, inFlight } };
          const hadFence = w.status.fence?.id;
          const d = decide(all[i]!, policy, fleet, { now, lease: { holder: 'h', transitions: 1 }, globalMaxUnhealthy: '100%', globalMaxConcurrentRemediations: 10 });
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
          if (st.fence?.acknowledged) w.acked.add(st.fence.id);
          for (const a of d.actions) {
            switch (a.type) {
              case 'evacuate':
                // Invariant: never evacuate without confirmed power-off.
                expect(stepState(st.fence, 'confirmOff')).toBe('succeeded');
                expect(st.fence?.powerOffConfirmedAt).toBeTruthy();
                expect(w.power).not.toBe('on');
                evacuations++;
                st = applyOutcome(st, { type: 'evacuationFinished', ok: r() < 0.8, message: 'sim' }, now);
                break;
              case 'powerOff': {
                const x = r();
                const confirmed = w.power === 'off' || (w.power === 'on' && x < 0.7);
                if (confirmed) w.power = 'off';
                st = applyOutcome(st, { type: 'powerOff', ok: confirmed, confirmed, message: 'sim' }, now);
                break;
              }
              case 'powerOn':
                if (r() < 0.5) w.power = 'on';
                st = applyOutcome(st, { type: 'powerOn', ok: true, message: 'sim' }, now);
                break;
              case 'forceDown':
              case 'disable':
                st = applyOutcome(st, { type: a.type, ok: r() < 0.9, message: 'sim' }, now);
                break;
              case 'corroborate':
                w.corroboration = { network: a.network, at: now, result: r() < 0.7 ? 'failing' : r() < 0.5 ? 'works' : 'unreachable' };
                break;
              case 'recover':
                if (r() < 0.3) w.nets[a.kind as NetworkName] = { state: 'up', since: now, consecutiveDown: 0, observersUp: 1, observersDown: 0, observersUnknown: 0 };
                st = applyOutcome(st, { type: 'recover', ok: true, message: 'sim' }, now);
                break;
              case 'returnToService':
                st = applyOutcome(st, { type: 'returnToService', ok: true, waiting: r() < 0.3, message: 'sim' }, now);
                if (!st.fence) delete w.ann[ACK_FENCE_ANNOTATION];
                break;
              default:
                break;
            }
          }
          w.status = st;
        }
      }
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
