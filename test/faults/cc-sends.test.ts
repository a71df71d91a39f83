// Fault 4: the Cloud Controller answers start/stop requests with 5xx, hangs (no answer until the
// client's timeout), or resets the connection, before or after carrying the request out. Owed starts
// are retried until CC takes them (never dropped), and a start CC already executed before the reset
// is not repeated into a duplicate instance (the retry is verified against the heartbeats first).
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { report } from './support/nodes.js';
import { appLedger, waitFor, world, type World } from './support/apps.js';

let w: World;
let apps: AppsHandle;
beforeAll(async () => {
  w = await world([['web', 3], ['api', 2], ['worker', 2]]);
  ({ apps } = await w.start());
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh', 30_000);
}, 60_000);
afterAll(() => w?.close());

it('CC 5xx, hanging and resetting during sends: every owed start done exactly once, nothing stopped', { timeout: 90_000 }, async () => {
  const since = w.cc.requests.length;
  w.cc.inject({ kind: 'serverError', endpoint: 'start', times: 2 });
  w.cc.inject({ kind: 'timeout', endpoint: 'start', times: 1 });
  w.cc.inject({ kind: 'reset', endpoint: 'start', times: 1 });
  w.cc.inject({ kind: 'resetAfter', endpoint: 'start', times: 2 });
  // Three instances crash at once: three starts owed (fast path), through every fault above.
  const victims = [w.fleet.instances('web')[0]!, w.fleet.instances('api')[1]!, w.fleet.instances('worker')[0]!];
  for (const v of victims) w.fleet.crash(v.guid);
  const owed = victims.map((v) => `${v.appGuid}/${v.index}`);
  const l = await appLedger(w, owed, since, { deadlineMs: 60_000 });
  const faults = w.cc.requests.slice(since).filter((r) => r.status === 500 || r.status < 0).length;
  report('cc-sends', l, `${owed.length} crash restarts owed through ${faults} failed sends (5xx, hang, reset before/after CC acted)`);
  expect(faults).toBeGreaterThanOrEqual(4);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
