// Fault 6: Nova answers 5xx while hm9k forces nova-compute down and disables it, and 5xx and 409
// (conflictingRequest, as Nova does for a server in a task state) on evacuation requests. The fence
// must neither stall nor repeat: nova-compute forced down once it is reachable, every server of the
// fenced host evacuated exactly once, no other host touched.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeFaultWorld, report } from './support/nodes.js';

const w = new NodeFaultWorld({ count: 3 });
beforeAll(() => w.start(), 120_000);
afterAll(() => w.close());

it('Nova 5xx on force-down/disable, 5xx and 409 on evacuate: fenced, each server evacuated once', { timeout: 150_000 }, async () => {
  const servers = w.serversByHost();
  const faults: string[] = [];
  let evacuations = 0;
  let services = 0;
  w.world.nova.onRequest = (what) => {
    // The first two service updates and the first two evacuate requests fail (503, then 409).
    if (/^PUT .*\/os-services\//.test(what) && services++ < 2) { w.world.nova.failNext = { status: 503, count: 1, match: /os-services/ }; faults.push(`503 ${what}`); }
    if (/^POST .*\/action$/.test(what) && evacuations++ < 2) {
      const status = evacuations === 1 ? 503 : 409;
      w.world.nova.failNext = { status, count: 1, match: /\/action$/ };
      faults.push(`${status} ${what}`);
    }
  };
  await w.world.setRecoveryFails('cmp1', true);
  w.world.node('cmp1')!.broken.storage = true;
  await w.until('cmp1 Fenced', async () => (await w.getNode('cmp1')).status?.phase === 'Fenced', 120_000);
  w.world.nova.onRequest = undefined;
  const node = await w.getNode('cmp1');
  const l = await w.ledger(['cmp1'], servers);
  if (node.status?.evacuation && node.status.evacuation.done !== node.status.evacuation.total) { l.lost += node.status.evacuation.total - node.status.evacuation.done; l.detail.push(`evacuation record: ${node.status.evacuation.done}/${node.status.evacuation.total} done`); }
  report('nova-errors', l, `${faults.length} injected Nova failures (${faults.map((f) => f.split(' ')[0]).join(', ')}) on force-down/disable/evacuate: cmp1 forced down, ${[...servers.values()].filter((h) => h === 'cmp1').length} servers evacuated once each`);
  expect(faults.length).toBeGreaterThanOrEqual(3);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
