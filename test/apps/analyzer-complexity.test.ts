// The analyzer's cost is linear in an app's instance count (issue 14 item 2: per-index scans made
// one app with 100,000 instances block the event loop past the Lease deadline). Asserted
// structurally, not by timing: while analyze() runs, every array, Map and Set iteration (and
// array search, filter, sort) is counted by the elements it may visit; the count at 8x the
// instances must grow about 8x (a per-index scan would grow 64x). Speed: bench/analyzer.bench.ts.
import { describe, expect, it } from 'vitest';
import { analyze, type AnalyzerSnapshot } from '../../src/apps/analyzer/index.js';
import { resolveAppsConfig, type AppsConfig } from '../../src/apps/config.js';
import { desiredAppStatus, policyStatus } from '../../src/apps/status/index.js';
import { emptyPending, type DesiredAppState, type InstanceHeartbeat, type InstanceState } from '../../src/apps/types.js';

const NOW = 1_700_000_000_000;
const config = resolveAppsConfig();

/** Elements visited by iterations and array methods while fn runs. */
function visits(fn: () => void): number {
  let n = 0;
  const restore: (() => void)[] = [];
  const patch = (proto: object, name: string | symbol, cost: (self: { length?: number; size?: number }) => number) => {
    const orig = (proto as Record<string | symbol, unknown>)[name] as (...a: unknown[]) => unknown;
    (proto as Record<string | symbol, unknown>)[name] = function (this: { length?: number; size?: number }, ...a: unknown[]) {
      n += cost(this);
      return orig.apply(this, a);
    };
    restore.push(() => ((proto as Record<string | symbol, unknown>)[name] = orig));
  };
  const len = (s: { length?: number; size?: number }) => s.length ?? s.size ?? 0;
  for (const m of ['some', 'every', 'filter', 'map', 'forEach', 'find', 'findIndex', 'reduce', 'includes', 'indexOf', 'entries', 'keys', 'values', Symbol.iterator]) patch(Array.prototype, m, len);
  patch(Array.prototype, 'sort', (s) => len(s) * Math.max(1, Math.log2(len(s) || 1)));
  for (const proto of [Map.prototype, Set.prototype]) for (const m of ['forEach', 'entries', 'keys', 'values', Symbol.iterator]) patch(proto, m, len);
  try {
    fn();
  } finally {
    for (const r of restore.reverse()) r();
  }
  return n;
}

let seq = 0;
const hb = (index: number, state: InstanceState, p: Partial<InstanceHeartbeat> = {}): InstanceHeartbeat => ({ droplet: 'big', version: 'v1', instance: `i${++seq}`, index, state, state_timestamp: seq, dea_guid: `dea-${index % 50}`, ...p });
const desired = (instances: number, p: Partial<DesiredAppState> = {}): DesiredAppState => ({ appGuid: 'big', version: 'v1', instances, state: 'STARTED', packageState: 'STAGED', ...p });
const snapshot = (d: DesiredAppState, list: InstanceHeartbeat[]): AnalyzerSnapshot => ({ actualFresh: true, desiredFresh: true, desired: new Map([['big', d]]), instances: new Map(list.length ? [['big', list]] : []), crashCounts: new Map() });

/** One app of n instances in a given shape. */
const shapes: Record<string, (n: number) => AnalyzerSnapshot> = {
  'every instance running (steady state)': (n) => snapshot(desired(n), Array.from({ length: n }, (_, i) => hb(i, 'RUNNING'))),
  'every instance missing': (n) => snapshot(desired(n), []),
  'every index crashed but one': (n) => snapshot(desired(n), [hb(0, 'RUNNING'), ...Array.from({ length: n - 1 }, (_, i) => hb(i + 1, 'CRASHED'))]),
  'every instance evacuating': (n) => snapshot(desired(n), Array.from({ length: n }, (_, i) => hb(i, 'EVACUATING'))),
  'every instance a duplicate of index 0': (n) => snapshot(desired(1), Array.from({ length: n }, () => hb(0, 'RUNNING'))),
  'every instance extra (scaled to 1)': (n) => snapshot(desired(1), Array.from({ length: n }, (_, i) => hb(i, 'RUNNING'))),
  'every instance an old version': (n) => snapshot(desired(n, { version: 'v2' }), Array.from({ length: n }, (_, i) => hb(i, 'RUNNING'))),
  'half running, half missing, some crashed': (n) => snapshot(desired(n), Array.from({ length: n / 2 }, (_, i) => hb(2 * i, i % 10 === 0 ? 'CRASHED' : 'RUNNING'))),
};

describe('analyzer cost is linear in one app\'s instances', () => {
  const n = 2000;
  it.each(Object.keys(shapes))('%s: 8x the instances costs about 8x, not 64x', (shape) => {
    const cost = (size: number) => {
      const s = shapes[shape]!(size);
      return visits(() => analyze(s, NOW, config, emptyPending()));
    };
    const small = cost(n);
    const large = cost(8 * n);
    expect(small).toBeGreaterThan(0);
    // linear: 8; with the n log n of sorting duplicates: about 10; a per-index scan: 64.
    expect(large / small).toBeLessThan(12);
  });
});

describe('absurd desired instances from CC (guards.maxInstancesPerApp)', () => {
  const limited: AppsConfig = { ...config, guards: { ...config.guards, maxInstancesPerApp: 1000 } };
  it('the app is skipped and reported, nothing is started or stopped for it, and the other apps are analysed', () => {
    const s: AnalyzerSnapshot = {
      actualFresh: true,
      desiredFresh: true,
      desired: new Map([
        ['big', desired(5000)],
        ['small', { appGuid: 'small', version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED' }],
      ]),
      instances: new Map([
        ['big', [hb(0, 'RUNNING'), hb(0, 'RUNNING'), hb(7000, 'RUNNING', { version: 'v0' })]],
        ['small', [hb(0, 'RUNNING', { droplet: 'small' })]],
      ]),
      crashCounts: new Map(),
    };
    const d = analyze(s, NOW, limited, emptyPending());
    expect(d.acted).toBe(true);
    expect(d.skipped).toEqual([{ appGuid: 'big', instances: 5000, reason: expect.stringContaining('maxInstancesPerApp (1000)') }]);
    expect([...d.starts, ...d.stops].filter((m) => m.appGuid === 'big')).toEqual([]);
    expect(d.starts.map((m) => `${m.appGuid}/${m.index}`)).toEqual(['small/1']);
    expect(d.apps.get('big')).toMatchObject({ skipped: expect.stringContaining('5000'), running: 3, converged: false });
    expect(d.counts.skippedApps).toBe(1);
    expect(d.counts.desiredApps).toBe(1);
  });

  it('the cost of a skipped app does not depend on the count CC sent', () => {
    const cost = (instances: number) => visits(() => analyze(snapshot(desired(instances), [hb(0, 'RUNNING')]), NOW, config, emptyPending()));
    expect(cost(2_000_000_000)).toBe(cost(config.guards.maxInstancesPerApp + 1));
  });

  it('reported: the app\'s DesiredApp says why (Converged Unknown), the policy has AppsSkipped', () => {
    const d = analyze(snapshot(desired(5000), []), NOW, limited, emptyPending());
    const obj = { apiVersion: 'hm9k.io/v1alpha1', kind: 'DesiredApp', metadata: { name: 'big', namespace: 'cf' }, spec: { appGuid: 'big', version: 'v1', instances: 5000, state: 'STARTED', packageState: 'STAGED' } } as const;
    const st = desiredAppStatus(structuredClone(obj) as never, d.apps.get('big'), undefined, NOW, true);
    expect(st.conditions).toContainEqual(expect.objectContaining({ type: 'Converged', status: 'Unknown', reason: 'InstancesOverLimit' }));
    const ps = policyStatus(undefined, { now: NOW, actualFresh: true, desiredFresh: true, counts: d.counts, pending: emptyPending(), skippedApps: d.skipped, sender: { sent: 0, failed: 0 }, paused: false, dryRun: false });
    expect(ps.conditions).toContainEqual(expect.objectContaining({ type: 'AppsSkipped', status: 'True', message: expect.stringContaining('big (5000 instances)') }));
    const none = policyStatus(undefined, { now: NOW, actualFresh: true, desiredFresh: true, pending: emptyPending(), sender: { sent: 0, failed: 0 }, paused: false, dryRun: false });
    expect(none.conditions).toContainEqual(expect.objectContaining({ type: 'AppsSkipped', status: 'False' }));
  });
});
