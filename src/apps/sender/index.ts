// The sender: sends due pending messages to CC (HTTP POST /internal/dea/hm9000/{start,stop}/{app}
// or NATS hm9000.start/stop). Verifies each message against the current state just before sending;
// orders by send_on, then priority; at most messageLimit starts and stopLimit stops per run; keeps
// sent messages for their keep-alive; a failed send stays queued and is retried. Sends nothing when
// state is not fresh, while the policy is paused, or in dryRun (decides and reports only). Every
// stop passes the stop budget.
import type { Logger } from 'pino';
import type { AppsConfig } from '../config.js';
import { recordStops, stopBudget, type StopBudgetState, type StopHold } from '../guards/index.js';
import type { MemoryStore } from '../store/memory.js';
import { desiredIsFresh } from '../store/freshness.js';
import { REASON_COUNTERS, type AppsMetrics } from '../status/metrics.js';
import { startKey, type PendingMessage, type PendingStart, type PendingStop } from '../types.js';
import { startMessage, stopMessage, type StartMessage, type StopMessage } from '../../hm9000/messages.js';
import { verifyStart, verifyStop } from './verify.js';

export interface Transport {
  sendStart(m: StartMessage): Promise<void>;
  sendStop(m: StopMessage): Promise<void>;
}

export type Outcome = 'sent' | 'failed' | 'dropped' | 'dryRun' | 'held';

export interface SendRecord {
  message: PendingMessage;
  outcome: Outcome;
  time: number;
  detail?: string;
}

export interface SenderDeps {
  store: MemoryStore;
  transport: Transport;
  config: () => AppsConfig;
  metrics: AppsMetrics;
  logger: Logger;
  releaseAnnotation?: () => string | undefined;
  /** Told about every outcome (status, Events). */
  onOutcome?: (r: SendRecord) => void;
  concurrency?: number;
  /** Apps paused by their DesiredApp override: their messages stay queued. */
  pausedApps?: () => ReadonlySet<string>;
  /** False while no desired state is trusted as a baseline (Fetcher.stopsTrusted): stops are held. */
  stopsTrusted?: (now: number) => boolean;
  /** The clock read before each message (default: the run's `now` advanced by real time). */
  now?: () => number;
}

export interface SenderStats {
  sent: number;
  failed: number;
  lastError?: string;
}

/** HM9000's order: ascending send_on, then descending priority (stops have none: they go first at equal times). */
export function sendOrder(a: PendingMessage, b: PendingMessage): number {
  if (a.sendOn !== b.sendOn) return a.sendOn - b.sendOn;
  const pa = a.kind === 'start' ? a.priority : Number.POSITIVE_INFINITY;
  const pb = b.kind === 'start' ? b.priority : Number.POSITIVE_INFINITY;
  return pa === pb ? a.messageId.localeCompare(b.messageId) : pb - pa;
}

export class Sender {
  budget: StopBudgetState = { recentStops: [] };
  readonly stats: SenderStats = { sent: 0, failed: 0 };
  private running = false;

  constructor(private readonly deps: SenderDeps) {}

  get hold(): StopHold | undefined {
    return this.budget.hold;
  }

  async run(now: number, onlyApps?: ReadonlySet<string>): Promise<SendRecord[]> {
    if (this.running) return [];
    this.running = true;
    try {
      return await this.runOnce(now, onlyApps);
    } finally {
      this.running = false;
    }
  }

  private async runOnce(now: number, onlyApps?: ReadonlySet<string>): Promise<SendRecord[]> {
    const { store, metrics, logger } = this.deps;
    const config = this.deps.config();
    // Never act blind.
    if (!store.actualFreshness.isFresh(now) || !desiredIsFresh(store.lastCompleteFetch(), now, config.desiredFreshnessTtlMs)) return [];
    if (config.paused) return [];

    const pending = store.pending();
    const due: PendingMessage[] = [];
    for (const m of [...pending.starts.values(), ...pending.stops.values()]) {
      if (m.sentOn === 0 && m.sendOn <= now && (!onlyApps || onlyApps.has(m.appGuid))) due.push(m);
    }
    due.sort(sendOrder);
    const streak = store.freshnessState().streakStart;
    // (the store's per-app view, not instancesByApp(): a run with nothing due must not copy 330,000 apps' lists)
    const state = { desired: store.desired(), instances: { get: (g: string) => store.instancesOf(g) }, ...(streak !== undefined ? { observedSince: streak } : {}) };
    const records: SendRecord[] = [];
    const drop: { starts: PendingStart[]; stops: string[] } = { starts: [], stops: [] };
    const starts: { m: PendingStart }[] = [];
    const stops: { m: PendingStop }[] = [];
    const pausedApps = this.deps.pausedApps?.();
    const paused = (app: string) => !!pausedApps?.has(app);
    for (const m of due) {
      if (paused(m.appGuid)) continue; // kept queued while the app is paused
      if (m.kind === 'start') {
        const v = verifyStart(m, state);
        if (!v.send) {
          drop.starts.push(m);
          records.push({ message: m, outcome: 'dropped', time: now, detail: v.why });
          continue;
        }
        if (starts.length >= config.messageLimit) continue; // next run
        starts.push({ m });
      } else {
        const v = verifyStop(m, state);
        if (!v.send) {
          drop.stops.push(m.instanceGuid);
          records.push({ message: m, outcome: 'dropped', time: now, detail: v.why });
          continue;
        }
        stops.push({ m });
      }
    }
    for (const m of drop.starts) this.dropStart(m);
    store.deletePending([], drop.stops);

    // The stop budget: hold every stop (starts go on) until an operator releases the hold.
    const running = store.startingOrRunningCount();
    // Without a trusted baseline (issue 14 item 3) every stop is held, before the budget counts them.
    const trusted = this.deps.stopsTrusted?.(now) ?? true;
    const verdict = trusted ? stopBudget(this.budget, { dueStops: stops.length, runningInstances: running, releaseAnnotation: this.deps.releaseAnnotation?.(), now }, config) : undefined;
    if (verdict) this.budget = verdict.state;
    if (verdict?.newHold) logger.error({ hold: verdict.newHold }, 'stop budget exceeded: every stop is held until the AppHealthPolicy is annotated hm9k.io/release-stop-hold=<id>');
    if (verdict?.released) logger.warn({ id: verdict.released }, 'stop hold released by an operator');
    metrics.stopHoldActive.set(this.budget.hold ? 1 : 0);
    const toSend: PendingMessage[] = starts.map((s) => s.m);
    // Each run is bounded: at most messageLimit starts (HM9000) and stopLimit stops; the rest wait
    // for the next run (and the stop budget has counted every due stop).
    if (verdict?.allowStops) toSend.push(...stops.slice(0, config.stopLimit).map((s) => s.m));
    else for (const s of stops) records.push({ message: s.m, outcome: 'held', time: now, detail: verdict ? this.budget.hold?.id : 'no trusted baseline' });
    toSend.sort(sendOrder);

    // Intent first (crash-safe, as the node half's fence records): every message about to go out is
    // stored with attemptedAt before any request, so a successor that loads it knows CC may have
    // acted on it. No record, no request: a store that cannot write sends nothing.
    if (toSend.length && !config.dryRun) {
      store.putPending(toSend.map((m) => ({ ...m, attemptedAt: now })));
      for (let i = 0; i < toSend.length; i++) toSend[i] = { ...toSend[i]!, attemptedAt: now };
      try {
        await store.persist();
      } catch (err) {
        logger.error({ err: (err as Error).message, messages: toSend.length }, 'storing the sends about to go out failed: nothing sent, actual state is not fresh');
        store.revokeFreshness();
        for (const m of toSend) records.push({ message: m, outcome: 'failed', time: now, detail: 'intent not stored' });
        toSend.length = 0;
      }
    }

    // Issue 14 item 4: a slow CC can make one run last minutes, so freshness is re-checked and each
    // message verified again against the current state right before it goes out, not once per run.
    const t0 = Date.now();
    const clock = this.deps.now ?? (() => now + (Date.now() - t0)); // the caller's `now`, advanced by real time
    const live = { desired: { get: (g: string) => store.desired().get(g) }, instances: { get: (g: string) => store.instancesOf(g) } };
    let stopsSent = 0;
    let deferred = 0;
    const sendOne = async (m: PendingMessage) => {
      const t = clock();
      const cfg = this.deps.config();
      if (!store.actualFreshness.isFresh(t) || !desiredIsFresh(store.lastCompleteFetch(), t, cfg.desiredFreshnessTtlMs) || cfg.paused) {
        deferred++; // stays queued for a run that sees fresh state
        return;
      }
      const streakNow = store.freshnessState().streakStart;
      const state = streakNow !== undefined ? { ...live, observedSince: streakNow } : live;
      const v = m.kind === 'start' ? verifyStart(m, state) : verifyStop(m, state);
      if (!v.send) {
        if (m.kind === 'start') this.dropStart(m);
        else store.deletePending([], [m.instanceGuid]);
        records.push({ message: m, outcome: 'dropped', time: t, detail: v.why });
        return;
      }
      if (cfg.dryRun) {
        this.markSent(m, t);
        if (m.kind === 'stop') stopsSent++;
        records.push({ message: m, outcome: 'dryRun', time: t });
        return;
      }
      try {
        if (m.kind === 'start') await this.deps.transport.sendStart(startMessage(m));
        else await this.deps.transport.sendStop(stopMessage(m, v.isDuplicate ?? false));
        this.markSent(m, t);
        if (m.kind === 'stop') stopsSent++;
        this.stats.sent++;
        metrics.actions.inc({ hm9000: REASON_COUNTERS[m.reason], kind: m.kind, reason: m.reason });
        records.push({ message: m, outcome: 'sent', time: t });
      } catch (err) {
        // Stays queued (sentOn 0) and is retried on the next run.
        this.stats.failed++;
        this.stats.lastError = (err as Error).message.slice(0, 1000);
        records.push({ message: m, outcome: 'failed', time: t, detail: this.stats.lastError });
      }
    };
    const workers = Math.max(1, this.deps.concurrency ?? 8);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(workers, toSend.length) }, async () => {
        while (next < toSend.length) await sendOne(toSend[next++]!);
      }),
    );
    if (deferred) logger.warn({ deferred }, 'state stopped being fresh during a sender run: the rest stays queued');
    this.budget = recordStops(this.budget, stopsSent, now);
    for (const r of records) {
      metrics.sender.inc({ outcome: r.outcome });
      this.deps.onOutcome?.(r);
    }
    const failed = records.filter((r) => r.outcome === 'failed');
    if (failed.length) logger.warn({ failed: failed.length, err: this.stats.lastError }, 'sends failed; kept queued for retry');
    try {
      await store.persist();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'storing sender results failed: actual state is not fresh');
      store.revokeFreshness();
    }
    return records;
  }

  /**
   * A start that verification drops was never sent: it is deleted, and the crash count its enqueue
   * raised is given back (hm9000.md section 6 rule 2 counts restarts; a dropped start restarted
   * nothing, so keeping its increment would reach backoff one crash early).
   */
  private dropStart(m: PendingStart): void {
    const { store } = this.deps;
    store.deletePending([startKey(m.appGuid, m.version, m.index)], []);
    if (m.crashCount) store.rollBackCrashCount(m.crashCount.raised, m.crashCount.previous);
  }

  /** A sent message stays for its keep-alive (blocking a re-enqueue); without one it is done. */
  private markSent(m: PendingMessage, now: number): void {
    const { store } = this.deps;
    if (m.keepAliveMs > 0) store.putPending([{ ...m, sentOn: now }]);
    else if (m.kind === 'start') store.deletePending([startKey(m.appGuid, m.version, m.index)], []);
    else store.deletePending([], [m.instanceGuid]);
  }
}
