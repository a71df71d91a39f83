// A DEA fleet simulator: N DEAs publishing real `dea.heartbeat` messages on NATS every heartbeat
// period (dea_ng's format), running instances, obeying the starts and stops Cloud Controller tells
// them, and able to crash an instance (droplet.exited CRASHED), evacuate (EVACUATING, then
// droplet.exited DEA_EVACUATION), shut down (droplet.exited DEA_SHUTDOWN) or die silently.
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { EXITED_SUBJECT, HEARTBEAT_SUBJECT, type DeaHeartbeat, type DropletExited, type ExitReason, type InstanceState } from '../hm9000/messages.js';

export interface SimInstance {
  guid: string;
  appGuid: string;
  version: string;
  index: number;
  state: InstanceState;
  /** seconds (float), as DEAs send it */
  stateTimestamp: number;
  dea: string;
}

export interface DeaFleetOptions {
  nats: NatsConnection;
  count: number;
  heartbeatPeriodMs: number;
  /** STARTING -> RUNNING after this long. */
  startupMs?: number;
  /** An evacuating DEA exits after this long. */
  evacuationTimeoutMs?: number;
  /** A DEA keeps its latest crashed instance per app this long (dea_ng: 1 h). */
  crashedRetentionMs?: number;
  idPrefix?: string;
  /** The Cloud Controller partition every heartbeat entry and droplet.exited carries (dea_ng: "default"). */
  ccPartition?: string;
}

/** What Cloud Controller tells DEAs (the CC simulator drives the fleet through this). */
export interface DeaDirector {
  startInstance(appGuid: string, version: string, index: number): string | undefined;
  stopInstances(appGuid: string, instanceGuids: string[]): number;
}

interface SimDea {
  id: string;
  alive: boolean;
  /** Alive and running its instances, but publishing no heartbeats (a stalled DEA or a network hiccup). */
  quiet: boolean;
  evacuating: boolean;
  instances: Map<string, SimInstance>;
  /** Latest crashed instance per app, with when it crashed. */
  crashed: Map<string, { inst: SimInstance; at: number }>;
}

export class DeaFleet implements DeaDirector {
  private deas = new Map<string, SimDea>();
  private timers = new Set<NodeJS.Timeout>();
  private hbTimer: NodeJS.Timeout | undefined;
  /** Apps whose instances crash right after they start (a crash loop). */
  readonly crashOnStart = new Set<string>();
  /** Every start and stop the fleet obeyed. */
  readonly log: { at: number; op: 'start' | 'stop' | 'crash' | 'exit'; appGuid: string; index: number; instance: string; dea: string }[] = [];
  heartbeatsSent = 0;

  constructor(private readonly opts: DeaFleetOptions) {
    for (let i = 0; i < opts.count; i++) this.addDea();
  }

  addDea(id = `${this.opts.idPrefix ?? 'dea'}-${this.deas.size}`): string {
    this.deas.set(id, { id, alive: true, quiet: false, evacuating: false, instances: new Map(), crashed: new Map() });
    return id;
  }

  /** Starts publishing heartbeats every period. */
  start(): this {
    const tick = () => {
      this.publishAll();
      this.hbTimer = setTimeout(tick, this.opts.heartbeatPeriodMs);
    };
    tick();
    return this;
  }

  async stopAll(): Promise<void> {
    clearTimeout(this.hbTimer);
    this.hbTimer = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  heartbeatOf(deaId: string): DeaHeartbeat {
    const dea = this.deas.get(deaId)!;
    const now = Date.now();
    for (const [app, c] of dea.crashed) if (now - c.at > (this.opts.crashedRetentionMs ?? 3_600_000)) dea.crashed.delete(app);
    const list = [...dea.instances.values(), ...[...dea.crashed.values()].map((c) => c.inst)];
    return {
      dea: dea.id,
      droplets: list.map((i) => ({ cc_partition: this.opts.ccPartition ?? 'default', droplet: i.appGuid, version: i.version, instance: i.guid, index: i.index, state: i.state, state_timestamp: i.stateTimestamp })),
    };
  }

  publishHeartbeat(deaId: string): void {
    const dea = this.deas.get(deaId);
    if (!dea?.alive || dea.quiet) return;
    this.opts.nats.publish(HEARTBEAT_SUBJECT, JSON.stringify(this.heartbeatOf(deaId)));
    this.heartbeatsSent++;
  }

  publishAll(): void {
    for (const id of this.deas.keys()) this.publishHeartbeat(id);
  }

  private exited(inst: SimInstance, reason: ExitReason): void {
    const msg: DropletExited = { cc_partition: this.opts.ccPartition ?? 'default', droplet: inst.appGuid, version: inst.version, instance: inst.guid, index: inst.index, reason, exit_status: reason === 'CRASHED' ? 1 : 0, exit_description: reason.toLowerCase(), crash_timestamp: Date.now() / 1000 };
    this.opts.nats.publish(EXITED_SUBJECT, JSON.stringify(msg));
  }

  /** Places an instance on the alive, non-evacuating DEA with the fewest instances. */
  startInstance(appGuid: string, version: string, index: number): string | undefined {
    const candidates = [...this.deas.values()].filter((d) => d.alive && !d.evacuating).sort((a, b) => a.instances.size - b.instances.size || a.id.localeCompare(b.id));
    const dea = candidates[0];
    if (!dea) return undefined;
    const inst: SimInstance = { guid: randomUUID(), appGuid, version, index, state: 'STARTING', stateTimestamp: Date.now() / 1000, dea: dea.id };
    dea.instances.set(inst.guid, inst);
    this.log.push({ at: Date.now(), op: 'start', appGuid, index, instance: inst.guid, dea: dea.id });
    this.later(this.opts.startupMs ?? 0, () => {
      if (dea.instances.get(inst.guid) !== inst || inst.state !== 'STARTING') return;
      if (this.crashOnStart.has(appGuid)) {
        this.crash(inst.guid);
        return;
      }
      inst.state = 'RUNNING';
      inst.stateTimestamp = Date.now() / 1000;
    });
    return inst.guid;
  }

  /** dea.stop: stops the listed instances of the app wherever they run. */
  stopInstances(appGuid: string, instanceGuids: string[]): number {
    let n = 0;
    for (const dea of this.deas.values()) {
      if (!dea.alive) continue;
      for (const g of instanceGuids) {
        const inst = dea.instances.get(g);
        if (!inst || inst.appGuid !== appGuid) continue;
        dea.instances.delete(g);
        this.log.push({ at: Date.now(), op: 'stop', appGuid, index: inst.index, instance: g, dea: dea.id });
        this.exited(inst, 'STOPPED');
        n++;
      }
    }
    return n;
  }

  /** Places a running instance directly (test setup, or an instance CC does not know about). */
  place(deaId: string, appGuid: string, version: string, index: number, state: InstanceState = 'RUNNING'): string {
    const dea = this.deas.get(deaId)!;
    const inst: SimInstance = { guid: randomUUID(), appGuid, version, index, state, stateTimestamp: Date.now() / 1000, dea: deaId };
    dea.instances.set(inst.guid, inst);
    return inst.guid;
  }

  /** The instance crashes: droplet.exited CRASHED, and the DEA reports it CRASHED. */
  crash(instanceGuid: string): void {
    for (const dea of this.deas.values()) {
      const inst = dea.instances.get(instanceGuid);
      if (!inst) continue;
      dea.instances.delete(instanceGuid);
      const crashed = { ...inst, state: 'CRASHED' as const, stateTimestamp: Date.now() / 1000 };
      dea.crashed.set(inst.appGuid, { inst: crashed, at: Date.now() });
      this.log.push({ at: Date.now(), op: 'crash', appGuid: inst.appGuid, index: inst.index, instance: instanceGuid, dea: dea.id });
      if (dea.alive) this.exited(crashed, 'CRASHED');
      return;
    }
  }

  /** Evacuation: instances turn EVACUATING at once; the DEA exits after the evacuation timeout. */
  evacuate(deaId: string): void {
    const dea = this.deas.get(deaId)!;
    dea.evacuating = true;
    for (const i of dea.instances.values()) {
      i.state = 'EVACUATING';
      i.stateTimestamp = Date.now() / 1000;
    }
    this.publishHeartbeat(deaId);
    this.later(this.opts.evacuationTimeoutMs ?? 30_000, () => this.exitDea(deaId, 'DEA_EVACUATION'));
  }

  /** Shutdown: droplet.exited DEA_SHUTDOWN for every instance, then silence. */
  shutdown(deaId: string): void {
    this.exitDea(deaId, 'DEA_SHUTDOWN');
  }

  private exitDea(deaId: string, reason: ExitReason): void {
    const dea = this.deas.get(deaId)!;
    if (!dea.alive) return;
    for (const inst of dea.instances.values()) {
      this.log.push({ at: Date.now(), op: 'exit', appGuid: inst.appGuid, index: inst.index, instance: inst.guid, dea: deaId });
      this.exited(inst, reason);
    }
    dea.instances.clear();
    dea.alive = false;
  }

  /** The DEA keeps running its instances but stops (quiet = true) or resumes publishing heartbeats. */
  setQuiet(deaId: string, quiet: boolean): void {
    this.deas.get(deaId)!.quiet = quiet;
  }

  /** The DEA dies silently: no more heartbeats, no exit messages. */
  kill(deaId: string): void {
    const dea = this.deas.get(deaId)!;
    dea.alive = false;
    dea.instances.clear();
  }

  /** Instances on alive DEAs (optionally of one app). */
  instances(appGuid?: string): SimInstance[] {
    const out: SimInstance[] = [];
    for (const d of this.deas.values()) if (d.alive) for (const i of d.instances.values()) if (!appGuid || i.appGuid === appGuid) out.push(i);
    return out;
  }

  deaIds(): string[] {
    return [...this.deas.keys()];
  }
}
