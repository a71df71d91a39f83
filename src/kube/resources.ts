// Where a kind lives on the API server: API paths for list/watch (our CRDs and core kinds alike).
import { GROUP, VERSION, KINDS, type KindName } from '../api/index.js';

export interface ResourceRef {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const apiVersionOf = (r: ResourceRef): string => (r.group ? `${r.group}/${r.version}` : r.version);

/** Collection path, e.g. /apis/hm9k.io/v1alpha1/namespaces/x/desiredapps or /api/v1/secrets. */
export function collectionPath(r: ResourceRef, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${r.plural}`;
}

export function resourceFor(kind: KindName): ResourceRef {
  const k = KINDS[kind];
  return { group: GROUP, version: VERSION, plural: k.plural, kind: k.kind, namespaced: k.namespaced };
}

/** Core kinds the runtime itself knows. */
export const CORE = {
  Secret: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  ConfigMap: { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  Event: { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  Namespace: { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
} as const satisfies Record<string, ResourceRef>;
