// The sender's last check (hm9000.md section 6, "Before sending, verify again against current
// state"): pure functions of the message and the current snapshot.
import { isDesired, isStartingOrRunning, type DesiredAppState, type InstanceHeartbeat, type PendingStart, type PendingStop } from '../types.js';

export interface VerifyState {
  desired: Pick<ReadonlyMap<string, DesiredAppState>, 'get'>;
  /** Actual instances by app guid (a map, or the store's per-app view). */
  instances: Pick<ReadonlyMap<string, readonly InstanceHeartbeat[]>, 'get'>;
  /** ms epoch when the current unbroken heartbeat streak began (actual freshness), if known. */
  observedSince?: number;
}

export type Verdict = { send: true; isDuplicate?: boolean } | { send: false; why: string };

export function verifyStart(m: PendingStart, s: VerifyState): Verdict {
  // Evacuation starts are sent as they are (HM9000: skip_verification); CC re-validates.
  if (m.skipVerification) return { send: true };
  const d = s.desired.get(m.appGuid);
  if (!isDesired(d)) return { send: false, why: 'app no longer desired' };
  if (d.packageState !== 'STAGED') return { send: false, why: 'package not staged' };
  if (d.version !== m.version) return { send: false, why: 'version no longer desired' };
  if (m.index >= d.instances) return { send: false, why: 'index no longer desired' };
  // Issue 14 item 1: a MISSING start queued before hm9k was last blind had part of its grace period
  // without observation; dropped (the analyzer queues it again with a whole grace if still missing).
  if (m.reason === 'MISSING' && s.observedSince !== undefined && m.queuedAt !== undefined && m.queuedAt < s.observedSince) return { send: false, why: 'grace began before hm9k was last blind' };
  const running = (s.instances.get(m.appGuid) ?? []).some((i) => i.version === m.version && i.index === m.index && isStartingOrRunning(i.state));
  if (running) return { send: false, why: 'index is running' };
  return { send: true };
}

export function verifyStop(m: PendingStop, s: VerifyState): Verdict {
  const all = s.instances.get(m.appGuid) ?? [];
  const target = all.find((i) => i.instance === m.instanceGuid);
  if (!target) return { send: false, why: 'instance vanished' };
  if (target.state === 'CRASHED') return { send: false, why: 'crashed instances are never stopped' };
  const d = s.desired.get(m.appGuid);
  if (!isDesired(d) || d.version !== target.version) return { send: true, isDuplicate: false };
  if (target.index >= d.instances) return { send: true, isDuplicate: false };
  const atIndex = all.filter((i) => i.version === target.version && i.index === target.index && i.instance !== target.instance);
  if (target.state === 'EVACUATING') {
    return atIndex.some((i) => i.state === 'RUNNING') ? { send: true, isDuplicate: true } : { send: false, why: 'no running replacement yet' };
  }
  // A duplicate (or an extra at a desired index): only while another instance still runs there.
  return atIndex.some((i) => isStartingOrRunning(i.state)) ? { send: true, isDuplicate: true } : { send: false, why: 'no duplicate left' };
}
