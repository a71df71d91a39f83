// Fault 8: every Consul observer of one network (storage) is down while a node really loses its
// storage network. Unreachable observers mean `unknown`, never `down`: nothing is recovered, powered
// off, forced down or evacuated while blind. Once the observer answers again, the failure is seen and
// the node is fenced and evacuated exactly once (the action owed is not lost).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeFaultWorld, report } from './support/nodes.js';

const w = new NodeFaultWorld({ count: 3 });
beforeAll(() => w.start(), 120_000);
afterAll(() => w.close());

it('storage observers down: nothing done blind; back: the failed node fenced once', { timeout: 150_000 }, async () => {
  const servers = w.serversByHost();
  const storage = w.world.consul.storage;
  const port = storage.port;
  await storage.stop();
  await w.world.setRecoveryFails('cmp1', true);
  w.world.node('cmp1')!.broken.storage = true;
  await w.until('every node sees storage unknown', async () => {
    for (const n of w.world.nodes) if ((await w.getNode(n.name)).status?.networks?.storage?.state !== 'unknown') return false;
    return true;
  }, 30_000);
  // Blind for longer than failureThreshold x interval + recoveryGracePeriod + a recovery attempt.
  await new Promise((r) => setTimeout(r, 6000));
  const blind = await w.ledger([], servers);
  expect(blind).toMatchObject({ wrong: 0 });
  expect(w.world.recoverCalls).toEqual([]);
  await storage.start(port);
  await w.until('cmp1 Fenced', async () => (await w.getNode('cmp1')).status?.phase === 'Fenced', 90_000);
  const l = await w.ledger(['cmp1'], servers);
  report('consul-network-down', l, `storage observers down 6 s+ with cmp1's storage really broken: no action while unknown; back: cmp1 fenced once, ${[...servers.values()].filter((h) => h === 'cmp1').length} servers evacuated once, cmp2/cmp3 untouched`);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
