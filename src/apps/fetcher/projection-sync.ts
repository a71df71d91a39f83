// Keeps the DesiredApp objects in step with the desired state the fetcher accepted, and reads back
// what people set on them (the overrides: paused, crashBackoff). Owns the informer's view: which
// object belongs to which app, and whether the objects already project the desired state (then no
// LIST and no write). Disabled (no informer, no writes, no overrides) when projection is off.
// The projection is a view, not an input: it runs in the background, one sync at a time (requests
// while one runs coalesce into one more), and never holds back fetching, analysis or sending.
import type { Logger } from 'pino';
import type { AppsConfig } from '../config.js';
import type { DesiredApp } from '../../api/index.js';
import { keyOf, type Informer } from '../../kube/contract.js';
import type { MemoryStore } from '../store/memory.js';
import type { AppOverrides } from '../types.js';
import { DesiredAppProjection, isManaged, isProjectable, sameProjection, type ProjectionResult } from './projection.js';

export interface ProjectionSyncDeps {
  store: MemoryStore;
  namespace: string;
  logger: Logger;
  /** Absent when projection is off. */
  informer?: Informer<DesiredApp>;
  projection?: DesiredAppProjection;
  /** An app's object was created or its spec changed (its status must be written). */
  onObjectChanged?: (guid: string) => void;
  /** An app's object is gone. */
  onObjectDeleted?: (guid: string) => void;
  /** Writes are wanted (this process leads); checked before each write. */
  writing?: () => boolean;
  config?: () => AppsConfig;
}

export const guidOf = (o: DesiredApp) => o.spec?.appGuid ?? o.metadata.name;

export class ProjectionSync {
  /** Informer key of the object of each app (name = guid unless a person named it otherwise). */
  private readonly keyByGuid = new Map<string, string>();
  /** Overrides recomputed only when an object or the desired state changed (asked every cycle). */
  private overridesCache: { desired: unknown; value: ReadonlyMap<string, AppOverrides> } | undefined;
  /** A managed object of a desired app was deleted: recreate it without waiting for a fetch. */
  dirty = false;
  last: ProjectionResult | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Syncs completed (tests). */
  syncs = 0;

  constructor(private readonly deps: ProjectionSyncDeps) {
    const inf = deps.informer;
    if (!inf) return;
    const track = (o: DesiredApp) => {
      this.keyByGuid.set(guidOf(o), keyOf(o));
      deps.onObjectChanged?.(guidOf(o));
    };
    inf.on('add', (o) => {
      this.overridesCache = undefined;
      track(o);
    });
    inf.on('update', (o, old) => {
      if (old && old.metadata.generation === o.metadata.generation && old.metadata.uid === o.metadata.uid && guidOf(old) === guidOf(o)) return; // a status write (ours)
      this.overridesCache = undefined;
      track(o);
    });
    inf.on('delete', (o) => {
      this.overridesCache = undefined;
      const guid = guidOf(o);
      if (this.keyByGuid.get(guid) === keyOf(o)) this.keyByGuid.delete(guid);
      deps.onObjectDeleted?.(guid);
      // A managed object deleted while its app is desired is recreated soon (never means "undesired").
      if (isManaged(o) && deps.store.desired().has(guid)) this.dirty = true;
    });
  }

  get enabled(): boolean {
    return !!this.deps.projection;
  }

  /** Whether the informer has listed once (never lead on unknown overrides). */
  hasSynced(): boolean {
    return !this.deps.informer || this.deps.informer.hasSynced();
  }

  objectFor(app: string): DesiredApp | undefined {
    return this.deps.informer?.get(this.keyByGuid.get(app) ?? `${this.deps.namespace}/${app}`);
  }

  overrides(): ReadonlyMap<string, AppOverrides> {
    const inf = this.deps.informer;
    if (!inf) return this.deps.projection?.overrides() ?? new Map();
    const desired = this.deps.store.desired();
    if (!this.overridesCache || this.overridesCache.desired !== desired) this.overridesCache = { desired, value: DesiredAppProjection.overridesFrom(inf.list(), desired) };
    return this.overridesCache.value;
  }

  pausedApps(): Set<string> {
    return new Set([...this.overrides()].filter(([, o]) => o.paused).map(([k]) => k));
  }

  /** Whether the objects (as the informer sees them) already project the desired state. */
  inSync(): boolean {
    const inf = this.deps.informer;
    if (!inf || !inf.hasSynced()) return false;
    const desired = this.deps.store.desired();
    for (const [guid, d] of desired) {
      const o = this.objectFor(guid);
      if (!o) {
        if (isProjectable(guid)) return false;
        continue; // not projectable (name rules): sync would skip it too
      }
      if (isManaged(o) && !sameProjection(o.spec, d)) return false;
    }
    for (const o of inf.list()) if (isManaged(o) && !desired.has(guidOf(o))) return false;
    return true;
  }

  /** After a fetch: project when never projected, when objects were deleted, or when the desired state changed and the objects differ. Never waits. */
  afterFetch(before: unknown): void {
    if (!this.deps.projection) return;
    if (this.last && !this.dirty && (this.deps.store.desired() === before || this.inSync())) return;
    this.request();
  }

  /** Recreates deleted objects of desired apps (never waits). */
  resync(): void {
    this.request();
  }

  /** Whether a sync is running or asked for. */
  busy(): boolean {
    return !!this.running;
  }

  /** Resolves when no sync runs (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle();
  }

  private request(): void {
    if (!this.deps.projection || this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.syncOnce();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async syncOnce(): Promise<void> {
    const { projection, store, logger, informer } = this.deps;
    if (!projection) return;
    const cfg = this.deps.config?.();
    if (cfg) projection.setLimits(cfg.projection);
    this.dirty = false;
    const wanted = () => !this.stopped && (this.deps.writing?.() ?? true);
    try {
      // The informer's cache is the objects as they are (no LIST); without one, one paginated LIST.
      const existing = informer?.hasSynced() ? informer.list() : undefined;
      this.last = await projection.sync(store.desired(), existing, wanted);
      this.syncs++;
      const r = this.last;
      if (r.created || r.updated || r.deleted) logger.info({ created: r.created, updated: r.updated, deleted: r.deleted }, 'DesiredApp projection updated');
      if (r.abandoned) this.last = undefined; // (leadership lost: a new leader projects again)
    } catch (err) {
      // Retried after the next fetch, not at once: a failing apiserver is not hammered.
      logger.error({ err: (err as Error).message }, 'DesiredApp projection failed (retried after the next fetch)');
      this.last = undefined;
    }
  }
}
