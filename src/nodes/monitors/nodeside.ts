// nova-compute on the node over SSH, for policies without a Consul service check
// (detection.novaNodeSideCheck empty): every novaNodeSideInterval, the policy's novaNodeSideCommand
// runs on each governed node through spec.ssh. At most maxParallelSsh sessions run at once (the
// shared SSH semaphore), a node's check never overlaps itself, and nodes hm9k is fencing or has
// fenced (powered off), in maintenance, or without spec.ssh are not contacted.
// LSB status codes: exit 0 = running (up), exit 3 = not running (down); anything else = unknown.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { ComputeNode, UpDownUnknown } from '../../api/index.js';
import type { CommandResult } from '../../clients/ssh.js';
import type { NodeDeps } from '../deps.js';
import type { ObservationStore } from '../observations.js';
import type { FleetView } from './network.js';

const SKIP_PHASES = new Set(['Fencing', 'Evacuating', 'Fenced', 'FenceFailed', 'Maintenance']);

/** Pure: what an SSH check result says about nova-compute. */
export function nodeSideOf(r: CommandResult): { state: UpDownUnknown; detail: string } {
  const out = (r.stdout || r.stderr).trim().split('\n')[0]?.slice(0, 120) ?? '';
  const detail = `exit ${r.exitCode ?? r.signal ?? 'none'}${out ? `: ${out}` : ''}`;
  if (r.exitCode === 0) return { state: 'up', detail };
  if (r.exitCode === 3) return { state: 'down', detail };
  return { state: 'unknown', detail };
}

export class NodeSideMonitor {
  private readonly timers = new Map<string, { intervalMs: number; command: string; timer: NodeJS.Timeout }>();
  private readonly busy = new Set<string>();
  private stopped = false;
  /** SSH sessions opened (for tests and the steady-state cost figure). */
  sessions = 0;
  /** Most sessions this monitor had open at once. */
  maxActive = 0;
  private active = 0;

  constructor(
    private readonly deps: NodeDeps,
    private readonly store: ObservationStore,
    private readonly fleet: FleetView,
    private readonly log: Logger,
    private readonly errors?: Counter,
    private readonly now = () => Date.now(),
    private readonly signal?: AbortSignal,
    /** Only the Lease holder runs commands on hypervisors (a follower's view stays unknown). */
    private readonly isActive: () => boolean = () => true,
  ) {}

  /** Reconciles one timer per policy that checks nova-compute over SSH. */
  sync(): void {
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const { name, policy } of this.fleet.policies()) {
      const command = policy.detection.novaNodeSideCommand;
      if (!command) continue;
      seen.add(name);
      const intervalMs = policy.detection.novaNodeSideIntervalMs;
      const old = this.timers.get(name);
      if (old && old.intervalMs === intervalMs && old.command === command) continue;
      if (old) clearInterval(old.timer);
      const timer = setInterval(() => void this.round(name), intervalMs);
      timer.unref?.();
      this.timers.set(name, { intervalMs, command, timer });
      void this.round(name);
    }
    for (const [name, t] of this.timers) {
      if (!seen.has(name)) {
        clearInterval(t.timer);
        this.timers.delete(name);
      }
    }
  }

  /** One round for the nodes governed by `policyName`. */
  async round(policyName: string): Promise<void> {
    const t = this.timers.get(policyName);
    if (!t || this.stopped || !this.isActive()) return;
    const nodes = this.fleet.nodes().filter((n) => {
      const p = this.fleet.policyOf(n);
      return p?.name === policyName && n.spec.ssh && !n.spec.maintenance && !SKIP_PHASES.has(n.status?.phase ?? '') && !this.busy.has(n.metadata.name);
    });
    // A slow node is never checked twice at once (busy), so the timeout may exceed the period.
    const timeoutMs = Math.min(20_000, Math.max(5_000, t.intervalMs));
    await Promise.all(nodes.map((n) => this.check(n, t.command, timeoutMs)));
  }

  private async check(node: ComputeNode, command: string, timeoutMs: number): Promise<void> {
    const name = node.metadata.name;
    this.busy.add(name);
    try {
      const target = await this.deps.sshTarget(node);
      const r = await this.deps.sshSem.run(async () => {
        this.active++;
        this.maxActive = Math.max(this.maxActive, this.active);
        this.sessions++;
        try {
          return await this.deps.ssh.exec(target, command, timeoutMs, this.signal);
        } finally {
          this.active--;
        }
      });
      const v = nodeSideOf(r);
      if (v.state === 'unknown') this.log.debug({ node: name, detail: v.detail }, 'nova-compute node-side check inconclusive');
      this.store.setNodeSideSsh(name, v.state, this.now(), v.detail);
    } catch (err) {
      this.errors?.inc({ source: 'ssh' });
      this.store.setNodeSideSsh(name, 'unknown', this.now(), (err as Error).message.slice(0, 200));
    } finally {
      this.busy.delete(name);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearInterval(t.timer);
    this.timers.clear();
  }
}
