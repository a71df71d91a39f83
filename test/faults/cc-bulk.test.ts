// Fault 5: the Cloud Controller's bulk API answers an empty page mid-paging, a truncated page (body
// cut mid-answer) and a page that repeats the bulk_token it was asked with (a stuck cursor: the next
// page would repeat it). None of these is a complete desired state: nothing may be stopped (not
// even a stop CC would refuse), and a crash owed during them is still restarted.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { report } from './support/nodes.js';
import { appLedger, waitFor, world, type World } from './support/apps.js';

let w: World;
let apps: AppsHandle;
// 50 apps of one instance, paged 5 at a time: 10 pages and a final empty one.
const APPS: [string, number][] = Array.from({ length: 50 }, (_, i) => [`app${String(i).padStart(2, '0')}`, 1]);
beforeAll(async () => {
  w = await world(APPS);
  ({ apps } = await w.start(undefined, true, (c) => ({ ...c, bulkBatchSize: 5, fetchIntervalMs: 1000 })));
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh', 30_000);
}, 60_000);
afterAll(() => w?.close());

const fetchesAfter = async (n: number, since: number) => {
  // `n` more complete paging runs (each ends with its last page request).
  const start = w.cc.requests.filter((r) => r.endpoint === 'bulk').length;
  await waitFor(() => w.cc.requests.filter((r) => r.endpoint === 'bulk').length >= start + n * 11, `${n} more bulk fetches`, 30_000);
  return since;
};

it('found: a page that answers its own bulk_token (a stuck cursor) fails the fetch instead of ending it with part of the apps', async () => {
  const { CcClient } = await import('../../src/clients/cc.js');
  const cc = new CcClient({ url: w.cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password', timeoutMs: 5000, batchSize: 5 });
  expect((await cc.fetchDesired()).apps.size).toBe(50);
  w.cc.inject({ kind: 'duplicateToken', endpoint: 'bulk', page: 9, times: -1 });
  await expect(cc.fetchDesired()).rejects.toThrow(/did not advance/);
  w.cc.clearFailures();
});

it('empty page, truncated page, repeated bulk_token: nothing stopped, the owed crash restart done', { timeout: 120_000 }, async () => {
  const since = w.cc.requests.length;
  // Each fault several times in a row, each on a late page (the desired set would shrink by 10-20%:
  // below the shrink guard's 30% and the stop budget's 20%, so only the fetch itself can refuse it).
  // An empty page mid-paging, three times, each followed by failed fetches (so hm9k acts on the
  // partial state for a while) and then complete ones. (A CC that pages short on two consecutive
  // complete fetches cannot be told from one that deleted the apps: README, safety rules.)
  const bulk = () => w.cc.requests.filter((r) => r.endpoint === 'bulk').length;
  for (let n = 0; n < 3; n++) {
    w.cc.inject({ kind: 'empty', endpoint: 'bulk', page: 9, times: 1 });
    await waitFor(() => apps.store.desired().size === 40, 'a partial desired state', 30_000);
    const failed = bulk();
    w.cc.inject({ kind: 'serverError', endpoint: 'bulk', page: 1, times: 4 });
    await waitFor(() => bulk() >= failed + 4, 'failed fetches', 30_000);
    await fetchesAfter(2, since);
  }
  w.cc.inject({ kind: 'truncated', endpoint: 'bulk', page: 10, times: 3 });
  await fetchesAfter(2, since);
  // Page 9 answers its own bulk_token: page 10 is never asked for (45 of 50 apps).
  w.cc.inject({ kind: 'duplicateToken', endpoint: 'bulk', page: 9, times: -1 });
  // Meanwhile an instance crashes: its restart is owed whatever the bulk API does.
  let smallest = 50;
  const probe = setInterval(() => { smallest = Math.min(smallest, apps.store.desired().size); }, 20);
  const victim = w.fleet.instances('app01')[0]!;
  w.fleet.crash(victim.guid);
  await fetchesAfter(8, since);
  w.cc.clearFailures();
  clearInterval(probe);
  // The empty page cannot be told from a real end of paging (the guards judge what it leaves); the
  // truncated page and the stuck cursor fail the whole fetch.
  expect(smallest).toBeGreaterThanOrEqual(40);
  const l = await appLedger(w, [`${victim.appGuid}/${victim.index}`], since);
  const faulty = w.cc.requests.slice(since).filter((r) => r.endpoint === 'bulk').length;
  // An empty page mid-paging looks like the end of paging: the 10 apps after it look deleted (a 20%
  // shrink, under both guards). They are absent for one fetch only (unconfirmed removals): no stop
  // may be sent for them (before the fix, 10 were, and CC, still listing the apps, refused them).
  const stopsSent = w.cc.stops().filter((r) => r.at >= w.cc.requests[since]!.at);
  report('cc-bulk', l, `${faulty} bulk page requests with empty, truncated and repeated-bulk_token pages (50 apps, 5 per page), 1 crash restart owed; ${stopsSent.length} stops sent`);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
  expect(stopsSent).toEqual([]);
});
