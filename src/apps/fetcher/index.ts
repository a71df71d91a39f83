// The desired-state fetcher: pages CC's bulk API, passes the complete answer through the shrink
// guard, and makes it (or, when guarded, the last good state) the analyzer's desired state. Desired
// state becomes fresh only after a complete fetch; a failed fetch changes nothing (freshness decays).
// Until one desired state has been checked against fresh actual state (stopsTrusted), no stop is
// trusted: the sender holds them.
import type { Logger } from 'pino';
import type { CcClient } from '../../clients/cc.js';
import type { AppsConfig } from '../config.js';
import { baselineCheck, shrinkGuard, unconfirmedRemovals, type ShrinkVerdict } from '../guards/index.js';
import type { MemoryStore } from '../store/memory.js';
import type { AppsMetrics } from '../status/metrics.js';

export interface ShrinkHold {
  id: string;
  reason: string;
  since: number;
  /** 'shrink': a fetch shrank the last good state (kept); 'baseline': no trusted baseline yet (stops held). */
  kind?: 'shrink' | 'baseline';
}

export interface FetchOutcome {
  ok: boolean;
  error?: string;
  apps?: number;
  /** Apps this fetch omits that the last good state desired (their stops wait for the next fetch). */
  unconfirmedRemovals?: number;
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
  private guardHold: ShrinkHold | undefined;
  /** Set while stops are held for want of a trusted baseline (guards: baselineCheck). */
  private baselineHold: ShrinkHold | undefined;
  /** A desired state was checked against fresh actual state (or an operator released the hold). */
  baselineTrusted = false;
  private baselineCheckedFor: unknown;
  lastError: string | undefined;

  constructor(private readonly deps: FetcherDeps) {}

  /** The guard currently holding (the shrink guard's first), for status, Events and dumps. */
  get shrinkHold(): ShrinkHold | undefined {
    return this.guardHold ?? this.baselineHold;
  }

  /**
   * Whether stops may be sent: only once a desired state has been trusted as a baseline. Checked
   * when actual state is fresh, once per desired snapshot until it passes.
   */
  stopsTrusted(now: number): boolean {
    if (this.baselineTrusted) return true;
    const { store, logger } = this.deps;
    if (store.lastCompleteFetch() === undefined || !store.actualFreshness.isFresh(now)) return false;
    const hold = this.baselineHold;
    if (hold && this.deps.releaseAnnotation?.() === hold.id) {
      logger.warn({ id: hold.id }, 'baseline hold released by an operator: the desired state is trusted');
      return this.trustBaseline();
    }
    if (this.baselineCheckedFor === store.desired()) return false;
    this.baselineCheckedFor = store.desired();
    const v = baselineCheck(store.desired(), store.instanceLists(), this.deps.config());
    if (v.trusted) {
      if (hold) logger.info({ id: hold.id }, 'baseline hold lifted: the desired state agrees with the heartbeats');
      return this.trustBaseline();
    }
    if (!hold) {
      this.baselineHold = { id: `baseline-${now.toString(36)}`, reason: v.reason ?? 'no trusted baseline', since: now, kind: 'baseline' };
      this.deps.metrics.shrinkGuardActive.set(1);
      logger.error({ id: this.baselineHold.id, reason: v.reason }, 'baseline guard: every stop is held until a desired state agrees with the heartbeats or the hold is released');
    }
    return false;
  }

  private trustBaseline(): true {
    this.baselineTrusted = true;
    this.baselineHold = undefined;
    if (!this.guardHold) this.deps.metrics.shrinkGuardActive.set(0);
    return true;
  }

  private runningInstances(): number {
    return this.deps.store.startingOrRunningCount();
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
        ...(this.guardHold ? { heldId: this.guardHold.id } : {}),
        ...(this.deps.releaseAnnotation?.() ? { releasedId: this.deps.releaseAnnotation() } : {}),
      },
      config,
    );
    if (verdict.accept) {
      if (this.guardHold) logger.info({ id: this.guardHold.id }, 'shrink guard released');
      this.guardHold = undefined;
      // Apps this fetch omits that the last one desired wait for a second fetch (guards: unconfirmedRemovals).
      const unconfirmed = unconfirmedRemovals(hasLastGood ? store.desired() : undefined, result.apps);
      if (unconfirmed.size) logger.info({ apps: unconfirmed.size, sample: [...unconfirmed].slice(0, 5) }, 'apps missing from this fetch only: their instances are not stopped until a second fetch also lacks them');
      store.setDesired(result.apps, now, unconfirmed);
      metrics.fetches.inc({ outcome: 'complete' });
      metrics.shrinkGuardActive.set(this.baselineHold ? 1 : 0);
      return { ok: true, apps: result.apps.size, ...(unconfirmed.size ? { unconfirmedRemovals: unconfirmed.size } : {}) };
    }
    // Refused: act on the last good desired state (still fresh: CC answered), or on nothing.
    if (!this.guardHold) {
      this.guardHold = { id: `shrink-${now.toString(36)}`, reason: verdict.reason ?? 'desired state shrank', since: now, kind: 'shrink' };
      logger.error({ id: this.guardHold.id, reason: verdict.reason }, 'shrink guard: keeping the last good desired state');
    }
    if (hasLastGood) store.markDesiredFetched(now);
    metrics.fetches.inc({ outcome: 'guarded' });
    metrics.shrinkGuardActive.set(1);
    return { ok: true, apps: store.desired().size, guarded: verdict };
  }
}
