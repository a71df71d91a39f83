// Writes the app half's status: the AppHealthPolicy's (freshness, guards, counts, sender outcomes)
// and each DesiredApp's (summary, last action). Never awaited by the leader loop: writes run in the
// background, a few at a time, through the runtime's rate-limited status writer.
// DesiredApp status is computed and written only for apps marked dirty: their summary differs from
// the one last written, they had an action, or their object was created or its spec changed. In
// steady state nothing is dirty, so 50k apps cost nothing per cycle.
import type { AppHealthPolicy, AppHealthPolicyStatus } from '../../api/index.js';
import type { Logger, StatusWriter } from '../../kube/contract.js';
import type { AppSummary, Decisions } from '../analyzer/index.js';
import type { Fetcher } from '../fetcher/index.js';
import type { PartitionWatch } from '../listener/partition.js';
import type { ProjectionSync } from '../fetcher/projection-sync.js';
import type { PolicySource } from '../policy.js';
import type { Sender, SendRecord } from '../sender/index.js';
import type { MemoryStore } from '../store/memory.js';
import { desiredIsFresh } from '../store/freshness.js';
import { desiredAppStatus, notFollowedStatus, policyStatus, policyStatusToWrite, sameSummary } from './index.js';

export interface StatusReporterDeps {
  status: StatusWriter;
  policies: PolicySource;
  store: MemoryStore;
  fetcher: Fetcher;
  sender: Sender;
  projection: ProjectionSync;
  logger: Logger;
  /** DesiredApp status is written only while this process leads. */
  leading: () => boolean;
  /** DesiredApp writes in flight at once. */
  inFlight?: number;
  /** cc_partition watch, for the OtherPartitions condition. */
  partitions?: PartitionWatch;
}

export class StatusReporter {
  private readonly dirty = new Set<string>();
  private readonly retry = new Set<string>();
  private readonly written = new Map<string, AppSummary | undefined>();
  private summaries = new Map<string, AppSummary>();
  private readonly lastActions = new Map<string, SendRecord>();
  private counts: Decisions['counts'] | undefined;
  private skipped: Decisions['skipped'] = [];
  private policyWrite: Promise<unknown> | undefined;
  private lastPolicyStatus: { name: string; uid?: string; status: AppHealthPolicyStatus } | undefined;
  /** Not-followed status written per candidate (uid/reason/message), so a lagging informer causes no rewrite. */
  private readonly notFollowedWritten = new Map<string, string>();
  private drain: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: StatusReporterDeps) {}

  /** The app's object was created or its spec changed. */
  objectChanged(guid: string): void {
    this.dirty.add(guid);
  }

  objectDeleted(guid: string): void {
    this.written.delete(guid);
  }

  /** A sender outcome: remembered as the app's last action, and its status rewritten (held ones wait). */
  action(r: SendRecord): void {
    this.lastActions.set(r.message.appGuid, r);
    if (r.outcome !== 'held') this.dirty.add(r.message.appGuid);
  }

  /** Apps whose DesiredApp status waits to be written (tests). */
  pendingApps(): ReadonlySet<string> {
    return this.dirty;
  }

  /**
   * A full analysis pass: its counts go to the policy; its summaries replace the last ones only
   * when the analyzer acted (or paused): a blind pass says nothing about the apps. A pass over some
   * apps (the fast path) updates theirs.
   */
  decisions(d: Decisions, partial: boolean): void {
    if (partial) {
      for (const [k, v] of d.apps) {
        this.summaries.set(k, v);
        if (!sameSummary(this.written.get(k), v)) this.dirty.add(k);
      }
      return;
    }
    this.counts = d.counts;
    if (d.acted || d.notActingReason === 'Paused') this.skipped = d.skipped;
    if (d.acted || d.notActingReason === 'Paused') {
      for (const [guid, s] of d.apps) if (!sameSummary(this.written.get(guid), s)) this.dirty.add(guid);
      for (const guid of this.written.keys()) if (!d.apps.has(guid)) this.dirty.add(guid);
      this.summaries = d.apps;
    }
  }

  /** Writes what changed (in the background). */
  write(now: number): void {
    const { store, policies } = this.deps;
    const cfg = policies.config();
    const actualFresh = store.actualFreshness.isFresh(now);
    const desiredFresh = desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs);
    this.writePolicy(now, actualFresh, desiredFresh);
    // While not fresh, DesiredApp status stays as last written (the policy's conditions say why):
    // a NATS blip must not rewrite every app's status.
    if (actualFresh && desiredFresh && this.deps.projection.enabled) {
      for (const g of this.retry) this.dirty.add(g);
      this.retry.clear();
      this.drainApps();
    }
  }

  /** Waits for the writes in flight; writes nothing more. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.drain?.catch(() => undefined);
    await this.policyWrite?.catch(() => undefined);
  }

  // AppHealthPolicy status: a change only in lastCompleteFetch is not written on its own.
  private writePolicy(now: number, actualFresh: boolean, desiredFresh: boolean): void {
    const { store, fetcher, policies, logger } = this.deps;
    const { sender } = this.deps;
    const cfg = policies.config();
    if (this.policyWrite) return;
    const choice = policies.choice();
    if (choice.kind === 'none') return this.writeNotFollowed(now, choice.candidates, choice.reason, choice.message);
    if (choice.kind !== 'follow') return;
    const p = choice.policy;
    const st = policyStatus(p, {
      now,
      actualFresh,
      desiredFresh,
      ...(store.freshnessState().streakStart !== undefined ? { actualStreakStart: store.freshnessState().streakStart } : {}),
      ...(store.lastCompleteFetch() !== undefined ? { lastCompleteFetch: store.lastCompleteFetch() } : {}),
      ...(fetcher.lastError ? { fetchError: fetcher.lastError } : {}),
      ...(this.counts ? { counts: this.counts } : {}),
      pending: store.pending(),
      ...(sender.hold ? { stopHold: sender.hold } : {}),
      ...(sender.budget.releasedHoldId ? { releasedHoldId: sender.budget.releasedHoldId } : {}),
      ...(fetcher.shrinkHold ? { shrinkHold: fetcher.shrinkHold } : {}),
      skippedApps: this.skipped,
      followed: choice.why,
      sender: sender.stats,
      paused: cfg.paused,
      dryRun: cfg.dryRun,
      ccPartition: cfg.ccPartition,
      ...(this.deps.partitions
        ? { otherPartitions: this.deps.partitions.otherPartitions(now, 3 * cfg.presenceTtlMs), onlyOtherPartitions: this.deps.partitions.onlyOthers(now, cfg.presenceTtlMs) }
        : {}),
    });
    const last = this.lastPolicyStatus;
    const same = last && last.name === p.metadata.name && last.uid === p.metadata.uid;
    const toWrite = policyStatusToWrite(st, same ? last.status : (p.status as AppHealthPolicyStatus | undefined));
    if (!toWrite) return;
    this.policyWrite = this.deps.status
      .patchStatus('AppHealthPolicy', p, toWrite)
      .then(() => {
        this.lastPolicyStatus = { name: p.metadata.name, ...(p.metadata.uid ? { uid: p.metadata.uid } : {}), status: toWrite };
      })
      .catch((err) => logger.error({ err: (err as Error).message }, 'AppHealthPolicy status write failed'))
      .finally(() => {
        this.policyWrite = undefined;
      });
  }

  /**
   * Called while the half cannot act: when that is because no policy can be followed (several and
   * none named, or the named one missing), each candidate says so in its status.
   */
  writeBlocked(now: number): void {
    const { policies } = this.deps;
    if (this.policyWrite || !policies.hasSynced()) return;
    const choice = policies.choice();
    if (choice.kind === 'none') this.writeNotFollowed(now, choice.candidates, choice.reason, choice.message);
  }

  /** Each candidate of an ambiguous choice says, in its status, that it is not followed and why. */
  private writeNotFollowed(now: number, candidates: readonly AppHealthPolicy[], reason: string, message: string): void {
    const writes: Promise<unknown>[] = [];
    for (const c of candidates) {
      const key = `${c.metadata.uid ?? ''}/${reason}/${message}`;
      if (this.notFollowedWritten.get(c.metadata.name) === key) continue; // written; the informer may lag
      const st = notFollowedStatus(c, reason, message, now);
      if (!st) continue;
      writes.push(this.deps.status.patchStatus('AppHealthPolicy', c, st)
        .then(() => this.notFollowedWritten.set(c.metadata.name, key))
        .catch((err) => this.deps.logger.error({ policy: c.metadata.name, err: (err as Error).message }, 'AppHealthPolicy status write failed')));
    }
    this.lastPolicyStatus = undefined; // a policy followed again later is written in full
    if (writes.length) this.policyWrite = Promise.all(writes).finally(() => { this.policyWrite = undefined; });
  }

  private async writeApp(guid: string): Promise<void> {
    const obj = this.deps.projection.objectFor(guid);
    if (!obj) return; // no object (yet): its 'add' marks it dirty again
    const summary = this.summaries.get(guid);
    const st = desiredAppStatus(obj, summary, this.lastActions.get(guid), Date.now(), this.deps.store.desired().has(guid));
    try {
      await this.deps.status.patchStatus('DesiredApp', obj, st);
      this.written.set(guid, summary);
    } catch (err) {
      this.retry.add(guid);
      this.deps.logger.error({ err: (err as Error).message, app: guid }, 'DesiredApp status write failed');
    }
  }

  private drainApps(): void {
    if (this.drain) return;
    const inFlight = this.deps.inFlight ?? 8;
    this.drain = (async () => {
      while (this.dirty.size > 0 && this.deps.leading() && !this.stopped) {
        const batch: string[] = [];
        for (const guid of this.dirty) {
          batch.push(guid);
          this.dirty.delete(guid);
          if (batch.length >= inFlight) break;
        }
        await Promise.all(batch.map((g) => this.writeApp(g)));
      }
    })().finally(() => {
      this.drain = undefined;
    });
  }
}
