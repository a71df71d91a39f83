// The memory store's index by app is brought up to date lazily (issue 14 item 8: the intake only
// records index changes; the listener applies them in slices between messages). Whatever the
// slices, every read must see exactly what the DEAs last reported, in the order it happened. A
// seeded random walk of heartbeats, droplet.exited, DEA expiry and partial settles is checked
// after every step against a plain model of HM9000's rules kept by the test.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../src/apps/store/memory.js';
import type { DeaHeartbeat, DropletExited, InstanceHeartbeat } from '../../src/apps/types.js';
import { rng } from '../support/rng.js';

const S = 1000;
const T0 = 1_700_000_000_000;
const PRESENCE_TTL = 30 * S;

type Model = Map<string, { lastSeen: number; instances: Map<string, InstanceHeartbeat> }>;

/** Each app's instances as sorted lines, from the store's reads or from the model. */
const lines = (lists: Iterable<readonly InstanceHeartbeat[] | Iterable<InstanceHeartbeat>>): string[] =>
  [...lists].flatMap((l) => [...l]).map((i) => `${i.droplet} ${i.instance} ${i.dea_guid} ${i.version} ${i.index} ${i.state} ${i.state_timestamp}`).sort();
const modelLines = (m: Model) => lines([...m.values()].map((d) => [...d.instances.values()]));

describe('memory store: the index by app, settled lazily, reads as if applied at once', () => {
  // (few apps on many DEAs too: apps of a few instances and of dozens)
  it.each([
    [1, 4, 6, 3], [2, 4, 6, 3], [3, 4, 6, 3], [4, 4, 6, 3],
    [5, 8, 8, 2], [6, 8, 8, 2], [7, 8, 8, 1], [8, 6, 10, 2],
  ])('seed %i: 400 random steps, %i DEAs of up to %i instances, %i apps', (seed, deaCount, pool, appCount) => {
    const r = rng(seed);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const store = new MemoryStore(30 * S);
    const model: Model = new Map();
    const deas = Array.from({ length: deaCount }, (_, n) => `dea-${n}`);
    const apps = Array.from({ length: appCount }, (_, n) => `app-${n}`);
    let largest = 0;
    let now = T0;
    let from = T0;
    for (let step = 0; step < 400; step++) {
      now += Math.floor(r() * 4 * S);
      const op = r();
      if (op < 0.55) {
        // A heartbeat: a random subset of the DEA's instance pool, each of a random app (an
        // instance may move between apps), version and state.
        const dea = pick(deas);
        const droplets = Array.from({ length: pool }, (_, n) => n)
          .filter(() => r() < 0.6)
          .map((n) => ({ droplet: pick(apps), version: pick(['v1', 'v2']), instance: `${dea}-i${n}`, index: n % 3, state: pick(['RUNNING', 'STARTING', 'CRASHED'] as const), state_timestamp: 1 }));
        const hb: DeaHeartbeat = { dea, droplets };
        store.applyHeartbeat(store.shareUnchanged(hb), now);
        model.set(dea, { lastSeen: now, instances: new Map(droplets.map((d) => [d.instance, { ...d, dea_guid: dea }])) });
      } else if (op < 0.75) {
        const known = [...model.values()].flatMap((d) => [...d.instances.values()]);
        if (known.length === 0) continue;
        const i = pick(known);
        const reason = pick(['CRASHED', 'DEA_EVACUATION', 'STOPPED'] as const);
        const exit: DropletExited = { droplet: i.droplet, version: i.version, instance: i.instance, index: i.index, reason, crash_timestamp: 7 };
        store.applyExited(exit, now);
        const d = model.get(i.dea_guid)!;
        if (reason === 'STOPPED') d.instances.delete(i.instance);
        else d.instances.set(i.instance, { ...i, state: reason === 'CRASHED' ? 'CRASHED' : 'EVACUATING', state_timestamp: reason === 'CRASHED' ? 7 : now / 1000 });
      } else if (op < 0.85) {
        // DEAs silent for longer than the presence TTL of observed intake expire.
        if (r() < 0.3) from = now; // (a new observed streak)
        store.expireDeas({ from, until: now }, PRESENCE_TTL);
        for (const [id, d] of model) if (now - Math.max(d.lastSeen, from) > PRESENCE_TTL) model.delete(id);
      } else {
        store.settleIndex(Math.floor(r() * 5));
      }
      if (r() < 0.5) continue; // (reads between some steps only: changes pile up in the queue)
      const want = modelLines(model);
      for (const a of apps) largest = Math.max(largest, want.filter((l) => l.startsWith(`${a} `)).length);
      const read = pick(['byApp', 'lists', 'each', 'counts'] as const);
      if (read === 'byApp') expect(lines(store.instancesByApp().values()), `step ${step}`).toEqual(want);
      else if (read === 'lists') expect(lines(store.instanceLists()), `step ${step}`).toEqual(want);
      else if (read === 'each') expect(lines(apps.map((a) => store.instancesOf(a))), `step ${step}`).toEqual(want);
      else {
        expect(store.instanceCount(), `step ${step}`).toBe(want.length);
        expect(store.startingOrRunningCount(), `step ${step}`).toBe(want.filter((l) => / (RUNNING|STARTING) /.test(l)).length);
      }
      expect(store.unsettledCount(), 'every read applies every queued change').toBe(0);
    }
    if (deaCount * pool / appCount > 20) expect(largest, 'an app of more than 8 instances').toBeGreaterThan(8);
  });

  it('a heartbeat only records its index changes; they are applied in slices, oldest first, or all at once by any read', () => {
    const store = new MemoryStore(30 * S);
    const droplets = Array.from({ length: 10 }, (_, n) => ({ droplet: `app-${n % 2}`, version: 'v1', instance: `i${n}`, index: n, state: 'RUNNING' as const, state_timestamp: 1 }));
    store.applyHeartbeat({ dea: 'dea-1', droplets }, T0);
    expect(store.unsettledCount()).toBe(10);
    expect(store.settleIndex(4)).toBe(6);
    // A move to another app and a removal, queued behind what is left.
    store.applyHeartbeat({ dea: 'dea-1', droplets: [...droplets.slice(0, 9).map((d) => (d.instance === 'i0' ? { ...d, droplet: 'app-1' } : d))] }, T0 + S);
    expect(store.unsettledCount()).toBe(6 + 3); // (i0 out of app-0 and into app-1; i9 out)
    expect(store.instancesOf('app-0').map((i) => i.instance).sort()).toEqual(['i2', 'i4', 'i6', 'i8']);
    expect(store.instancesOf('app-1').map((i) => i.instance).sort()).toEqual(['i0', 'i1', 'i3', 'i5', 'i7']);
    expect(store.unsettledCount()).toBe(0);
  });

  it('a read view is never changed afterwards: a change makes a new one (the analyzer works on one snapshot)', () => {
    const store = new MemoryStore(30 * S);
    const d = (instance: string, state: 'RUNNING' | 'CRASHED') => ({ droplet: 'app', version: 'v1', instance, index: 0, state, state_timestamp: 1 });
    store.applyHeartbeat({ dea: 'dea-1', droplets: [d('i0', 'RUNNING')] }, T0);
    const before = store.instancesOf('app');
    expect(store.instancesOf('app')).toBe(before); // (unchanged: the same view)
    store.applyHeartbeat({ dea: 'dea-1', droplets: [d('i0', 'CRASHED'), d('i1', 'RUNNING')] }, T0 + S);
    expect(before.map((i) => i.state)).toEqual(['RUNNING']);
    expect(store.instancesOf('app').map((i) => `${i.instance} ${i.state}`).sort()).toEqual(['i0 CRASHED', 'i1 RUNNING']);
    expect(store.instancesOf('no-such-app')).toEqual([]);
  });

  it('an app CC describes unchanged keeps its desired record from fetch to fetch; a changed one is replaced', () => {
    const store = new MemoryStore(30 * S);
    const app = (guid: string, instances: number) => ({ appGuid: guid, version: 'v1', instances, state: 'STARTED' as const, packageState: 'STAGED' as const });
    store.setDesired(new Map([['a', app('a', 2)], ['b', app('b', 1)]]), T0);
    const [a1, b1] = [store.desired().get('a'), store.desired().get('b')];
    store.setDesired(new Map([['a', app('a', 2)], ['b', app('b', 3)], ['c', app('c', 1)]]), T0 + 60 * S);
    expect(store.desired().get('a')).toBe(a1);
    expect(store.desired().get('b')).not.toBe(b1);
    expect(store.desired().get('b')?.instances).toBe(3);
    expect([...store.desired().keys()].sort()).toEqual(['a', 'b', 'c']);
    store.setDesired(new Map([['c', app('c', 1)]]), T0 + 120 * S);
    expect([...store.desired().keys()]).toEqual(['c']);
  });

  it.each([
    ['3 RUNNING, one version, distinct indices', 3, (n: number) => ({ index: n }), 'v1', 2],
    ['20 (the Set path)', 20, (n: number) => ({ index: n }), 'v1', 19],
    ['20 with two at one index', 20, (n: number) => ({ index: n === 7 ? 3 : n }), undefined, undefined],
    ['3 with two at one index', 3, (n: number) => ({ index: n === 2 ? 0 : n }), undefined, undefined],
    ['one CRASHED', 12, (n: number) => ({ index: n, state: n === 11 ? ('CRASHED' as const) : ('RUNNING' as const) }), undefined, undefined],
    ['one of another version', 5, (n: number) => ({ index: n, version: n === 0 ? 'v0' : 'v1' }), undefined, undefined],
    ['gaps in the indices', 3, (n: number) => ({ index: n * 4 }), 'v1', 8],
  ] as const)('the list handed out says what the settled check needs: %s', (_n, count, vary, runningVersion, maxIndex) => {
    const store = new MemoryStore(30 * S);
    const droplets = Array.from({ length: count }, (_, n) => ({ droplet: 'app', version: 'v1', instance: `i${n}`, state: 'RUNNING' as const, state_timestamp: 1, ...vary(n) }));
    store.applyHeartbeat({ dea: 'dea-1', droplets }, T0);
    const view = store.instancesOf('app');
    expect(view).toHaveLength(count);
    expect(view.runningVersion).toBe(runningVersion);
    if (maxIndex !== undefined) expect(view.maxIndex).toBe(maxIndex);
  });

  it.each([2, 30])('one instance guid on two DEAs (an app of %i): the DEA that drops it takes out only its own entry', (others) => {
    const store = new MemoryStore(30 * S);
    const d = (instance: string, index: number) => ({ droplet: 'app', version: 'v1', instance, index, state: 'RUNNING' as const, state_timestamp: 1 });
    const rest = Array.from({ length: others }, (_, n) => d(`o${n}`, n + 1));
    store.applyHeartbeat({ dea: 'dea-a', droplets: [d('same', 0), ...rest] }, T0);
    store.applyHeartbeat({ dea: 'dea-b', droplets: [d('same', 0)] }, T0 + S); // (indexed last: the app's entry for that guid)
    store.applyHeartbeat({ dea: 'dea-a', droplets: rest }, T0 + 2 * S);
    expect(store.instancesOf('app').filter((i) => i.instance === 'same').map((i) => i.dea_guid)).toEqual(['dea-b']);
    store.applyHeartbeat({ dea: 'dea-b', droplets: [] }, T0 + 3 * S);
    expect(store.instancesOf('app').some((i) => i.instance === 'same')).toBe(false);
    expect(store.instanceCount()).toBe(others);
  });
});
