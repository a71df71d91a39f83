// Fault 1: nats-server is restarted while restarts are pending: a DEA has died silently (its
// instances become missing after the presence TTL + grace) and an instance has crashed, and NATS
// goes away before the starts are sent. While blind nothing is sent; once NATS is back and actual
// state is fresh again, every owed start is sent exactly once and nothing is stopped.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { report } from './support/nodes.js';
import { appLedger, waitFor, world, type World } from './support/apps.js';

let w: World;
let apps: AppsHandle;
beforeAll(async () => {
  w = await world([['web', 3], ['api', 3], ['worker', 2]]);
  ({ apps } = await w.start());
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh', 30_000);
}, 60_000);
afterAll(() => w?.close());

it('NATS restarted with starts pending: none lost, none doubled, nothing stopped', { timeout: 120_000 }, async () => {
  const since = w.cc.requests.length;
  const dead = w.fleet.deaIds()[0]!;
  const owed = w.fleet.instances().filter((i) => i.dea === dead).map((i) => `${i.appGuid}/${i.index}`);
  w.fleet.kill(dead);
  // Presence TTL (3 s at these timings) passes: the instances are missing, their starts wait out the grace.
  await waitFor(() => apps.store.pending().starts.size > 0 || w.cc.starts().length > 0, 'missing starts pending', 20_000);
  const sentBefore = w.cc.requests.length;
  await w.nats.stop();
  const blindFrom = Date.now();
  await waitFor(() => !apps.store.actualFreshness.isFresh(Date.now()), 'blind', 20_000);
  await new Promise((r) => setTimeout(r, 3000));
  const sentBlind = w.cc.requests.slice(sentBefore).filter((r) => (r.endpoint === 'start' || r.endpoint === 'stop') && r.at > blindFrom + 1500).length;
  await w.nats.restart();
  const l = await appLedger(w, owed, since, { deadlineMs: 60_000 });
  if (sentBlind) { l.wrong += sentBlind; l.detail.push(`${sentBlind} sends while blind`); }
  report('nats-restart', l, `nats-server down 3 s+ with ${owed.length} starts pending (a dead DEA): each sent once after NATS and freshness returned, 0 sent blind, 0 stops`);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
