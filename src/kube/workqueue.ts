// A work queue with client-go semantics: a key queued N times is processed once; a key added while
// it is being processed is queued again once after `done`; never handed to two workers at once;
// delayed adds (earliest wins); per-item exponential backoff (5 ms .. 1000 s) combined with an
// overall token bucket, reset by `forget`.
import { Registry } from 'prom-client';
import type { ObjectKey, WorkQueue } from './contract.js';
import { DURATION_BUCKETS, TokenBucket, counter, gauge, histogram } from './util.js';

export interface RateLimiterConfig {
  /** Per-item backoff: base * 2^failures, capped. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Overall bucket (controller-runtime default 10 qps, burst 100); qps 0 disables it. */
  qps: number;
  burst: number;
}

export const DEFAULT_RATE_LIMITER: RateLimiterConfig = { baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 100 };

/** client-go's DefaultControllerRateLimiter: max(per-item exponential, overall bucket). */
export class RateLimiter {
  private readonly failures = new Map<ObjectKey, number>();
  private readonly bucket?: TokenBucket;
  constructor(
    readonly config: RateLimiterConfig = DEFAULT_RATE_LIMITER,
    private readonly now: () => number = Date.now,
  ) {
    if (config.qps > 0) this.bucket = new TokenBucket(config.qps, config.burst, now());
  }
  /** Delay before `key` may be retried; counts one more failure. */
  when(key: ObjectKey): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const exp = Math.min(this.config.maxDelayMs, this.config.baseDelayMs * Math.pow(2, n));
    const bucket = this.bucket ? this.bucket.reserve(this.now()) : 0;
    return Math.max(exp, bucket);
  }
  numRequeues(key: ObjectKey): number {
    return this.failures.get(key) ?? 0;
  }
  forget(key: ObjectKey): void {
    this.failures.delete(key);
  }
}

export interface WorkQueueOptions {
  /** Metric label `name` (the controller's name). */
  name: string;
  metrics?: Registry;
  rateLimiter?: Partial<RateLimiterConfig>;
}

export class Queue implements WorkQueue {
  readonly name: string;
  private queue: ObjectKey[] = [];
  private readonly dirty = new Set<ObjectKey>();
  private readonly processing = new Set<ObjectKey>();
  private readonly addedAt = new Map<ObjectKey, number>();
  private readonly startedAt = new Map<ObjectKey, number>();
  private readonly waiting = new Map<ObjectKey, { at: number; timer: NodeJS.Timeout }>();
  private getters: ((key: ObjectKey | undefined) => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private shuttingDown = false;
  readonly limiter: RateLimiter;
  private readonly m;

  constructor(opts: WorkQueueOptions) {
    this.name = opts.name;
    this.limiter = new RateLimiter({ ...DEFAULT_RATE_LIMITER, ...opts.rateLimiter });
    const reg = opts.metrics ?? new Registry();
    this.m = {
      depth: gauge(reg, 'workqueue_depth', 'Current depth of workqueue', ['name']),
      adds: counter(reg, 'workqueue_adds_total', 'Total number of adds handled by workqueue', ['name']),
      queueDuration: histogram(reg, 'workqueue_queue_duration_seconds', 'How long in seconds an item stays in workqueue before being requested', ['name'], DURATION_BUCKETS),
      workDuration: histogram(reg, 'workqueue_work_duration_seconds', 'How long in seconds processing an item from workqueue takes.', ['name'], DURATION_BUCKETS),
      retries: counter(reg, 'workqueue_retries_total', 'Total number of retries handled by workqueue', ['name']),
    };
    this.m.depth.set({ name: this.name }, 0);
  }

  add(key: ObjectKey): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return; // deduplicated (client-go counts only real adds)
    this.m.adds.inc({ name: this.name });
    this.dirty.add(key);
    if (!this.addedAt.has(key)) this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return; // re-queued by done()
    this.push(key);
  }

  addAfter(key: ObjectKey, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const w = this.waiting.get(key);
    if (w && w.at <= at) return; // an earlier add is already scheduled
    if (w) clearTimeout(w.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: ObjectKey): void {
    this.m.retries.inc({ name: this.name });
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: ObjectKey): void {
    this.limiter.forget(key);
  }

  numRequeues(key: ObjectKey): number {
    return this.limiter.numRequeues(key);
  }

  len(): number {
    return this.queue.length;
  }

  /** Keys waiting for a delayed add. */
  pending(): number {
    return this.waiting.size;
  }

  isProcessing(key: ObjectKey): boolean {
    return this.processing.has(key);
  }

  /** The next key (marked processing), or undefined once shut down. Call `done(key)` after. */
  get(): Promise<ObjectKey | undefined> {
    const key = this.take();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: ObjectKey): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) {
      this.m.workDuration.observe({ name: this.name }, (performance.now() - started) / 1000);
      this.startedAt.delete(key);
    }
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    else if (this.dirty.has(key)) this.dirty.delete(key);
    if (this.processing.size === 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Stops accepting keys, drops queued and delayed keys, wakes idle workers with `undefined`. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const w of this.waiting.values()) clearTimeout(w.timer);
    this.waiting.clear();
    for (const k of this.queue) this.dirty.delete(k);
    this.queue = [];
    this.m.depth.set({ name: this.name }, 0);
    const gs = this.getters;
    this.getters = [];
    for (const g of gs) g(undefined);
  }

  /** Shuts down and resolves when no key is being processed any more. */
  shutdownAndDrain(): Promise<void> {
    this.shutdown();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private push(key: ObjectKey): void {
    const g = this.getters.shift();
    if (g) {
      this.queue.push(key);
      g(this.take());
      return;
    }
    this.queue.push(key);
    this.m.depth.set({ name: this.name }, this.queue.length);
  }

  private take(): ObjectKey | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.m.depth.set({ name: this.name }, this.queue.length);
    this.processing.add(key);
    this.dirty.delete(key);
    const added = this.addedAt.get(key);
    if (added !== undefined) {
      this.m.queueDuration.observe({ name: this.name }, (performance.now() - added) / 1000);
      this.addedAt.delete(key);
    }
    this.startedAt.set(key, performance.now());
    return key;
  }
}
