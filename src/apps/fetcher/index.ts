// The desired-state fetcher: pages CC's bulk API, passes the complete answer through the shrink
// guard, and makes it (or, when guarded, the last good state) the analyzer's desired state. Desired
// state becomes fresh only after a complete fetch; a failed fetch changes nothing (freshness decays).
import type { Logger } from 'pino';
import type { CcClient } from '../../clients/cc.js';
import type { AppsConfig } from '../config.js';
import { shrinkGuard, type ShrinkVerdict } from '../guards/index.js';
import type { MemoryStore } from '../store/memory.js';
import type { AppsMetrics } from '../status/metrics.js';
import { isStartingOrRunning } from '../types.js';

export interface ShrinkHold {
  id: string;
  reason: string;
  since: number;
}

export interface FetchOutcome {
  ok: boolean;
  error?: string;
  apps?: number;
  /** Set when the shrink guard refused this answer. */
  guarded?: ShrinkVerdict;
}

export interface FetcherDeps {
  cc: CcClient;
  store: MemoryStore;
  config: () => AppsConfig;
  metrics: AppsMetrics;
  logger: Logger;
  /** The value of the release annotation on the AppHealthPolicy. */
  releaseAnnotation?: () => string | undefined;
}

export class Fetcher {
  /** Set while the shrink guard keeps the last good desired state. */
  shrinkHold: ShrinkHold | undefined;
  lastError: string | undefined;

  constructor(private readonly deps: FetcherDeps) {}

  private runningInstances(): number {
    let n = 0;
    for (const list of this.deps.store.instancesByApp().values()) for (const i of list) if (isStartingOrRunning(i.state)) n++;
    return n;
  }

  async fetchOnce(now: number, signal?: AbortSignal): Promise<FetchOutcome> {
    const { cc, store, metrics, logger } = this.deps;
    const config = this.deps.config();
    cc.opts.timeoutMs = config.fetchTimeoutMs;
    cc.opts.batchSize = config.bulkBatchSize;
    let result;
    try {
      result = await cc.fetchDesired(signal);
    } catch (err) {
      this.lastError = (err as Error).message;
      metrics.fetches.inc({ outcome: 'failed' });
      logger.warn({ err: this.lastError }, 'bulk fetch failed; nothing from it is used (desired state stays as it was and ages)');
      return { ok: false, error: this.lastError };
    }
    this.lastError = undefined;
    const hasLastGood = store.lastCompleteFetch() !== undefined;
    const verdict = shrinkGuard(
      {
        lastGood: hasLastGood ? store.desired() : undefined,
        candidate: result.apps,
        runningInstances: this.runningInstances(),
        ...(this.shrinkHold ? { heldId: this.shrinkHold.id } : {}),
        ...(this.deps.releaseAnnotation?.() ? { releasedId: this.deps.releaseAnnotation() } : {}),
      },
      config,
    );
    if (verdict.accept) {
      if (this.shrinkHold) logger.info({ id: this.shrinkHold.id }, 'shrink guard released');
      this.shrinkHold = undefined;
      store.setDesired(result.apps, now);
      metrics.fetches.inc({ outcome: 'complete' });
      metrics.shrinkGuardActive.set(0);
      return { ok: true, apps: result.apps.size };
    }
    // Refused: act on the last good desired state (still fresh: CC answered), or on nothing.
    if (!this.shrinkHold) {
      this.shrinkHold = { id: `shrink-${now.toString(36)}`, reason: verdict.reason ?? 'desired state shrank', since: now };
      logger.error({ id: this.shrinkHold.id, reason: verdict.reason }, 'shrink guard: keeping the last good desired state');
    }
    if (hasLastGood) store.markDesiredFetched(now);
    metrics.fetches.inc({ outcome: 'guarded' });
    metrics.shrinkGuardActive.set(1);
    return { ok: true, apps: store.desired().size, guarded: verdict };
  }
}
