// The etcd actual-state store: the memory store, plus every change written to etcd (only what
// changed, batched in transactions, leases for TTLs), so that instances, crash counts, pending
// actions, the desired snapshot and freshness survive a restart and are shared by replicas.
// Only the leader writes (setWriter); a new leader loads what its predecessor wrote.
import { Etcd3, type IOptions } from 'etcd3';
import { MemoryStore, K, type LoadResult } from './memory.js';
import type { CrashCount, DesiredAppState, InstanceHeartbeat, PendingStart, PendingStop } from '../types.js';

/** etcd's default --max-txn-ops. */
const MAX_TXN_OPS = 128;

export interface EtcdStoreOptions {
  endpoints: string[];
  prefix?: string;
  actualFreshnessTtlMs: number;
  /** Crash counts expire 2 x maxBackoff after their last increment. */
  crashTtlMs: number;
  /** Per-request timeout. */
  timeoutMs?: number;
  etcdOptions?: Partial<IOptions>;
}

export class EtcdStore extends MemoryStore {
  override readonly kind = 'etcd' as const;
  readonly client: Etcd3;
  private readonly prefix: string;
  private lastFreshnessWrite = 0;
  private leaseCache = new Map<number, { id: string; until: number }>();

  constructor(private readonly opts: EtcdStoreOptions) {
    super(opts.actualFreshnessTtlMs);
    this.prefix = opts.prefix ?? 'hm9k/apps/';
    this.client = new Etcd3({ hosts: opts.endpoints, dialTimeout: opts.timeoutMs ?? 5000, ...opts.etcdOptions });
  }

  override recordFlush(now: number): void {
    super.recordFlush(now);
    // Keep the freshness key (leased for one TTL) alive while flushes succeed.
    if (this.journalEnabled && now - this.lastFreshnessWrite >= this.opts.actualFreshnessTtlMs / 3) {
      this.lastFreshnessWrite = now;
      this.noteFreshness();
    }
  }

  override async load(now: number): Promise<LoadResult> {
    const all = await this.client.getAll().prefix(this.prefix).strings();
    const result: LoadResult = { loadedPending: 0, loadedCrashCounts: 0, loadedInstances: 0, loadedDesired: 0 };
    const haveInstances = this.deaIds().length > 0;
    const desired = new Map<string, DesiredAppState>();
    let fetchedAt: number | undefined;
    let unconfirmed: string[] = [];
    for (const [fullKey, value] of Object.entries(all)) {
      const key = fullKey.slice(this.prefix.length);
      try {
        const v = JSON.parse(value);
        if (key.startsWith('c/')) {
          const c = v as CrashCount;
          this.crash.set(key.slice(2), c);
          result.loadedCrashCounts++;
        } else if (key.startsWith('ps/')) {
          this.pendingActions.starts.set(key.slice(3), v as PendingStart);
          result.loadedPending++;
        } else if (key.startsWith('pt/')) {
          this.pendingActions.stops.set(key.slice(3), v as PendingStop);
          result.loadedPending++;
        } else if (key.startsWith('d/')) {
          desired.set(key.slice(2), v as DesiredAppState);
        } else if (key === K.desiredMeta) {
          const meta = v as { fetchedAt: number; unconfirmedRemovals?: unknown };
          fetchedAt = meta.fetchedAt;
          if (Array.isArray(meta.unconfirmedRemovals)) unconfirmed = meta.unconfirmedRemovals.filter((g): g is string => typeof g === 'string');
        } else if (key === K.freshness) {
          if (this.actualFreshness.state.lastFlush === undefined) this.actualFreshness.state = v;
        } else if (key.startsWith('i/') && !haveInstances) {
          // Instances of the predecessor: kept until their DEA's next heartbeat or the presence TTL.
          const inst = v as InstanceHeartbeat;
          this.applyHeartbeat({ dea: inst.dea_guid, droplets: [...(this.instancesOfDea(inst.dea_guid)), inst] }, now);
          result.loadedInstances++;
        }
      } catch {
        // A value we cannot read is skipped; it is rewritten or deleted on the next change.
      }
    }
    if (this.desiredApps.size === 0 && desired.size > 0) {
      this.desiredApps = desired;
      result.loadedDesired = desired.size;
      if (this.lastCompleteFetchAt === undefined && fetchedAt !== undefined) this.lastCompleteFetchAt = fetchedAt;
      // The predecessor's unconfirmed removals stay unconfirmed: the loaded snapshot lacks them.
      this.unconfirmed = new Set(unconfirmed);
    }
    return result;
  }

  private instancesOfDea(dea: string): InstanceHeartbeat[] {
    return [...(this.deas.get(dea)?.instances.values() ?? [])];
  }

  /** After gaining leadership: write the difference between memory and etcd for instances. */
  async syncInstances(): Promise<number> {
    const existing = await this.client.getAll().prefix(this.prefix + 'i/').strings();
    const want = new Map<string, string>();
    for (const [dea, s] of this.deas) for (const [guid, i] of s.instances) want.set(K.instance(dea, guid), JSON.stringify(i));
    for (const [fullKey, value] of Object.entries(existing)) {
      const key = fullKey.slice(this.prefix.length);
      const w = want.get(key);
      if (w === undefined) this.journal.set(key, null);
      else if (w !== value) this.journal.set(key, w);
      want.delete(key);
    }
    for (const [key, value] of want) this.journal.set(key, value);
    return this.persist();
  }

  private async lease(ttlMs: number): Promise<string> {
    const ttlSec = Math.max(2, Math.ceil(ttlMs / 1000));
    const now = Date.now();
    const cached = this.leaseCache.get(ttlSec);
    // Reuse one lease per TTL for a tenth of the TTL, so that keys expire at most 10% late.
    if (cached && cached.until > now) return cached.id;
    const id = await this.client.lease(ttlSec, { autoKeepAlive: false }).grant();
    this.leaseCache.set(ttlSec, { id, until: now + (ttlSec * 1000) / 10 });
    return id;
  }

  override async persist(): Promise<number> {
    if (this.journal.size === 0) return 0;
    const batch = [...this.journal];
    this.journal.clear();
    try {
      const ops = [];
      for (const [key, value] of batch) {
        const k = Buffer.from(this.prefix + key);
        if (value === null) {
          ops.push({ request_delete_range: { key: k } });
          continue;
        }
        let lease: string | undefined;
        if (key.startsWith('c/')) lease = await this.lease(this.opts.crashTtlMs);
        else if (key === K.freshness) lease = await this.lease(this.opts.actualFreshnessTtlMs);
        ops.push({ request_put: { key: k, value: Buffer.from(value), ...(lease ? { lease } : {}) } });
      }
      for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
        await this.client.kv.txn({ compare: [], success: ops.slice(i, i + MAX_TXN_OPS), failure: [] });
      }
      return ops.length;
    } catch (err) {
      // Keep what was not written (newer changes win) so that the next persist retries it.
      for (const [key, value] of batch) if (!this.journal.has(key)) this.journal.set(key, value);
      throw err;
    }
  }

  override async close(): Promise<void> {
    this.client.close();
  }
}
