// The leader loop: what only the Lease holder does, one step at a time, in this order every tick:
//   fetch desired state (CC bulk API; the DesiredApp projection follows it in the background)
//   -> analyze (store snapshot -> pending starts/stops)
//   -> send (re-verified against the current state, through the guards, to CC)
//   -> report (status, in the background).
// A new leader sends nothing until one keep-alive plus one grace period has passed, unless it
// loaded pending actions and crash counts from etcd. The fast path (a crash or an evacuation) runs
// the same analyze and send for one app at once, serialised with the loop.
import type { Logger } from 'pino';
import type { LeaderElection } from '../../kube/contract.js';
import type { AnalysisCycle } from '../analyzer/cycle.js';
import { evacuationStart } from '../analyzer/evacuation.js';
import type { AppsConfig } from '../config.js';
import type { Fetcher } from '../fetcher/index.js';
import type { ProjectionSync } from '../fetcher/projection-sync.js';
import type { Sender } from '../sender/index.js';
import type { AppEvents } from '../status/events.js';
import type { AppsMetrics } from '../status/metrics.js';
import type { StatusReporter } from '../status/reporter.js';
import type { EtcdStore } from '../store/etcd.js';
import { desiredIsFresh } from '../store/freshness.js';
import type { MemoryStore } from '../store/memory.js';
import { startKey, type DropletExited, type PendingActions, type PendingMessage } from '../types.js';

export interface LeaderLoopDeps {
  leader: Pick<LeaderElection, 'isLeader'>;
  /** The policy and the DesiredApp objects are known (never lead on defaults), and a policy can be followed (checked every tick). */
  ready: () => boolean;
  config: () => AppsConfig;
  store: MemoryStore;
  fetcher: Fetcher;
  projection: ProjectionSync;
  analysis: AnalysisCycle;
  sender: Sender;
  reporter: StatusReporter;
  events: AppEvents;
  metrics: AppsMetrics;
  logger: Logger;
  signal?: AbortSignal;
  now?: () => number;
}

/** The freshness gauges, every tick on every replica. */
function reportFreshness(metrics: AppsMetrics, store: MemoryStore, now: number, cfg: AppsConfig): void {
  metrics.actualFresh.set(store.actualFreshness.isFresh(now) ? 1 : 0);
  metrics.desiredFresh.set(desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs) ? 1 : 0);
  const age = store.actualFreshness.ageMs(now);
  metrics.actualFreshnessAge.set(age < 0 ? -1 : age / 1000);
  const lcf = store.lastCompleteFetch();
  metrics.desiredFreshnessAge.set(lcf === undefined ? -1 : (now - lcf) / 1000);
}

export class LeaderLoop {
  private leading = false;
  private sendAllowedAfter = Number.POSITIVE_INFINITY;
  private stopped = false;
  private fetching = false;
  private next = { fetch: 0, analyze: 0, send: 0, status: 0 };
  private timer: NodeJS.Timeout | undefined;
  /** One leader task at a time (the loop and the fast path). */
  private chain: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly deps: LeaderLoopDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Leading and past the start-up wait: sending. */
  isActive(): boolean {
    return this.leading && this.now() >= this.sendAllowedAfter;
  }

  isLeading(): boolean {
    return this.leading;
  }

  start(): void {
    if (this.stopped) return;
    void this.serial(() => this.tick())
      .catch((err) => this.deps.logger.error({ err: (err as Error).message }, 'app loop failed'))
      .finally(() => {
        if (!this.stopped) this.timer = setTimeout(() => this.start(), Math.max(20, Math.min(this.deps.config().flushIntervalMs, 1000)));
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain.catch(() => undefined);
  }

  /** One tick (exposed for tests). */
  async tick(): Promise<void> {
    const { store, metrics, logger } = this.deps;
    const now = this.now();
    const cfg = this.deps.config();
    reportFreshness(metrics, store, now, cfg);
    if (!this.deps.leader.isLeader()) {
      if (this.leading) {
        this.leading = false;
        store.setWriter(false);
        logger.warn('lost leadership: no longer fetching, analyzing or sending');
      }
      return;
    }
    if (!this.deps.ready()) {
      // No policy can be followed: nothing is acted on, but each candidate's status says why.
      this.deps.reporter.writeBlocked(now);
      return;
    }
    if (!this.leading) await this.becomeLeader(now, cfg);
    if (now >= this.next.fetch) {
      this.next.fetch = now + cfg.fetchIntervalMs;
      void this.fetch(now);
    } else if (this.deps.projection.dirty && this.deps.projection.enabled && !this.deps.projection.busy() && store.lastCompleteFetch() !== undefined) {
      this.deps.projection.resync();
    }
    if (now >= this.next.analyze) {
      this.next.analyze = now + cfg.analyzeIntervalMs;
      await this.deps.analysis.run(now);
    }
    if (now >= this.next.send && now >= this.sendAllowedAfter) {
      this.next.send = now + cfg.sendIntervalMs;
      await this.send(now);
    }
    if (now >= this.next.status) {
      this.next.status = now + Math.min(cfg.analyzeIntervalMs, cfg.sendIntervalMs);
      this.deps.reporter.write(now);
    }
  }

  /** The fast path: a crash or an evacuation is analyzed (and sent) at once for that app. */
  fastPath(exit: DropletExited): void {
    if (!this.leading || this.stopped || !this.deps.ready()) return;
    const { store, projection } = this.deps;
    void this.serial(async () => {
      const now = this.now();
      if (now < this.sendAllowedAfter) return;
      const cfg = this.deps.config();
      const start = evacuationStart(
        exit,
        {
          fresh: store.actualFreshness.isFresh(now) && desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs),
          desired: store.desired().get(exit.droplet),
          instances: store.instancesOf(exit.droplet),
          queued: store.pending().starts.get(startKey(exit.droplet, exit.version, exit.index)),
          appPaused: !!projection.overrides().get(exit.droplet)?.paused,
        },
        now,
        cfg,
      );
      if (start) store.putPending([start]);
      const apps = new Set([exit.droplet]);
      await this.deps.analysis.run(now, apps);
      await this.send(now, apps);
    }).catch((err) => this.deps.logger.error({ err: (err as Error).message }, 'fast path failed'));
  }

  /** The followed AppHealthPolicy changed: fetch (and analyze) at once under its timings. */
  policySwitched(): void {
    this.next.fetch = 0;
    this.next.analyze = 0;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async becomeLeader(now: number, cfg: AppsConfig): Promise<void> {
    const { store, logger } = this.deps;
    store.setWriter(true);
    let loadedPending = false;
    let loadedCrashCounts = false;
    if (store.kind === 'etcd') {
      const etcd = store as EtcdStore;
      const loaded = await etcd.load(now);
      await etcd.syncInstances();
      loadedPending = loaded.loadedPending > 0;
      loadedCrashCounts = loaded.loadedCrashCounts > 0;
      logger.info(loaded, 'leading: loaded state from etcd');
    }
    // With state loaded from etcd no keep-alive + grace wait is needed. A loaded message whose send
    // had begun (attemptedAt) but was not recorded as sent may have been carried out by CC when the
    // previous leader died (SIGKILL mid-send: the answer and the sentOn mark were lost): it alone
    // waits two heartbeat periods, so that the DEA's next heartbeat shows an instance CC started and
    // the sender's verification drops the start instead of doubling the instance
    // (test/faults/leader-kill.test.ts). Messages never attempted go at once.
    if (loadedPending) {
      const held = holdMaybeSent(store.pending(), now + 2 * cfg.heartbeatPeriodMs);
      store.putPending(held);
      if (held.length) logger.info({ messages: held.length, until: new Date(now + 2 * cfg.heartbeatPeriodMs).toISOString() }, 'loaded sends that may have reached CC wait for the heartbeats to show them');
    }
    this.sendAllowedAfter = loadedPending || loadedCrashCounts ? now : now + cfg.keepAliveMs + cfg.gracePeriodMs;
    this.leading = true;
    logger.info({ sendAllowedAfter: new Date(this.sendAllowedAfter).toISOString() }, 'leading the app half');
  }

  private async send(now: number, apps?: ReadonlySet<string>): Promise<void> {
    const { sender, events, fetcher } = this.deps;
    await sender.run(now, apps);
    events.holds(sender.budget, fetcher.shrinkHold);
  }

  private async fetch(now: number): Promise<void> {
    if (this.fetching) return;
    this.fetching = true;
    const { store, fetcher, projection, events } = this.deps;
    try {
      const before = store.desired();
      const outcome = await fetcher.fetchOnce(now, this.deps.signal);
      events.shrinkGuard(outcome, fetcher.shrinkHold);
      // The projection follows in the background: it never holds back the next fetch (issue 14 item 10).
      if (outcome.ok && this.leading) projection.afterFetch(before);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'fetch failed');
    } finally {
      this.fetching = false;
    }
  }
}

/**
 * Pure: the loaded pending messages whose send had begun but was not recorded as done (attemptedAt
 * set, sentOn 0), each due no earlier than `notBefore`. Messages never attempted are not returned.
 */
export function holdMaybeSent(pending: PendingActions, notBefore: number): PendingMessage[] {
  const held: PendingMessage[] = [];
  for (const m of [...pending.starts.values(), ...pending.stops.values()]) {
    if (m.sentOn === 0 && m.attemptedAt !== undefined && m.sendOn < notBefore) held.push({ ...m, sendOn: notBefore });
  }
  return held;
}
