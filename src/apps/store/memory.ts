// The actual-state store kept in memory (the default). The etcd store extends it: reads always come
// from memory; every change is also journaled as a key (see keys below) so that a persistent store
// can write only what changed.
import { ActualFreshness, type ActualFreshnessState, type ObservedSpan } from './freshness.js';
import {
  crashKey,
  startKey,
  type CrashCount,
  type DeaHeartbeat,
  type DesiredAppState,
  type DropletExited,
  type InstanceHeartbeat,
  type InstanceView,
  type PendingActions,
  type PendingStart,
  type PendingStop,
} from '../types.js';

/** Journal keys (also the etcd keys under the store's prefix). */
export const K = {
  instance: (dea: string, guid: string) => `i/${dea}/${guid}`,
  crash: (key: string) => `c/${key}`,
  start: (key: string) => `ps/${key}`,
  stop: (guid: string) => `pt/${guid}`,
  desired: (app: string) => `d/${app}`,
  desiredMeta: 'dm',
  freshness: 'f/actual',
};

interface DeaState {
  lastSeen: number;
  instances: Map<string, InstanceHeartbeat>;
}

/**
 * One app's instances in the index by app. Its instances share the record's guid and version
 * strings, the desired state's when it has the app (looked up once per app, not per instance:
 * issue 14 item 8), so that a million instances do not each keep their own copies (~110 MB).
 */
interface AppInstances {
  guid: string;
  /** The desired version when the desired state had the app as its record was made. */
  version: string;
  /** The latest other version seen. */
  other: string | undefined;
  instances: Map<string, InstanceHeartbeat>;
  /** The list handed to readers, built on demand; replaced (never changed) when an instance changes. */
  view: InstanceView | undefined;
}

/** An instance to take out of the index by app (a queued change; see `unsettled`). */
class Unindex {
  constructor(readonly inst: InstanceHeartbeat) {}
}

const NO_INSTANCES: InstanceView = Object.freeze([]);

/** Some instance before list[end] is at `index` (a short list: no Set). */
function atIndexBefore(list: readonly InstanceHeartbeat[], end: number, index: number): boolean {
  for (let n = 0; n < end; n++) if (list[n]!.index === index) return true;
  return false;
}

/** An app's instances as a list with the facts of InstanceView (one pass; linear in the instances). */
function viewOf(instances: Map<string, InstanceHeartbeat>): InstanceView {
  const list: InstanceHeartbeat[] & { runningVersion?: string | undefined; maxIndex?: number } = [...instances.values()];
  let version = list[0]?.version;
  let maxIndex = -1;
  const indices = list.length > 8 ? new Set<number>() : undefined;
  for (let n = 0; n < list.length && version !== undefined; n++) {
    const i = list[n]!;
    if (i.state !== 'RUNNING' || i.version !== version) version = undefined;
    else if (indices ? indices.has(i.index) : atIndexBefore(list, n, i.index)) version = undefined;
    else {
      indices?.add(i.index);
      if (i.index > maxIndex) maxIndex = i.index;
    }
  }
  // (both always set, in this order: every view has one shape)
  list.runningVersion = version;
  list.maxIndex = maxIndex;
  return list;
}

export interface ApplyResult {
  /** Instances added, changed or removed. */
  changed: number;
}

export interface LoadResult {
  loadedPending: number;
  loadedCrashCounts: number;
  loadedInstances: number;
  loadedDesired: number;
}

export class MemoryStore {
  readonly kind: 'memory' | 'etcd' = 'memory';
  protected deas = new Map<string, DeaState>();
  private byApp = new Map<string, AppInstances>();
  /**
   * Changes to the index by app that applyHeartbeat and expireDeas made to the DEAs' instances, in
   * order, not applied yet. Heartbeats come in DEA order and an app's instances are spread over the
   * DEAs, so indexing is a random access per instance: the intake only records them, and they are
   * applied in slices between messages (settleIndex) and, before anything reads the index, all of
   * them (settle). A read therefore always sees every change, in the order it was made.
   */
  private unsettled: (InstanceHeartbeat | Unindex)[] = [];
  private settledUpTo = 0;
  protected crash = new Map<string, CrashCount>();
  protected pendingActions: PendingActions = { starts: new Map(), stops: new Map() };
  protected desiredApps = new Map<string, DesiredAppState>();
  protected lastCompleteFetchAt: number | undefined;
  protected unconfirmed: ReadonlySet<string> = new Set();
  readonly actualFreshness: ActualFreshness;
  /** Changed keys since the last drain: value = JSON, or null for a delete. */
  protected journal = new Map<string, string | null>();
  journalEnabled = false;

  constructor(actualFreshnessTtlMs: number) {
    this.actualFreshness = new ActualFreshness(actualFreshnessTtlMs);
  }

  protected note(key: string, value: unknown | null): void {
    if (this.journalEnabled) this.journal.set(key, value === null ? null : JSON.stringify(value));
  }

  // ---- actual state -------------------------------------------------------------------------

  /**
   * Replaces, in a heartbeat just received, every entry equal to what the store holds by the stored
   * record, so that the parsed copies die young: buffered until the next flush, they outlived a
   * scavenge or two and filled the old generation with garbage (at 1 s heartbeats from 100 DEAs the
   * heap swung between 120 and 470 MB, issue 14 item 9). Applying it later is unchanged: an entry that
   * is the stored record is unchanged by identity, and one the store changed meanwhile compares as before.
   */
  shareUnchanged(hb: DeaHeartbeat): DeaHeartbeat {
    const dea = this.deas.get(hb.dea);
    if (!dea) return hb;
    const droplets = hb.droplets;
    for (let n = 0; n < droplets.length; n++) {
      const d = droplets[n]!;
      const prev = dea.instances.get(d.instance);
      if (prev && prev !== d && sameInstance(prev, d)) droplets[n] = prev;
    }
    return hb;
  }

  /** Applies the newest heartbeat of one DEA: only changes, and instances it no longer reports are gone. */
  applyHeartbeat(hb: DeaHeartbeat, now: number): ApplyResult {
    let dea = this.deas.get(hb.dea);
    // A DEA not known yet (every DEA in the cold round after a start) has nothing to remove.
    const known = dea !== undefined && dea.instances.size > 0;
    if (!dea) {
      dea = { lastSeen: now, instances: new Map() };
      this.deas.set(hb.dea, dea);
    }
    dea.lastSeen = now;
    let changed = 0;
    const seen = known ? new Set<string>() : undefined;
    for (const d of hb.droplets) {
      seen?.add(d.instance);
      const prev = dea.instances.get(d.instance);
      // Unchanged (nearly every instance of every heartbeat): compared before anything is allocated.
      if (prev && (prev === d || sameInstance(prev, d))) continue;
      // A plain literal (a conditional spread here costs ~25x: this runs for every changed instance).
      const next: InstanceHeartbeat = { droplet: d.droplet, version: d.version, instance: d.instance, index: d.index, state: d.state, state_timestamp: d.state_timestamp, dea_guid: hb.dea };
      if (d.cc_partition !== undefined) next.cc_partition = d.cc_partition;
      if (prev && prev.droplet !== next.droplet) this.unsettled.push(new Unindex(prev));
      dea.instances.set(d.instance, next);
      this.unsettled.push(next);
      this.note(K.instance(hb.dea, d.instance), next);
      changed++;
    }
    if (!seen) return { changed };
    for (const [guid, prev] of dea.instances) {
      if (seen.has(guid)) continue;
      dea.instances.delete(guid);
      this.unsettled.push(new Unindex(prev));
      this.note(K.instance(hb.dea, guid), null);
      changed++;
    }
    return { changed };
  }

  /**
   * A DEA is gone, with all its instances, once heartbeats (of other DEAs) flowed for the presence
   * TTL without one from it (HM9000 section 2). Its silence is counted only within `observed`, the
   * current unbroken intake streak up to its last flush that carried heartbeats: while hm9k is blind
   * (NATS down, a gap, a revoked streak) no DEA expires, and after it a DEA gets a whole presence
   * TTL of observation again (issue 14 item 1: a DEA quiet across a NATS outage is not missing).
   */
  expireDeas(observed: ObservedSpan | undefined, presenceTtlMs: number): string[] {
    const gone: string[] = [];
    if (!observed) return gone;
    for (const [id, dea] of this.deas) {
      if (observed.until - Math.max(dea.lastSeen, observed.from) <= presenceTtlMs) continue;
      gone.push(id);
      for (const [guid, inst] of dea.instances) {
        this.unsettled.push(new Unindex(inst));
        this.note(K.instance(id, guid), null);
      }
      this.deas.delete(id);
    }
    return gone;
  }

  /**
   * droplet.exited: CRASHED marks the instance crashed at once; DEA_EVACUATION marks it EVACUATING
   * (it still runs until its replacement does: removing it would make its index look missing);
   * any other reason removes it.
   */
  applyExited(exit: DropletExited, now: number): InstanceHeartbeat | undefined {
    this.settle();
    const inst = this.byApp.get(exit.droplet)?.instances.get(exit.instance);
    if (!inst) return undefined;
    const dea = this.deas.get(inst.dea_guid);
    if (exit.reason === 'CRASHED' || exit.reason === 'DEA_EVACUATION') {
      const crashed: InstanceHeartbeat = exit.reason === 'CRASHED' ? { ...inst, state: 'CRASHED', state_timestamp: exit.crash_timestamp ?? now / 1000 } : { ...inst, state: 'EVACUATING', state_timestamp: now / 1000 };
      dea?.instances.set(inst.instance, crashed);
      this.index(crashed);
      this.note(K.instance(inst.dea_guid, inst.instance), crashed);
      return crashed;
    }
    dea?.instances.delete(inst.instance);
    this.unindex(inst);
    this.note(K.instance(inst.dea_guid, inst.instance), null);
    return inst;
  }

  /** Index changes not applied yet (see `unsettled`). */
  unsettledCount(): number {
    return this.unsettled.length - this.settledUpTo;
  }

  /** Applies up to `max` of the queued index changes, oldest first; returns how many are left. */
  settleIndex(max: number): number {
    const q = this.unsettled;
    const end = Math.min(q.length, this.settledUpTo + max);
    for (let n = this.settledUpTo; n < end; n++) {
      const op = q[n]!;
      if (op instanceof Unindex) this.unindex(op.inst);
      else this.index(op);
    }
    this.settledUpTo = end;
    if (end === q.length) {
      this.unsettled = [];
      this.settledUpTo = 0;
    }
    return this.unsettledCount();
  }

  /** Applies every queued index change: called first by every read of the index. */
  protected settle(): void {
    if (this.unsettled.length > 0) this.settleIndex(Infinity);
  }

  private index(i: InstanceHeartbeat): void {
    let a = this.byApp.get(i.droplet);
    if (!a) {
      const want = this.desiredApps.get(i.droplet);
      const desired = want !== undefined && want.appGuid === i.droplet; // (always, when CC has the app)
      a = { guid: desired ? want.appGuid : i.droplet, version: desired ? want.version : i.version, other: undefined, instances: new Map(), view: undefined };
      this.byApp.set(a.guid, a);
    }
    // (equal strings: the stored record is not changed in what it says)
    i.droplet = a.guid;
    if (i.version === a.version) i.version = a.version;
    else if (i.version === a.other) i.version = a.other;
    else a.other = i.version;
    a.instances.set(i.instance, i);
    a.view = undefined;
  }

  private unindex(i: InstanceHeartbeat): void {
    const a = this.byApp.get(i.droplet);
    if (!a) return;
    if (a.instances.get(i.instance)?.dea_guid === i.dea_guid) a.instances.delete(i.instance);
    a.view = undefined;
    if (a.instances.size === 0) this.byApp.delete(i.droplet);
  }

  instancesOf(appGuid: string): InstanceView {
    this.settle();
    const a = this.byApp.get(appGuid);
    if (!a) return NO_INSTANCES;
    return (a.view ??= viewOf(a.instances));
  }

  /** Actual instances by app guid (a read-only view). */
  instancesByApp(): ReadonlyMap<string, InstanceView> {
    this.settle();
    const out = new Map<string, InstanceView>();
    for (const [app, a] of this.byApp) out.set(app, (a.view ??= viewOf(a.instances)));
    return out;
  }

  /** Every app's instances, without building a map (one pass over the index). */
  *instanceLists(): Iterable<Iterable<InstanceHeartbeat>> {
    this.settle();
    for (const a of this.byApp.values()) yield a.instances.values();
  }

  /** STARTING or RUNNING instances (the guards' denominator), counted without copying anything. */
  startingOrRunningCount(): number {
    this.settle();
    let n = 0;
    for (const a of this.byApp.values()) for (const i of a.instances.values()) if (i.state === 'STARTING' || i.state === 'RUNNING') n++;
    return n;
  }

  deaIds(): string[] {
    return [...this.deas.keys()];
  }

  deaLastSeen(id: string): number | undefined {
    return this.deas.get(id)?.lastSeen;
  }

  instanceCount(): number {
    this.settle();
    let n = 0;
    for (const a of this.byApp.values()) n += a.instances.size;
    return n;
  }

  recordFlush(now: number): void {
    const before = this.actualFreshness.state.streakStart;
    this.actualFreshness.recordFlush(now);
    if (this.actualFreshness.state.streakStart !== before) this.noteFreshness();
  }

  revokeFreshness(): void {
    this.actualFreshness.revoke();
    this.note(K.freshness, null);
  }

  protected noteFreshness(): void {
    this.note(K.freshness, this.actualFreshness.state);
  }

  // ---- desired state ------------------------------------------------------------------------

  /**
   * `unconfirmed`: apps the previous desired state had and `apps` omits, for one fetch only
   * (guards: unconfirmedRemovals); their stops wait for a second fetch.
   */
  setDesired(apps: ReadonlyMap<string, DesiredAppState>, fetchedAt: number, unconfirmed: ReadonlySet<string> = new Set()): void {
    this.unconfirmed = unconfirmed;
    const next = new Map<string, DesiredAppState>();
    for (const [guid, app] of apps) {
      const prev = this.desiredApps.get(guid);
      // An unchanged app keeps its record, and so its strings, from fetch to fetch: the index by
      // app and its instances share them (the analyzer then compares versions and looks apps up
      // by identity), and its settled summary stays cached (analyzer: settledSummaries).
      if (prev && sameDesired(prev, app)) { // (fields, not two JSON.stringify per app: 333,000 apps a fetch)
        next.set(prev.appGuid, prev);
        continue;
      }
      next.set(guid, app);
      this.note(K.desired(guid), app);
    }
    for (const guid of this.desiredApps.keys()) if (!apps.has(guid)) this.note(K.desired(guid), null);
    this.desiredApps = next;
    this.markDesiredFetched(fetchedAt);
  }

  /** A complete fetch succeeded (possibly kept on the last good state by the shrink guard). */
  markDesiredFetched(fetchedAt: number): void {
    this.lastCompleteFetchAt = fetchedAt;
    this.note(K.desiredMeta, { fetchedAt, ...(this.unconfirmed.size ? { unconfirmedRemovals: [...this.unconfirmed] } : {}) });
  }

  /** Apps absent from the latest accepted fetch only (see setDesired). */
  unconfirmedRemovals(): ReadonlySet<string> {
    return this.unconfirmed;
  }

  desired(): ReadonlyMap<string, DesiredAppState> {
    return this.desiredApps;
  }

  lastCompleteFetch(): number | undefined {
    return this.lastCompleteFetchAt;
  }

  // ---- crash counts -------------------------------------------------------------------------

  crashCounts(): ReadonlyMap<string, CrashCount> {
    return this.crash;
  }

  putCrashCounts(counts: readonly CrashCount[]): void {
    for (const c of counts) {
      const key = crashKey(c.appGuid, c.version, c.index);
      this.crash.set(key, c);
      this.note(K.crash(key), c);
    }
  }

  /**
   * Gives back the increment of a start dropped unsent (issue 10 item 2): restores the record it
   * replaced, or deletes the count it created, only while the stored count is still the one that
   * start raised (anything newer, or an expiry, wins). True when something was rolled back.
   */
  rollBackCrashCount(raised: CrashCount, previous: CrashCount | undefined): boolean {
    const key = crashKey(raised.appGuid, raised.version, raised.index);
    const current = this.crash.get(key);
    if (!current || current.count !== raised.count || current.updatedAt !== raised.updatedAt) return false;
    if (previous) {
      this.crash.set(key, previous);
      this.note(K.crash(key), previous);
    } else {
      this.crash.delete(key);
      this.note(K.crash(key), null);
    }
    return true;
  }

  /** Drops crash counts that expired (2 x maxBackoff after their last increment). */
  expireCrashCounts(now: number, maxAgeMs: number): void {
    for (const [key, c] of this.crash) {
      if (now - c.updatedAt < maxAgeMs) continue;
      this.crash.delete(key);
      this.note(K.crash(key), null);
    }
  }

  // ---- pending actions ----------------------------------------------------------------------

  pending(): PendingActions {
    return this.pendingActions;
  }

  putPending(messages: readonly (PendingStart | PendingStop)[]): void {
    for (const m of messages) {
      if (m.kind === 'start') {
        const key = startKey(m.appGuid, m.version, m.index);
        this.pendingActions.starts.set(key, m);
        this.note(K.start(key), m);
      } else {
        this.pendingActions.stops.set(m.instanceGuid, m);
        this.note(K.stop(m.instanceGuid), m);
      }
    }
  }

  deletePending(starts: readonly string[], stops: readonly string[]): void {
    for (const k of starts) if (this.pendingActions.starts.delete(k)) this.note(K.start(k), null);
    for (const k of stops) if (this.pendingActions.stops.delete(k)) this.note(K.stop(k), null);
  }

  // ---- persistence hooks (no-ops in memory) -------------------------------------------------

  /** Loads persisted state (etcd). */
  async load(_now: number): Promise<LoadResult> {
    return { loadedPending: 0, loadedCrashCounts: 0, loadedInstances: 0, loadedDesired: 0 };
  }

  /** Writes what changed since the last call (etcd, leader only). Throws on a write error. */
  async persist(): Promise<number> {
    this.journal.clear();
    return 0;
  }

  /** Enables or disables writes (only the leader writes). */
  setWriter(enabled: boolean): void {
    this.journalEnabled = enabled && this.kind === 'etcd';
    if (!this.journalEnabled) this.journal.clear();
  }

  /** Freshness state, for persistence and dumps. */
  freshnessState(): ActualFreshnessState {
    return this.actualFreshness.state;
  }

  async close(): Promise<void> {}
}

function sameDesired(a: DesiredAppState, b: DesiredAppState): boolean {
  return a.appGuid === b.appGuid && a.version === b.version && a.instances === b.instances && a.state === b.state && a.packageState === b.packageState && a.memory === b.memory && a.updatedAt === b.updatedAt;
}

/** The stored instance `a` (of this DEA) says what the heartbeat's entry `b` says. */
function sameInstance(a: InstanceHeartbeat, b: Omit<InstanceHeartbeat, 'dea_guid'>): boolean {
  return a.state === b.state && a.state_timestamp === b.state_timestamp && a.index === b.index && a.version === b.version && a.droplet === b.droplet && a.cc_partition === b.cc_partition;
}

export type AppsStore = MemoryStore;
