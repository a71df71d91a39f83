// DesiredApp projection against the real kube-apiserver of the local control plane (global setup).
import { beforeAll, describe, expect, it } from 'vitest';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { DesiredAppProjection, kubeDesiredAppApi, type DesiredAppApi } from '../../src/apps/fetcher/projection.js';
import type { DesiredAppState } from '../../src/apps/types.js';
import { kubeConfig, testNamespace } from '../support/controlplane.js';

const hasControlPlane = !!process.env.HM9K_CP_STATE;
const d = (guid: string, instances: number, p: Partial<DesiredAppState> = {}): [string, DesiredAppState] => [guid, { appGuid: guid, version: `${guid}-v1`, instances, state: 'STARTED', packageState: 'STAGED', ...p }];

describe.skipIf(!hasControlPlane)('DesiredApp projection (real apiserver)', () => {
  let ns: string;
  let writes: string[];
  let api: DesiredAppApi;
  let projection: DesiredAppProjection;
  beforeAll(async () => {
    ns = await testNamespace('apps-proj');
    const real = kubeDesiredAppApi(kubeConfig());
    writes = [];
    api = {
      listPage: (n, l, c) => real.listPage(n, l, c),
      create: async (n, o) => { writes.push(`create ${o.metadata.name}`); await real.create(n, o); },
      replace: async (n, o) => { writes.push(`replace ${o.metadata.name}`); await real.replace(n, o); },
      delete: async (n, name, rv) => { writes.push(`delete ${name}`); await real.delete(n, name, rv); },
    };
    projection = new DesiredAppProjection(api, ns, 2); // page size 2: LIST pagination is exercised
  });

  it('creates, then writes nothing when nothing changed, updates only what changed, deletes only its own', async () => {
    const desired = new Map([d('app-a', 1), d('app-b', 2), d('app-c', 3)]);
    const first = await projection.sync(desired);
    expect(first.created).toBe(3);
    writes.length = 0;
    expect(await projection.sync(desired)).toMatchObject({ created: 0, updated: 0, deleted: 0 });
    expect(writes).toEqual([]);

    // a person pauses app-b and creates an object for an app CC does not list
    const co = kubeConfig().makeApiClient(CustomObjectsApi);
    const b = (await co.getNamespacedCustomObject({ group: 'hm9k.io', version: 'v1alpha1', namespace: ns, plural: 'desiredapps', name: 'app-b' })) as { spec: Record<string, unknown> };
    await co.replaceNamespacedCustomObject({ group: 'hm9k.io', version: 'v1alpha1', namespace: ns, plural: 'desiredapps', name: 'app-b', body: { ...b, spec: { ...b.spec, paused: true } } });
    await co.createNamespacedCustomObject({ group: 'hm9k.io', version: 'v1alpha1', namespace: ns, plural: 'desiredapps', body: { apiVersion: 'hm9k.io/v1alpha1', kind: 'DesiredApp', metadata: { name: 'ghost' }, spec: { appGuid: 'ghost', version: 'x', instances: 1, state: 'STARTED', packageState: 'STAGED', paused: true } } });

    const next = new Map([d('app-b', 5), d('app-c', 3)]);
    const r = await projection.sync(next);
    expect(writes.sort()).toEqual(['delete app-a', 'replace app-b']);
    expect(r.unknown.map((o) => o.metadata.name)).toEqual(['ghost']);
    expect(projection.overrides().get('app-b')).toEqual({ paused: true }); // the person's override survives the update
    expect(projection.overrides().has('ghost')).toBe(false); // an object for an app CC does not list is ignored
    const after = (await co.getNamespacedCustomObject({ group: 'hm9k.io', version: 'v1alpha1', namespace: ns, plural: 'desiredapps', name: 'app-b' })) as { spec: Record<string, unknown>; metadata: { labels: Record<string, string> } };
    expect(after.spec).toMatchObject({ instances: 5, paused: true });
    expect(after.metadata.labels['app.kubernetes.io/managed-by']).toBe('hm9k');
  });
});
