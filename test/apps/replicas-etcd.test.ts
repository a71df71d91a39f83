// With the etcd store (real etcd): two replicas -> only the leader sends; the leader restarted ->
// crash counts and pending actions kept, and it may send without the keep-alive + grace wait
// because it loaded them (after two heartbeat periods: test/faults/leader-kill.test.ts).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { crashKey } from '../../src/apps/types.js';
import { EtcdServer } from '../support/etcd.js';
import { waitFor } from '../support/proc.js';
import { world, type World } from './world.js';

let w: World;
let etcd: EtcdServer;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  w = await world([['web', 2], ['loop', 1]]);
}, 60_000);
afterAll(async () => {
  await w?.close();
  await etcd?.destroy();
});

it('two replicas: both ingest heartbeats and answer the API, only the leader sends; a restarted leader keeps crash counts and pending actions', async () => {
  const store = { kind: 'etcd' as const, endpoints: [etcd.endpoint], prefix: 'apps-test/' };
  const a = await w.start(store, true);
  const b = await w.start(store, false);
  await waitFor(() => a.apps.isLeaderActive() && a.apps.lastDecisions()?.acted === true, 'leader fresh', 30_000);
  await waitFor(() => b.apps.store.actualFreshness.isFresh(Date.now()), 'follower fresh', 30_000);

  // a crash loop makes crash counts and pending (backed-off) starts
  w.fleet.crashOnStart.add('loop');
  w.fleet.crash(w.fleet.instances('loop')[0]!.guid);
  const key = crashKey('loop', 'loop-v1', 0);
  await waitFor(() => (a.apps.store.crashCounts().get(key)?.count ?? 0) >= 4, 'crash count 4', 40_000);
  expect(a.apps.sender.stats.sent).toBeGreaterThan(0);
  expect(b.apps.sender.stats.sent).toBe(0);
  expect(b.apps.store.crashCounts().size).toBe(0); // followers decide nothing

  // the leader goes away; a new leader loads state from etcd
  const count = a.apps.store.crashCounts().get(key)!.count;
  await a.apps.stop();
  const c = await w.start(store, true);
  await waitFor(() => (c.apps.store.crashCounts().get(key)?.count ?? 0) >= count, 'crash counts loaded', 10_000);
  expect(c.apps.store.pending().starts.has('loop/loop-v1/0')).toBe(true);
  // it loaded pending actions and crash counts: no keep-alive + grace wait before sending (two heartbeat periods)
  await waitFor(() => c.apps.isLeaderActive(), 'new leader may send', 5_000);
  w.fleet.crashOnStart.delete('loop');
});
