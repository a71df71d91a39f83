// Table tests for hm9000.md section 6 (every rule, every row of the table, the backoff schedule) and
// a property test over random fleets.
import { describe, expect, it } from 'vitest';
import { analyze, crashDelayMs, noisyDelayMs, type AnalyzerSnapshot } from '../../src/apps/analyzer/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { crashKey, emptyPending, isStartingOrRunning, startKey, type CrashCount, type DesiredAppState, type InstanceHeartbeat, type InstanceState, type PendingActions } from '../../src/apps/types.js';

const config = resolveAppsConfig();
const NOW = 1_700_000_000_000;
const S = 1000;

function app(instances: number, extra: Partial<DesiredAppState> = {}): DesiredAppState {
  return { appGuid: 'app', version: 'v1', instances, state: 'STARTED', packageState: 'STAGED', ...extra };
}
let seq = 0;
function hb(index: number, state: InstanceState, extra: Partial<InstanceHeartbeat> = {}): InstanceHeartbeat {
  seq++;
  return { droplet: 'app', version: 'v1', instance: `i-${index}-${state}-${seq}`, index, state, state_timestamp: seq, dea_guid: 'dea-1', ...extra };
}
function snap(desired: DesiredAppState | undefined, instances: InstanceHeartbeat[], more: Partial<AnalyzerSnapshot> = {}): AnalyzerSnapshot {
  return {
    actualFresh: true,
    desiredFresh: true,
    desired: new Map(desired ? [[desired.appGuid, desired]] : []),
    instances: new Map(instances.length ? [['app', instances]] : []),
    crashCounts: new Map(),
    ...more,
  };
}
const counts = (entries: [number, number][], version = 'v1', at = NOW - 10 * S): Map<string, CrashCount> =>
  new Map(entries.map(([index, count]) => [crashKey('app', version, index), { appGuid: 'app', version, index, count, createdAt: at, updatedAt: at }]));
const starts = (d: ReturnType<typeof analyze>) => d.starts.map((s) => `${s.reason}:${s.index}+${(s.sendOn - NOW) / S}s`).sort();
const stops = (d: ReturnType<typeof analyze>) => d.stops.map((s) => `${s.reason}:${s.instanceGuid}+${(s.sendOn - NOW) / S}s`).sort();

describe('freshness gate (section 5)', () => {
  const world = snap(app(2), [hb(0, 'CRASHED')], { crashCounts: counts([[0, 1]]) });
  it.each([
    ['actual stale', { actualFresh: false }, 'ActualStateNotFresh'],
    ['desired stale', { desiredFresh: false }, 'DesiredStateNotFresh'],
  ] as const)('%s: nothing decided, crash counts unchanged, gauges -1', (_n, patch, reason) => {
    const d = analyze({ ...world, ...patch }, NOW, config, emptyPending());
    expect(d.acted).toBe(false);
    expect(d.notActingReason).toBe(reason);
    expect(d.starts).toEqual([]);
    expect(d.stops).toEqual([]);
    expect(d.crashCounts).toEqual([]);
    expect(d.counts.runningInstances).toBe(-1);
  });
  it('actual stale: unsent MISSING starts are dropped (their grace must pass under fresh observation); others are kept', () => {
    const pending = emptyPending();
    const missing = { kind: 'start' as const, messageId: 'm', appGuid: 'app', version: 'v1', index: 1, queuedAt: NOW - 5 * S, sendOn: NOW + 25 * S, sentOn: 0, keepAliveMs: 0, skipVerification: false, reason: 'MISSING' as const, priority: 0.5 };
    const crashed = { ...missing, messageId: 'c', index: 0, reason: 'CRASHED' as const, keepAliveMs: 30 * S };
    pending.starts.set(startKey('app', 'v1', 1), missing);
    pending.starts.set(startKey('app', 'v1', 0), crashed);
    const blind = analyze({ ...world, actualFresh: false }, NOW, config, pending);
    expect(blind.expired.starts).toEqual([startKey('app', 'v1', 1)]);
    // Desired state stale but actual fresh: the observation goes on, nothing is dropped.
    expect(analyze({ ...world, desiredFresh: false }, NOW, config, pending).expired.starts).toEqual([]);
  });
  it('a new start records when it was queued', () => {
    const d = analyze(snap(app(2), [hb(0, 'RUNNING')]), NOW, config, emptyPending());
    expect(d.starts.map((m) => [m.reason, m.queuedAt, m.sendOn - NOW])).toEqual([['MISSING', NOW, config.gracePeriodMs]]);
  });
  it('fresh: acts', () => {
    expect(analyze(world, NOW, config, emptyPending()).acted).toBe(true);
  });
  it('policy paused: counts reported, nothing decided', () => {
    const d = analyze(world, NOW, { ...config, paused: true }, emptyPending());
    expect(d.notActingReason).toBe('Paused');
    expect(d.starts).toEqual([]);
    expect(d.counts.desiredApps).toBe(1);
  });
});

describe('rule 1: missing -> START (MISSING) after the grace period', () => {
  it('starts every missing index at now + grace, keep-alive 0, priority = share not running', () => {
    const d = analyze(snap(app(3), [hb(0, 'RUNNING')]), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['MISSING:1+30s', 'MISSING:2+30s']);
    expect(d.starts[0]!.keepAliveMs).toBe(0);
    expect(d.starts[0]!.priority).toBeCloseTo(2 / 3);
    expect(d.starts[0]!.skipVerification).toBe(false);
  });
  it('an index with a CRASHED or EVACUATING instance is not missing', () => {
    const d = analyze(snap(app(3), [hb(0, 'RUNNING'), hb(1, 'CRASHED'), hb(2, 'EVACUATING')]), NOW, config, emptyPending());
    expect(d.starts.filter((s) => s.reason === 'MISSING')).toEqual([]);
  });
  it('an existing pending key is not overwritten', () => {
    const pending = emptyPending();
    const first = analyze(snap(app(1), []), NOW, config, pending);
    for (const s of first.starts) pending.starts.set(startKey(s.appGuid, s.version, s.index), s);
    const again = analyze(snap(app(1), []), NOW + 5 * S, config, pending);
    expect(again.starts).toEqual([]);
  });
});

describe('rule 2: crashed -> START (CRASHED) with backoff', () => {
  it.each([
    [0, 0], [1, 0], [2, 0], [3, 30], [4, 60], [5, 120], [6, 240], [7, 480], [8, 960], [9, 960], [50, 960],
  ])('stored count %i -> delay %is', (c, delay) => {
    expect(crashDelayMs(c, config.crashBackoff)).toBe(delay * S);
    const d = analyze(snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')], { crashCounts: counts([[0, c]]) }), NOW, config, emptyPending());
    expect(starts(d)).toEqual([`CRASHED:0+${delay}s`]);
    expect(d.starts[0]!.keepAliveMs).toBe(30 * S);
    expect(d.crashCounts).toEqual([expect.objectContaining({ index: 0, count: c + 1, updatedAt: NOW })]);
  });
  it('the crash count increments only when a new start is enqueued', () => {
    const pending = emptyPending();
    const s = snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')], { crashCounts: counts([[0, 4]]) });
    const first = analyze(s, NOW, config, pending);
    pending.starts.set(startKey('app', 'v1', 0), first.starts[0]!);
    const second = analyze(s, NOW + 10 * S, config, pending);
    expect(second.starts).toEqual([]);
    expect(second.crashCounts).toEqual([]);
  });
  it('a CRASHED start carries the count it raised and the record before (given back if it is dropped unsent)', () => {
    const before = counts([[0, 2]]);
    const d = analyze(snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')], { crashCounts: before }), NOW, config, emptyPending());
    expect(d.starts[0]!.crashCount).toEqual({ raised: d.crashCounts[0], previous: before.get(crashKey('app', 'v1', 0)) });
    const first = analyze(snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')]), NOW, config, emptyPending());
    expect(first.starts[0]!.crashCount).toEqual({ raised: expect.objectContaining({ count: 1 }) });
    const missing = analyze(snap(app(2), [hb(0, 'RUNNING')]), NOW, config, emptyPending());
    expect(missing.starts[0]!.crashCount).toBeUndefined();
  });
  it('a crash count expires 2 x max backoff after its last increment', () => {
    const old = counts([[0, 7]], 'v1', NOW - 2 * 960 * S);
    const d = analyze(snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')], { crashCounts: old }), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['CRASHED:0+0s']);
    expect(d.crashCounts[0]).toMatchObject({ count: 1, createdAt: NOW });
  });
  it('no index running: only index 0 is restarted', () => {
    const d = analyze(snap(app(3), [hb(0, 'CRASHED'), hb(1, 'CRASHED'), hb(2, 'CRASHED')]), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['CRASHED:0+0s']);
  });
  it('some index running: every crashed index is restarted', () => {
    const d = analyze(snap(app(3), [hb(0, 'RUNNING'), hb(1, 'CRASHED'), hb(2, 'CRASHED')]), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['CRASHED:1+0s', 'CRASHED:2+0s']);
  });
  it('a crashed index that also has a running instance is not restarted', () => {
    const d = analyze(snap(app(1), [hb(0, 'CRASHED'), hb(0, 'RUNNING')]), NOW, config, emptyPending());
    expect(d.starts).toEqual([]);
  });
  it('HM9000 never gives up by default; giveUpAfter stops restarting and reports', () => {
    const s = snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')], { crashCounts: counts([[0, 200]]) });
    expect(starts(analyze(s, NOW, config, emptyPending()))).toEqual(['CRASHED:0+960s']);
    const d = analyze(s, NOW, { ...config, crashBackoff: { ...config.crashBackoff, giveUpAfter: 200 } }, emptyPending());
    expect(d.starts).toEqual([]);
    expect(d.apps.get('app')!.gaveUp).toEqual([0]);
    expect(d.apps.get('app')!.flapping).toEqual([{ index: 0, crashCount: 200 }]);
  });
  it('the DesiredApp crash-backoff override wins over the policy', () => {
    const s = snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')], {
      crashCounts: counts([[0, 1]]),
      overrides: new Map([['app', { crashBackoff: { crashesBeforeBackoff: 1, startingBackoff: '10s' } }]]),
    });
    expect(starts(analyze(s, NOW, config, emptyPending()))).toEqual(['CRASHED:0+10s']);
  });
});

describe('rule 3: evacuation', () => {
  it('EVACUATING with no replacement: START at priority 2.0, no delay, skip verification', () => {
    const d = analyze(snap(app(2), [hb(0, 'EVACUATING'), hb(1, 'RUNNING')]), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['EVACUATION:0+0s']);
    expect(d.starts[0]).toMatchObject({ priority: 2, skipVerification: true, keepAliveMs: 30 * S });
    expect(d.stops).toEqual([]);
  });
  it('a RUNNING replacement at the index: STOP the evacuating one (EVACUATION_COMPLETE)', () => {
    const evac = hb(0, 'EVACUATING');
    const d = analyze(snap(app(1), [evac, hb(0, 'RUNNING')]), NOW, config, emptyPending());
    expect(d.starts).toEqual([]);
    expect(stops(d)).toEqual([`EVACUATION_COMPLETE:${evac.instance}+0s`]);
  });
  it('a STARTING replacement: neither a second start nor a stop yet', () => {
    const d = analyze(snap(app(1), [hb(0, 'EVACUATING'), hb(0, 'STARTING')]), NOW, config, emptyPending());
    expect(d.starts).toEqual([]);
    expect(d.stops).toEqual([]);
  });
  it('index not desired: just stopped', () => {
    const evac = hb(3, 'EVACUATING');
    const d = analyze(snap(app(1), [hb(0, 'RUNNING'), evac]), NOW, config, emptyPending());
    expect(stops(d)).toEqual([`EVACUATION_COMPLETE:${evac.instance}+0s`]);
  });
  it('PENDING package: evacuations still start', () => {
    const d = analyze(snap(app(1, { packageState: 'PENDING' }), [hb(0, 'EVACUATING')]), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['EVACUATION:0+0s']);
  });
});

describe('rule 4: extra -> STOP (EXTRA)', () => {
  it('STARTING/RUNNING at index >= instances, no delay', () => {
    const x = hb(2, 'RUNNING');
    const y = hb(3, 'STARTING');
    const d = analyze(snap(app(2), [hb(0, 'RUNNING'), hb(1, 'RUNNING'), x, y, hb(4, 'CRASHED')]), NOW, config, emptyPending());
    expect(stops(d)).toEqual([`EXTRA:${x.instance}+0s`, `EXTRA:${y.instance}+0s`].sort());
  });
  it('not while a start was generated for the app in this pass', () => {
    const d = analyze(snap(app(2), [hb(0, 'RUNNING'), hb(2, 'RUNNING')]), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['MISSING:1+30s']);
    expect(d.stops).toEqual([]);
  });
});

describe('rule 5: duplicates -> STOP (DUPLICATE), staggered', () => {
  it('every instance of a duplicated index gets a stop at 120 s, 150 s, 180 s (newest first)', () => {
    const a = hb(0, 'RUNNING');
    const b = hb(0, 'RUNNING');
    const c = hb(0, 'STARTING');
    const d = analyze(snap(app(1), [a, b, c]), NOW, config, emptyPending());
    expect(stops(d)).toEqual([`DUPLICATE:${c.instance}+120s`, `DUPLICATE:${b.instance}+150s`, `DUPLICATE:${a.instance}+180s`].sort());
  });
});

describe('rule 6: crashed instances are never stopped', () => {
  it('not even for an undesired app', () => {
    const d = analyze(snap(undefined, [hb(0, 'CRASHED'), hb(1, 'CRASHED')]), NOW, config, emptyPending());
    expect(d.stops).toEqual([]);
  });
});

describe('the desired-state table', () => {
  const world = () => {
    const r0 = hb(0, 'RUNNING');
    const dup = hb(0, 'RUNNING');
    const extra = hb(3, 'RUNNING');
    const crashed = hb(1, 'CRASHED');
    return { r0, dup, extra, crashed, instances: [r0, dup, extra, crashed] }; // index 2 missing
  };
  it('STARTED + STAGED: restarts missing and crashed; stops duplicates (extras wait for the starts)', () => {
    const w = world();
    const d = analyze(snap(app(3), w.instances), NOW, config, emptyPending());
    expect(starts(d)).toEqual(['CRASHED:1+0s', 'MISSING:2+30s']);
    expect(d.stops.map((s) => s.reason).sort()).toEqual(['DUPLICATE', 'DUPLICATE']);
  });
  it('STARTED + STAGED, nothing to start: stops extras and duplicates', () => {
    const w = world();
    const d = analyze(snap(app(1), [w.r0, w.dup, w.extra]), NOW, config, emptyPending());
    expect(d.stops.map((s) => s.reason).sort()).toEqual(['DUPLICATE', 'DUPLICATE', 'EXTRA']);
  });
  it('STARTED + PENDING: no restarts; stops only index >= desired', () => {
    const w = world();
    const d = analyze(snap(app(3, { packageState: 'PENDING' }), w.instances), NOW, config, emptyPending());
    expect(d.starts).toEqual([]);
    expect(stops(d)).toEqual([`EXTRA:${w.extra.instance}+0s`]);
  });
  it.each([
    ['STARTED + FAILED', app(3, { packageState: 'FAILED' })],
    ['STOPPED', app(3, { state: 'STOPPED' })],
    ['deleted', undefined],
    ['old version', app(3, { version: 'v2' })],
  ])('%s: every STARTING/RUNNING instance stopped, crashed left alone', (_n, desired) => {
    const w = world();
    const starting = hb(2, 'STARTING');
    const d = analyze(snap(desired, [...w.instances, starting]), NOW, config, emptyPending());
    const expected = [w.r0, w.dup, w.extra, starting].map((i) => `EXTRA:${i.instance}+0s`).sort();
    if (desired?.version === 'v2') {
      // The new version's missing instances are started first; the old ones are stopped once nothing is to start.
      expect(d.stops).toEqual([]);
      const later = analyze(snap(desired, [...w.instances, starting, ...[0, 1, 2].map((i) => hb(i, 'RUNNING', { version: 'v2' }))]), NOW, config, emptyPending());
      expect(stops(later)).toEqual(expected);
    } else {
      expect(d.starts).toEqual([]);
      expect(stops(d)).toEqual(expected);
    }
  });
  it('paused app: nothing decided for it, other apps unaffected', () => {
    const s = snap(app(2), [hb(0, 'CRASHED')], { overrides: new Map([['app', { paused: true }]]) });
    const other: DesiredAppState = { appGuid: 'other', version: 'o1', instances: 1, state: 'STARTED', packageState: 'STAGED' };
    const d = analyze({ ...s, desired: new Map([...s.desired, ['other', other]]) }, NOW, config, emptyPending());
    expect(d.starts.map((x) => x.appGuid)).toEqual(['other']);
    expect(d.crashCounts).toEqual([]);
    expect(d.apps.get('app')!.paused).toBe(true);
  });
});

describe('unconfirmed removals (hm9k, stricter than HM9000: one fetch lacking an app is not enough to stop it)', () => {
  // CC ends paging with an empty page, so a fetch may lack apps CC still wants: an app absent from
  // the latest fetch only (the fetcher's unconfirmedRemovals) keeps its instances until a second
  // fetch also lacks it; a positive statement (STOPPED, fewer instances) is acted on at once.
  const unconfirmed = new Set(['app']);
  const running = [hb(0, 'RUNNING'), hb(1, 'RUNNING')];
  it.each([
    ['absent, unconfirmed: nothing stopped', undefined, running, unconfirmed, []],
    ['absent, unconfirmed, evacuating: nothing stopped', undefined, [hb(0, 'EVACUATING')], unconfirmed, []],
    ['absent, confirmed (a second fetch lacks it too): stopped', undefined, running, new Set<string>(), ['EXTRA', 'EXTRA']],
    ['listed STOPPED (even if in the set): stopped', app(2, { state: 'STOPPED' }), running, unconfirmed, ['EXTRA', 'EXTRA']],
    ['fewer instances: the extra one stopped', app(1), running, unconfirmed, ['EXTRA']],
    ['another app unconfirmed: this one stopped', undefined, running, new Set(['other']), ['EXTRA', 'EXTRA']],
  ] as const)('%s', (_n, desired, instances, removals, want) => {
    const d = analyze(snap(desired, [...instances], { unconfirmedRemovals: removals }), NOW, config, emptyPending());
    expect(d.acted).toBe(true);
    expect(d.stops.map((s) => s.reason)).toEqual(want);
    expect(d.counts.unconfirmedRemovals).toBe(removals.size);
    expect(!!d.apps.get('app')?.removalUnconfirmed).toBe(desired === undefined && removals.has('app'));
  });
  it('the fast path (one app after a droplet.exited) holds them too', () => {
    const d = analyze(snap(undefined, running, { unconfirmedRemovals: unconfirmed }), NOW, config, emptyPending(), { onlyApps: new Set(['app']) });
    expect(d.stops).toEqual([]);
  });
});

describe('keep-alive', () => {
  it('a sent message blocks re-enqueue until sentOn + keepAlive, then it expires', () => {
    const pending: PendingActions = emptyPending();
    const s = snap(app(2), [hb(0, 'CRASHED'), hb(1, 'RUNNING')]);
    const first = analyze(s, NOW, config, pending);
    const msg = { ...first.starts[0]!, sentOn: NOW };
    pending.starts.set(startKey('app', 'v1', 0), msg);
    expect(analyze(s, NOW + 29 * S, config, pending).starts).toEqual([]);
    const later = analyze(s, NOW + 30 * S, config, pending);
    expect(later.expired.starts).toEqual([startKey('app', 'v1', 0)]);
    expect(later.starts.map((x) => [x.reason, x.index, x.sendOn])).toEqual([['CRASHED', 0, NOW + 30 * S]]);
  });
});

describe('counts', () => {
  it('HM9000 gauges', () => {
    const desired = new Map<string, DesiredAppState>([
      ['a', { appGuid: 'a', version: 'v', instances: 2, state: 'STARTED', packageState: 'STAGED' }],
      ['b', { appGuid: 'b', version: 'v', instances: 3, state: 'STARTED', packageState: 'PENDING' }],
    ]);
    const inst = new Map<string, InstanceHeartbeat[]>([
      ['a', [hb(0, 'RUNNING', { droplet: 'a', version: 'v' }), hb(1, 'RUNNING', { droplet: 'a', version: 'v' })]],
      ['b', [hb(0, 'RUNNING', { droplet: 'b', version: 'v' }), hb(1, 'CRASHED', { droplet: 'b', version: 'v' })]],
      ['c', [hb(0, 'RUNNING', { droplet: 'c', version: 'v' })]],
    ]);
    const d = analyze({ actualFresh: true, desiredFresh: true, desired, instances: inst, crashCounts: new Map() }, NOW, config, emptyPending());
    expect(d.counts).toEqual({
      desiredApps: 2, desiredInstances: 5, desiredAppsPendingStaging: 1, appsWithAllInstancesReporting: 1, appsWithMissingInstances: 1,
      undesiredRunningApps: 1, runningInstances: 4, missingIndices: 1, crashedInstances: 1, crashedIndices: 1, skippedApps: 0, unconfirmedRemovals: 0,
    });
  });
});

describe('property: random fleets', () => {
  function rng(seed: number) {
    let s = seed >>> 0;
    return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  }
  const states: InstanceState[] = ['STARTING', 'RUNNING', 'CRASHED', 'EVACUATING'];
  it('holds for 500 random fleets', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = rng(seed);
      const pick = <T,>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
      const desired = new Map<string, DesiredAppState>();
      const instances = new Map<string, InstanceHeartbeat[]>();
      const crashCounts = new Map<string, CrashCount>();
      for (let a = 0; a < 6; a++) {
        const guid = `app-${a}`;
        if (r() < 0.8) desired.set(guid, { appGuid: guid, version: pick(['v1', 'v2']), instances: Math.floor(r() * 4), state: pick(['STARTED', 'STARTED', 'STOPPED']), packageState: pick(['STAGED', 'STAGED', 'PENDING', 'FAILED']) });
        const list: InstanceHeartbeat[] = [];
        for (let n = Math.floor(r() * 6); n > 0; n--) list.push({ droplet: guid, version: pick(['v1', 'v1', 'v2']), instance: `${guid}-${seed}-${n}`, index: Math.floor(r() * 5), state: pick(states), state_timestamp: n, dea_guid: 'd' });
        if (list.length) instances.set(guid, list);
        for (let i = 0; i < 4; i++) if (r() < 0.3) crashCounts.set(crashKey(guid, 'v1', i), { appGuid: guid, version: 'v1', index: i, count: Math.floor(r() * 10), createdAt: NOW - 1000, updatedAt: NOW - 1000 });
      }
      const actualFresh = r() < 0.9;
      const desiredFresh = r() < 0.9;
      const d = analyze({ actualFresh, desiredFresh, desired, instances, crashCounts }, NOW, config, emptyPending());
      const all = [...instances.values()].flat();
      const byGuid = new Map(all.map((i) => [i.instance, i]));
      // never act when not fresh
      if (!actualFresh || !desiredFresh) {
        expect(d.starts.length + d.stops.length + d.crashCounts.length).toBe(0);
        continue;
      }
      for (const stop of d.stops) {
        const target = byGuid.get(stop.instanceGuid)!;
        // never stop a crashed instance
        expect(target.state).not.toBe('CRASHED');
        // never stop a desired RUNNING instance at a desired index with no duplicate
        const want = desired.get(target.droplet);
        const desiredRunning = want && want.state === 'STARTED' && want.packageState !== 'FAILED' && want.version === target.version && target.index < want.instances;
        if (desiredRunning && isStartingOrRunning(target.state)) {
          const peers = all.filter((i) => i.droplet === target.droplet && i.version === target.version && i.index === target.index && isStartingOrRunning(i.state));
          expect(peers.length).toBeGreaterThan(1);
        }
      }
      for (const start of d.starts) {
        const want = desired.get(start.appGuid)!;
        // starts only for desired apps, desired version and desired indices
        expect(want.state).toBe('STARTED');
        expect(start.version).toBe(want.version);
        expect(start.index).toBeLessThan(want.instances);
        if (start.reason !== 'EVACUATION') expect(want.packageState).toBe('STAGED');
      }
      // at most one start per key
      const keys = d.starts.map((s) => startKey(s.appGuid, s.version, s.index));
      expect(new Set(keys).size).toBe(keys.length);
    }
  });
});

// Issue 14 item 7: the Ruby health manager's delay_time_noise, with an injected (seeded) source.
describe('crash restart delay noise (crashBackoff.delayNoise)', () => {
  /** mulberry32: a small seeded PRNG, uniform in [0, 1). */
  const seeded = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  // 50 apps, each with index 0 crashed 4 times (a 60 s backoff) and index 1 running.
  const fleet = (): AnalyzerSnapshot => {
    const desired = new Map<string, DesiredAppState>();
    const instances = new Map<string, InstanceHeartbeat[]>();
    const crashCounts = new Map<string, CrashCount>();
    for (let a = 0; a < 50; a++) {
      const guid = `app${a}`;
      desired.set(guid, { ...app(2), appGuid: guid });
      instances.set(guid, [hb(0, 'CRASHED', { droplet: guid }), hb(1, 'RUNNING', { droplet: guid })]);
      crashCounts.set(crashKey(guid, 'v1', 0), { appGuid: guid, version: 'v1', index: 0, count: 4, createdAt: NOW - 10 * S, updatedAt: NOW - 10 * S });
    }
    return { actualFresh: true, desiredFresh: true, desired, instances, crashCounts };
  };
  const delays = (d: ReturnType<typeof analyze>) => d.starts.filter((m) => m.reason === 'CRASHED').map((m) => m.sendOn - NOW);
  const noisy = { ...config, crashBackoff: { ...config.crashBackoff, delayNoiseMs: 5 * S } };

  it('0 (the default) keeps the deterministic delay, even with a random source', () => {
    expect(config.crashBackoff.delayNoiseMs).toBe(0);
    expect(new Set(delays(analyze(fleet(), NOW, config, emptyPending(), { random: seeded(1) })))).toEqual(new Set([60 * S]));
  });
  it('within +-delayNoise of the backoff, spread (not in lockstep), and reproducible for a seed', () => {
    const a = delays(analyze(fleet(), NOW, noisy, emptyPending(), { random: seeded(7) }));
    expect(a).toHaveLength(50);
    for (const x of a) expect(Math.abs(x - 60 * S)).toBeLessThanOrEqual(5 * S);
    expect(new Set(a).size).toBeGreaterThan(40);
    expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(5 * S);
    expect(delays(analyze(fleet(), NOW, noisy, emptyPending(), { random: seeded(7) }))).toEqual(a);
  });
  it('immediate restarts stay immediate; never below 0; MISSING starts keep their grace', () => {
    expect(noisyDelayMs(0, 5 * S, () => 0)).toBe(0);
    expect(noisyDelayMs(2 * S, 5 * S, () => 0)).toBe(0);
    expect(noisyDelayMs(60 * S, 5 * S, () => 0.5)).toBe(60 * S);
    expect(noisyDelayMs(60 * S, 5 * S, undefined)).toBe(60 * S);
    const d = analyze(snap(app(2), [hb(0, 'RUNNING')]), NOW, noisy, emptyPending(), { random: () => 0 });
    expect(starts(d)).toEqual(['MISSING:1+30s']);
  });
  it('a DesiredApp crashBackoff override may set its own noise', () => {
    const s = fleet();
    s.overrides = new Map([['app0', { crashBackoff: { delayNoise: '10s' } }]]);
    const d = analyze(s, NOW, config, emptyPending(), { random: () => 0.99 });
    const byApp = new Map(d.starts.map((m) => [m.appGuid, m.sendOn - NOW]));
    expect(byApp.get('app0')).toBeGreaterThan(69 * S);
    expect(byApp.get('app1')).toBe(60 * S);
  });
});

describe('settled apps between passes (issue 14 item 8)', () => {
  it('a settled app gets the same summary object every pass while its desired state is the same; a new desired state or pause gives a new one', () => {
    const desired = app(2);
    const world = snap(desired, [hb(0, 'RUNNING'), hb(1, 'RUNNING')]);
    const first = analyze(world, NOW, config, emptyPending()).apps.get('app');
    const second = analyze(world, NOW + 10 * S, config, emptyPending()).apps.get('app');
    expect(first).toMatchObject({ converged: true, running: 2, missing: 0, paused: false });
    expect(second).toBe(first);
    // CC's record changed (a new object): a new summary, with the new figures.
    const scaled = app(2, { memory: 512 });
    const third = analyze(snap(scaled, [hb(0, 'RUNNING'), hb(1, 'RUNNING')]), NOW, config, emptyPending()).apps.get('app');
    expect(third).not.toBe(first);
    expect(third?.desired).toBe(scaled);
    const paused = analyze(world, NOW, { ...config, paused: true }, emptyPending());
    expect(paused.apps.get('app')).toMatchObject({ paused: true, converged: true });
    expect(analyze(world, NOW, config, emptyPending()).apps.get('app')).toBe(first);
  });
});
