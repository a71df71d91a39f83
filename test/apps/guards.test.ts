import { describe, expect, it } from 'vitest';
import { baselineCheck, recordStops, shrinkGuard, stopBudget, type StopBudgetState } from '../../src/apps/guards/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import type { DesiredAppState, InstanceHeartbeat, InstanceState } from '../../src/apps/types.js';

const config = resolveAppsConfig(); // maxShrinkPercent 30, maxStopPercent 20, window 5m, minStopsForHold 5
const NOW = 1_700_000_000_000;

function fleet(n: number, patch: (i: number) => Partial<DesiredAppState> = () => ({})): Map<string, DesiredAppState> {
  return new Map(Array.from({ length: n }, (_, i) => [`a${i}`, { appGuid: `a${i}`, version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED', ...patch(i) } as DesiredAppState]));
}

describe('shrink guard', () => {
  const prev = fleet(10);
  it.each([
    ['same answer', fleet(10), true],
    ['3 of 10 apps gone (30%)', fleet(7), true],
    ['4 of 10 apps gone (40%)', fleet(6), false],
    ['versions all changed', fleet(10, () => ({ version: 'v2' })), false],
    ['instances dropped to 1 everywhere (50%)', fleet(10, () => ({ instances: 1 })), false],
    ['most flipped to STOPPED', fleet(10, (i) => (i < 8 ? { state: 'STOPPED' } : {})), false],
    ['most flipped to FAILED', fleet(10, (i) => (i < 8 ? { packageState: 'FAILED' } : {})), false],
    ['growth', fleet(20), true],
  ])('%s -> accept=%s', (_n, next, accept) => {
    expect(shrinkGuard({ lastGood: prev, candidate: next, runningInstances: 20 }, config).accept).toBe(accept);
  });
  it('an empty answer while apps run is refused, even on the first fetch', () => {
    const v = shrinkGuard({ lastGood: undefined, candidate: new Map(), runningInstances: 3 }, config);
    expect(v.accept).toBe(false);
    expect(v.reason).toMatch(/desires no app/);
  });
  it('an empty answer with nothing running is accepted', () => {
    expect(shrinkGuard({ lastGood: undefined, candidate: new Map(), runningInstances: 0 }, config).accept).toBe(true);
  });
  it('an app with an absurd instance count (over maxInstancesPerApp) neither masks a real shrink nor looks like one when corrected', () => {
    const absurd = (m: Map<string, DesiredAppState>, instances: number) => new Map([...m, ['huge', { appGuid: 'huge', version: 'v1', instances, state: 'STARTED', packageState: 'STAGED' } as DesiredAppState]]);
    expect(shrinkGuard({ lastGood: absurd(prev, 2_000_000_000), candidate: absurd(fleet(2), 2_000_000_000), runningInstances: 20 }, config).accept).toBe(false);
    expect(shrinkGuard({ lastGood: absurd(prev, 2_000_000_000), candidate: absurd(prev, 3), runningInstances: 20 }, config).accept).toBe(true);
  });
  it('released only by the id of the current guard', () => {
    expect(shrinkGuard({ lastGood: prev, candidate: fleet(2), runningInstances: 20, heldId: 'shrink-b', releasedId: 'shrink-a' }, config).accept).toBe(false);
    expect(shrinkGuard({ lastGood: prev, candidate: fleet(2), runningInstances: 20, heldId: 'shrink-b', releasedId: 'shrink-b' }, config).accept).toBe(true);
  });
});

describe('stop budget', () => {
  const empty: StopBudgetState = { recentStops: [] };
  it('stops within the budget go', () => {
    expect(stopBudget(empty, { dueStops: 20, runningInstances: 100, now: NOW }, config).allowStops).toBe(true);
  });
  it('small fleets: never holds fewer than minStopsForHold', () => {
    expect(stopBudget(empty, { dueStops: 4, runningInstances: 4, now: NOW }, config).allowStops).toBe(true);
    expect(stopBudget(empty, { dueStops: 5, runningInstances: 5, now: NOW }, config).allowStops).toBe(false);
  });
  it('counts the stops already sent in the window', () => {
    const s = recordStops(empty, 15, NOW - 60_000);
    expect(stopBudget(s, { dueStops: 6, runningInstances: 100, now: NOW }, config).allowStops).toBe(false);
    // outside the window they no longer count
    expect(stopBudget(s, { dueStops: 6, runningInstances: 100, now: NOW + 5 * 60_000 }, config).allowStops).toBe(true);
  });
  it('a hold holds every stop until the annotation carries its id; a stale id does nothing', () => {
    const v = stopBudget(empty, { dueStops: 80, runningInstances: 100, now: NOW }, config);
    expect(v.allowStops).toBe(false);
    expect(v.newHold?.id).toMatch(/^hold-/);
    const id = v.newHold!.id;
    // even one stop later is held
    expect(stopBudget(v.state, { dueStops: 1, runningInstances: 100, now: NOW + 1000 }, config).allowStops).toBe(false);
    expect(stopBudget(v.state, { dueStops: 80, runningInstances: 100, releaseAnnotation: 'hold-old', now: NOW + 2000 }, config).allowStops).toBe(false);
    const r = stopBudget(v.state, { dueStops: 80, runningInstances: 100, releaseAnnotation: id, now: NOW + 3000 }, config);
    expect(r.allowStops).toBe(true);
    expect(r.released).toBe(id);
    // the released stops then go through within the window
    const after = recordStops(r.state, 80, NOW + 3000);
    expect(stopBudget(after, { dueStops: 0, runningInstances: 100, releaseAnnotation: id, now: NOW + 4000 }, config).allowStops).toBe(true);
    // a later mass stop makes a new hold with a new id; the old annotation does not release it
    const later = stopBudget(recordStops(after, 0, 0), { dueStops: 90, runningInstances: 100, releaseAnnotation: id, now: NOW + 10 * 60_000 }, config);
    expect(later.allowStops).toBe(false);
    expect(later.newHold!.id).not.toBe(id);
  });
});

describe('baseline guard (issue 14 item 3: no last good desired state after a restart)', () => {
  // 10 apps x 2 running instances, as the heartbeats show them.
  const actual = (state: InstanceState = 'RUNNING'): InstanceHeartbeat[][] =>
    Array.from({ length: 10 }, (_, a) => [0, 1].map((index) => ({ droplet: `a${a}`, version: 'v1', instance: `a${a}-${index}`, index, state, state_timestamp: 1, dea_guid: 'd' })));
  it.each([
    ['the same desired state', fleet(10), true],
    ['3 of 10 apps gone (30%)', fleet(7), true],
    ['an empty desired state', new Map<string, DesiredAppState>(), false],
    ['4 of 10 apps gone (40%)', fleet(6), false],
    ['most flipped to STOPPED', fleet(10, (i) => (i < 8 ? { state: 'STOPPED' } : {})), false],
    ['all on a new version', fleet(10, () => ({ version: 'v2' })), false],
    ['scaled down to 1 everywhere (50%)', fleet(10, () => ({ instances: 1 })), false],
  ])('%s -> trusted=%s', (_n, desired, trusted) => {
    const v = baselineCheck(desired, actual(), config);
    expect(v.trusted).toBe(trusted);
    expect(v.running).toBe(20);
    if (!trusted) expect(v.reason).toMatch(/no trusted baseline/);
  });
  it('nothing running (or only crashed instances): nothing to stop, trusted', () => {
    expect(baselineCheck(new Map(), [], config).trusted).toBe(true);
    expect(baselineCheck(new Map(), actual('CRASHED'), config).trusted).toBe(true);
  });
});
