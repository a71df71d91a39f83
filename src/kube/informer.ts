// A reflector and its cache: LIST (paginated) then WATCH from the list's resourceVersion, with
// bookmarks, a server-side timeout, a watchdog on silence, relist on 410 Gone, jittered backoff on
// errors and a periodic relist as safety net. Handlers get add/update/delete, also for the
// differences a relist finds.
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { keyOf, type Informer, type KubeObject, type ObjectKey, type WatchEventType } from './contract.js';
import type { ListerWatcher, RawWatchEvent, WatchHandle } from './listwatch.js';
import { Backoff, compareResourceVersions, counter, errorMessage, gauge, sleep, statusCodeOf } from './util.js';

export interface InformerConfig {
  /** LIST page size (limit/continue). */
  pageSize: number;
  /** Server-side watch timeout; the server closes the watch after it and we re-watch. */
  watchTimeoutSeconds: number;
  /** Abort and re-watch when no event (bookmarks included) arrived for this long. */
  watchdogMs: number;
  /** Full relist as safety net (0 disables). */
  relistPeriodMs: number;
  /** Timeout of one LIST page. */
  listTimeoutMs: number;
  /** Backoff after errors. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Default timeout of waitForVersion. */
  waitForVersionTimeoutMs: number;
}

export const DEFAULT_INFORMER_CONFIG: InformerConfig = {
  pageSize: 500,
  watchTimeoutSeconds: 300,
  // Longer than the server-side timeout: a healthy watch on objects that do not change is silent
  // until the apiserver closes it (its bookmark comes just before); a shorter watchdog re-watched
  // from the last event's version, which the apiserver may have compacted: 410, a full relist
  // (issue 14 item 9 measured one per minute at 10,000 DesiredApps). The CLI's defaults agree (5m, 10m).
  watchdogMs: 600_000,
  relistPeriodMs: 86_400_000, // (the CLI's default too: a relist LISTs every object; steady state is watches only)
  listTimeoutMs: 60_000,
  backoffInitialMs: 800,
  backoffMaxMs: 30_000,
  waitForVersionTimeoutMs: 30_000,
};

interface VersionWaiter {
  rv: string;
  resolve: () => void;
}

type WatchOutcome = 'closed' | 'gone' | 'watchdog' | 'relist' | 'stopped';

export interface InformerDeps {
  logger: Logger;
  metrics?: Registry;
  labelSelector?: string;
  config?: Partial<InformerConfig>;
}

export class ReflectorInformer<T extends KubeObject> implements Informer<T> {
  readonly config: InformerConfig;
  private readonly cache = new Map<ObjectKey, T>();
  private readonly handlers: { [E in WatchEventType]: ((obj: T, old?: T) => void)[] } = { add: [], update: [], delete: [] };
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private versionWaiters = new Map<ObjectKey, Set<VersionWaiter>>();
  private lastRv = '';
  private lastListAt = 0;
  private stopCtl = new AbortController();
  private running?: Promise<void>;
  private stopCurrentWatch?: () => void;
  private readonly log: Logger;
  private readonly m;
  private malformedLogged = false;

  constructor(
    private readonly lw: ListerWatcher<T>,
    private readonly deps: InformerDeps,
  ) {
    this.config = { ...DEFAULT_INFORMER_CONFIG, ...deps.config };
    this.log = deps.logger.child({ resource: lw.path });
    const reg = deps.metrics ?? new Registry();
    this.m = {
      lists: counter(reg, 'hm9k_informer_lists_total', 'LISTs (full relists) by reason.', ['resource', 'reason']),
      watches: counter(reg, 'hm9k_informer_watch_ends_total', 'Ended watches by outcome.', ['resource', 'outcome']),
      errors: counter(reg, 'hm9k_informer_errors_total', 'List/watch errors (followed by backoff).', ['resource']),
      malformed: counter(reg, 'hm9k_informer_malformed_events_total', 'Watch events ignored as malformed.', ['resource']),
      objects: gauge(reg, 'hm9k_informer_objects', 'Objects in the cache.', ['resource']),
    };
  }

  // ---- Informer (contract) ----
  get(key: ObjectKey): T | undefined {
    return this.cache.get(key);
  }
  list(): T[] {
    return [...this.cache.values()];
  }
  on(event: WatchEventType, handler: (obj: T, old?: T) => void): void {
    this.handlers[event].push(handler);
  }
  hasSynced(): boolean {
    return this.synced;
  }
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        reject(new Error(`informer ${this.lw.path}: aborted before sync`));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(done);
    });
  }
  waitForVersion(key: ObjectKey, resourceVersion: string, timeoutMs = this.config.waitForVersionTimeoutMs): Promise<void> {
    const cur = this.cache.get(key);
    if (cur && this.versionReached(cur.metadata.resourceVersion ?? '', resourceVersion)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let set = this.versionWaiters.get(key);
      if (!set) this.versionWaiters.set(key, (set = new Set()));
      const waiter: VersionWaiter = {
        rv: resourceVersion,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        set.delete(waiter);
        if (set.size === 0) this.versionWaiters.delete(key);
        reject(new Error(`informer ${this.lw.path}: ${key} not at resourceVersion ${resourceVersion} after ${timeoutMs} ms`));
      }, timeoutMs);
      set.add(waiter);
    });
  }

  /** The newest resourceVersion seen (list, event or bookmark). */
  resourceVersion(): string {
    return this.lastRv;
  }

  // ---- lifecycle ----
  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err) => this.log.error({ err: errorMessage(err) }, 'informer loop died'));
  }

  /** Stops the loop; does not wait longer than `graceMs` for a LIST in flight (it is then abandoned). */
  async stop(graceMs = 2000): Promise<void> {
    this.stopCtl.abort();
    this.stopCurrentWatch?.();
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
  }

  /** Forces the current watch to end (tests, diagnostics): the loop re-watches from the last version. */
  restartWatch(): void {
    this.stopCurrentWatch?.();
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ initialMs: this.config.backoffInitialMs, maxMs: this.config.backoffMaxMs, jitter: 0.5 });
    let needList: string | undefined = 'initial';
    const signal = this.stopCtl.signal;
    while (!signal.aborted) {
      try {
        if (!needList && this.config.relistPeriodMs > 0 && Date.now() - this.lastListAt >= this.config.relistPeriodMs) needList = 'periodic';
        if (needList) {
          await this.relist(needList);
          needList = undefined;
          backoff.reset();
        }
        if (signal.aborted) break;
        const started = Date.now();
        const { outcome, events } = await this.watchOnce();
        this.m.watches.inc({ resource: this.lw.path, outcome });
        if (outcome === 'gone') {
          this.log.info({ resourceVersion: this.lastRv }, 'watch: resourceVersion too old (410 Gone), relisting');
          needList = 'gone';
        } else if (outcome === 'watchdog') {
          this.log.warn({ watchdogMs: this.config.watchdogMs }, 'watch silent for too long, re-watching');
        } else if (outcome === 'relist') {
          needList = 'periodic';
        }
        if (events > 0 || Date.now() - started > 1000) backoff.reset();
        else if (outcome === 'closed') await sleep(backoff.next(), signal); // closed at once, no events: do not spin
      } catch (err) {
        if (signal.aborted) break;
        const code = statusCodeOf(err);
        this.m.errors.inc({ resource: this.lw.path });
        if (code === 410) {
          this.log.info('list/watch: 410 Gone, relisting');
          needList = 'gone';
          continue;
        }
        const delay = backoff.next();
        this.log.warn({ err: errorMessage(err), retryInMs: delay, attempt: backoff.attempts }, 'list/watch failed, backing off');
        await sleep(delay, signal);
      }
    }
  }

  private async relist(reason: string): Promise<void> {
    this.m.lists.inc({ resource: this.lw.path, reason });
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.lw.list({
        limit: this.config.pageSize,
        continue: cont,
        labelSelector: this.deps.labelSelector,
        timeoutMs: this.config.listTimeoutMs,
      });
      items.push(...page.items);
      rv = page.resourceVersion;
      cont = page.continue;
    } while (cont && !this.stopCtl.signal.aborted);
    if (this.stopCtl.signal.aborted) return;
    this.replace(items, rv);
    this.lastListAt = Date.now();
    this.log.debug({ count: items.length, resourceVersion: rv, reason }, 'listed');
  }

  /** Replaces the cache with a full list, firing add/update/delete for the differences. */
  private replace(items: T[], rv: string): void {
    const fresh = new Map<ObjectKey, T>();
    for (const o of items) {
      if (!isObject(o)) {
        this.malformed('list item without metadata.name');
        continue;
      }
      fresh.set(keyOf(o), o);
    }
    const diff = diffCache(this.cache, fresh);
    this.lastRv = rv;
    for (const [key, obj] of fresh) this.cache.set(key, obj);
    for (const key of diff.deleted) this.cache.delete(key);
    this.m.objects.set({ resource: this.lw.path }, this.cache.size);
    for (const o of diff.added) this.fire('add', o);
    for (const [o, old] of diff.updated) this.fire('update', o, old);
    for (const [, old] of diff.deletedObjs) this.fire('delete', old);
    for (const key of [...this.versionWaiters.keys()]) this.checkWaiters(key);
    if (!this.synced) {
      this.synced = true;
      const ws = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of ws) w();
    }
  }

  private watchOnce(): Promise<{ outcome: WatchOutcome; events: number }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let handle: WatchHandle | undefined;
      let events = 0;
      let dog: NodeJS.Timeout | undefined;
      let relistTimer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(dog);
        clearTimeout(relistTimer);
        this.stopCurrentWatch = undefined;
        try {
          handle?.abort();
        } catch {
          /* already closed */
        }
        fn();
      };
      const arm = () => {
        clearTimeout(dog);
        dog = setTimeout(() => finish(() => resolve({ outcome: 'watchdog', events })), this.config.watchdogMs);
      };
      arm();
      if (this.config.relistPeriodMs > 0) {
        const due = Math.max(0, this.lastListAt + this.config.relistPeriodMs - Date.now());
        relistTimer = setTimeout(() => finish(() => resolve({ outcome: 'relist', events })), due);
      }
      this.stopCurrentWatch = () => finish(() => resolve({ outcome: 'stopped', events }));
      const onEvent = (ev: RawWatchEvent) => {
        if (settled) return;
        arm();
        events++;
        const r = this.applyEvent(ev);
        if (r === 'gone') finish(() => resolve({ outcome: 'gone', events }));
        else if (r instanceof Error) finish(() => reject(r));
      };
      const onDone = (err?: unknown) => {
        if (settled) return;
        if (!err) return finish(() => resolve({ outcome: 'closed', events }));
        if (statusCodeOf(err) === 410) return finish(() => resolve({ outcome: 'gone', events }));
        finish(() => reject(err));
      };
      this.lw
        .watch(
          { resourceVersion: this.lastRv, timeoutSeconds: this.config.watchTimeoutSeconds, allowWatchBookmarks: true, labelSelector: this.deps.labelSelector },
          onEvent,
          onDone,
        )
        .then(
          (h) => {
            handle = h;
            if (settled) h.abort();
          },
          (err) => onDone(err ?? new Error('watch failed')),
        );
    });
  }

  /** Applies one watch event to the cache. Returns 'gone' for a 410 ERROR, an Error for another ERROR. */
  private applyEvent(ev: RawWatchEvent): void | 'gone' | Error {
    switch (ev.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const o = ev.object as T;
        if (!isObject(o)) return this.malformed(`${ev.type} without metadata.name`);
        const key = keyOf(o);
        const old = this.cache.get(key);
        this.cache.set(key, o);
        if (o.metadata.resourceVersion) this.lastRv = o.metadata.resourceVersion;
        this.m.objects.set({ resource: this.lw.path }, this.cache.size);
        if (!old) this.fire('add', o);
        else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) this.fire('update', o, old);
        this.checkWaiters(key);
        return;
      }
      case 'DELETED': {
        const o = ev.object as T;
        if (!isObject(o)) return this.malformed('DELETED without metadata.name');
        const key = keyOf(o);
        const old = this.cache.get(key);
        this.cache.delete(key);
        if (o.metadata.resourceVersion) this.lastRv = o.metadata.resourceVersion;
        this.m.objects.set({ resource: this.lw.path }, this.cache.size);
        if (old) this.fire('delete', o, old);
        this.checkWaiters(key, true);
        return;
      }
      case 'BOOKMARK': {
        const rv = (ev.object as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
        if (rv) this.lastRv = rv;
        else this.malformed('BOOKMARK without resourceVersion');
        return;
      }
      case 'ERROR': {
        const st = (ev.object ?? {}) as { code?: number; message?: string; reason?: string };
        if (st.code === 410 || st.reason === 'Expired' || st.reason === 'Gone') return 'gone';
        return Object.assign(new Error(`watch ERROR: ${st.code ?? '?'} ${st.message ?? ''}`), { code: st.code });
      }
      default:
        return this.malformed(`unknown event type ${String(ev.type).slice(0, 40)}`);
    }
  }

  private malformed(what: string): void {
    this.m.malformed.inc({ resource: this.lw.path });
    if (!this.malformedLogged) {
      this.malformedLogged = true;
      this.log.warn({ what }, 'ignoring malformed watch data (logged once)');
    }
  }

  private fire(event: WatchEventType, obj: T, old?: T): void {
    for (const h of this.handlers[event]) {
      try {
        h(obj, old);
      } catch (err) {
        this.log.error({ err: errorMessage(err), event, key: keyOf(obj) }, 'informer handler threw');
      }
    }
  }

  private versionReached(have: string, want: string): boolean {
    const c = compareResourceVersions(have, want);
    return c === 0 || c > 0;
  }

  private checkWaiters(key: ObjectKey, deleted = false): void {
    const set = this.versionWaiters.get(key);
    if (!set) return;
    const cur = this.cache.get(key);
    for (const w of [...set]) {
      const have = cur?.metadata.resourceVersion ?? (deleted ? this.lastRv : '');
      const c = have ? compareResourceVersions(have, w.rv) : Number.NaN;
      // Non-numeric versions cannot be ordered: any change (or relist) observed after the wait began counts.
      if (c >= 0 || (Number.isNaN(c) && have !== '')) {
        set.delete(w);
        w.resolve();
      }
    }
    if (set.size === 0) this.versionWaiters.delete(key);
  }
}

function isObject(o: unknown): o is KubeObject {
  const m = (o as KubeObject | undefined)?.metadata;
  return !!m && typeof m.name === 'string' && m.name !== '';
}

/** Pure: what a relist changes in the cache. Updates are objects whose resourceVersion differs. */
export function diffCache<T extends KubeObject>(
  cache: ReadonlyMap<ObjectKey, T>,
  fresh: ReadonlyMap<ObjectKey, T>,
): { added: T[]; updated: [T, T][]; deleted: ObjectKey[]; deletedObjs: [ObjectKey, T][] } {
  const added: T[] = [];
  const updated: [T, T][] = [];
  const deletedObjs: [ObjectKey, T][] = [];
  for (const [key, o] of fresh) {
    const old = cache.get(key);
    if (!old) added.push(o);
    else if (old.metadata.resourceVersion !== o.metadata.resourceVersion) updated.push([o, old]);
  }
  for (const [key, old] of cache) if (!fresh.has(key)) deletedObjs.push([key, old]);
  return { added, updated, deleted: deletedObjs.map(([k]) => k), deletedObjs };
}
