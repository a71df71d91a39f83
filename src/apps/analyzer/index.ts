// The analyzer: HM9000's rules (shared/reference/hm9000.md section 6), as a pure function of
// (snapshot, now, config, pending). No I/O, no clock, and randomness only from an injected source
// (options.random, for crash-delay noise): it returns decisions that the shells (store, sender,
// status) carry out.
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
  type InstanceView,
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
  /**
   * Apps the previous complete fetch desired and the latest one omits (absent for only one fetch;
   * the fetcher computes it from consecutive snapshots). Their instances are not stopped yet.
   */
  unconfirmedRemovals?: ReadonlySet<string>;
}

export interface AnalyzeOptions {
  /** Analyze only these apps (the fast path after a droplet.exited). Counts then cover only them. */
  onlyApps?: ReadonlySet<string>;
  /** Uniform in [0, 1): the source of crash-delay noise (the shell passes Math.random, tests a seeded one). Without it, no noise. */
  random?: () => number;
  /** Every app through the rules, settled ones too (tests: both paths must agree). */
  ruleByRule?: boolean;
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
  /** Apps not analysed because their desired instances exceed guards.maxInstancesPerApp (hm9k). */
  skippedApps: number;
  /** Apps absent from the latest fetch only (their stops wait for a second fetch; hm9k). */
  unconfirmedRemovals: number;
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
  /** Set when the app was not analysed (why). */
  skipped?: string;
  /** Set when the app vanished from the latest fetch only: its stops wait for a second fetch. */
  removalUnconfirmed?: true;
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
  /** Apps not analysed (guards.maxInstancesPerApp), with why. */
  skipped: SkippedApp[];
}

export interface SkippedApp {
  appGuid: string;
  instances: number;
  reason: string;
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
  skippedApps: -1,
  unconfirmedRemovals: -1,
};

/** Section 6 rule 2: c < crashesBeforeBackoff -> 0; else startingBackoff x 2^(c - crashesBeforeBackoff), capped. */
export function crashDelayMs(count: number, cb: CrashBackoffConfig): number {
  if (count < cb.crashesBeforeBackoff) return 0;
  const exp = count - cb.crashesBeforeBackoff;
  if (exp >= 40) return cb.maxBackoffMs;
  return Math.min(cb.maxBackoffMs, cb.startingBackoffMs * 2 ** exp);
}

/**
 * The Ruby health manager's delay_time_noise: a backed-off delay moves by a uniform amount within
 * +-noise, never below 0, so that instances crashing together are not restarted in lockstep. An
 * immediate restart (no backoff) stays immediate; noise 0 keeps HM9000's deterministic delay.
 */
export function noisyDelayMs(delayMs: number, noiseMs: number, random: (() => number) | undefined): number {
  if (noiseMs <= 0 || delayMs <= 0 || !random) return delayMs;
  return Math.max(0, Math.round(delayMs + (2 * random() - 1) * noiseMs));
}

/** A crash count expires 2 x maxBackoff after its last increment. */
export function liveCrashCount(c: CrashCount | undefined, now: number, cb: CrashBackoffConfig): number {
  if (!c) return 0;
  return now - c.updatedAt < 2 * cb.maxBackoffMs ? c.count : 0;
}

/** A sent message with a keep-alive stays until sentOn + keepAlive; then it is deleted. */
export const keepAliveOver = (m: { sentOn: number; keepAliveMs: number }, now: number) => m.sentOn > 0 && now >= m.sentOn + m.keepAliveMs;

/**
 * The instances of one app version, by index, built in one pass over them. Every question a rule
 * asks of an index is a lookup, so a pass costs O(instances + desired instances) per app, never
 * more (an app with 100,000 instances must not block the event loop).
 */
class IndexView {
  private readonly byIndex = new Map<number, InstanceHeartbeat[]>();
  /** STARTING/RUNNING instances per index. */
  private readonly up = new Map<number, number>();
  private readonly running = new Set<number>();
  private readonly crashed = new Set<number>();
  /** Some instance of this version is STARTING or RUNNING (any index). */
  readonly anyStartingOrRunning: boolean;
  /** Desired indices (0..instances-1) with no STARTING/RUNNING instance. */
  readonly downIndices: number;
  readonly upInstances: number = 0;
  /** STARTING/RUNNING instances at an index >= instances. */
  readonly upOutsideDesired: number = 0;
  readonly runningInstances: number = 0;
  readonly startingInstances: number = 0;
  readonly crashedInstances: number = 0;
  constructor(
    readonly instances: readonly InstanceHeartbeat[],
    readonly desiredInstances: number,
  ) {
    for (const i of instances) {
      const list = this.byIndex.get(i.index);
      if (list) list.push(i);
      else this.byIndex.set(i.index, [i]);
      if (isStartingOrRunning(i.state)) {
        this.up.set(i.index, (this.up.get(i.index) ?? 0) + 1);
        this.upInstances++;
        if (i.index >= desiredInstances) this.upOutsideDesired++;
      }
      if (i.state === 'RUNNING') {
        this.running.add(i.index);
        this.runningInstances++;
      } else if (i.state === 'STARTING') this.startingInstances++;
      else if (i.state === 'CRASHED') {
        this.crashed.add(i.index);
        this.crashedInstances++;
      }
    }
    this.anyStartingOrRunning = this.up.size > 0;
    let upDesired = 0;
    for (const index of this.up.keys()) if (index < desiredInstances) upDesired++;
    this.downIndices = Math.max(0, desiredInstances) - upDesired;
  }
  at(index: number): readonly InstanceHeartbeat[] {
    return this.byIndex.get(index) ?? [];
  }
  /** How many instances at the index are STARTING or RUNNING. */
  upAt(index: number): number {
    return this.up.get(index) ?? 0;
  }
  startingOrRunningAt(index: number): InstanceHeartbeat[] {
    return this.upAt(index) === 0 ? [] : this.at(index).filter((i) => isStartingOrRunning(i.state));
  }
  hasRunningAt(index: number): boolean {
    return this.running.has(index);
  }
  /** Indices with a CRASHED instance, ascending. */
  crashedIndices(): number[] {
    return [...this.crashed].sort((a, b) => a - b);
  }
  /** Rule 1's "missing": no STARTING/RUNNING/CRASHED/EVACUATING instance at the index. */
  isMissing(index: number): boolean {
    return !this.byIndex.has(index);
  }
  /** Indices with more than one STARTING/RUNNING instance. */
  *duplicatedIndices(): Iterable<number> {
    for (const [index, n] of this.up) if (n > 1 && index < this.desiredInstances) yield index;
  }
  hasDuplicates(): boolean {
    for (const _ of this.duplicatedIndices()) return true;
    return false;
  }
  /** Start priority: the share of desired indices that have no STARTING/RUNNING instance. */
  priority(): number {
    return this.desiredInstances <= 0 ? 0 : this.downIndices / this.desiredInstances;
  }
}

/** Everything one pass wants for one app, before de-duplication against the pending messages. */
interface AppPlan {
  starts: { index: number; version: string; reason: StartReason; delayMs: number; priority: number; keepAliveMs: number; skipVerification: boolean; crashCount?: number }[];
  stops: { instance: InstanceHeartbeat; reason: StopReason; delayMs: number }[];
  gaveUp: number[];
}

/** Decides for every app (or options.onlyApps) at once: AnalyzerPass run to its end. */
export function analyze(snapshot: AnalyzerSnapshot, now: number, config: AppsConfig, pending: PendingActions, options: AnalyzeOptions = {}): Decisions {
  const pass = new AnalyzerPass(snapshot, now, config, pending, options);
  pass.step();
  return pass.finish();
}

/**
 * One pass over one snapshot, app by app. `analyze` runs it at once; the analysis cycle runs it in
 * slices (step with a time budget, yielding to the event loop in between) so that a pass over
 * 330,000 apps never holds up heartbeat intake for seconds (issue 14 item 8). The decisions are the
 * same either way: each app's depend only on the snapshot, which must not change while a pass is
 * under way (the cycle hands it copies).
 */
export class AnalyzerPass {
  private readonly decisions: Decisions;
  /** Desired apps in CC's order, walked in place (the snapshot's map is replaced, never changed). */
  private desiredLeft: IterableIterator<[string, DesiredAppState]> | undefined;
  /** Then the apps that only run (with onlyApps: those apps, sorted, instead). */
  private readonly appGuids: string[] = [];
  private next = 0;
  private readonly counts: AnalysisCounts;
  private readonly appsWithCrashCounts = new Set<string>();
  private readonly startPending: (key: string) => boolean;
  private readonly stopPending: (key: string) => boolean;
  /** Scratch for isSettled's distinct-index check: marks[index] === stamp means seen in this app. */
  private marks = new Uint32Array(64);
  private stamp = 0;

  constructor(
    private readonly snapshot: AnalyzerSnapshot,
    private readonly now: number,
    private readonly config: AppsConfig,
    pending: PendingActions,
    private readonly options: AnalyzeOptions = {},
  ) {
    this.decisions = {
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
      skipped: [],
    };
    this.counts = {
      desiredApps: 0, desiredInstances: 0, desiredAppsPendingStaging: 0, appsWithAllInstancesReporting: 0, appsWithMissingInstances: 0,
      undesiredRunningApps: 0, runningInstances: 0, missingIndices: 0, crashedInstances: 0, crashedIndices: 0, skippedApps: 0,
      unconfirmedRemovals: snapshot.unconfirmedRemovals?.size ?? 0,
    };
    const expiredStarts = new Set(this.decisions.expired.starts);
    const expiredStops = new Set(this.decisions.expired.stops);
    this.startPending = (key) => pending.starts.has(key) && !expiredStarts.has(key);
    this.stopPending = (key) => pending.stops.has(key) && !expiredStops.has(key);

    // Section 5: never act blind. Nothing is decided and no crash count changes unless both are fresh.
    // hm9k, stricter than HM9000 (issue 14 item 1): a MISSING start's grace must pass under fresh
    // observation, so unsent MISSING starts are dropped once actual state is not fresh; the first
    // fresh pass afterwards queues them again with a whole grace period if the index is still missing.
    if (!snapshot.actualFresh) {
      for (const [k, m] of pending.starts) if (m.reason === 'MISSING' && m.sentOn === 0) this.decisions.expired.starts.push(k); // (unsent: not expired above)
      this.decisions.notActingReason = 'ActualStateNotFresh';
      return;
    }
    if (!snapshot.desiredFresh) {
      this.decisions.notActingReason = 'DesiredStateNotFresh';
      return;
    }
    const known = (g: string) => snapshot.desired.has(g) || snapshot.instances.has(g);
    // Desired apps in CC's order, then apps that only run (no sort: a pass over 330,000 apps must stay cheap).
    if (options.onlyApps) this.appGuids = [...options.onlyApps].filter(known).sort();
    else {
      this.desiredLeft = snapshot.desired.entries();
      for (const g of snapshot.instances.keys()) if (!snapshot.desired.has(g)) this.appGuids.push(g);
    }
    for (const c of snapshot.crashCounts.values()) this.appsWithCrashCounts.add(c.appGuid);
  }

  get done(): boolean {
    return this.desiredLeft === undefined && this.next >= this.appGuids.length;
  }

  /** Analyzes apps until about budgetMs have passed (default: to the end). */
  step(budgetMs = Number.POSITIVE_INFINITY): void {
    const deadline = performance.now() + budgetMs;
    let n = 0;
    if (this.desiredLeft) {
      // (entries, not a key list and a lookup per app: at 330,000 apps that lookup was 15% of a pass;
      // a Map iterator has no return(), so leaving the loop for a slice's end does not close it)
      for (const [appGuid, desired] of this.desiredLeft) {
        this.app(appGuid, desired);
        if ((++n & 255) === 0 && performance.now() >= deadline) return;
      }
      this.desiredLeft = undefined;
    }
    while (this.next < this.appGuids.length) {
      const appGuid = this.appGuids[this.next++]!;
      this.app(appGuid, this.snapshot.desired.get(appGuid));
      if ((++n & 255) === 0 && performance.now() >= deadline) return;
    }
  }

  finish(): Decisions {
    const decisions = this.decisions;
    if (decisions.notActingReason) return decisions;
    decisions.counts = this.options.onlyApps ? { ...NOT_FRESH_COUNTS } : this.counts;
    if (this.config.paused) {
      // The policy is paused: freshness and counts are reported, nothing is decided.
      return { ...decisions, starts: [], stops: [], crashCounts: [], notActingReason: 'Paused' };
    }
    decisions.acted = true;
    return decisions;
  }

  private app(appGuid: string, desired: DesiredAppState | undefined): void {
    const { snapshot, now, config, options, decisions, counts } = this;
    const instances = snapshot.instances.get(appGuid) ?? [];
    const overrides = snapshot.overrides?.get(appGuid);

    // hm9k, stricter than HM9000 (issue 14): an app whose desired instance count is absurd is not
    // analysed at all (nothing started, nothing stopped) and is reported: one bad CC record must
    // neither block the loop past the Lease deadline nor starve the other apps.
    if (desired && desired.instances > config.guards.maxInstancesPerApp) {
      decisions.skipped.push({ appGuid, instances: desired.instances, reason: `desires ${desired.instances} instances, more than guards.maxInstancesPerApp (${config.guards.maxInstancesPerApp})` });
      decisions.apps.set(appGuid, skippedSummary(appGuid, desired, instances, overrides, config, counts));
      return;
    }

    // The steady state of nearly every app: no rule below decides anything for it (issue 14 item 8).
    if (!options.ruleByRule && isDesired(desired) && !this.appsWithCrashCounts.has(appGuid) && this.isSettled(desired, instances)) {
      decisions.apps.set(appGuid, settledSummary(appGuid, desired, config.paused || !!overrides?.paused));
      addSettledCounts(counts, desired);
      return;
    }

    const backoff = overrides?.crashBackoff ? resolveCrashBackoff(overrides.crashBackoff, config.crashBackoff) : config.crashBackoff;
    const crashCountAt = (version: string, index: number) => liveCrashCount(snapshot.crashCounts.get(crashKey(appGuid, version, index)), now, backoff);
    const app = splitApp(desired, instances);
    const plan = planApp(desired, app, config, backoff, crashCountAt);
    // hm9k, stricter than HM9000 (CC's bulk API ends paging with an empty page, so an empty page
    // mid-paging looks like the end): an app the previous fetch desired and the latest one omits is
    // not stopped on the strength of one fetch; its stops wait until a second fetch also lacks it.
    // (An app CC lists as STOPPED, or with fewer instances, is a positive statement: acted on.)
    const unconfirmed = !desired && !!snapshot.unconfirmedRemovals?.has(appGuid);
    if (unconfirmed) plan.stops = [];
    const summary = summarize(appGuid, desired, app, overrides, config, plan, this.appsWithCrashCounts.has(appGuid) ? crashCountAt : undefined, backoff);
    if (unconfirmed) summary.removalUnconfirmed = true;
    decisions.apps.set(appGuid, summary);
    addCounts(counts, desired, app);

    // `paused` (policy or app): decide nothing for this app, count nothing.
    if (summary.paused) return;
    for (const s of plan.starts) {
      const key = startKey(appGuid, s.version, s.index);
      if (this.startPending(key)) continue; // an existing key is never overwritten
      // Rule 2: the crash count increments only when a new start is enqueued. hm9k: the start
      // carries the count it raised (and the record before), and the sender gives the increment
      // back if verification drops the start unsent (a keep-alive ran out before the heartbeat
      // showed the restarted instance): a crash is counted only for a restart that went out.
      let crashCount: PendingStart['crashCount'];
      if (s.crashCount !== undefined) {
        const previous = snapshot.crashCounts.get(crashKey(appGuid, s.version, s.index));
        const live = s.crashCount > 0 && previous;
        const raised: CrashCount = { appGuid, version: s.version, index: s.index, count: s.crashCount + 1, createdAt: live ? previous.createdAt : now, updatedAt: now };
        decisions.crashCounts.push(raised);
        crashCount = previous ? { raised, previous } : { raised };
      }
      decisions.starts.push({
        kind: 'start',
        messageId: `start-${key}-${now}`,
        appGuid,
        version: s.version,
        index: s.index,
        queuedAt: now,
        sendOn: now + (s.reason === 'CRASHED' ? noisyDelayMs(s.delayMs, backoff.delayNoiseMs, options.random) : s.delayMs),
        sentOn: 0,
        keepAliveMs: s.keepAliveMs,
        skipVerification: s.skipVerification,
        reason: s.reason,
        priority: s.priority,
        ...(crashCount ? { crashCount } : {}),
      });
    }
    for (const s of plan.stops) {
      const key = s.instance.instance;
      if (this.stopPending(key)) continue;
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

  /**
   * Settled: exactly one RUNNING instance of the desired version at each desired index and nothing
   * else (no other state, version or index), and no crash count (checked by the caller). Then rule 1
   * finds nothing missing, rule 2 nothing crashed, rule 3 nothing evacuating, rules 4 and 5 nothing
   * extra or duplicated; the summary and counts follow from the instance count. One pass over the
   * instances, no IndexView (test/fuzz/analyzer.fuzz.test.ts checks it against the rule-by-rule path).
   */
  private isSettled(desired: DesiredAppState, instances: InstanceView): boolean {
    const n = desired.instances;
    if (instances.length !== n) return false;
    // The store's lists carry the answer to the loop below (InstanceView): no instance is read.
    if (instances.runningVersion !== undefined) return instances.runningVersion === desired.version && instances.maxIndex! < n;
    if (this.marks.length < n) this.marks = new Uint32Array(Math.max(n, 2 * this.marks.length));
    const stamp = (this.stamp = (this.stamp + 1) >>> 0 || 1);
    for (const i of instances) {
      if (i.state !== 'RUNNING' || i.version !== desired.version || i.index >= n || this.marks[i.index] === stamp) return false;
      this.marks[i.index] = stamp;
    }
    return true;
  }
}

/** One app's instances, split once per pass: the desired version by index, and the rest. */
interface AppInstances {
  /** Instances of the desired version (none when the app is not desired). */
  current: IndexView;
  /** Instances of any other version, or of an app not desired. */
  undesired: readonly InstanceHeartbeat[];
}

function splitApp(desired: DesiredAppState | undefined, instances: readonly InstanceHeartbeat[]): AppInstances {
  if (!isDesired(desired)) return { current: new IndexView([], 0), undesired: instances };
  // Usually every instance runs the desired version: no copy then.
  let other = 0;
  for (const i of instances) if (i.version !== desired.version) other++;
  if (other === 0) return { current: new IndexView(instances, desired.instances), undesired: [] };
  const current: InstanceHeartbeat[] = [];
  const undesired: InstanceHeartbeat[] = [];
  for (const i of instances) (i.version === desired.version ? current : undesired).push(i);
  return { current: new IndexView(current, desired.instances), undesired };
}

/** Section 6, rule by rule, for one app. */
function planApp(
  desired: DesiredAppState | undefined,
  app: AppInstances,
  config: AppsConfig,
  backoff: CrashBackoffConfig,
  crashCountAt: (version: string, index: number) => number,
): AppPlan {
  const plan: AppPlan = { starts: [], stops: [], gaveUp: [] };
  // Every start of a pass is for the desired version: one per index.
  const startPlanned = new Set<number>();
  const planStart = (s: AppPlan['starts'][number]) => {
    startPlanned.add(s.index);
    plan.starts.push(s);
  };

  if (isDesired(desired)) {
    const view = app.current;
    const staged = desired.packageState === 'STAGED';

    // Rule 3: evacuation (STAGED and PENDING alike). An EVACUATING instance gets a start elsewhere at
    // priority 2.0 with no delay; once a RUNNING instance exists at its index, it gets a stop
    // (EVACUATION_COMPLETE). At an index that is not desired it is just stopped.
    for (const evac of view.instances) {
      if (evac.state !== 'EVACUATING') continue;
      if (evac.index >= desired.instances) {
        plan.stops.push({ instance: evac, reason: 'EVACUATION_COMPLETE', delayMs: 0 });
      } else if (view.hasRunningAt(evac.index)) {
        plan.stops.push({ instance: evac, reason: 'EVACUATION_COMPLETE', delayMs: 0 });
      } else if (view.upAt(evac.index) === 0 && !startPlanned.has(evac.index)) {
        // (A STARTING replacement already exists: no second start; the stop follows once it runs.)
        planStart({ index: evac.index, version: desired.version, reason: 'EVACUATION', delayMs: 0, priority: 2.0, keepAliveMs: config.keepAliveMs, skipVerification: true });
      }
    }

    if (staged) {
      // Rule 1: missing -> START (MISSING), after the grace period, no keep-alive.
      const priority = view.priority();
      for (let index = 0; index < desired.instances; index++) {
        if (view.isMissing(index) && !startPlanned.has(index)) {
          planStart({ index, version: desired.version, reason: 'MISSING', delayMs: config.gracePeriodMs, priority, keepAliveMs: 0, skipVerification: false });
        }
      }

      // Rule 2: crashed -> START (CRASHED) with backoff. If no index of the app is running, only index 0.
      for (const index of view.crashedIndices()) {
        if (index >= desired.instances || view.upAt(index) > 0) continue;
        if (index !== 0 && !view.anyStartingOrRunning) continue;
        if (startPlanned.has(index)) continue;
        const count = crashCountAt(desired.version, index);
        if (backoff.giveUpAfter > 0 && count >= backoff.giveUpAfter) {
          plan.gaveUp.push(index);
          continue;
        }
        planStart({ index, version: desired.version, reason: 'CRASHED', delayMs: crashDelayMs(count, backoff), priority, keepAliveMs: config.keepAliveMs, skipVerification: false, crashCount: count });
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
      for (const index of view.duplicatedIndices()) {
        view
          .startingOrRunningAt(index)
          .sort((a, b) => b.state_timestamp - a.state_timestamp || a.instance.localeCompare(b.instance))
          .forEach((instance, n) => plan.stops.push({ instance, reason: 'DUPLICATE', delayMs: (4 + n) * config.gracePeriodMs }));
      }
    }
  }

  // Undesired (app STOPPED, FAILED, deleted, or an old version): rule 3 stops its EVACUATING
  // instances; rule 4 stops every STARTING/RUNNING one when no start was generated in this pass.
  for (const i of app.undesired) {
    if (i.state === 'EVACUATING') plan.stops.push({ instance: i, reason: 'EVACUATION_COMPLETE', delayMs: 0 });
    else if (isStartingOrRunning(i.state) && plan.starts.length === 0) plan.stops.push({ instance: i, reason: 'EXTRA', delayMs: 0 });
  }
  // Rule 6: crashed instances are never stopped (no rule above targets them).
  return plan;
}

function summarize(
  appGuid: string,
  desired: DesiredAppState | undefined,
  app: AppInstances,
  overrides: AppOverrides | undefined,
  config: AppsConfig,
  plan: AppPlan,
  /** Undefined when the app has no crash count at all. */
  crashCountAt: ((version: string, index: number) => number) | undefined,
  backoff: CrashBackoffConfig,
): AppSummary {
  const view = app.current;
  const flapping: AppSummary['flapping'] = [];
  if (desired && crashCountAt) {
    for (let index = 0; index < desired.instances && flapping.length < 20; index++) {
      const c = crashCountAt(desired.version, index);
      if (c >= Math.max(1, backoff.crashesBeforeBackoff)) flapping.push({ index, crashCount: c });
    }
  }
  let undesiredRunning = view.upOutsideDesired;
  for (const i of app.undesired) if (isStartingOrRunning(i.state)) undesiredRunning++;
  let crashed = view.crashedInstances;
  for (const i of app.undesired) if (i.state === 'CRASHED') crashed++;
  const missing = view.downIndices;
  const summary: AppSummary = {
    appGuid,
    paused: config.paused || !!overrides?.paused,
    running: view.runningInstances,
    starting: view.startingInstances,
    crashed,
    missing,
    flapping,
    gaveUp: plan.gaveUp,
    undesiredRunning,
    converged: missing === 0 && undesiredRunning === 0 && !view.hasDuplicates(),
  };
  if (desired) summary.desired = desired; // (no conditional spread: this runs for every app)
  return summary;
}

/**
 * Settled summaries by desired state (a DesiredAppState is replaced, never changed, when CC's
 * record changes): a settled app's summary depends on nothing else, so every pass hands out the
 * same object instead of 330,000 new ones that outlive it (issue 14 item 8: old-generation garbage
 * every pass). Summaries are read, never changed, by their consumers.
 */
const settledSummaries = new WeakMap<DesiredAppState, { running?: AppSummary; paused?: AppSummary }>();

/** A settled app's summary (see AnalyzerPass.isSettled): what summarize() says of it. */
function settledSummary(appGuid: string, desired: DesiredAppState, paused: boolean): AppSummary {
  let cached = settledSummaries.get(desired);
  if (!cached) settledSummaries.set(desired, (cached = {}));
  const key = paused ? 'paused' : 'running';
  const hit = cached[key];
  if (hit && hit.appGuid === appGuid) return hit;
  return (cached[key] = { appGuid, paused, running: desired.instances, starting: 0, crashed: 0, missing: 0, flapping: [], gaveUp: [], undesiredRunning: 0, converged: true, desired });
}

/** A settled app's counts: what addCounts() adds for it. */
function addSettledCounts(c: AnalysisCounts, desired: DesiredAppState): void {
  c.runningInstances += desired.instances;
  c.desiredApps++;
  c.desiredInstances += desired.instances;
  if (desired.packageState === 'PENDING') c.desiredAppsPendingStaging++;
  c.appsWithAllInstancesReporting++;
}

/** An app not analysed: its instances are counted as they are, nothing is decided. */
function skippedSummary(appGuid: string, desired: DesiredAppState, instances: readonly InstanceHeartbeat[], overrides: AppOverrides | undefined, config: AppsConfig, c: AnalysisCounts): AppSummary {
  let running = 0;
  let starting = 0;
  let crashed = 0;
  for (const i of instances) {
    if (i.state === 'RUNNING') running++;
    else if (i.state === 'STARTING') starting++;
    else if (i.state === 'CRASHED') crashed++;
  }
  c.skippedApps++;
  c.runningInstances += running + starting;
  c.crashedInstances += crashed;
  return {
    appGuid,
    desired,
    paused: config.paused || !!overrides?.paused,
    running,
    starting,
    crashed,
    missing: 0,
    flapping: [],
    gaveUp: [],
    undesiredRunning: 0,
    converged: false,
    skipped: `desires ${desired.instances} instances, more than guards.maxInstancesPerApp (${config.guards.maxInstancesPerApp}): not analysed`,
  };
}

function addCounts(c: AnalysisCounts, desired: DesiredAppState | undefined, app: AppInstances): void {
  const view = app.current;
  let undesiredUp = 0;
  let undesiredCrashed = 0;
  for (const i of app.undesired) {
    if (isStartingOrRunning(i.state)) undesiredUp++;
    else if (i.state === 'CRASHED') undesiredCrashed++;
  }
  c.runningInstances += view.upInstances + undesiredUp;
  c.crashedInstances += view.crashedInstances + undesiredCrashed;
  if (undesiredUp > 0) c.undesiredRunningApps++;
  if (!isDesired(desired)) return;
  c.desiredApps++;
  c.desiredInstances += desired.instances;
  if (desired.packageState === 'PENDING') c.desiredAppsPendingStaging++;
  let crashedDown = 0;
  for (const index of view.crashedIndices()) if (index < desired.instances && view.upAt(index) === 0) crashedDown++;
  c.crashedIndices += crashedDown;
  c.missingIndices += view.downIndices - crashedDown;
  if (view.downIndices === 0) c.appsWithAllInstancesReporting++;
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
