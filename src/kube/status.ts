// Status writes: merge-patch /status only when it differs from what the object (or our own last
// write, while the cache lags) says; rate-limited per object and under a global token-bucket budget
// (over budget = delayed, latest status wins, never dropped); conflicts and transient errors retried.
// updateStatus = PUT /status with the object's resourceVersion (intent records), ConflictError on 409.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from './client.js';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { KindName } from '../api/index.js';
import { ConflictError, keyOf, type KubeObject, type ResourceByKind, type StatusWriter } from './contract.js';
import { resourceFor, type ResourceRef } from './resources.js';
import { Backoff, TokenBucket, compareResourceVersions, counter, deepEqual, errorMessage, mergePatch, sleep, statusCodeOf } from './util.js';

export interface StatusWriterConfig {
  /** Minimum time between two writes of one object. */
  perObjectIntervalMs: number;
  /** Global write budget: sustained writes per second and burst. */
  qps: number;
  burst: number;
  /** Retries of one write on 409/429/5xx/network errors. */
  maxRetries: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** How many objects' last writes to remember (to tolerate a lagging cache). */
  maxTracked: number;
}

export const DEFAULT_STATUS_CONFIG: StatusWriterConfig = {
  perObjectIntervalMs: 1000,
  qps: 20,
  burst: 50,
  maxRetries: 5,
  retryInitialMs: 100,
  retryMaxMs: 5000,
  maxTracked: 10_000,
};

/** The two calls the writer makes (CustomObjectsApi by default; replaceable in tests). */
export interface StatusClient {
  patchStatus(ref: ResourceRef, namespace: string | undefined, name: string, patch: unknown): Promise<KubeObject>;
  replaceStatus(ref: ResourceRef, namespace: string | undefined, name: string, body: unknown): Promise<KubeObject>;
}

export function customObjectsStatusClient(kc: KubeConfig): StatusClient {
  const api = kc.makeApiClient(CustomObjectsApi);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  return {
    async patchStatus(ref, namespace, name, body) {
      const base = { group: ref.group, version: ref.version, plural: ref.plural, name, body };
      return (ref.namespaced
        ? await api.patchNamespacedCustomObjectStatus({ ...base, namespace: namespace ?? '' }, merge)
        : await api.patchClusterCustomObjectStatus(base, merge)) as KubeObject;
    },
    async replaceStatus(ref, namespace, name, body) {
      const base = { group: ref.group, version: ref.version, plural: ref.plural, name, body };
      return (ref.namespaced
        ? await api.replaceNamespacedCustomObjectStatus({ ...base, namespace: namespace ?? '' })
        : await api.replaceClusterCustomObjectStatus(base)) as KubeObject;
    },
  };
}

/** Pure: the status the server has, as far as we know: our own last write when the object is older. */
export function effectiveStatus(obj: KubeObject, lastWritten?: { status: unknown; resourceVersion: string }): unknown {
  if (!lastWritten) return obj.status;
  const rv = obj.metadata.resourceVersion ?? '';
  const c = compareResourceVersions(rv, lastWritten.resourceVersion);
  return c < 0 ? lastWritten.status : obj.status;
}

/** Pure: the merge patch body for a status change, or undefined when nothing changes. */
export function statusPatch(current: unknown, desired: unknown): { status: unknown } | undefined {
  if (deepEqual(current, desired)) return undefined;
  return { status: current === undefined || current === null ? desired : mergePatch(current, desired) };
}

interface Pending {
  obj: KubeObject;
  status: unknown;
  promise: Promise<boolean>;
}

export class RateLimitedStatusWriter implements StatusWriter {
  readonly config: StatusWriterConfig;
  private readonly bucket: TokenBucket;
  private readonly pending = new Map<string, Pending>();
  private readonly lastWritten = new Map<string, { status: unknown; resourceVersion: string }>();
  private readonly lastWriteAt = new Map<string, number>();
  private readonly log: Logger;
  private readonly m;
  private closed = false;

  constructor(
    private readonly client: StatusClient,
    opts: { logger: Logger; metrics?: Registry; config?: Partial<StatusWriterConfig> },
  ) {
    this.config = { ...DEFAULT_STATUS_CONFIG, ...opts.config };
    this.bucket = new TokenBucket(this.config.qps, this.config.burst, Date.now());
    this.log = opts.logger;
    const reg = opts.metrics ?? new Registry();
    this.m = {
      writes: counter(reg, 'hm9k_status_writes_total', 'Status write requests sent to the API server, by kind and result.', ['kind', 'result']),
      unchanged: counter(reg, 'hm9k_status_unchanged_total', 'Status writes skipped because nothing changed.', ['kind']),
      delayed: counter(reg, 'hm9k_status_delayed_total', 'Status writes delayed by the per-object or global rate limit.', ['kind']),
    };
  }

  /** Requests sent so far for `kind` (all results), read from the metric. */
  async requestCount(kind?: string): Promise<number> {
    const v = await this.m.writes.get();
    return v.values.filter((x) => !kind || x.labels.kind === kind).reduce((a, x) => a + x.value, 0);
  }

  patchStatus<K extends KindName>(kind: K, obj: ResourceByKind[K], status: NonNullable<ResourceByKind[K]['status']>): Promise<boolean> {
    return this.patchStatusOf(resourceFor(kind), obj, status);
  }

  /** patchStatus for any kind with a status subresource served by CustomObjectsApi. */
  patchStatusOf(ref: ResourceRef, obj: KubeObject, status: unknown): Promise<boolean> {
    const k = `${ref.kind}:${keyOf(obj)}`;
    const snapshot = structuredClone(status);
    const pend = this.pending.get(k);
    if (pend) {
      // Latest wins: the delayed write will carry this status.
      pend.status = snapshot;
      pend.obj = obj;
      return pend.promise;
    }
    if (deepEqual(effectiveStatus(obj, this.lastWritten.get(k)), snapshot)) {
      this.m.unchanged.inc({ kind: ref.kind });
      return Promise.resolve(false);
    }
    const p: Pending = { obj, status: snapshot, promise: Promise.resolve(false) };
    this.pending.set(k, p);
    p.promise = (async () => {
      try {
        await this.waitTurn(k, ref.kind);
      } finally {
        this.pending.delete(k);
      }
      const current = effectiveStatus(p.obj, this.lastWritten.get(k));
      const body = statusPatch(current, p.status);
      if (!body) {
        this.m.unchanged.inc({ kind: ref.kind });
        return false;
      }
      const stored = await this.send(ref, k, 'patch', () => this.client.patchStatus(ref, p.obj.metadata.namespace, p.obj.metadata.name, body));
      if (!stored) return false;
      this.remember(k, p.status, stored);
      return true;
    })();
    return p.promise;
  }

  async updateStatus<K extends KindName>(kind: K, obj: ResourceByKind[K]): Promise<ResourceByKind[K]> {
    return (await this.updateStatusOf(resourceFor(kind), obj)) as ResourceByKind[K];
  }

  async updateStatusOf(ref: ResourceRef, obj: KubeObject): Promise<KubeObject> {
    if (!obj.metadata.resourceVersion) throw new Error(`updateStatus ${ref.kind} ${keyOf(obj)}: object has no resourceVersion`);
    const k = `${ref.kind}:${keyOf(obj)}`;
    await this.waitTurn(k, ref.kind);
    let stored: KubeObject;
    try {
      this.lastWriteAt.set(k, Date.now());
      stored = await this.client.replaceStatus(ref, obj.metadata.namespace, obj.metadata.name, obj);
      this.m.writes.inc({ kind: ref.kind, result: 'success' });
    } catch (err) {
      const code = statusCodeOf(err);
      this.m.writes.inc({ kind: ref.kind, result: code === 409 ? 'conflict' : 'error' });
      if (code === 409) throw new ConflictError(`updateStatus ${ref.kind} ${keyOf(obj)}: conflict (resourceVersion ${obj.metadata.resourceVersion} is stale)`);
      throw err;
    }
    this.remember(k, stored.status, stored);
    return stored;
  }

  /** Stops delaying: pending writes are attempted at once (shutdown). */
  close(): void {
    this.closed = true;
  }

  private remember(k: string, status: unknown, stored: KubeObject): void {
    const rv = stored.metadata?.resourceVersion;
    if (!rv) return;
    this.lastWritten.delete(k);
    this.lastWritten.set(k, { status: structuredClone(status), resourceVersion: rv });
    while (this.lastWritten.size > this.config.maxTracked) {
      const first = this.lastWritten.keys().next().value as string;
      this.lastWritten.delete(first);
      this.lastWriteAt.delete(first);
    }
  }

  /** Waits for the per-object interval and a token of the global budget. */
  private async waitTurn(k: string, kind: string): Promise<void> {
    let delayed = false;
    for (;;) {
      if (this.closed) return;
      const now = Date.now();
      const last = this.lastWriteAt.get(k);
      const perObject = last === undefined ? 0 : Math.max(0, last + this.config.perObjectIntervalMs - now);
      const global = this.bucket.waitTime(now);
      const wait = Math.max(perObject, global);
      if (wait === 0 && this.bucket.tryTake(now)) break;
      if (!delayed) {
        delayed = true;
        this.m.delayed.inc({ kind });
      }
      await sleep(Math.max(1, wait));
    }
    this.lastWriteAt.set(k, Date.now());
  }

  /** Sends one write with retries; returns the stored object, or undefined when the object is gone. */
  private async send(ref: ResourceRef, k: string, what: string, call: () => Promise<KubeObject>): Promise<KubeObject | undefined> {
    const backoff = new Backoff({ initialMs: this.config.retryInitialMs, maxMs: this.config.retryMaxMs });
    for (let attempt = 0; ; attempt++) {
      try {
        const stored = await call();
        this.m.writes.inc({ kind: ref.kind, result: 'success' });
        return stored;
      } catch (err) {
        const code = statusCodeOf(err);
        if (code === 404) {
          this.m.writes.inc({ kind: ref.kind, result: 'not_found' });
          this.log.debug({ object: k }, 'status write: object is gone');
          return undefined;
        }
        const retriable = code === undefined || code === 409 || code === 429 || code >= 500;
        this.m.writes.inc({ kind: ref.kind, result: code === 409 ? 'conflict' : 'error' });
        if (!retriable || attempt >= this.config.maxRetries) {
          this.log.error({ object: k, err: errorMessage(err), attempt }, `status ${what} failed`);
          throw err;
        }
        await sleep(backoff.next());
      }
    }
  }
}
