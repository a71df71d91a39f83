// The DesiredApp projection: the visible copy of the desired state that hm9k acts on (the fetcher's
// last good snapshot), one object per app in a configured namespace, name = app guid.
// hm9k creates, updates and deletes only the objects it manages (label
// app.kubernetes.io/managed-by=hm9k); nothing is written when nothing changed. People may set only
// the overrides (`paused`, `crashBackoff`), honoured while the object exists. An object for an app
// CC does not list is reported (returned as `unknown`) and ignored; a missing object never means
// "undesired". Writes are bounded-parallel and rate-limited (100,000 apps must not flood the
// apiserver); the objects as they are come from the informer's cache when there is one (no LIST).
import { CustomObjectsApi, type KubeConfig } from '../../kube/client.js';
import { API_VERSION, GROUP, KINDS, MANAGED_BY_LABEL, VERSION, type DesiredApp, type DesiredAppSpec } from '../../api/index.js';
import type { AppOverrides, DesiredAppState } from '../types.js';
import { shareKeepAliveAgent } from '../../kube/agent.js';
import { WritePool } from './write-pool.js';

export const MANAGED_BY = 'hm9k';
const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Whether an app guid can name its object (else it is not projected). */
export const isProjectable = (guid: string) => NAME_RE.test(guid);

/** The four calls the projection makes (the apiserver through CustomObjectsApi, or a fake in tests). */
export interface DesiredAppApi {
  /** One page of a LIST (limit/continue). */
  listPage(namespace: string, limit: number, cont?: string): Promise<{ items: DesiredApp[]; continue?: string }>;
  create(namespace: string, obj: DesiredApp): Promise<void>;
  replace(namespace: string, obj: DesiredApp): Promise<void>;
  delete(namespace: string, name: string, resourceVersion?: string): Promise<void>;
}

export function kubeDesiredAppApi(kc: KubeConfig): DesiredAppApi {
  const api = shareKeepAliveAgent(kc).makeApiClient(CustomObjectsApi);
  const plural = KINDS.DesiredApp.plural;
  return {
    async listPage(namespace, limit, cont) {
      const r = (await api.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, limit, ...(cont ? { _continue: cont } : {}) })) as { items: DesiredApp[]; metadata?: { continue?: string } };
      return { items: r.items, ...(r.metadata?.continue ? { continue: r.metadata.continue } : {}) };
    },
    async create(namespace, obj) {
      await api.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, body: obj, fieldManager: 'hm9k' });
    },
    async replace(namespace, obj) {
      await api.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name: obj.metadata.name, body: obj, fieldManager: 'hm9k' });
    },
    async delete(namespace, name, resourceVersion) {
      await api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name, ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}) });
    },
  };
}

export interface ProjectionResult {
  created: number;
  updated: number;
  deleted: number;
  /** Objects for apps CC does not list (not managed by hm9k): reported and ignored. */
  unknown: DesiredApp[];
  /** Apps whose guid is not a valid object name (not projected). */
  skipped: string[];
  /** Every object seen, by app guid (for status). */
  objects: Map<string, DesiredApp>;
  /** Writes that failed (retried at the next sync). */
  failed: number;
  /** Writes skipped because the sync was no longer wanted (leadership lost, stopping). */
  abandoned: number;
}

const specOf = (d: DesiredAppState, keep?: DesiredAppSpec): DesiredAppSpec => ({
  appGuid: d.appGuid,
  version: d.version,
  instances: d.instances,
  state: d.state,
  packageState: d.packageState,
  ...(keep?.paused !== undefined ? { paused: keep.paused } : {}),
  ...(keep?.crashBackoff !== undefined ? { crashBackoff: keep.crashBackoff } : {}),
});

export const sameProjection = (a: DesiredAppSpec, d: DesiredAppState) =>
  a.appGuid === d.appGuid && a.version === d.version && a.instances === d.instances && a.state === d.state && a.packageState === d.packageState;

export const isManaged = (o: DesiredApp) => o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;

/** How hard the projection may write to the apiserver. */
export interface ProjectionLimits {
  /** Writes (create, replace, delete) in flight at once. */
  maxInFlight: number;
  /** Writes started per second at most. */
  writesPerSecond: number;
}

export const DEFAULT_PROJECTION_LIMITS: ProjectionLimits = { maxInFlight: 10, writesPerSecond: 100 };

const isConflictOrExists = (err: unknown) => (err as { code?: number }).code === 409;
const isNotFound = (err: unknown) => (err as { code?: number }).code === 404;

export class DesiredAppProjection {
  private overridesByApp = new Map<string, AppOverrides>();
  private readonly pool: WritePool;
  constructor(
    private readonly api: DesiredAppApi,
    readonly namespace: string,
    private readonly pageSize = 500,
    limits: ProjectionLimits = DEFAULT_PROJECTION_LIMITS,
  ) {
    this.pool = new WritePool({ maxInFlight: limits.maxInFlight, perSecond: limits.writesPerSecond });
  }

  setLimits(l: ProjectionLimits): void {
    this.pool.setLimits({ maxInFlight: l.maxInFlight, perSecond: l.writesPerSecond });
  }

  async listAll(): Promise<DesiredApp[]> {
    const out: DesiredApp[] = [];
    let cont: string | undefined;
    do {
      const page = await this.api.listPage(this.namespace, this.pageSize, cont);
      out.push(...page.items);
      cont = page.continue;
    } while (cont);
    return out;
  }

  /** Overrides from the objects as last listed (or as the informer reports, see setOverrides). */
  overrides(): ReadonlyMap<string, AppOverrides> {
    return this.overridesByApp;
  }

  static overridesFrom(objects: Iterable<DesiredApp>, desired: ReadonlyMap<string, DesiredAppState>): Map<string, AppOverrides> {
    const out = new Map<string, AppOverrides>();
    for (const o of objects) {
      const guid = o.spec?.appGuid ?? o.metadata.name;
      if (!desired.has(guid)) continue; // an object for an app CC does not list is ignored
      if (o.spec?.paused || o.spec?.crashBackoff) out.set(guid, { ...(o.spec.paused ? { paused: true } : {}), ...(o.spec.crashBackoff ? { crashBackoff: o.spec.crashBackoff } : {}) });
    }
    return out;
  }

  setOverrides(o: Map<string, AppOverrides>): void {
    this.overridesByApp = o;
  }

  /**
   * Makes the objects project `desired`. `existing`: the objects as the informer sees them (else one
   * paginated LIST). `stillWanted`: checked before each write (leadership lost, process stopping:
   * the writes not yet started are skipped and the result says so). A create that finds the object
   * (409) and a delete that finds none (404) are not errors: the cache was behind.
   */
  async sync(desired: ReadonlyMap<string, DesiredAppState>, existing?: readonly DesiredApp[], stillWanted: () => boolean = () => true): Promise<ProjectionResult> {
    const objects = existing ?? (await this.listAll());
    const byGuid = new Map<string, DesiredApp>();
    for (const o of objects) byGuid.set(o.spec?.appGuid ?? o.metadata.name, o);
    const result: ProjectionResult = { created: 0, updated: 0, deleted: 0, unknown: [], skipped: [], objects: byGuid, failed: 0, abandoned: 0 };
    const writes: Promise<void>[] = [];
    let firstError: Error | undefined;
    const write = (what: () => Promise<void>, done: () => void, ok: (err: unknown) => boolean) =>
      writes.push(
        this.pool.run(async () => {
          if (!stillWanted()) {
            result.abandoned++;
            return;
          }
          try {
            await what();
            done();
          } catch (err) {
            if (ok(err)) return;
            result.failed++;
            firstError ??= err as Error;
          }
        }),
      );

    for (const [guid, d] of desired) {
      const obj = byGuid.get(guid);
      if (!obj) {
        if (!NAME_RE.test(guid)) {
          result.skipped.push(guid);
          continue;
        }
        const created: DesiredApp = {
          apiVersion: API_VERSION,
          kind: 'DesiredApp',
          metadata: { name: guid, namespace: this.namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY } },
          spec: specOf(d),
        };
        byGuid.set(guid, created);
        write(() => this.api.create(this.namespace, created), () => result.created++, isConflictOrExists);
      } else if (isManaged(obj) && !sameProjection(obj.spec, d)) {
        const updated: DesiredApp = { ...obj, spec: specOf(d, obj.spec) };
        byGuid.set(guid, updated);
        write(() => this.api.replace(this.namespace, updated), () => result.updated++, () => false);
      }
      // An object a person created for a listed app: its overrides are honoured, its spec is theirs.
    }
    for (const [guid, obj] of byGuid) {
      if (desired.has(guid)) continue;
      if (isManaged(obj)) {
        byGuid.delete(guid);
        write(() => this.api.delete(this.namespace, obj.metadata.name, obj.metadata.resourceVersion), () => result.deleted++, isNotFound);
      } else {
        result.unknown.push(obj);
      }
    }
    await Promise.all(writes);
    this.overridesByApp = DesiredAppProjection.overridesFrom(byGuid.values(), desired);
    if (firstError) throw Object.assign(new Error(`${result.failed} DesiredApp writes failed (first: ${firstError.message}); created ${result.created}, updated ${result.updated}, deleted ${result.deleted}`), { result });
    return result;
  }
}
