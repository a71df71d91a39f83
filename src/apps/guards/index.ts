// The two guards against a wrong mass stop (architecture.md, "Never act blind"), as pure functions.
//
// Shrink guard: a fetch whose desired set shrinks by more than maxShrinkPercent at once (apps gone,
// versions changed, instances dropped, flips to STOPPED/FAILED), or that is empty while apps run, is
// not trusted: hm9k keeps acting on the last good desired state and reports it. An operator who
// means it releases the guard with the same annotation as a stop hold (value = the guard's id).
//
// Baseline guard (issue 14 item 3): the shrink guard compares a fetch with the last good desired
// state, so it cannot judge the first fetch after a restart with an empty store (it runs before any
// heartbeat is flushed). Until one desired state has been checked against fresh actual state, no
// stop is trusted: when the desired state would make more than maxShrinkPercent of the running
// instances undesired, every stop is held (starts go on) until a later fetch passes the check or an
// operator releases the hold by its id.
//
// Stop budget: when the stops due in a window exceed maxStopPercent of the running instances (and
// at least minStopsForHold), every stop is held under a hold id until the AppHealthPolicy carries
// the annotation hm9k.io/release-stop-hold=<id>. Starts go on.
import type { AppsConfig } from '../config.js';
import { isDesired, isStartingOrRunning, type DesiredAppState, type InstanceHeartbeat } from '../types.js';

export interface ShrinkVerdict {
  accept: boolean;
  /** Desired instances lost relative to the last good state, in percent (0-100). */
  shrinkPercent: number;
  lostInstances: number;
  reason?: string;
}

/**
 * Desired instances of `prev` that `next` no longer desires under the same version. Apps over
 * maxInstancesPerApp are left out (the analyzer skips them): an absurd count must neither mask a
 * real shrink elsewhere nor look like one when CC corrects it.
 */
export function desiredShrink(prev: ReadonlyMap<string, DesiredAppState>, next: ReadonlyMap<string, DesiredAppState>, maxInstancesPerApp = Number.POSITIVE_INFINITY): { total: number; lost: number } {
  let total = 0;
  let lost = 0;
  for (const [guid, p] of prev) {
    if (!isDesired(p) || p.instances > maxInstancesPerApp) continue;
    total += p.instances;
    const n = next.get(guid);
    const kept = isDesired(n) && n.version === p.version ? Math.min(n.instances, p.instances) : 0;
    lost += p.instances - kept;
  }
  return { total, lost };
}

/**
 * Removal confirmation (stricter than HM9000): CC's bulk API ends paging with an empty page, so an
 * empty page mid-paging cannot be told from the real end and a fetch may silently lack apps. The
 * apps `prev` desired that `next` omits altogether are "unconfirmed removals": the analyzer holds
 * their stops until a second fetch also lacks them (the fetch after `next` compares with `next`,
 * which no longer has them). An app listed as STOPPED, or with fewer instances, is not in the set.
 */
export function unconfirmedRemovals(prev: ReadonlyMap<string, DesiredAppState> | undefined, next: ReadonlyMap<string, DesiredAppState>): Set<string> {
  const out = new Set<string>();
  if (prev) for (const [guid, p] of prev) if (isDesired(p) && !next.has(guid)) out.add(guid);
  return out;
}

export interface ShrinkGuardInput {
  /** The last good desired state (undefined before the first accepted fetch). */
  lastGood: ReadonlyMap<string, DesiredAppState> | undefined;
  candidate: ReadonlyMap<string, DesiredAppState>;
  /** STARTING/RUNNING instances in the actual state (-1 when unknown). */
  runningInstances: number;
  /** The guard id an operator released (annotation value), if any. */
  releasedId?: string;
  /** The id of the shrink currently held, if any. */
  heldId?: string;
}

export function shrinkGuard(input: ShrinkGuardInput, config: AppsConfig): ShrinkVerdict {
  const released = !!input.heldId && input.releasedId === input.heldId;
  const desiredCount = [...input.candidate.values()].filter(isDesired).length;
  if (desiredCount === 0 && input.runningInstances > 0 && !released) {
    return { accept: false, shrinkPercent: 100, lostInstances: input.runningInstances, reason: `the Cloud Controller desires no app while ${input.runningInstances} instances run` };
  }
  if (!input.lastGood) return { accept: true, shrinkPercent: 0, lostInstances: 0 };
  const { total, lost } = desiredShrink(input.lastGood, input.candidate, config.guards.maxInstancesPerApp);
  const shrinkPercent = total === 0 ? 0 : (lost / total) * 100;
  if (shrinkPercent > config.guards.maxShrinkPercent && !released) {
    return {
      accept: false,
      shrinkPercent,
      lostInstances: lost,
      reason: `desired instances would shrink by ${shrinkPercent.toFixed(1)}% (${lost} of ${total}) in one fetch, more than maxShrinkPercent ${config.guards.maxShrinkPercent}%`,
    };
  }
  return { accept: true, shrinkPercent, lostInstances: lost };
}

export interface BaselineVerdict {
  trusted: boolean;
  /** STARTING/RUNNING instances in the actual state. */
  running: number;
  /** Of those, the ones this desired state does not desire (app, version or index). */
  undesired: number;
  reason?: string;
}

/** Whether a desired state may serve as the first trusted baseline, judged against fresh actual state. */
export function baselineCheck(desired: ReadonlyMap<string, DesiredAppState>, instances: Iterable<Iterable<InstanceHeartbeat>>, config: AppsConfig): BaselineVerdict {
  let running = 0;
  let undesired = 0;
  for (const list of instances) {
    for (const i of list) {
      if (!isStartingOrRunning(i.state)) continue;
      running++;
      const d = desired.get(i.droplet);
      if (!isDesired(d) || d.version !== i.version || i.index >= d.instances) undesired++;
    }
  }
  const percent = running === 0 ? 0 : (undesired / running) * 100;
  if (percent <= config.guards.maxShrinkPercent) return { trusted: true, running, undesired };
  return {
    trusted: false,
    running,
    undesired,
    reason: `no trusted baseline (first desired state since start): it would make ${undesired} of ${running} running instances undesired (${percent.toFixed(1)}%), more than maxShrinkPercent ${config.guards.maxShrinkPercent}%`,
  };
}

export interface StopHold {
  id: string;
  reason: string;
  /** ms epoch */
  since: number;
  stopsHeld: number;
}

export interface StopBudgetState {
  /** ms epochs of stops sent (or decided in dryRun), within the window. */
  recentStops: number[];
  hold?: StopHold;
  /** After a release: stops allowed on top of the budget until `until`. */
  allowance?: { until: number; extra: number };
  releasedHoldId?: string;
}

export interface StopBudgetInput {
  /** Stops due now (verified, about to be sent). */
  dueStops: number;
  runningInstances: number;
  /** The value of the hm9k.io/release-stop-hold annotation. */
  releaseAnnotation?: string;
  now: number;
}

export interface StopBudgetVerdict {
  allowStops: boolean;
  state: StopBudgetState;
  /** Set when a hold began in this call. */
  newHold?: StopHold;
  /** Set when an operator released a hold in this call. */
  released?: string;
}

export const stopBudgetLimit = (running: number, config: AppsConfig) => Math.floor((Math.max(0, running) * config.guards.maxStopPercent) / 100);

export function stopBudget(state: StopBudgetState, input: StopBudgetInput, config: AppsConfig): StopBudgetVerdict {
  const { now } = input;
  const windowStart = now - config.guards.stopWindowMs;
  let next: StopBudgetState = { ...state, recentStops: state.recentStops.filter((t) => t > windowStart) };
  if (next.allowance && next.allowance.until <= now) delete next.allowance;

  // An operator released the hold: the held stops go, with an allowance for them over one window.
  if (next.hold && input.releaseAnnotation === next.hold.id) {
    const released = next.hold.id;
    next = { ...next, allowance: { until: now + config.guards.stopWindowMs, extra: Math.max(next.hold.stopsHeld, input.dueStops) }, releasedHoldId: released };
    delete next.hold;
    return { allowStops: true, state: next, released };
  }
  if (next.hold) {
    next.hold = { ...next.hold, stopsHeld: Math.max(next.hold.stopsHeld, input.dueStops) };
    return { allowStops: false, state: next };
  }
  if (input.dueStops === 0) return { allowStops: true, state: next };

  const inWindow = next.recentStops.length + input.dueStops;
  const limit = stopBudgetLimit(input.runningInstances, config) + (next.allowance?.extra ?? 0);
  if (inWindow > limit && inWindow >= config.guards.minStopsForHold) {
    const hold: StopHold = {
      id: `hold-${now.toString(36)}`,
      reason: `${inWindow} stops due within ${Math.round(config.guards.stopWindowMs / 1000)}s exceed ${config.guards.maxStopPercent}% of ${input.runningInstances} running instances`,
      since: now,
      stopsHeld: input.dueStops,
    };
    return { allowStops: false, state: { ...next, hold }, newHold: hold };
  }
  return { allowStops: true, state: next };
}

/** Records stops that were sent, for the window. */
export function recordStops(state: StopBudgetState, count: number, now: number): StopBudgetState {
  return { ...state, recentStops: [...state.recentStops, ...Array.from({ length: count }, () => now)] };
}
