// HM9000's evacuator (shared/reference/hm9000.md, evacuator): a droplet.exited DEA_SHUTDOWN or
// DEA_EVACUATION starts that index elsewhere at once (priority 2.0, no verification, no grace
// period), when state is fresh and the index is still desired and not running anywhere. It
// replaces a start queued but not yet sent for another reason (a MISSING start waits a grace period
// and has no keep-alive), as HM9000's evacuator saved its start over it. Pure.
import type { AppsConfig } from '../config.js';
import { isDesired, isStartingOrRunning, startKey, type DesiredAppState, type DropletExited, type InstanceHeartbeat, type PendingStart } from '../types.js';

export interface EvacuationInput {
  /** Actual and desired state are both fresh. */
  fresh: boolean;
  desired: DesiredAppState | undefined;
  /** The app's instances (all versions). */
  instances: readonly InstanceHeartbeat[];
  /** The start already queued for that index, if any. */
  queued: PendingStart | undefined;
  /** The app is paused on its DesiredApp object. */
  appPaused: boolean;
}

export function evacuationStart(exit: DropletExited, input: EvacuationInput, now: number, cfg: Pick<AppsConfig, 'paused' | 'keepAliveMs'>): PendingStart | undefined {
  if (exit.reason !== 'DEA_SHUTDOWN' && exit.reason !== 'DEA_EVACUATION') return undefined;
  const d = input.desired;
  if (!input.fresh || cfg.paused || input.appPaused || !isDesired(d)) return undefined;
  if (d.version !== exit.version || exit.index >= d.instances) return undefined;
  if (input.instances.some((i) => i.version === exit.version && i.index === exit.index && isStartingOrRunning(i.state))) return undefined;
  const q = input.queued;
  if (q && (q.sentOn !== 0 || q.reason === 'EVACUATION')) return undefined;
  const key = startKey(exit.droplet, exit.version, exit.index);
  return { kind: 'start', messageId: `start-${key}-${now}`, appGuid: exit.droplet, version: exit.version, index: exit.index, sendOn: now, sentOn: 0, keepAliveMs: cfg.keepAliveMs, skipVerification: true, reason: 'EVACUATION', priority: 2 };
}
