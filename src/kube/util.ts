// Small shared helpers of the runtime: sleeping with abort, jittered backoff, token buckets, deep
// equality, resourceVersion comparison, error classification and idempotent metric registration.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface BackoffOptions {
  /** First delay (ms). */
  initialMs: number;
  /** Upper bound (ms). */
  maxMs: number;
  /** Growth per failure. */
  factor?: number;
  /** Randomisation: the delay is multiplied by a factor in [1 - jitter, 1 + jitter]. */
  jitter?: number;
}

/** Jittered exponential backoff (stateful; `reset()` after a success). */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    const { initialMs, maxMs, factor = 2, jitter = 0.2 } = this.opts;
    const base = Math.min(maxMs, initialMs * Math.pow(factor, this.attempt));
    this.attempt++;
    const j = 1 - jitter + 2 * jitter * this.random();
    return Math.min(maxMs, Math.max(0, Math.round(base * j)));
  }
  reset(): void {
    this.attempt = 0;
  }
  get attempts(): number {
    return this.attempt;
  }
}

/** A token bucket: `qps` tokens per second, at most `burst` stored. Time is passed in (pure-ish). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly qps: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }
  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
    }
  }
  /** Takes a token if one is available. */
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
  /** Reserves a token and returns how long (ms) the caller must wait before using it (0 = now). */
  reserve(now: number): number {
    this.refill(now);
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return Math.ceil((-this.tokens / this.qps) * 1000);
  }
  /** Milliseconds until a token is available (0 = now), without taking one. */
  waitTime(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) / this.qps) * 1000);
  }
  /** True when the bucket is full (so it can be forgotten). */
  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
}

/** Structural equality of JSON values; object key order does not matter; `undefined` members are ignored. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bb[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  if (ak.length !== bk.length) return false;
  for (const k of ak) {
    if (!(k in bo) || !deepEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/**
 * RFC 7386 merge patch that turns `from` into `to`: changed members only, `null` for removed
 * members, arrays and scalars replaced whole.
 */
export function mergePatch(from: unknown, to: unknown): unknown {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObj(from) || !isObj(to)) return to === undefined ? null : to;
  const patch: Record<string, unknown> = {};
  for (const k of Object.keys(from)) {
    if (from[k] !== undefined && to[k] === undefined) patch[k] = null;
  }
  for (const k of Object.keys(to)) {
    const tv = to[k];
    if (tv === undefined) continue;
    if (deepEqual(from[k], tv)) continue;
    patch[k] = isObj(from[k]) && isObj(tv) ? mergePatch(from[k], tv) : tv;
  }
  return patch;
}

/**
 * Compares resourceVersions: negative when a < b, 0 when equal, positive when a > b. Numeric
 * versions (etcd revisions) compare as integers; anything else only compares equal or not (NaN).
 */
export function compareResourceVersions(a: string, b: string): number {
  if (a === b) return 0;
  if (/^[0-9]+$/.test(a) && /^[0-9]+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return Number.NaN;
}

/** HTTP status of an error from client-node (ApiException.code, Watch's statusCode) or undefined. */
export function statusCodeOf(err: unknown): number | undefined {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown; status?: unknown };
    for (const v of [e.code, e.statusCode, e.status]) if (typeof v === 'number' && v >= 100 && v < 600) return v;
  }
  return undefined;
}

/** A short, log-safe description of an error (never the request, which may carry credentials). */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = statusCodeOf(err);
    let msg = err.message.split('\n')[0] ?? '';
    const body = (err as { body?: unknown }).body;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) msg = parsed.message;
      } catch {
        /* not JSON */
      }
    }
    return code ? `${code}: ${msg.slice(0, 500)}` : msg.slice(0, 500);
  }
  return String(err).slice(0, 500);
}

/** Rejects with a timeout error after `ms` unless `p` settles first (p keeps running). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(Object.assign(new Error(`${what}: timed out after ${ms} ms`), { timeout: true })), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

// Idempotent metric registration: several queues/controllers/informers share one registry.
export function counter<L extends string>(reg: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = reg.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter<L>({ name, help, labelNames: [...labelNames], registers: [reg] });
}
export function gauge<L extends string>(reg: Registry, name: string, help: string, labelNames: readonly L[]): Gauge<L> {
  const existing = reg.getSingleMetric(name);
  if (existing) return existing as Gauge<L>;
  return new Gauge<L>({ name, help, labelNames: [...labelNames], registers: [reg] });
}
export function histogram<L extends string>(
  reg: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  buckets: number[],
): Histogram<L> {
  const existing = reg.getSingleMetric(name);
  if (existing) return existing as Histogram<L>;
  return new Histogram<L>({ name, help, labelNames: [...labelNames], buckets, registers: [reg] });
}

/** controller-runtime's buckets for queue and work durations (seconds). */
export const DURATION_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];
/** controller-runtime's buckets for reconcile time (seconds). */
export const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60];
