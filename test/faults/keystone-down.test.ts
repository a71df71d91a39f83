// Fault 7: Keystone goes down while a fence is in progress (right after the power-off is confirmed),
// and every token hm9k holds is revoked, so Nova answers 401 and re-authentication fails. The fence
// waits (nothing forced down or evacuated without Nova) and carries on when Keystone is back: forced
// down once, every server evacuated exactly once, no other host touched.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeFaultWorld, report } from './support/nodes.js';

const w = new NodeFaultWorld({ count: 3 });
beforeAll(() => w.start(), 120_000);
afterAll(() => w.close());

it('Keystone down mid-fence: the fence holds, then completes once', { timeout: 150_000 }, async () => {
  const servers = w.serversByHost();
  let down = false;
  let refused = 0;
  // From the first power-off on, Keystone refuses every token request and Nova every old token.
  w.world.nova.onRequest = (what) => {
    if (down && /POST \/identity\/v3\/auth\/tokens/.test(what)) { refused++; w.world.nova.failNext = { status: 503, count: 1, match: /auth\/tokens/ }; }
  };
  await w.world.setRecoveryFails('cmp1', true);
  w.world.node('cmp1')!.broken.storage = true;
  await w.until('cmp1 powered off', async () => (await w.world.node('cmp1')!.bmc.commands()).includes('power 0'), 90_000);
  down = true;
  w.world.nova.revokeTokens();
  await new Promise((r) => setTimeout(r, 5000));
  const held = await w.getNode('cmp1');
  const forcedWhileDown = !!w.world.nova.services.get('cmp1')?.forced_down;
  down = false;
  await w.until('cmp1 Fenced', async () => (await w.getNode('cmp1')).status?.phase === 'Fenced', 90_000);
  w.world.nova.onRequest = undefined;
  const l = await w.ledger(['cmp1'], servers);
  if (forcedWhileDown) l.detail.push('forced down while Keystone was down?');
  report('keystone-down', l, `Keystone down 5 s mid-fence (${refused} token requests refused, phase then ${held.status?.phase}): cmp1 forced down after, ${[...servers.values()].filter((h) => h === 'cmp1').length} servers evacuated once`);
  expect(refused).toBeGreaterThan(0);
  expect(forcedWhileDown).toBe(false);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
