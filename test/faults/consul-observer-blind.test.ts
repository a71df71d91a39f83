// Fault 9: one of two Consul observers of the storage network is partitioned (blind: it sees every
// member failed) while the other sees the truth. Observers that disagree are never fenced on: no
// recovery, power-off or evacuation of any node. When a node then really fails, both observers agree
// and it is fenced exactly once.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeFaultWorld, report } from './support/nodes.js';

const w = new NodeFaultWorld({ count: 3, extraStorageObservers: 1 });
beforeAll(() => w.start(), 120_000);
afterAll(() => w.close());

it('one blind observer: nothing fenced on its word; a real failure seen by both is fenced once', { timeout: 150_000 }, async () => {
  const servers = w.serversByHost();
  w.extra[0]!.blind = true;
  await w.until('the blind observer reports every node down', async () => {
    for (const n of w.world.nodes) if (((await w.getNode(n.name)).status?.networks?.storage?.state ?? 'up') === 'up') return false;
    return true;
  }, 30_000).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 6000));
  expect(await w.ledger([], servers)).toMatchObject({ wrong: 0 });
  expect(w.world.recoverCalls).toEqual([]);
  w.extra[0]!.blind = false;
  await w.world.setRecoveryFails('cmp2', true);
  w.world.node('cmp2')!.broken.storage = true;
  await w.until('cmp2 Fenced', async () => (await w.getNode('cmp2')).status?.phase === 'Fenced', 90_000);
  const l = await w.ledger(['cmp2'], servers);
  report('consul-observer-blind', l, 'one of 2 storage observers blind (all nodes failed) for 6 s+: no action; then cmp2 really fails: fenced once, its server evacuated once');
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
