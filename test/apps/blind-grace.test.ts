// Issue 14 item 1, whole system over a real nats-server: time spent blind never counts toward the
// grace period. A NATS outage while one DEA was already quiet shortly before it (and resumes a few
// seconds after the reconnect) must start and stop nothing; a DEA that really vanished during the
// outage is still restarted, after fresh observation plus the grace period.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { waitFor } from '../support/proc.js';
import { world, type World } from './world.js';

let w: World;
let apps: AppsHandle;
const GRACE_MS = 10_000; // longer than the 1/10 world's 3 s, so that outcomes differ by seconds, not by a flush
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Body = { droplet: string; instance_index: number };
const running = (app: string) => w.fleet.instances(app).filter((i) => i.state === 'RUNNING' || i.state === 'STARTING').map((i) => i.index).sort().join();

beforeAll(async () => {
  w = await world([]);
  const [quiet, lost, steady] = w.fleet.deaIds() as [string, string, string];
  for (const [guid, n] of [['quiet-app', 2], ['lost-app', 2], ['web', 3]] as const) w.cc.setApp({ guid, version: `${guid}-v1`, instances: n, state: 'STARTED', package_state: 'STAGED' });
  w.fleet.place(quiet, 'quiet-app', 'quiet-app-v1', 0);
  w.fleet.place(quiet, 'quiet-app', 'quiet-app-v1', 1);
  w.fleet.place(quiet, 'web', 'web-v1', 0);
  w.fleet.place(lost, 'lost-app', 'lost-app-v1', 0);
  w.fleet.place(lost, 'lost-app', 'lost-app-v1', 1);
  w.fleet.place(lost, 'web', 'web-v1', 1);
  w.fleet.place(steady, 'web', 'web-v1', 2);
  ({ apps } = await w.start({ kind: 'memory' }, true, (c) => ({ ...c, gracePeriodMs: GRACE_MS })));
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh and sending', 60_000);
}, 90_000);
afterAll(() => w?.close());

it('NATS outage + a DEA quiet across it: no start, no stop; a DEA that vanished meanwhile is restarted after fresh time + grace', async () => {
  const [quiet, lost] = w.fleet.deaIds() as [string, string];
  const ttl = apps.config().actualFreshnessTtlMs;
  // The quiet DEA stops heartbeating 1.5 s before the outage (and keeps running its instances).
  w.fleet.setQuiet(quiet, true);
  await sleep(1500);
  await w.nats.stop();
  await waitFor(() => !apps.store.actualFreshness.isFresh(Date.now()), 'freshness lost', 20_000);
  w.fleet.kill(lost); // really vanishes while hm9k is blind
  await sleep(20_000 - 1500); // the outage: longer than presence TTL + grace
  const restartedAt = Date.now();
  await w.nats.restart();
  await waitFor(() => (apps.store.freshnessState().streakStart ?? 0) >= restartedAt, 'heartbeats flow again', 30_000);
  const streakStart = apps.store.freshnessState().streakStart!;
  // The quiet DEA resumes well after freshness is regained (TTL 3 s) but within presence TTL + grace.
  await sleep(7000);
  w.fleet.setQuiet(quiet, false);

  // The vanished DEA's instances are restarted elsewhere...
  await waitFor(() => running('lost-app') === '0,1' && running('web') === '0,1,2', 'lost instances restarted', 60_000);
  const lostStarts = w.cc.starts().filter((r) => (r.body as Body).droplet === 'lost-app' || ((r.body as Body).droplet === 'web' && (r.body as Body).instance_index === 1));
  expect(lostStarts.length).toBeGreaterThanOrEqual(3);
  // ...only after one freshness window of observation plus a whole grace period.
  for (const s of lostStarts) expect(s.at - streakStart).toBeGreaterThanOrEqual(ttl + GRACE_MS);
  // The quiet DEA's instances were never started elsewhere: every start queued for them is dropped.
  const forQuiet = (m: { appGuid: string; index: number }) => m.appGuid === 'quiet-app' || (m.appGuid === 'web' && m.index === 0);
  await waitFor(() => ![...apps.store.pending().starts.values()].some(forQuiet), 'no start pending for the quiet DEA', 30_000);
  expect(w.cc.starts().filter((r) => forQuiet({ appGuid: (r.body as Body).droplet, index: (r.body as Body).instance_index })).map((r) => r.body)).toEqual([]);
  expect(w.cc.stops()).toEqual([]);
  expect(running('quiet-app')).toBe('0,1');
}, 150_000);
