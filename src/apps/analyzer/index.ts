// The analyzer: HM9000's rules (shared/reference/hm9000.md section 6), as a pure function of
// (snapshot, now, config, pending). No I/O, no clock, no randomness: it returns decisions that the
// shells (store, sender, status) carry out.
import { resolveCrashBackoff, type AppsConfig, type CrashBackoffConfig } from '../config.js';
import {
  crashKey,
  isDesired,
  isStartingOrRunning,
  startKey,
  type AppOverrides,
  type CrashCount,
  type DesiredAppState,
  type InstanceHeartbeat,
  type PendingActions,
  type PendingStart,
  type PendingStop,
  type StartReason,
  type StopReason,
} from '../types.js';

export interface AnalyzerSnapshot {
  actualFresh: boolean;
  desiredFresh: boolean;
  /** The last good, complete desired state, by app guid. */
  desired: ReadonlyMap<string, DesiredAppState>;
  /** Actual instances, by app guid (all versions). */
  instances: ReadonlyMap<string, readonly InstanceHeartbeat[]>;
  /** Crash counts by crashKey(app, version, index). */
  crashCounts: ReadonlyMap<string, CrashCount>;
  /** Overrides from the DesiredApp objects, by app guid. */
  overrides?: ReadonlyMap<string, AppOverrides>;
}

export interface AnalyzeOptions {
  /** Analyze only these apps (the fast path after a droplet.exited). Counts then cover only them. */
  onlyApps?: ReadonlySet<string>;
}

/** HM9000's gauges; -1 when state is not fresh. */
export interface AnalysisCounts {
  desiredApps: number;
  desiredInstances: number;
  desiredAppsPendingStaging: number;
  appsWithAllInstancesReporting: number;
  appsWithMissingInstances: number;
  undesiredRunningApps: number;
  runningInstances: number;
  missingIndices: number;
  crashedInstances: number;
  crashedIndices: number;
}

export interface AppSummary {
  appGuid: string;
  desired?: DesiredAppState;
  paused: boolean;
  running: number;
  starting: number;
  crashed: number;
  missing: number;
  /** Indices whose crash count reached crashesBeforeBackoff (CC's "flapping"), with the count. */
  flapping: { index: number; crashCount: number }[];
  /** Indices hm9k gave up restarting (giveUpAfter reached). */
  gaveUp: number[];
  /** Starting or running instances that are not desired (any version). */
  undesiredRunning: number;
  /** All desired indices have a STARTING/RUNNING instance, and nothing undesired runs. */
  converged: boolean;
}

export type NotActingReason = 'ActualStateNotFresh' | 'DesiredStateNotFresh' | 'Paused';

export interface Decisions {
  /** False when nothing was decided (state not fresh, or the policy is paused). */
  acted: boolean;
  notActingReason?: NotActingReason;
  /** New pending starts (keys not already pending). */
  starts: PendingStart[];
  /** New pending stops. */
  stops: PendingStop[];
  /** Crash counts to store (incremented because a new crash start was enqueued). */
  crashCounts: CrashCount[];
  /** Pending messages whose keep-alive is over: delete them. */
  expired: { starts: string[]; stops: string[] };
  counts: AnalysisCounts;
  apps: Map<string, AppSummary>;
}

export const NOT_FRESH_COUNTS: AnalysisCounts = {
  desiredApps: -1,
  desiredInstances: -1,
  desiredAppsPendingStaging: -1,
  appsWithAllInstancesReporting: -1,
  appsWithMissingInstances: -1,
  undesiredRunningApps: -1,
  runningInstances: -1,
  missingIndices: -1,
  crashedInstances: -1,
  crashedIndices: -1,
};

/** Section 6 rule 2: c < crashesBeforeBackoff -> 0; else startingBackoff x 2^(c - crashesBeforeBackoff), capped. */
export function crashDelayMs(count: number, cb: CrashBackoffConfig): number {
  if (count < cb.crashesBeforeBackoff) return 0;
  const exp = count - cb.crashesBeforeBackoff;
  if (exp >= 40) return cb.maxBackoffMs;
  return Math.min(cb.maxBackoffMs, cb.startingBackoffMs * 2 ** exp);
}

/** A crash count expires 2 x maxBackoff after its last increment. */
export function liveCrashCount(c: CrashCount | undefined, now: number, cb: CrashBackoffConfig): number {
  if (!c) return 0;
  return now - c.updatedAt < 2 * cb.maxBackoffMs ? c.count : 0;
}

/** A sent message with a keep-alive stays until sentOn + keepAlive; then it is deleted. */
export const keepAliveOver = (m: { sentOn: number; keepAliveMs: number }, now: number) => m.sentOn > 0 && now >= m.sentOn + m.keepAliveMs;

/** The instances of one app version, by index. */
class IndexView {
  readonly byIndex = new Map<number, InstanceHeartbeat[]>();
  constructor(
    readonly instances: readonly InstanceHeartbeat[],
    readonly desiredInstances: number,
  ) {
    for (const i of instances) {
      const list = this.byIndex.get(i.index);
      if (list) list.push(i);
      else this.byIndex.set(i.index, [i]);
    }
  }
  at(index: number) {
    return this.byIndex.get(index) ?? [];
  }
  startingOrRunningAt(index: number) {
    return this.at(index).filter((i) => isStartingOrRunning(i.state));
  }
  runningAt(index: number) {
    return this.at(index).filter((i) => i.state === 'RUNNING');
  }
  hasCrashedAt(index: number) {
    return this.at(index).some((i) => i.state === 'CRASHED');
  }
  hasAnyStartingOrRunning() {
    return this.instances.some((i) => isStartingOrRunning(i.state));
  }
  /** Rule 1's "missing": no STARTING/RUNNING/CRASHED/EVACUATING instance at the index. */
  isMissing(index: number) {
    return this.at(index).length === 0;
  }
  private indices: number[] | undefined;
  /** 0..instances-1, built once per view (called several times per app and pass). */
  desiredIndices(): readonly number[] {
    if (!this.indices) {
      this.indices = new Array<number>(Math.max(0, this.desiredInstances));
      for (let i = 0; i < this.indices.length; i++) this.indices[i] = i;
    }
    return this.indices;
  }
  /** Start priority: the share of desired indices that have no STARTING/RUNNING instance. */
  priority() {
    if (this.desiredInstances <= 0) return 0;
    const down = this.desiredIndices().filter((i) => this.startingOrRunningAt(i).length === 0).length;
    return down / this.desiredInstances;
  }
}

/** Everything one pass wants for one app, before de-duplication against the pending messages. */
interface AppPlan {
  starts: { index: number; version: string; reason: StartReason; delayMs: number; priority: number; keepAliveMs: number; skipVerification: boolean; crashCount?: number }[];
  stops: { instance: InstanceHeartbeat; reason: StopReason; delayMs: number }[];
  gaveUp: number[];
}

export function analyze(snapshot: AnalyzerSnapshot, now: number, config: AppsConfig, pending: PendingActions, options: AnalyzeOptions = {}): Decisions {
  const decisions: Decisions = {
    acted: false,
    starts: [],
    stops: [],
    crashCounts: [],
    expired: {
      starts: [...pending.starts].filter(([, m]) => keepAliveOver(m, now)).map(([k]) => k),
      stops: [...pending.stops].filter(([, m]) => keepAliveOver(m, now)).map(([k]) => k),
    },
    counts: { ...NOT_FRESH_COUNTS },
    apps: new Map(),
  };

  // Section 5: never act blind. Nothing is decided and no crash count changes unless both are fresh.
  // hm9k, stricter than HM9000 (issue 14 item 1): a MISSING start's grace must pass under fresh
  // observation, so unsent MISSING starts are dropped once actual state is not fresh; the first
  // fresh pass afterwards queues them again with a whole grace period if the index is still missing.
  if (!snapshot.actualFresh) {
    for (const [k, m] of pending.starts) if (m.reason === 'MISSING' && m.sentOn === 0) decisions.expired.starts.push(k); // (unsent: not expired above)
    return { ...decisions, notActingReason: 'ActualStateNotFresh' };
  }
  if (!snapshot.desiredFresh) return { ...decisions, notActingReason: 'DesiredStateNotFresh' };

  const expiredStarts = new Set(decisions.expired.starts);
  const expiredStops = new Set(decisions.expired.stops);
  const startPending = (key: string) => pending.starts.has(key) && !expiredStarts.has(key);
  const stopPending = (key: string) => pending.stops.has(key) && !expiredStops.has(key);

  const appGuids = new Set<string>([...snapshot.desired.keys(), ...snapshot.instances.keys()]);
  const counts: AnalysisCounts = {
    desiredApps: 0, desiredInstances: 0, desiredAppsPendingStaging: 0, appsWithAllInstancesReporting: 0, appsWithMissingInstances: 0,
    undesiredRunningApps: 0, runningInstances: 0, missingIndices: 0, crashedInstances: 0, crashedIndices: 0,
  };

  for (const appGuid of [...appGuids].sort()) {
    if (options.onlyApps && !options.onlyApps.has(appGuid)) continue;
    const desired = snapshot.desired.get(appGuid);
    const instances = snapshot.instances.get(appGuid) ?? [];
    const overrides = snapshot.overrides?.get(appGuid);
    const backoff = resolveCrashBackoff(overrides?.crashBackoff, config.crashBackoff);
    const crashCountAt = (version: string, index: number) => liveCrashCount(snapshot.crashCounts.get(crashKey(appGuid, version, index)), now, backoff);

    const plan = planApp(desired, instances, config, backoff, crashCountAt);
    const summary = summarize(appGuid, desired, instances, overrides, config, plan, crashCountAt, backoff);
    decisions.apps.set(appGuid, summary);
    addCounts(counts, desired, instances);

    // `paused` (policy or app): decide nothing for this app, count nothing.
    if (summary.paused) continue;
    for (const s of plan.starts) {
      const key = startKey(appGuid, s.version, s.index);
      if (startPending(key)) continue; // an existing key is never overwritten
      decisions.starts.push({
        kind: 'start',
        messageId: `start-${key}-${now}`,
        appGuid,
        version: s.version,
        index: s.index,
        queuedAt: now,
        sendOn: now + s.delayMs,
        sentOn: 0,
        keepAliveMs: s.keepAliveMs,
        skipVerification: s.skipVerification,
        reason: s.reason,
        priority: s.priority,
      });
      // Rule 2: the crash count increments only when a new start is enqueued.
      if (s.crashCount !== undefined) {
        const prev = snapshot.crashCounts.get(crashKey(appGuid, s.version, s.index));
        const live = s.crashCount > 0 && prev;
        decisions.crashCounts.push({ appGuid, version: s.version, index: s.index, count: s.crashCount + 1, createdAt: live ? prev.createdAt : now, updatedAt: now });
      }
    }
    for (const s of plan.stops) {
      const key = s.instance.instance;
      if (stopPending(key)) continue;
      decisions.stops.push({
        kind: 'stop',
        messageId: `stop-${key}-${now}`,
        appGuid,
        version: s.instance.version,
        index: s.instance.index,
        instanceGuid: s.instance.instance,
        queuedAt: now,
        sendOn: now + s.delayMs,
        sentOn: 0,
        keepAliveMs: config.keepAliveMs,
        skipVerification: false,
        reason: s.reason,
      });
    }
  }

  decisions.counts = options.onlyApps ? { ...NOT_FRESH_COUNTS } : counts;
  if (config.paused) {
    // The policy is paused: freshness and counts are reported, nothing is decided.
    return { ...decisions, starts: [], stops: [], crashCounts: [], notActingReason: 'Paused' };
  }
  decisions.acted = true;
  return decisions;
}

/** Section 6, rule by rule, for one app. */
function planApp(
  desired: DesiredAppState | undefined,
  instances: readonly InstanceHeartbeat[],
  config: AppsConfig,
  backoff: CrashBackoffConfig,
  crashCountAt: (version: string, index: number) => number,
): AppPlan {
  const plan: AppPlan = { starts: [], stops: [], gaveUp: [] };
  const wantsStart = (version: string, index: number) => plan.starts.some((s) => s.version === version && s.index === index);
  const byVersion = new Map<string, InstanceHeartbeat[]>();
  for (const i of instances) {
    const list = byVersion.get(i.version);
    if (list) list.push(i);
    else byVersion.set(i.version, [i]);
  }

  const desiredVersion = isDesired(desired) ? desired.version : undefined;
  const undesiredInstances = instances.filter((i) => i.version !== desiredVersion);

  if (isDesired(desired)) {
    const view = new IndexView(byVersion.get(desired.version) ?? [], desired.instances);
    const staged = desired.packageState === 'STAGED';

    // Rule 3: evacuation (STAGED and PENDING alike). An EVACUATING instance gets a start elsewhere at
    // priority 2.0 with no delay; once a RUNNING instance exists at its index, it gets a stop
    // (EVACUATION_COMPLETE). At an index that is not desired it is just stopped.
    for (const evac of view.instances.filter((i) => i.state === 'EVACUATING')) {
      if (evac.index >= desired.instances) {
        plan.stops.push({ instance: evac, reason: 'EVACUATION_COMPLETE', delayMs: 0 });
      } else if (view.runningAt(evac.index).length > 0) {
        plan.stops.push({ instance: evac, reason: 'EVACUATION_COMPLETE', delayMs: 0 });
      } else if (view.startingOrRunningAt(evac.index).length === 0 && !wantsStart(desired.version, evac.index)) {
        // (A STARTING replacement already exists: no second start; the stop follows once it runs.)
        plan.starts.push({ index: evac.index, version: desired.version, reason: 'EVACUATION', delayMs: 0, priority: 2.0, keepAliveMs: config.keepAliveMs, skipVerification: true });
      }
    }

    if (staged) {
      // Rule 1: missing -> START (MISSING), after the grace period, no keep-alive.
      const priority = view.priority();
      for (const index of view.desiredIndices()) {
        if (view.isMissing(index) && !wantsStart(desired.version, index)) {
          plan.starts.push({ index, version: desired.version, reason: 'MISSING', delayMs: config.gracePeriodMs, priority, keepAliveMs: 0, skipVerification: false });
        }
      }

      // Rule 2: crashed -> START (CRASHED) with backoff. If no index of the app is running, only index 0.
      for (const index of view.desiredIndices()) {
        if (view.startingOrRunningAt(index).length > 0 || !view.hasCrashedAt(index)) continue;
        if (index !== 0 && !view.hasAnyStartingOrRunning()) continue;
        if (wantsStart(desired.version, index)) continue;
        const count = crashCountAt(desired.version, index);
        if (backoff.giveUpAfter > 0 && count >= backoff.giveUpAfter) {
          plan.gaveUp.push(index);
          continue;
        }
        plan.starts.push({ index, version: desired.version, reason: 'CRASHED', delayMs: crashDelayMs(count, backoff), priority, keepAliveMs: config.keepAliveMs, skipVerification: false, crashCount: count });
      }
    }

    // Rule 4: extra -> STOP (EXTRA), only when no start was generated for the app in this pass:
    // STARTING/RUNNING at an index >= instances (STAGED and PENDING).
    if (plan.starts.length === 0) {
      for (const i of view.instances) {
        if (isStartingOrRunning(i.state) && i.index >= desired.instances) plan.stops.push({ instance: i, reason: 'EXTRA', delayMs: 0 });
      }
    }

    // Rule 5: duplicates -> STOP (DUPLICATE), STAGED only: every STARTING/RUNNING instance at a
    // desired index that has more than one, staggered 4, 5, 6... grace periods (120 s, 150 s, 180 s);
    // the sender sends each only if duplicates remain, so exactly one survives. Newest first.
    if (staged) {
      for (const index of view.desiredIndices()) {
        const dups = view.startingOrRunningAt(index);
        if (dups.length < 2) continue;
        dups
          .sort((a, b) => b.state_timestamp - a.state_timestamp || a.instance.localeCompare(b.instance))
          .forEach((instance, n) => plan.stops.push({ instance, reason: 'DUPLICATE', delayMs: (4 + n) * config.gracePeriodMs }));
      }
    }
  }

  // Undesired (app STOPPED, FAILED, deleted, or an old version): rule 3 stops its EVACUATING
  // instances; rule 4 stops every STARTING/RUNNING one when no start was generated in this pass.
  for (const i of undesiredInstances) {
    if (i.state === 'EVACUATING') plan.stops.push({ instance: i, reason: 'EVACUATION_COMPLETE', delayMs: 0 });
    else if (isStartingOrRunning(i.state) && plan.starts.length === 0) plan.stops.push({ instance: i, reason: 'EXTRA', delayMs: 0 });
  }
  // Rule 6: crashed instances are never stopped (no rule above targets them).
  return plan;
}

function summarize(
  appGuid: string,
  desired: DesiredAppState | undefined,
  instances: readonly InstanceHeartbeat[],
  overrides: AppOverrides | undefined,
  config: AppsConfig,
  plan: AppPlan,
  crashCountAt: (version: string, index: number) => number,
  backoff: CrashBackoffConfig,
): AppSummary {
  const current = instances.filter((i) => isDesired(desired) && i.version === desired.version);
  const view = new IndexView(current, isDesired(desired) ? desired.instances : 0);
  const flapping: AppSummary['flapping'] = [];
  if (desired) {
    for (let index = 0; index < desired.instances && flapping.length < 20; index++) {
      const c = crashCountAt(desired.version, index);
      if (c >= Math.max(1, backoff.crashesBeforeBackoff)) flapping.push({ index, crashCount: c });
    }
  }
  const missing = view.desiredIndices().filter((i) => view.startingOrRunningAt(i).length === 0).length;
  const undesiredRunning = instances.filter((i) => isStartingOrRunning(i.state) && !(isDesired(desired) && i.version === desired.version && i.index < desired.instances)).length;
  const summary: AppSummary = {
    appGuid,
    paused: config.paused || !!overrides?.paused,
    running: current.filter((i) => i.state === 'RUNNING').length,
    starting: current.filter((i) => i.state === 'STARTING').length,
    crashed: instances.filter((i) => i.state === 'CRASHED').length,
    missing,
    flapping,
    gaveUp: plan.gaveUp,
    undesiredRunning,
    converged: missing === 0 && undesiredRunning === 0 && view.desiredIndices().every((i) => view.startingOrRunningAt(i).length <= 1),
  };
  if (desired) summary.desired = desired; // (no conditional spread: this runs for every app)
  return summary;
}

function addCounts(c: AnalysisCounts, desired: DesiredAppState | undefined, instances: readonly InstanceHeartbeat[]): void {
  c.runningInstances += instances.filter((i) => isStartingOrRunning(i.state)).length;
  c.crashedInstances += instances.filter((i) => i.state === 'CRASHED').length;
  const desiredVersion = isDesired(desired) ? desired.version : undefined;
  if (instances.some((i) => isStartingOrRunning(i.state) && i.version !== desiredVersion)) c.undesiredRunningApps++;
  if (!isDesired(desired)) return;
  c.desiredApps++;
  c.desiredInstances += desired.instances;
  if (desired.packageState === 'PENDING') c.desiredAppsPendingStaging++;
  const view = new IndexView(instances.filter((i) => i.version === desired.version), desired.instances);
  let missing = 0;
  for (const index of view.desiredIndices()) {
    if (view.startingOrRunningAt(index).length > 0) continue;
    if (view.hasCrashedAt(index)) c.crashedIndices++;
    else missing++;
  }
  c.missingIndices += missing;
  if (view.desiredIndices().every((i) => view.startingOrRunningAt(i).length > 0)) c.appsWithAllInstancesReporting++;
  else c.appsWithMissingInstances++;
}

/** Counts for AppHealthPolicy status. */
export function statusCounts(counts: AnalysisCounts, pending: PendingActions) {
  return {
    desiredApps: counts.desiredApps,
    desiredInstances: counts.desiredInstances,
    running: counts.runningInstances,
    missing: counts.missingIndices,
    crashed: counts.crashedInstances,
    undesired: counts.undesiredRunningApps,
    pendingStarts: [...pending.starts.values()].filter((m) => m.sentOn === 0).length,
    pendingStops: [...pending.stops.values()].filter((m) => m.sentOn === 0).length,
  };
}
