// Status of the app half: AppHealthPolicy (freshness conditions, guards, counts, sender outcomes)
// and DesiredApp (counts, Converged/Flapping/Paused, last action), built by pure functions and
// written through Runtime.status (which writes only on change, rate-limited, under a global budget).
import type { AppHealthPolicy, AppHealthPolicyStatus, Condition, DesiredApp, DesiredAppStatus } from '../../api/index.js';
import type { AnalysisCounts, AppSummary, SkippedApp } from '../analyzer/index.js';
import { NOT_FRESH_COUNTS, statusCounts } from '../analyzer/index.js';
import type { ShrinkHold } from '../fetcher/index.js';
import type { StopHold } from '../guards/index.js';
import type { SenderStats, SendRecord } from '../sender/index.js';
import type { PendingActions } from '../types.js';

export { AppsMetrics } from './metrics.js';

type Cond = Pick<Condition, 'type' | 'status' | 'reason' | 'message'>;

/** Keeps lastTransitionTime when the status did not change (so that an unchanged status is equal). */
export function mergeConditions(prev: Condition[] | undefined, next: Cond[], now: string, generation?: number): Condition[] {
  return next.map((c) => {
    const old = prev?.find((p) => p.type === c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
    return { ...c, lastTransitionTime, ...(generation !== undefined ? { observedGeneration: generation } : {}) };
  });
}

export interface PolicyStatusInput {
  now: number;
  actualFresh: boolean;
  desiredFresh: boolean;
  actualStreakStart?: number;
  lastCompleteFetch?: number;
  fetchError?: string;
  counts?: AnalysisCounts;
  pending: PendingActions;
  stopHold?: StopHold;
  releasedHoldId?: string;
  shrinkHold?: ShrinkHold;
  /** Apps the last full pass did not analyse (guards.maxInstancesPerApp). */
  skippedApps?: readonly SkippedApp[];
  sender: SenderStats;
  paused: boolean;
  dryRun: boolean;
  /** The policy's ccPartition, and other partitions seen in messages that carried none of it. */
  ccPartition?: string;
  otherPartitions?: readonly string[];
  /** Heartbeats show instances of other partitions only: hm9k is not acting. */
  onlyOtherPartitions?: boolean;
  /** Why this policy is the one followed (apps.policyName names it, or it is the only one). */
  followed?: 'named' | 'only';
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString();

export function policyStatus(policy: AppHealthPolicy | undefined, s: PolicyStatusInput): AppHealthPolicyStatus {
  const now = iso(s.now);
  const conds: Cond[] = [
    s.followed === 'named'
      ? { type: 'Followed', status: 'True', reason: 'NamedByConfig', message: 'The app half follows this AppHealthPolicy: apps.policyName names it.' }
      : { type: 'Followed', status: 'True', reason: 'OnlyPolicy', message: 'The app half follows this AppHealthPolicy: it is the only one and apps.policyName names none.' },
    s.actualFresh
      ? { type: 'ActualStateFresh', status: 'True', reason: 'HeartbeatsFlowing', message: 'DEA heartbeats have flowed without a gap for at least the freshness TTL.' }
      : { type: 'ActualStateFresh', status: 'False', reason: s.actualStreakStart ? 'WarmingUp' : 'NoHeartbeats', message: s.actualStreakStart ? 'Heartbeats flow again; waiting one freshness TTL before acting.' : 'No recent heartbeat flush: hm9k is not acting.' },
    s.desiredFresh
      ? { type: 'DesiredStateFresh', status: 'True', reason: 'FetchComplete', message: 'A complete bulk fetch succeeded within the desired freshness TTL.' }
      : { type: 'DesiredStateFresh', status: 'False', reason: 'NoCompleteFetch', message: (s.fetchError ? `Last bulk fetch failed: ${s.fetchError}` : 'No complete bulk fetch within the desired freshness TTL.').slice(0, 1000) },
    s.stopHold
      ? { type: 'StopHold', status: 'True', reason: 'StopBudgetExceeded', message: `${s.stopHold.reason}. Every stop is held; release with: kubectl annotate ahp ${policy?.metadata.name ?? '<name>'} hm9k.io/release-stop-hold=${s.stopHold.id}`.slice(0, 2000) }
      : { type: 'StopHold', status: 'False', reason: 'WithinBudget', message: 'Stops are within the stop budget.' },
    s.shrinkHold?.kind === 'baseline'
      ? { type: 'ShrinkGuard', status: 'True', reason: 'NoTrustedBaseline', message: `${s.shrinkHold.reason}. Every stop is held, starts go on; if the desired state is right, release with: kubectl annotate ahp ${policy?.metadata.name ?? '<name>'} hm9k.io/release-stop-hold=${s.shrinkHold.id} --overwrite`.slice(0, 2000) }
      : s.shrinkHold
      ? { type: 'ShrinkGuard', status: 'True', reason: 'DesiredStateShrank', message: `${s.shrinkHold.reason}. Acting on the last good desired state; if the shrink is real, release with: kubectl annotate ahp ${policy?.metadata.name ?? '<name>'} hm9k.io/release-stop-hold=${s.shrinkHold.id} --overwrite`.slice(0, 2000) }
      : { type: 'ShrinkGuard', status: 'False', reason: 'DesiredStateTrusted', message: 'The last fetch did not shrink the desired state beyond maxShrinkPercent.' },
    s.skippedApps?.length
      ? { type: 'AppsSkipped', status: 'True', reason: 'InstancesOverLimit', message: `${s.skippedApps.length} apps not analysed (nothing started or stopped for them): ${s.skippedApps.slice(0, 5).map((a) => `${a.appGuid} (${a.instances} instances)`).join(', ')}${s.skippedApps.length > 5 ? ', ...' : ''}; the limit is guards.maxInstancesPerApp.`.slice(0, 2000) }
      : { type: 'AppsSkipped', status: 'False', reason: 'AllAppsAnalysed', message: 'Every app is analysed.' },
  ];
  const others = (s.otherPartitions ?? []).join(', ');
  const ours = s.ccPartition ?? 'default';
  conds.push(
    s.onlyOtherPartitions
      ? { type: 'OtherPartitions', status: 'True', reason: 'OnlyOtherPartitions', message: `Heartbeats carry cc_partition ${others} only, none of this policy's "${ours}": hm9k is not acting (every instance would look missing). If the Cloud Controller runs on another partition, set spec.ccPartition to it.`.slice(0, 2000) }
      : others
        ? { type: 'OtherPartitions', status: 'True', reason: 'OtherPartitionsIgnored', message: `Heartbeats and exits of cc_partition ${others} are ignored: this policy acts on "${ours}".`.slice(0, 2000) }
        : { type: 'OtherPartitions', status: 'False', reason: 'NoneSeen', message: `Every heartbeat carries this policy's cc_partition "${ours}" (or none).` },
  );
  const fresh = s.actualFresh && s.desiredFresh;
  return {
    ...(policy?.metadata.generation !== undefined ? { observedGeneration: policy.metadata.generation } : {}),
    conditions: mergeConditions(policy?.status?.conditions, conds, now, policy?.metadata.generation),
    counts: statusCounts(fresh && s.counts ? s.counts : NOT_FRESH_COUNTS, s.pending),
    ...(s.lastCompleteFetch !== undefined ? { lastCompleteFetch: iso(s.lastCompleteFetch) } : {}),
    ...(s.stopHold ? { stopHold: { id: s.stopHold.id, reason: s.stopHold.reason.slice(0, 1024), since: iso(s.stopHold.since), stopsHeld: s.stopHold.stopsHeld } } : {}),
    ...(s.releasedHoldId ? { releasedHoldId: s.releasedHoldId } : {}),
    sender: { sent: s.sender.sent, failed: s.sender.failed, ...(s.sender.lastError ? { lastError: s.sender.lastError.slice(0, 1024) } : {}) },
  };
}

export function desiredAppStatus(obj: DesiredApp, summary: AppSummary | undefined, lastAction: SendRecord | undefined, nowMs: number, inCloudController: boolean): DesiredAppStatus {
  const now = iso(nowMs);
  const conds: Cond[] = [];
  if (!inCloudController) {
    conds.push({ type: 'Converged', status: 'Unknown', reason: 'NotInCloudController', message: 'Cloud Controller does not list this app: the object is ignored.' });
  } else if (!summary) {
    conds.push({ type: 'Converged', status: 'Unknown', reason: 'NotAnalyzed', message: 'Not analyzed yet (state not fresh).' });
  } else if (summary.skipped) {
    conds.push({ type: 'Converged', status: 'Unknown', reason: 'InstancesOverLimit', message: `The Cloud Controller ${summary.skipped}; nothing is started or stopped for this app.`.slice(0, 1000) });
  } else {
    conds.push(
      summary.converged
        ? { type: 'Converged', status: 'True', reason: 'AllInstancesRunning', message: 'Every desired index runs exactly once and nothing undesired runs.' }
        : { type: 'Converged', status: 'False', reason: summary.missing > 0 ? 'InstancesMissing' : 'ExtraInstances', message: `${summary.missing} desired indices without a running instance, ${summary.undesiredRunning} undesired instances running.` },
    );
    conds.push(
      summary.flapping.length > 0
        ? { type: 'Flapping', status: 'True', reason: summary.gaveUp.length ? 'GaveUp' : 'CrashLoop', message: `Indices ${summary.flapping.map((f) => `${f.index} (${f.crashCount} crashes)`).join(', ')}${summary.gaveUp.length ? `; no longer restarted: ${summary.gaveUp.join(', ')}` : ''}`.slice(0, 1000) }
        : { type: 'Flapping', status: 'False', reason: 'NoCrashLoop', message: 'No index crashed repeatedly.' },
    );
  }
  conds.push(obj.spec?.paused ? { type: 'Paused', status: 'True', reason: 'PausedBySpec', message: 'spec.paused is true: no actions for this app.' } : { type: 'Paused', status: 'False', reason: 'Active', message: 'Actions are taken for this app.' });
  const prevAction = obj.status?.lastAction;
  const action = lastAction
    ? {
        kind: lastAction.message.kind,
        reason: lastAction.message.reason,
        index: lastAction.message.index,
        time: iso(lastAction.time),
        outcome: lastAction.outcome === 'held' ? ('dropped' as const) : lastAction.outcome,
        ...(lastAction.detail ? { message: lastAction.detail.slice(0, 500) } : {}),
      }
    : prevAction;
  return {
    ...(obj.metadata.generation !== undefined ? { observedGeneration: obj.metadata.generation } : {}),
    ...(summary ? { running: summary.running, starting: summary.starting, crashed: summary.crashed, missing: summary.missing, flapping: summary.flapping.slice(0, 20) } : {}),
    ...(action ? { lastAction: action } : {}),
    conditions: mergeConditions(obj.status?.conditions, conds, now, obj.metadata.generation),
  };
}

/** True when two summaries would give the same DesiredApp status (so nothing needs to be computed or written). */
export function sameSummary(a: AppSummary | undefined, b: AppSummary | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  if (a.running !== b.running || a.starting !== b.starting || a.crashed !== b.crashed || a.missing !== b.missing) return false;
  if (a.undesiredRunning !== b.undesiredRunning || a.converged !== b.converged || a.paused !== b.paused || a.skipped !== b.skipped) return false;
  if (a.flapping.length !== b.flapping.length || a.gaveUp.length !== b.gaveUp.length) return false;
  for (let i = 0; i < a.flapping.length; i++) if (a.flapping[i]!.index !== b.flapping[i]!.index || a.flapping[i]!.crashCount !== b.flapping[i]!.crashCount) return false;
  for (let i = 0; i < a.gaveUp.length; i++) if (a.gaveUp[i] !== b.gaveUp[i]) return false;
  const da = a.desired;
  const db = b.desired;
  if (!da || !db) return da === db;
  return da.version === db.version && da.instances === db.instances && da.state === db.state && da.packageState === db.packageState;
}

/** Deep equality of JSON values (key order ignored). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i]));
  }
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * The AppHealthPolicy status to write, or undefined when it differs from the last written one only
 * in lastCompleteFetch (a fetch every minute must not mean a write every minute: the
 * DesiredStateFresh condition says whether fetches succeed; the timestamp rides along with the next
 * real change).
 */
/**
 * The status of a policy the app half cannot follow (another one also exists and apps.policyName
 * names none): only the Followed=False condition, so that `kubectl get ahp` shows on each candidate
 * why nothing is acted on, and no freshness condition from an earlier time is left looking current.
 * Undefined when the policy already says exactly that (steady state is quiet).
 */
export function notFollowedStatus(policy: AppHealthPolicy, reason: string, message: string, now: number): AppHealthPolicyStatus | undefined {
  const prev = policy.status?.conditions;
  const cond: Cond = { type: 'Followed', status: 'False', reason, message: message.slice(0, 2000) };
  const old = prev?.find((c) => c.type === 'Followed');
  if (prev?.length === 1 && old && old.status === cond.status && old.reason === cond.reason && old.message === cond.message) return undefined;
  return { conditions: mergeConditions(prev, [cond], iso(now), policy.metadata.generation) };
}

export function policyStatusToWrite(next: AppHealthPolicyStatus, lastWritten: AppHealthPolicyStatus | undefined): AppHealthPolicyStatus | undefined {
  if (!lastWritten) return next;
  const keep = { ...next, ...(lastWritten.lastCompleteFetch !== undefined ? { lastCompleteFetch: lastWritten.lastCompleteFetch } : {}) };
  return sameJson(keep, lastWritten) ? undefined : next;
}
