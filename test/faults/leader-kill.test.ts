// Fault 11 (app half): the leader dies in the middle of a send and a standby takes over. Three
// replicas of the app half share a real etcd store (the in-process replicas of
// test/apps/replicas-etcd.test.ts: leadership is the fake runtime's switch, not a Lease). An
// instance crashes, the leader's start is held inside the CC simulator, and the leader is cut off
// at that moment: it stops acting and its connection is closed unanswered, as when its process is
// SIGKILLed (it gets no chance to send again). A standby becomes leader, loads the pending actions
// from etcd and carries on. Twice:
// - the killed start never reached CC's execution (held before CC acted): the standby's start is
//   executed exactly once;
// - the killed start was carried out by CC before the connection died: CC's own record decides, and
//   the standby does not start it again (no second instance at that index).
// Both times: no stop request at all (nothing is owed a stop), every desired index runs once.
//
// The node half of fault 11 (SIGKILL mid-fence and mid-evacuation with a standby or next process
// taking over) runs as real `hm9k run --nodes` processes in test/nodes/process.test.ts:
// 'SIGKILLed mid-fence and again mid-evacuation: the next process finishes, nothing fenced or
// evacuated twice', 'two replicas: only the Lease holder acts; it dies mid-evacuation and the other
// finishes', 'SIGTERM while the BMC has not yet answered the power-off: ...' and 'SIGTERM while an
// evacuate request is still in nova-api: the standby asks Nova and never re-sends it; ...'.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { EtcdServer } from '../support/etcd.js';
import type { FakeRuntime } from '../apps/support/fake-runtime.js';
import { report, type Ledger } from './support/nodes.js';
import { appLedger, waitFor, world, type World } from './support/apps.js';

type Replica = { apps: AppsHandle; rt: FakeRuntime };

let w: World;
let etcd: EtcdServer;
let replicas: Replica[];
beforeAll(async () => {
  etcd = await EtcdServer.start();
  w = await world([['web', 3], ['api', 2], ['worker', 2]]);
  const store = { kind: 'etcd' as const, endpoints: [etcd.endpoint], prefix: 'faults-leader-kill/' };
  replicas = [await w.start(store, true), await w.start(store, false), await w.start(store, false)];
  const [a, b, c] = replicas as [Replica, Replica, Replica];
  await waitFor(() => a.apps.isLeaderActive() && a.apps.lastDecisions()?.acted === true, 'leader fresh', 40_000);
  await waitFor(() => b.apps.store.actualFreshness.isFresh(Date.now()) && c.apps.store.actualFreshness.isFresh(Date.now()), 'standbys fresh', 40_000);
}, 90_000);
afterAll(async () => {
  await w?.close();
  await etcd?.destroy();
});

/** Crashes `victim`, holds the leader's start in CC, kills the leader there, lets `standby` take over. */
async function killMidStart(leader: Replica, standby: Replica, app: string, executeFirst: boolean): Promise<{ l: Ledger; heldExecuted: boolean }> {
  // The fleet is whole before each round (the previous one's ledger waited for that).
  const since = w.cc.requests.length;
  const heldBefore = w.cc.held.length;
  const victim = w.fleet.instances(app)[0]!;
  const owed = `${victim.appGuid}/${victim.index}`;
  w.cc.inject({ kind: 'hold', endpoint: 'start', executeFirst });
  w.fleet.crash(victim.guid);
  await waitFor(() => w.cc.held.length > heldBefore, `the leader's start of ${owed} held in CC`, 40_000);
  const held = w.cc.held[heldBefore]!;
  // SIGKILL: the leader acts no more, and its connection dies without an answer.
  leader.rt.leaderFlag.value = false;
  w.cc.dropHeld();
  const dying = leader.apps.stop().catch(() => undefined);
  standby.rt.leaderFlag.value = true;
  await waitFor(() => standby.apps.isLeaderActive(), 'the standby leads', 40_000);
  const l = await appLedger(w, [owed], since, { deadlineMs: 60_000 });
  await dying;
  // No stop is owed: one reaching CC at all is wrong, even if CC's re-validation refused it.
  const stopsSent = w.cc.requests.slice(since).filter((r) => r.endpoint === 'stop').length;
  const stopsExecuted = w.cc.requests.slice(since).filter((r) => r.endpoint === 'stop' && r.executed).length;
  if (stopsSent > stopsExecuted) { l.wrong += stopsSent - stopsExecuted; l.detail.push(`${stopsSent - stopsExecuted} stop request(s) sent`); }
  return { l, heldExecuted: held.executed === true };
}

it('leader killed while its start is held in CC: the standby takes over; the start executed exactly once, never stopped', { timeout: 200_000 }, async () => {
  const [a, b, c] = replicas as [Replica, Replica, Replica];
  // 1: the killed start never executed: the standby must send it.
  const first = await killMidStart(a, b, 'web', false);
  // 2: the killed start executed before the connection died: the next standby must not repeat it.
  const second = await killMidStart(b, c, 'api', true);
  const l: Ledger = { wrong: first.l.wrong + second.l.wrong, lost: first.l.lost + second.l.lost, detail: [...first.l.detail, ...second.l.detail] };
  report('leader-kill', l, 'app half, 3 replicas on one etcd store: the leader cut off with its crash-restart start held in CC, twice (held before CC acted: the standby\'s start executed once; held after CC executed it: not started again), 0 stop requests');
  expect(first.heldExecuted).toBe(false);
  expect(second.heldExecuted).toBe(true);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
