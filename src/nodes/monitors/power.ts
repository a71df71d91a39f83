// Power monitor: reads chassis power from every BMC, with bounded concurrency. Only the Lease holder
// talks to BMCs: they have few session slots, and a standby polling them would make the leader's
// reads fail (power unknown counts as unhealthy and storm protection would block real fences).
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { ComputeNode } from '../../api/index.js';
import type { NodeDeps } from '../deps.js';
import type { ObservationStore } from '../observations.js';
import type { FleetView } from './network.js';

export class PowerMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly deps: NodeDeps,
    private readonly store: ObservationStore,
    private readonly fleet: FleetView,
    private readonly log: Logger,
    private readonly errors?: Counter,
    private readonly now = () => Date.now(),
    /** True while this process holds the Lease (a standby's power view stays unknown). */
    private readonly isActive: () => boolean = () => true,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.deps.config.powerPollIntervalMs);
    this.timer.unref?.();
    void this.poll();
  }

  async read(node: ComputeNode): Promise<'on' | 'off' | 'unknown'> {
    if (!node.spec.bmc || !this.isActive()) return 'unknown';
    try {
      const target = await this.deps.bmcTarget(node);
      const s = await this.deps.ipmiSem.run(() => this.deps.ipmi.powerStatus(target));
      this.store.setPower(node.metadata.name, s, this.now());
      return s;
    } catch (err) {
      this.errors?.inc({ source: 'bmc' });
      this.store.setPower(node.metadata.name, 'unknown', this.now(), (err as Error).message);
      this.log.debug({ node: node.metadata.name, err: (err as Error).message }, 'power state unreadable');
      return 'unknown';
    }
  }

  async poll(): Promise<void> {
    if (this.running || !this.isActive()) return;
    this.running = true;
    try {
      await Promise.all(this.fleet.nodes().filter((n) => n.spec.bmc && !n.spec.maintenance).map((n) => this.read(n)));
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
