// Fault 10: the BMC of the node to be fenced does not answer (ipmitool times out), or accepts the
// power-off but the host stays on longer than powerOffTimeout. Power-off not confirmed = not fenced:
// no force-down, no evacuation (FenceFailed, operators told), exactly one power-off attempt, and
// the other nodes untouched. Owed: the FENCE FAILED email.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NodeFaultWorld, report, type Ledger } from './support/nodes.js';

const w = new NodeFaultWorld({ count: 3, safety: { maxUnhealthy: '70%' }, tweak: (spec) => { spec.fencing = { ...spec.fencing, powerOffTimeout: '2s', ipmiTimeout: '3s' }; } });
beforeAll(() => w.start(), 120_000);
afterAll(() => w.close());

async function failedFence(name: string): Promise<Ledger> {
  const l: Ledger = { wrong: 0, lost: 0, detail: [] };
  const n = await w.until(`${name} FenceFailed`, async () => { const o = await w.getNode(name); return o.status?.phase === 'FenceFailed' ? o : undefined; }, 90_000);
  const offs = (await w.world.node(name)!.bmc.commands()).filter((c) => c === 'power 0').length;
  if (offs > 1) { l.wrong += offs - 1; l.detail.push(`${name}: ${offs} power-offs`); }
  const migs = w.world.nova.migrations.filter((m) => m.source_compute === w.world.node(name)!.name).length;
  if (migs) { l.wrong += migs; l.detail.push(`${name}: ${migs} evacuations without a confirmed power-off`); }
  if (w.world.nova.services.get(name)?.forced_down) { l.wrong++; l.detail.push(`${name} forced down`); }
  if (n.status?.evacuation) { l.wrong++; l.detail.push(`${name}: evacuation record`); }
  const mail = await w.world.smtp.waitFor((m) => m.subject.includes(name) && m.subject.includes('FENCE FAILED'), 30_000).catch(() => undefined);
  if (!mail) { l.lost++; l.detail.push(`${name}: no FENCE FAILED mail`); }
  return l;
}

it('BMC not answering, then a BMC slower than powerOffTimeout: FenceFailed, nothing evacuated, mailed', { timeout: 180_000 }, async () => {
  const servers = w.serversByHost();
  // cmp1: a dead BMC (ipmitool times out).
  await w.world.node('cmp1')!.bmc.kill();
  await w.world.setRecoveryFails('cmp1', true);
  w.world.node('cmp1')!.broken.storage = true;
  const dead = await failedFence('cmp1');
  // cmp2: the BMC takes the power-off but the host stays on past powerOffTimeout.
  await w.world.node('cmp2')!.bmc.ignorePowerOff(true);
  await w.world.setRecoveryFails('cmp2', true);
  w.world.node('cmp2')!.broken.storage = true;
  const slow = await failedFence('cmp2');
  const offs2 = (await w.world.node('cmp2')!.bmc.commands()).filter((c) => c === 'power 0').length;
  if (offs2 === 0) { slow.lost++; slow.detail.push('cmp2: the power-off was never asked'); }
  // cmp3 untouched.
  const others = await w.ledger([], new Map([...servers].filter(([, h]) => h === 'cmp3')));
  const cmp3 = { wrong: others.detail.filter((d) => d.startsWith('cmp3')).length, lost: 0, detail: others.detail.filter((d) => d.startsWith('cmp3')) };
  const l: Ledger = { wrong: dead.wrong + slow.wrong + cmp3.wrong, lost: dead.lost + slow.lost, detail: [...dead.detail, ...slow.detail, ...cmp3.detail] };
  report('bmc-timeout', l, 'cmp1 BMC dead (ipmitool timeout), cmp2 BMC ignores power-off past powerOffTimeout 2s: both FenceFailed, 0 force-downs, 0 evacuations, FENCE FAILED mailed; cmp3 untouched');
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
