// Fault 3: kube-apiserver is restarted (a) during a fence, right after the power-off, and (b) while
// DesiredApp objects are being projected. (a) The fence record survives and the fence completes
// exactly once: one power-off, forced down, every server evacuated once, no other host touched.
// (b) After the restart every app has exactly one DesiredApp with CC's spec, and an object a
// person created is never deleted.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, expect, it } from 'vitest';
import { DesiredAppProjection, kubeDesiredAppApi } from '../../src/apps/fetcher/projection.js';
import type { DesiredAppState } from '../../src/apps/types.js';
import { controlPlane, kubeConfig, testNamespace } from '../support/controlplane.js';
import { NodeFaultWorld, report, type Ledger } from './support/nodes.js';

const w = new NodeFaultWorld({ count: 3 });
afterAll(() => w.close());

it('(a) kube-apiserver restarted mid-fence: the fence completes exactly once', { timeout: 200_000 }, async () => {
  await w.start();
  const servers = w.serversByHost();
  await w.world.setRecoveryFails('cmp1', true);
  w.world.node('cmp1')!.broken.storage = true;
  await w.until('cmp1 powered off', async () => (await w.world.node('cmp1')!.bmc.commands()).includes('power 0'), 90_000);
  await controlPlane().restartApiserver();
  await w.until('cmp1 Fenced', async () => (await w.getNode('cmp1')).status?.phase === 'Fenced', 120_000);
  const l = await w.ledger(['cmp1'], servers);
  report('apiserver-restart-fence', l, `kube-apiserver restarted right after cmp1's power-off: fence completed, 1 power-off, ${[...servers.values()].filter((h) => h === 'cmp1').length} servers evacuated once`);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});

it('(b) kube-apiserver restarted during DesiredApp projection: every app projected once, nothing of a person deleted', { timeout: 120_000 }, async () => {
  const ns = await testNamespace('faults-proj');
  const kc = kubeConfig();
  const co = kc.makeApiClient(CustomObjectsApi);
  await co.createNamespacedCustomObject({ group: 'hm9k.io', version: 'v1alpha1', namespace: ns, plural: 'desiredapps', body: { apiVersion: 'hm9k.io/v1alpha1', kind: 'DesiredApp', metadata: { name: 'persons-own' }, spec: { appGuid: 'persons-own', version: 'x', instances: 1, state: 'STARTED', packageState: 'STAGED', paused: true } } });
  const desired = new Map<string, DesiredAppState>(Array.from({ length: 120 }, (_, i) => [`app-${i}`, { appGuid: `app-${i}`, version: `v${i}`, instances: 1 + (i % 3), state: 'STARTED', packageState: 'STAGED' }]));
  const projection = new DesiredAppProjection(kubeDesiredAppApi(kc), ns, 50);
  const first = projection.sync(desired).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 300));
  await controlPlane().restartApiserver();
  await first;
  // The next sync (the fetcher's next pass) completes the projection.
  let done = false;
  for (let i = 0; i < 20 && !done; i++) {
    try { await projection.sync(desired); done = true; } catch { await new Promise((r) => setTimeout(r, 1000)); }
  }
  const list = (await co.listNamespacedCustomObject({ group: 'hm9k.io', version: 'v1alpha1', namespace: ns, plural: 'desiredapps' })) as { items: { metadata: { name: string }; spec: { version: string; instances: number } }[] };
  const l: Ledger = { wrong: 0, lost: 0, detail: [] };
  const byName = new Map(list.items.map((o) => [o.metadata.name, o]));
  for (const [guid, d] of desired) {
    const o = byName.get(guid);
    if (!o) { l.lost++; l.detail.push(`${guid} missing`); continue; }
    if (o.spec.version !== d.version || o.spec.instances !== d.instances) { l.wrong++; l.detail.push(`${guid} spec differs`); }
  }
  if (!byName.has('persons-own')) { l.wrong++; l.detail.push("a person's DesiredApp was deleted"); }
  report('apiserver-restart-projection', l, `kube-apiserver restarted during the projection of 120 DesiredApps: all 120 present once with CC's spec, the person's own object kept`);
  expect(done).toBe(true);
  expect(l).toMatchObject({ wrong: 0, lost: 0 });
});
