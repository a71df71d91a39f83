// cc_partition, as the Ruby health manager and dea_ng have it: several Cloud Controllers may share
// one NATS, and a DEA tags every heartbeat entry and droplet.exited with its CC's partition. hm9k
// acts only on its policy's ccPartition (default "default"); an entry without the field (HM9000
// ignored it; dea_ng may send null) counts as ours. Messages that carry only other partitions are counted, and a
// condition and one log line per partition say so. The classic misconfiguration (a CC on "ng", hm9k
// on "default") would otherwise make every desired instance look missing; while heartbeats show
// instances of other partitions only, actual state is not trusted, so nothing happens and the
// condition says why.
import type { Logger } from 'pino';
import type { DeaHeartbeat, DropletExited } from '../../hm9000/messages.js';
import type { AppsConfig } from '../config.js';
import type { AppsMetrics } from '../status/metrics.js';

/** At most this many other partitions are remembered and logged (a bounded set against junk). */
const MAX_REMEMBERED = 16;

export interface PartitionWatchDeps {
  config: () => AppsConfig;
  metrics: AppsMetrics;
  logger: Logger;
  now?: () => number;
}

export class PartitionWatch {
  /** Other partition -> when a message carrying only it (or only others) was last seen (ms). */
  private readonly others = new Map<string, number>();
  private readonly logged = new Set<string>();
  /** When an entry of our partition was last seen (ms). */
  private oursSeenAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly deps: PartitionWatchDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get ours(): string {
    return this.deps.config().ccPartition;
  }

  /** The heartbeat with only our partition's entries (the same object when every entry is ours). */
  heartbeat(hb: DeaHeartbeat): DeaHeartbeat {
    const ours = this.ours;
    let foreign = 0;
    for (const d of hb.droplets) if (d.cc_partition != null && d.cc_partition !== ours) foreign++;
    if (foreign === 0) {
      if (hb.droplets.length > 0) this.oursSeenAt = this.now();
      return hb;
    }
    const kept = hb.droplets.filter((d) => d.cc_partition == null || d.cc_partition === ours);
    if (kept.length > 0) this.oursSeenAt = this.now();
    else {
      const partitions = new Set(hb.droplets.map((d) => d.cc_partition!));
      this.other('dea.heartbeat', [...partitions], `DEA ${hb.dea}`);
    }
    return { dea: hb.dea, droplets: kept };
  }

  /** Whether a droplet.exited is ours to act on. */
  exited(e: DropletExited): boolean {
    if (e.cc_partition == null || e.cc_partition === this.ours) return true;
    this.other('droplet.exited', [e.cc_partition], `app ${e.droplet}`);
    return false;
  }

  /** Other partitions seen in messages that carried none of ours, within `windowMs` (sorted). */
  otherPartitions(now: number, windowMs: number): string[] {
    const ours = this.ours; // (a partition seen before the policy changed to it is ours now)
    return [...this.others].filter(([p, at]) => p !== ours && now - at <= windowMs).map(([p]) => p).sort();
  }

  /**
   * Heartbeats within `windowMs` showed instances of other partitions only, none of ours: acting
   * would treat every instance as missing (the misconfiguration above), so actual state is not trusted.
   */
  onlyOthers(now: number, windowMs: number): boolean {
    return now - this.oursSeenAt > windowMs && this.otherPartitions(now, windowMs).length > 0;
  }

  private other(subject: 'dea.heartbeat' | 'droplet.exited', partitions: string[], from: string): void {
    const now = this.now();
    this.deps.metrics.otherPartition.inc({ subject });
    for (const p of partitions) {
      if (this.others.has(p) || this.others.size < MAX_REMEMBERED) this.others.set(p, now);
      if (this.logged.has(p) || this.logged.size >= MAX_REMEMBERED) continue;
      this.logged.add(p);
      this.deps.logger.warn(
        { partition: p, ccPartition: this.ours, subject, from },
        `${subject} from ${from} carries cc_partition "${p}" only, not this policy's "${this.ours}": ignored (logged once; counted in hm9k_other_partition_messages_total). If the Cloud Controller runs on "${p}", set the AppHealthPolicy's spec.ccPartition: ${p}`,
      );
    }
  }
}
