// Fuzz: the analyzer (pure) and the sender's verification under random observation sequences.
// A world of a few apps evolves at random (instances appear, crash, vanish, evacuate; CC changes
// versions, instance counts, states); each step the analyzer decides, new messages join the pending
// set, and due ones are verified and "sent" (CC executes: a start adds a STARTING instance, a stop
// removes it). Invariants:
// - never a stop for a desired index that has exactly one STARTING/RUNNING instance of the desired
//   version (analyzer output), and no sent stop ever leaves such an index with none;
// - never a stop of a CRASHED instance; never a start for an undesired app, version or index, or
//   for an index that runs; at most one pending start per key;
// - not fresh or paused: nothing decided.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/apps/analyzer/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { verifyStart, verifyStop } from '../../src/apps/sender/verify.js';
import { crashKey, isDesired, isStartingOrRunning, startKey, type CrashCount, type DesiredAppState, type InstanceHeartbeat, type PendingActions } from '../../src/apps/types.js';
import { budget, check } from './support.js';

const APPS = ['a', 'b', 'c'];
const VERSIONS = ['v1', 'v2'];
const event = fc.oneof(
  fc.record({ t: fc.constant('add' as const), app: fc.constantFrom(...APPS), version: fc.constantFrom(...VERSIONS), index: fc.nat({ max: 4 }), state: fc.constantFrom('STARTING', 'RUNNING', 'RUNNING', 'CRASHED', 'EVACUATING') }),
  fc.record({ t: fc.constant('crash' as const), pick: fc.nat() }),
  fc.record({ t: fc.constant('vanish' as const), pick: fc.nat() }),
  fc.record({ t: fc.constant('run' as const), pick: fc.nat() }),
  fc.record({ t: fc.constant('evacuate' as const), pick: fc.nat() }),
  fc.record({ t: fc.constant('desire' as const), app: fc.constantFrom(...APPS), version: fc.constantFrom(...VERSIONS), instances: fc.nat({ max: 4 }), state: fc.constantFrom('STARTED', 'STARTED', 'STOPPED'), pkg: fc.constantFrom('STAGED', 'STAGED', 'PENDING', 'FAILED') }),
  fc.record({ t: fc.constant('undesire' as const), app: fc.constantFrom(...APPS) }),
  fc.record({ t: fc.constant('stale' as const), actual: fc.constantFrom(true, true, false), desired: fc.constantFrom(true, true, false) }),
  fc.record({ t: fc.constant('pause' as const), app: fc.constantFrom(...APPS), paused: fc.boolean() }),
);
const scenario = fc.record({
  steps: fc.array(fc.tuple(event, fc.integer({ min: 500, max: 40_000 })), { minLength: 5, maxLength: 60 }),
  policyPaused: fc.constantFrom(false, false, false, false, true),
  grace: fc.constantFrom(0, 3000, 30_000),
});

/** Starting/running instances of the desired version at each desired index. */
function runningAt(d: DesiredAppState | undefined, list: readonly InstanceHeartbeat[], index: number): InstanceHeartbeat[] {
  if (!isDesired(d)) return [];
  return list.filter((i) => i.version === d.version && i.index === index && isStartingOrRunning(i.state));
}

const RUNS = 300;
describe('fuzz: analyzer + sender verification', () => {
  it('never stops the only running instance of a desired index; never starts what is not wanted', { timeout: budget(RUNS, 40) }, async () => {
    let stopsSent = 0;
    let startsSent = 0;
    let settled = 0;
    await check('analyzer sequences', fc.property(scenario, ({ steps, policyPaused, grace }) => {
      const config = { ...resolveAppsConfig(), gracePeriodMs: grace, paused: policyPaused };
      let now = 1_700_000_000_000;
      let seq = 0;
      const desired = new Map<string, DesiredAppState>(APPS.map((a) => [a, { appGuid: a, version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED' }]));
      const inst = new Map<string, InstanceHeartbeat>();
      const crashCounts = new Map<string, CrashCount>();
      const overrides = new Map<string, { paused?: boolean }>();
      const pending: PendingActions = { starts: new Map(), stops: new Map() };
      let fresh = { actual: true, desired: true };
      const byApp = () => {
        const m = new Map<string, InstanceHeartbeat[]>();
        for (const i of inst.values()) m.set(i.droplet, [...(m.get(i.droplet) ?? []), i]);
        return m;
      };
      const nth = (n: number) => [...inst.values()][n % Math.max(1, inst.size)];
      const add = (app: string, version: string, index: number, state: InstanceHeartbeat['state']) => {
        const id = `i${++seq}`;
        inst.set(id, { droplet: app, version, instance: id, index, state, state_timestamp: seq, dea_guid: `d${seq % 3}` });
      };
      for (const [e, dt] of steps) {
        now += dt;
        switch (e.t) {
          case 'add': add(e.app, e.version, e.index, e.state); break;
          case 'crash': { const i = nth(e.pick); if (i) inst.set(i.instance, { ...i, state: 'CRASHED' }); break; }
          case 'vanish': { const i = nth(e.pick); if (i) inst.delete(i.instance); break; }
          case 'run': { const i = nth(e.pick); if (i && i.state === 'STARTING') inst.set(i.instance, { ...i, state: 'RUNNING' }); break; }
          case 'evacuate': { const i = nth(e.pick); if (i && i.state === 'RUNNING') inst.set(i.instance, { ...i, state: 'EVACUATING' }); break; }
          case 'desire': desired.set(e.app, { appGuid: e.app, version: e.version, instances: e.instances, state: e.state, packageState: e.pkg }); break;
          case 'undesire': desired.delete(e.app); break;
          case 'stale': fresh = { actual: e.actual, desired: e.desired }; break;
          case 'pause': overrides.set(e.app, { paused: e.paused }); break;
        }
        const instances = byApp();
        const snapshot = { actualFresh: fresh.actual, desiredFresh: fresh.desired, desired, instances, crashCounts, overrides };
        const d = analyze(snapshot, now, config, pending);
        // The settled-app shortcut (issue 14 item 8) decides, summarises and counts exactly as the rules do.
        expect(d).toEqual(analyze(snapshot, now, config, pending, { ruleByRule: true }));
        for (const [app, want] of desired) {
          const list = instances.get(app) ?? [];
          if (d.acted && isDesired(want) && list.length === want.instances && list.every((i) => i.state === 'RUNNING' && i.version === want.version) && d.apps.get(app)?.converged) settled++;
        }
        if (!fresh.actual || !fresh.desired || policyPaused) {
          expect(d.starts.length + d.stops.length + d.crashCounts.length).toBe(0);
          expect(d.acted).toBe(false);
        }
        for (const s of d.stops) {
          const target = inst.get(s.instanceGuid)!;
          expect(target).toBeDefined();
          expect(target.state).not.toBe('CRASHED');
          expect(overrides.get(s.appGuid)?.paused).not.toBe(true);
          const want = desired.get(target.droplet);
          if (isDesired(want) && want.version === target.version && target.index < want.instances && isStartingOrRunning(target.state)) {
            expect(runningAt(want, instances.get(target.droplet) ?? [], target.index).length).toBeGreaterThan(1);
          }
        }
        for (const s of d.starts) {
          const want = desired.get(s.appGuid);
          expect(isDesired(want)).toBe(true);
          expect(s.version).toBe(want!.version);
          expect(s.index).toBeLessThan(want!.instances);
          expect(runningAt(want, instances.get(s.appGuid) ?? [], s.index)).toEqual([]);
          expect(overrides.get(s.appGuid)?.paused).not.toBe(true);
          if (s.reason !== 'EVACUATION') expect(want!.packageState).toBe('STAGED');
          expect(pending.starts.has(startKey(s.appGuid, s.version, s.index)) && !d.expired.starts.includes(startKey(s.appGuid, s.version, s.index))).toBe(false);
        }
        // The shells: expire, enqueue, count crashes.
        for (const k of d.expired.starts) pending.starts.delete(k);
        for (const k of d.expired.stops) pending.stops.delete(k);
        for (const s of d.starts) pending.starts.set(startKey(s.appGuid, s.version, s.index), s);
        for (const s of d.stops) pending.stops.set(s.instanceGuid, s);
        for (const c of d.crashCounts) crashCounts.set(crashKey(c.appGuid, c.version, c.index), c);
        if (!fresh.actual || !fresh.desired) continue; // the sender sends nothing while blind
        // The sender: due messages, verified against the current world, then CC executes them.
        const due = [...pending.starts.values(), ...pending.stops.values()].filter((m) => m.sentOn === 0 && m.sendOn <= now).sort((x, y) => x.sendOn - y.sendOn);
        for (const m of due) {
          const state = { desired, instances: byApp() };
          if (m.kind === 'start') {
            const v = verifyStart(m, state);
            if (!v.send) { pending.starts.delete(startKey(m.appGuid, m.version, m.index)); continue; }
            m.sentOn = now;
            const want = desired.get(m.appGuid);
            if (isDesired(want) && want.packageState === 'STAGED' && want.version === m.version && m.index < want.instances) { add(m.appGuid, m.version, m.index, 'STARTING'); startsSent++; }
          } else {
            const v = verifyStop(m, state);
            if (!v.send) { pending.stops.delete(m.instanceGuid); continue; }
            m.sentOn = now;
            const target = inst.get(m.instanceGuid);
            if (!target) continue;
            const want = desired.get(target.droplet);
            const before = isDesired(want) && target.index < want.instances ? runningAt(want, state.instances.get(target.droplet) ?? [], target.index).length : 0;
            inst.delete(m.instanceGuid);
            stopsSent++;
            if (before > 0) expect(runningAt(want, byApp().get(target.droplet) ?? [], target.index).length).toBeGreaterThan(0);
          }
        }
      }
    }), RUNS);
    console.log(`fuzz analyzer sequences: ${startsSent} starts and ${stopsSent} stops executed`);
    expect(stopsSent).toBeGreaterThan(0);
    expect(startsSent).toBeGreaterThan(0);
    expect(settled).toBeGreaterThan(0);
  });
});
