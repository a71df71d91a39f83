// Never act blind: NATS killed -> freshness lost -> no actions (and /bulk_app_state answers {}) ->
// NATS back -> actions only after one freshness window of unbroken heartbeats. CC failing mid-paging
// -> nothing stopped.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { waitFor } from '../support/proc.js';
import { world, type World } from './world.js';

let w: World;
let apps: AppsHandle;
const auth = `Basic ${Buffer.from('hm:pw').toString('base64')}`;
const bulk = async () => (await fetch(`http://127.0.0.1:${apps.apiPort}/bulk_app_state`, { method: 'POST', headers: { authorization: auth }, body: JSON.stringify([{ droplet: 'web', version: 'web-v1' }]) })).json();

beforeAll(async () => {
  w = await world([['web', 3]]);
  ({ apps } = await w.start());
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh', 30_000);
}, 60_000);
afterAll(() => w?.close());

it('CC failing mid-paging or timing out stops nothing', async () => {
  w.cc.updateApp('web', { instances: 1 }); // would stop two extras if acted upon...
  w.cc.inject({ kind: 'serverError', endpoint: 'bulk', times: -1 }); // ...but every fetch fails
  const failedBefore = w.cc.requests.filter((r) => r.status === 500).length;
  await waitFor(() => w.cc.requests.filter((r) => r.status === 500).length > failedBefore, 'a failed fetch', 20_000);
  await new Promise((r) => setTimeout(r, 2000));
  expect(w.cc.stops()).toEqual([]);
  w.cc.clearFailures();
  w.cc.updateApp('web', { instances: 3 });
});

it('NATS down: not fresh, {} from the API, no action; back: actions only after a full freshness window', async () => {
  expect(Object.keys(await bulk())).toEqual(['web']);
  await w.nats.stop();
  await waitFor(() => !apps.store.actualFreshness.isFresh(Date.now()), 'freshness lost', 20_000);
  expect(await bulk()).toEqual({});
  // meanwhile a DEA dies: nothing may be decided while blind
  const victim = w.fleet.instances('web')[0]!.dea;
  w.fleet.kill(victim);
  const startsBefore = w.cc.starts().length;
  await new Promise((r) => setTimeout(r, 4000)); // > presence TTL + grace at 1/10
  expect(w.cc.starts().length).toBe(startsBefore);
  expect(apps.lastDecisions()?.acted).toBe(false);
  await w.nats.restart();
  await waitFor(() => w.cc.starts().length > startsBefore, 'restart after NATS is back', 30_000);
  const firstStart = w.cc.starts()[startsBefore]!;
  const streakStart = apps.store.freshnessState().streakStart!;
  expect(firstStart.at - streakStart).toBeGreaterThanOrEqual(apps.config().actualFreshnessTtlMs);
  await waitFor(() => w.fleet.instances('web').length === 3, 'web whole again', 20_000);
});
