// The listener: NATS `dea.heartbeat` and `droplet.exited` (and HTTP heartbeats re-published on NATS
// by the API server). Buffers the newest heartbeat per DEA and applies the batch every flush
// interval: only changes, instances a DEA no longer reports are dropped, a silent DEA expires after
// the presence TTL of observed intake (never while blind); the store's index by app follows in
// slices between messages. A successful flush that carried heartbeats extends actual freshness; a
// slow flush or a store write error revokes it. droplet.exited CRASHED / DEA_SHUTDOWN /
// DEA_EVACUATION trigger the fast path (immediate analysis of that app).
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { AppsConfig } from '../config.js';
import type { MemoryStore } from '../store/memory.js';
import type { AppsMetrics } from '../status/metrics.js';
import type { DeaHeartbeat, DropletExited } from '../types.js';
import { EXITED_SUBJECT, HEARTBEAT_SUBJECT } from '../../hm9000/messages.js';
import { parseExited, parseHeartbeat } from '../../hm9000/parse.js';
import type { PartitionWatch } from './partition.js';

export { EXITED_SUBJECT, HEARTBEAT_SUBJECT };

/** Index changes applied per slice between messages (~10-20 ms of work on the 2-core machine). */
const INDEX_SLICE = 10_000;

export interface ListenerDeps {
  nats: NatsConnection;
  store: MemoryStore;
  config: () => AppsConfig;
  metrics: AppsMetrics;
  logger: Logger;
  /** cc_partition filter (absent: every message is ours). */
  partitions?: PartitionWatch;
  /** Called after a droplet.exited that warrants immediate analysis of its app. */
  onExited?: (exit: DropletExited) => void;
  now?: () => number;
}

export class Listener {
  private buffer = new Map<string, DeaHeartbeat>();
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private settling: NodeJS.Immediate | undefined;
  private loggedMalformed = new Set<string>();
  private readonly now: () => number;
  /** Set while a flush is running (tests and dumps). */
  lastFlushChanges = 0;

  constructor(private readonly deps: ListenerDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(): void {
    const { nats } = this.deps;
    this.subs.push(nats.subscribe(HEARTBEAT_SUBJECT, { callback: (err, msg) => { if (!err) this.ingestHeartbeat(msg.data, HEARTBEAT_SUBJECT); } }));
    this.subs.push(nats.subscribe(EXITED_SUBJECT, { callback: (err, msg) => { if (!err) this.ingestExited(msg.data); } }));
    void (async () => {
      for await (const s of nats.status()) if (s.type === 'disconnect' || s.type === 'slowConsumer') this.intakeBroken(s.type === 'disconnect' ? 'disconnect' : 'slow_consumer');
    })().catch(() => undefined);
    this.schedule();
  }

  /**
   * Heartbeats were lost: NATS dropped the connection (a slow consumer, whose client fell behind
   * the server's buffer, is disconnected too) or the client flagged the subscription slow. Some
   * DEAs' heartbeats of that gap are gone for good, so actual state is not fresh until a whole TTL
   * of unbroken intake again, and a DEA gets a whole presence TTL of observation (issue 14 item 8:
   * at a million instances a blocked event loop made NATS drop hm9k over and over, and the store
   * silently held an eighth of the instances). Counted, and logged.
   */
  intakeBroken(why: 'disconnect' | 'slow_consumer'): void {
    this.deps.metrics.intakeBroken.inc({ why });
    const wasFresh = this.deps.store.actualFreshness.isFresh(this.now());
    this.deps.store.revokeFreshness();
    this.deps.logger.warn({ why, wasFresh }, 'heartbeat intake broken (NATS): actual state is not fresh until one freshness TTL of unbroken intake (counted in hm9k_heartbeat_intake_broken_total)');
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.flush().finally(() => {
        if (this.timer) this.schedule();
      });
    }, this.deps.config().flushIntervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.settling);
    this.settling = undefined;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  malformed(subject: string, error: string, raw: string | Uint8Array): void {
    this.deps.metrics.malformed.inc({ subject });
    const key = `${subject}: ${error}`;
    if (this.loggedMalformed.has(key) || this.loggedMalformed.size > 1000) return;
    this.loggedMalformed.add(key);
    const sample = (typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8')).slice(0, 300);
    this.deps.logger.warn({ subject, error, sample }, 'ignoring malformed message (logged once per kind; counted in hm9k_malformed_messages_total)');
  }

  /** Buffers one heartbeat; only the newest per DEA is kept until the next flush. */
  ingestHeartbeat(raw: string | Uint8Array, subject = HEARTBEAT_SUBJECT): boolean {
    const p = parseHeartbeat(raw);
    if (!p.ok) {
      this.malformed(subject, p.error, raw);
      return false;
    }
    this.deps.metrics.receivedHeartbeats.inc();
    const hb = this.deps.partitions ? this.deps.partitions.heartbeat(p.value) : p.value;
    this.buffer.set(hb.dea, this.deps.store.shareUnchanged(hb));
    return true;
  }

  ingestExited(raw: string | Uint8Array): void {
    const p = parseExited(raw);
    if (!p.ok) {
      this.malformed(EXITED_SUBJECT, p.error, raw);
      return;
    }
    const exit = p.value;
    if (this.deps.partitions && !this.deps.partitions.exited(exit)) return;
    this.deps.store.applyExited(exit, this.now());
    if (exit.reason === 'CRASHED' || exit.reason === 'DEA_SHUTDOWN' || exit.reason === 'DEA_EVACUATION') {
      this.deps.metrics.fastPath.inc({ reason: exit.reason });
      this.deps.onExited?.(exit);
    }
  }

  /**
   * Brings the store's index by app up to date with the changes just applied, in slices between
   * messages, so that the intake keeps pace with NATS in a cold round (every instance new: a
   * million index changes) and a read of the index (which would apply them all at once) finds
   * little or nothing left.
   */
  private settleIndexSoon(): void {
    if (this.settling || this.deps.store.unsettledCount() === 0) return;
    const slice = () => {
      this.settling = this.deps.store.settleIndex(INDEX_SLICE) > 0 ? setImmediate(slice) : undefined;
    };
    this.settling = setImmediate(slice);
  }

  /** Applies the buffered heartbeats. */
  async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    const started = this.now();
    const config = this.deps.config();
    const { store } = this.deps;
    try {
      const batch = [...this.buffer.values()];
      this.buffer.clear();
      let changes = 0;
      for (const hb of batch) changes += store.applyHeartbeat(hb, started).changed;
      this.settleIndexSoon();
      store.expireDeas(store.actualFreshness.observedSpan(started, batch.length > 0), config.presenceTtlMs);
      this.deps.metrics.savedHeartbeats.inc(batch.length);
      await store.persist();
      this.lastFlushChanges = changes;
      const took = this.now() - started;
      if (took > config.heartbeatPeriodMs) {
        this.deps.logger.warn({ tookMs: took }, 'heartbeat flush took longer than a heartbeat period: actual state is not fresh');
        store.revokeFreshness();
      } else if (batch.length > 0) {
        store.recordFlush(started);
      }
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message }, 'storing heartbeats failed: actual state is not fresh');
      store.revokeFreshness();
    } finally {
      this.flushing = false;
    }
  }
}
