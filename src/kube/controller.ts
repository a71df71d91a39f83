// Reconcile workers: pull keys from a controller's queue, call reconcile (never concurrently for one
// key, the queue guarantees it), and turn the result into queue operations, as controller-runtime:
// error -> rate-limited requeue; requeueAfterMs -> forget + delayed add; success -> forget;
// TerminalError -> logged and counted, not retried.
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { TerminalError, type Controller, type ObjectKey } from './contract.js';
import { Queue, type RateLimiterConfig } from './workqueue.js';
import { RECONCILE_BUCKETS, counter, errorMessage, gauge, histogram, statusCodeOf } from './util.js';

export interface ControllerOptions {
  workers?: number;
  /** Only reconcile while this process leads (default true). */
  leaderOnly?: boolean;
  rateLimiter?: Partial<RateLimiterConfig>;
}

export class ControllerRunner {
  readonly queue: Queue;
  readonly workers: number;
  readonly leaderOnly: boolean;
  private running: Promise<void>[] = [];
  private started = false;
  private readonly log: Logger;
  private readonly m;

  constructor(
    readonly controller: Controller,
    opts: ControllerOptions & { logger: Logger; metrics?: Registry },
  ) {
    this.workers = Math.max(1, opts.workers ?? 1);
    this.leaderOnly = opts.leaderOnly ?? true;
    const reg = opts.metrics ?? new Registry();
    this.queue = new Queue({ name: controller.name, metrics: reg, rateLimiter: opts.rateLimiter });
    this.log = opts.logger.child({ controller: controller.name });
    this.m = {
      total: counter(reg, 'controller_runtime_reconcile_total', 'Total number of reconciliations per controller', ['controller', 'result']),
      errors: counter(reg, 'controller_runtime_reconcile_errors_total', 'Total number of reconciliation errors per controller', ['controller']),
      terminal: counter(reg, 'controller_runtime_terminal_reconcile_errors_total', 'Total number of terminal reconciliation errors per controller', ['controller']),
      time: histogram(reg, 'controller_runtime_reconcile_time_seconds', 'Length of time per reconciliation per controller', ['controller'], RECONCILE_BUCKETS),
      active: gauge(reg, 'controller_runtime_active_workers', 'Number of currently used workers per controller', ['controller']),
      maxWorkers: gauge(reg, 'controller_runtime_max_concurrent_reconciles', 'Maximum number of concurrent reconciles per controller', ['controller']),
    };
    this.m.maxWorkers.set({ controller: controller.name }, this.workers);
    this.m.active.set({ controller: controller.name }, 0);
    for (const result of ['success', 'error', 'requeue_after', 'requeue']) this.m.total.inc({ controller: controller.name, result }, 0);
    this.m.errors.inc({ controller: controller.name }, 0);
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Starts the workers (idempotent). */
  start(): void {
    if (this.started || this.queue.isShuttingDown()) return;
    this.started = true;
    this.log.info({ workers: this.workers }, 'starting workers');
    for (let i = 0; i < this.workers; i++) this.running.push(this.worker());
  }

  /** Stops taking keys and waits for the reconciles in progress (at most `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    const drained = this.queue.shutdownAndDrain();
    let t: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((r) => (t = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.all([drained, ...this.running]).then(() => undefined), timedOut]);
    clearTimeout(t);
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      await this.processOne(key);
    }
  }

  /** One reconcile of `key` and its bookkeeping (exposed for tests). */
  async processOne(key: ObjectKey): Promise<void> {
    const name = this.controller.name;
    const start = performance.now();
    this.m.active.inc({ controller: name });
    try {
      const res = await this.controller.reconcile(key);
      if (res && typeof res.requeueAfterMs === 'number' && res.requeueAfterMs > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, res.requeueAfterMs);
        this.m.total.inc({ controller: name, result: 'requeue_after' });
      } else {
        this.queue.forget(key);
        this.m.total.inc({ controller: name, result: 'success' });
      }
    } catch (err) {
      this.m.errors.inc({ controller: name });
      this.m.total.inc({ controller: name, result: 'error' });
      if (err instanceof TerminalError) {
        this.m.terminal.inc({ controller: name });
        this.queue.forget(key);
        this.log.error({ key, err: errorMessage(err) }, 'reconcile failed (terminal, not retried)');
      } else {
        this.queue.addRateLimited(key);
        // A 409 is optimistic concurrency doing its job (someone wrote first): retried, not a warning.
        if (statusCodeOf(err) === 409) this.log.debug({ key, err: errorMessage(err) }, 'reconcile conflict, retrying');
        else this.log.error({ key, err: errorMessage(err), retries: this.queue.numRequeues(key) }, 'reconcile failed, retrying with backoff');
      }
    } finally {
      this.m.time.observe({ controller: name }, (performance.now() - start) / 1000);
      this.m.active.dec({ controller: name });
      this.queue.done(key);
    }
  }
}
