// Hardware monitor (issue 12): reads every node's BMC sensors and SEL on an interval, leader only
// (BMCs have few session slots; a standby reading them would starve the leader's fence calls), one
// read per BMC at a time (the IPMI client queues calls per BMC, and a node's read is skipped while
// its previous one runs). It keeps a bounded readings history per node and hands the pure decision
// (hardware/rules.ts) and the new SEL entries to its caller; it acts on nothing itself.
//
// SEL cursor: the caller persists the last SEL id it was handed (onSel) and seeds it back after a
// restart (setSelCursor), so an entry is never reported twice. A node with no cursor yet starts at
// the SEL's current end: history from before hm9k watched the node is not news (an empty SEL: -1).
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { ComputeNode } from '../../api/index.js';
import type { BmcTarget, IpmiClient } from '../../clients/ipmi.js';
import { newSelEntries, type SelEntry } from '../../clients/ipmi-sensors.js';
import { evaluateHardware, selNotices, type HardwareDecision, type HardwareReading, type ResolvedHardware, type SelNotice } from '../hardware/rules.js';

export interface HardwareMonitorDeps {
  ipmi: Pick<IpmiClient, 'readSensors' | 'readSel'>;
  bmcTarget(node: ComputeNode): Promise<BmcTarget>;
  /** The fleet-wide bound on concurrent BMC calls (NodeDeps.ipmiSem). */
  limit<T>(fn: () => Promise<T>): Promise<T>;
}

export interface HardwareMonitorHooks {
  /** The governing policy's hardware rules, or null (no single policy, or hardware disabled). */
  rulesOf(node: ComputeNode): ResolvedHardware | null;
  /** Every read's decision (the caller reports changes only: steady state is quiet). */
  onDecision(node: string, decision: HardwareDecision): void;
  /**
   * New SEL entries since the cursor and the new cursor. The caller persists `lastId` (status);
   * when this rejects, the cursor does not move and the entries come again with the next read.
   */
  onSel(node: string, fresh: SelEntry[], notices: SelNotice[], lastId: number | undefined): Promise<void>;
}

export interface HardwareMonitorOptions {
  /** How often the fleet is swept; each node is read when its policy's interval has passed. */
  tickMs?: number;
  /** Readings kept per node (at least the policy's samples). */
  historyLimit?: number;
}

export class HardwareMonitor {
  private timer: NodeJS.Timeout | undefined;
  private readonly history = new Map<string, HardwareReading[]>();
  private readonly cursors = new Map<string, number>();
  private readonly lastRead = new Map<string, number>();
  private readonly busy = new Set<string>();
  private readonly rejectedLogged = new Set<string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly deps: HardwareMonitorDeps,
    private readonly nodes: () => ComputeNode[],
    private readonly hooks: HardwareMonitorHooks,
    private readonly log: Logger,
    /** True while this process holds the Lease. */
    private readonly isActive: () => boolean,
    private readonly opts: HardwareMonitorOptions = {},
    private readonly errors?: Counter,
    private readonly now = () => Date.now(),
  ) {}

  /** Seeds a node's SEL cursor from what the caller persisted (call before start). */
  setSelCursor(node: string, lastId: number | undefined): void {
    if (lastId === undefined) this.cursors.delete(node);
    else this.cursors.set(node, lastId);
  }

  selCursor(node: string): number | undefined {
    return this.cursors.get(node);
  }

  /** The readings kept for a node, oldest first. */
  readings(node: string): readonly HardwareReading[] {
    return this.history.get(node) ?? [];
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.opts.tickMs ?? 5_000);
    this.timer.unref?.();
    void this.sweep();
  }

  /**
   * Stops the sweeps. A read in flight reports nothing once stopped (its SEL entries come again to
   * whoever reads next, from the persisted cursor): else a stopping leader could mail an entry and
   * move the cursor after its successor had read the old one, and the entry would be mailed twice.
   * Resolves when the reads in flight have ended, or after `waitMs` (a dead BMC's read runs until
   * its IPMI timeout; its result is dropped anyway).
   */
  async stop(waitMs = 3_000): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (t = setTimeout(r, waitMs)))]);
    clearTimeout(t);
  }

  /** Reads every node whose interval has passed (not waiting for them: each read is independent). */
  async sweep(): Promise<void> {
    if (!this.active()) return;
    const now = this.now();
    const due: Promise<unknown>[] = [];
    for (const n of this.nodes()) {
      const rules = n.spec.bmc && !n.spec.maintenance ? this.hooks.rulesOf(n) : null;
      if (!rules?.enabled) continue;
      const last = this.lastRead.get(n.metadata.name);
      if (last !== undefined && now - last < rules.intervalMs) continue;
      due.push(this.read(n, rules));
    }
    await Promise.all(due);
  }

  /** One read of one node (skipped while its previous read runs: one read per BMC at a time). */
  async read(node: ComputeNode, rules: ResolvedHardware): Promise<HardwareDecision | undefined> {
    const p = this.readOnce(node, rules);
    this.inFlight.add(p);
    try {
      return await p;
    } finally {
      this.inFlight.delete(p);
    }
  }

  private active(): boolean {
    return !this.stopped && this.isActive();
  }

  private async readOnce(node: ComputeNode, rules: ResolvedHardware): Promise<HardwareDecision | undefined> {
    const name = node.metadata.name;
    if (this.busy.has(name) || !this.active()) return undefined;
    this.busy.add(name);
    this.lastRead.set(name, this.now());
    try {
      let reading: HardwareReading;
      let sel: SelEntry[] | undefined;
      try {
        const target = await this.deps.bmcTarget(node);
        const r = await this.deps.limit(async () => ({ sensors: await this.deps.ipmi.readSensors(target), sel: await this.deps.ipmi.readSel(target) }));
        reading = { at: this.now(), readable: true, sensors: r.sensors.sensors };
        sel = r.sel.entries;
        const rejected = [...r.sensors.rejected, ...r.sel.rejected];
        if (rejected.length) {
          this.errors?.inc({ source: 'bmc-sensors' }, rejected.length);
          // Logged once per node with an example; counted every time.
          if (!this.rejectedLogged.has(name)) {
            this.rejectedLogged.add(name);
            this.log.warn({ node: name, count: rejected.length, example: rejected[0] }, 'unparseable ipmitool lines ignored');
          }
        }
      } catch (err) {
        this.errors?.inc({ source: 'bmc-sensors' });
        this.log.debug({ node: name, err: (err as Error).message }, 'BMC sensors unreadable');
        reading = { at: this.now(), readable: false, error: (err as Error).message };
      }
      // Stopped (or no longer leader) while BMC calls ran: report nothing (see stop()).
      if (!this.active()) return undefined;
      const h = this.history.get(name) ?? [];
      h.push(reading);
      const keep = Math.max(this.opts.historyLimit ?? 0, rules.samples + 1);
      if (h.length > keep) h.splice(0, h.length - keep);
      this.history.set(name, h);
      const decision = evaluateHardware(h, rules);
      this.hooks.onDecision(name, decision);
      if (sel) await this.advanceSel(name, sel, rules);
      return decision;
    } finally {
      this.busy.delete(name);
    }
  }

  private async advanceSel(name: string, sel: SelEntry[], rules: ResolvedHardware): Promise<void> {
    const cursor = this.cursors.get(name);
    if (cursor === undefined) {
      // First look at this BMC: start at the end of its SEL (see the header). An empty SEL gets the
      // cursor -1 (no record has it), so every entry that appears later is new.
      const end = sel.at(-1)?.id ?? -1;
      try {
        await this.hooks.onSel(name, [], [], end);
        this.cursors.set(name, end);
      } catch (err) {
        this.log.warn({ node: name, err: (err as Error).message }, 'SEL cursor not saved; will retry');
      }
      return;
    }
    const { fresh, lastId } = newSelEntries(sel, cursor);
    if (fresh.length === 0 || !this.active()) return;
    try {
      await this.hooks.onSel(name, fresh, selNotices(fresh, rules), lastId);
      if (lastId !== undefined) this.cursors.set(name, lastId);
    } catch (err) {
      this.log.warn({ node: name, err: (err as Error).message }, 'SEL entries not saved; they come again with the next read');
    }
  }

  forget(node: string): void {
    this.history.delete(node);
    this.lastRead.delete(node);
    this.cursors.delete(node);
    this.rejectedLogged.delete(node);
  }
}
