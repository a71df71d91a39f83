// One analysis pass, the shell around the pure analyzer: snapshot the store, analyze, and store
// what was decided (new pending messages, expired ones, crash counts), persisted before anything is
// sent. A store write error revokes actual freshness (nothing is sent on state not saved).
import type { Logger } from 'pino';
import type { AppsConfig } from '../config.js';
import type { AppsMetrics } from '../status/metrics.js';
import { desiredIsFresh } from '../store/freshness.js';
import type { MemoryStore } from '../store/memory.js';
import type { AppOverrides } from '../types.js';
import { AnalyzerPass, type Decisions } from './index.js';

/** Yields to the event loop (I/O first: NATS reads, flushes, Lease renewals). */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

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
  /**
   * A full pass runs in slices of about this many ms of work, yielding to the event loop in between
   * (default 50): at 330,000 apps a pass in one piece held up heartbeat intake for seconds.
   */
  sliceMs?: number;
}

export class AnalysisCycle {
  /** The last full pass; the work it took (ms, slices summed), its longest slice and its wall time (benchmarks and dumps). */
  last: Decisions | undefined;
  lastPassMs: number | undefined;
  lastPassLongestSliceMs: number | undefined;
  lastPassWallMs: number | undefined;
  /** Skipped apps already logged (app guid and instance count). */
  private loggedSkips = new Set<string>();

  constructor(private readonly deps: AnalysisCycleDeps) {}

  async run(now: number, onlyApps?: ReadonlySet<string>): Promise<Decisions> {
    const { store, metrics, logger } = this.deps;
    const cfg = this.deps.config();
    store.actualFreshness.ttlMs = cfg.actualFreshnessTtlMs;
    const started = performance.now();
    // The pass sees one snapshot even while it yields: copies of what the shell may change meanwhile
    // (instancesByApp is a new map of immutable lists; desired state is replaced, never changed).
    const pending = store.pending();
    const pass = new AnalyzerPass(
      {
        actualFresh: store.actualFreshness.isFresh(now) && (this.deps.actualTrusted?.(now) ?? true),
        desiredFresh: desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs),
        desired: store.desired(),
        instances: onlyApps ? new Map([...onlyApps].map((g) => [g, store.instancesOf(g)] as const).filter(([, l]) => l.length > 0)) : store.instancesByApp(),
        crashCounts: new Map(store.crashCounts()),
        overrides: new Map(this.deps.overrides()),
        unconfirmedRemovals: store.unconfirmedRemovals(),
      },
      now,
      cfg,
      { starts: new Map(pending.starts), stops: new Map(pending.stops) },
      { random: this.deps.random ?? Math.random, ...(onlyApps ? { onlyApps } : {}) },
    );
    let work = 0;
    let longest = 0;
    for (;;) {
      const t = performance.now();
      pass.step(onlyApps ? Number.POSITIVE_INFINITY : (this.deps.sliceMs ?? 50));
      const took = performance.now() - t;
      work += took;
      longest = Math.max(longest, took);
      if (pass.done) break;
      await yieldToEventLoop();
    }
    const d = pass.finish();
    if (!onlyApps) {
      this.lastPassMs = work;
      this.lastPassLongestSliceMs = longest;
      this.lastPassWallMs = performance.now() - started;
    }
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
