// One analysis pass, the shell around the pure analyzer: snapshot the store, analyze, and store
// what was decided (new pending messages, expired ones, crash counts), persisted before anything is
// sent. A store write error revokes actual freshness (nothing is sent on state not saved).
import type { Logger } from 'pino';
import type { AppsConfig } from '../config.js';
import type { AppsMetrics } from '../status/metrics.js';
import { desiredIsFresh } from '../store/freshness.js';
import type { MemoryStore } from '../store/memory.js';
import type { AppOverrides } from '../types.js';
import { analyze, type Decisions } from './index.js';

export interface AnalysisCycleDeps {
  store: MemoryStore;
  config: () => AppsConfig;
  overrides: () => ReadonlyMap<string, AppOverrides>;
  metrics: AppsMetrics;
  logger: Logger;
  /** False while actual state, though fresh, must not be acted on (heartbeats of other cc_partitions only). */
  actualTrusted?: (now: number) => boolean;
  /** Uniform in [0, 1) for crash-delay noise (default Math.random). */
  random?: () => number;
  /** Each pass's decisions (partial: a pass over some apps only, the fast path). */
  onDecisions?: (d: Decisions, partial: boolean) => void;
}

export class AnalysisCycle {
  /** The last full pass, and how long its analyze() took (ms; benchmarks and dumps). */
  last: Decisions | undefined;
  lastPassMs: number | undefined;
  /** Skipped apps already logged (app guid and instance count). */
  private loggedSkips = new Set<string>();

  constructor(private readonly deps: AnalysisCycleDeps) {}

  async run(now: number, onlyApps?: ReadonlySet<string>): Promise<Decisions> {
    const { store, metrics, logger } = this.deps;
    const cfg = this.deps.config();
    store.actualFreshness.ttlMs = cfg.actualFreshnessTtlMs;
    const started = performance.now();
    const d = analyze(
      {
        actualFresh: store.actualFreshness.isFresh(now) && (this.deps.actualTrusted?.(now) ?? true),
        desiredFresh: desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs),
        desired: store.desired(),
        instances: store.instancesByApp(),
        crashCounts: store.crashCounts(),
        overrides: this.deps.overrides(),
        unconfirmedRemovals: store.unconfirmedRemovals(),
      },
      now,
      cfg,
      store.pending(),
      { random: this.deps.random ?? Math.random, ...(onlyApps ? { onlyApps } : {}) },
    );
    if (!onlyApps) this.lastPassMs = performance.now() - started;
    store.deletePending(d.expired.starts, d.expired.stops);
    store.putPending([...d.starts, ...d.stops]);
    store.putCrashCounts(d.crashCounts);
    if (!onlyApps) store.expireCrashCounts(now, 2 * cfg.crashBackoff.maxBackoffMs);
    try {
      await store.persist();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'storing decisions failed: actual state is not fresh');
      store.revokeFreshness();
    }
    if (!onlyApps) {
      this.last = d;
      metrics.setCounts(d.counts);
    }
    for (const s of d.skipped) {
      const key = `${s.appGuid}/${s.instances}`;
      if (this.loggedSkips.has(key) || this.loggedSkips.size > 10_000) continue;
      this.loggedSkips.add(key);
      logger.error({ app: s.appGuid, instances: s.instances }, `app not analysed: Cloud Controller ${s.reason} (logged once; counted in hm9k_apps_skipped)`);
    }
    this.deps.onDecisions?.(d, !!onlyApps);
    if (d.starts.length || d.stops.length) logger.info({ starts: d.starts.length, stops: d.stops.length, fastPath: !!onlyApps }, 'analysis queued messages');
    return d;
  }
}
