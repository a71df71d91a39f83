// Issue 14 item 3, whole system: after a restart with an empty store there is no last good desired
// state for the shrink guard to compare with, and the first fetch runs before any heartbeat is
// flushed. A desired state far smaller than what the heartbeats show (here: 2 of 3 apps flipped to
// STOPPED, fewer stops than the stop budget's minStopsForHold) must stop nothing until a fetch agrees
// with the heartbeats or an operator releases the hold by its id.
import { afterEach, expect, it } from 'vitest';
import type { AppHealthPolicy } from '../../src/api/index.js';
import { waitFor } from '../support/proc.js';
import { world, type World } from './world.js';
import type { FakeRuntime } from './support/fake-runtime.js';

let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const held = async (rt: FakeRuntime) => ((await rt.metrics.getSingleMetric('hm9k_sender_messages_total')?.get())?.values ?? []).find((v) => v.labels.outcome === 'held')?.value ?? 0;

const setPolicy = (rt: FakeRuntime, annotations: Record<string, string> = {}) =>
  (rt.informer('AppHealthPolicy') as unknown as { set(o: AppHealthPolicy): void }).set({ apiVersion: 'hm9k.io/v1alpha1', kind: 'AppHealthPolicy', metadata: { name: 'cf', annotations }, spec: {} } as unknown as AppHealthPolicy);

async function restartWithSmallDesiredState() {
  w = await world([['a', 1], ['b', 1], ['c', 1]]);
  w.cc.updateApp('b', { state: 'STOPPED' });
  w.cc.updateApp('c', { state: 'STOPPED' });
  const { apps, rt } = await w.start();
  // A policy to report on (nothing is sent before one keep-alive + grace has passed as leader).
  setPolicy(rt);
  await waitFor(() => apps.fetcher.shrinkHold?.kind === 'baseline', 'baseline hold', 60_000);
  // The two stops are decided and held by the sender (not sent), run after run.
  await waitFor(async () => (await held(rt)) >= 4, 'stops held', 60_000);
  expect(w.cc.stops()).toEqual([]);
  expect(rt.events.recorded.some((e) => e.reason === 'ShrinkGuard' && e.note.includes('no trusted baseline'))).toBe(true);
  return { apps, rt, w };
}

it('no trusted baseline: nothing is stopped; a later fetch that agrees with the heartbeats lifts the hold', async () => {
  const { apps, w } = await restartWithSmallDesiredState();
  w.cc.updateApp('b', { state: 'STARTED' });
  w.cc.updateApp('c', { state: 'STARTED' });
  await waitFor(() => apps.fetcher.shrinkHold === undefined && apps.fetcher.baselineTrusted, 'hold lifted', 30_000);
  await waitFor(() => apps.store.pending().stops.size === 0, 'held stops dropped by verification', 30_000);
  expect(w.cc.stops()).toEqual([]);
  expect(w.fleet.instances().length).toBe(3);
}, 150_000);

it('no trusted baseline: the held stops go once an operator releases the hold by its id', async () => {
  const { apps, rt, w } = await restartWithSmallDesiredState();
  const id = apps.fetcher.shrinkHold!.id;
  setPolicy(rt, { 'hm9k.io/release-stop-hold': id });
  await waitFor(() => w.cc.stops().length === 2, 'the two stops sent', 30_000);
  expect(w.cc.stops().map((s) => (s.body as { droplet: string }).droplet).sort()).toEqual(['b', 'c']);
  expect(apps.fetcher.shrinkHold).toBeUndefined();
}, 150_000);
