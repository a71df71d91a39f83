// Nova service monitor: one os-services list and one evacuation-migration list per period for
// the whole fleet; per node state, status, forced_down, disabled_reason and open migrations.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { NodeDeps } from '../deps.js';
import type { ObservationStore } from '../observations.js';
import type { FleetView, NetworkMonitor } from './network.js';

const OPEN_MIGRATION = new Set(['accepted', 'pre-migrating', 'migrating', 'running', 'done', 'queued', 'preparing']);

export class NovaMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly deps: NodeDeps,
    private readonly store: ObservationStore,
    private readonly fleet: FleetView,
    private readonly network: NetworkMonitor,
    private readonly log: Logger,
    private readonly errors?: Counter,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.deps.config.novaPollIntervalMs);
    this.timer.unref?.();
    void this.poll();
  }

  async poll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const nodes = this.fleet.nodes();
      if (!nodes.length) return;
      let services: Awaited<ReturnType<Awaited<ReturnType<NodeDeps['novaClient']>>['listServices']>> | undefined;
      let migrations: Awaited<ReturnType<Awaited<ReturnType<NodeDeps['novaClient']>>['migrations']>> | undefined;
      let error: string | undefined;
      try {
        const nova = await this.deps.novaClient();
        services = await nova.listServices();
        migrations = await nova.migrations({ type: 'evacuation' });
      } catch (err) {
        error = (err as Error).message;
        this.errors?.inc({ source: 'nova' });
        this.log.warn({ err: error }, 'Nova unreadable: nova-compute state unknown');
      }
      for (const node of nodes) {
        const p = this.fleet.policyOf(node);
        const nodeSide = this.network.nodeSideNova(node, p?.policy.detection.novaNodeSideCheck);
        const prev = this.store.get(node.metadata.name).nova;
        if (!services || !migrations) {
          this.store.setNova(node.metadata.name, { apiState: 'unknown', nodeSide, evacuationMigrations: prev?.evacuationMigrations ?? 0, ...(prev?.servers !== undefined ? { servers: prev.servers } : {}) });
          continue;
        }
        const svc = services.find((s) => s.host === node.spec.host);
        const open = migrations.filter((m) => m.source_compute === node.spec.host && OPEN_MIGRATION.has(m.status)).length;
        this.store.setNova(node.metadata.name, svc
          ? {
              apiState: svc.state === 'up' ? 'up' : 'down',
              status: svc.status,
              forcedDown: !!svc.forced_down,
              ...(svc.disabled_reason ? { disabledReason: svc.disabled_reason } : {}),
              nodeSide,
              evacuationMigrations: open,
              ...(prev?.servers !== undefined ? { servers: prev.servers } : {}),
            }
          : { apiState: 'unknown', nodeSide, evacuationMigrations: open });
      }
      void error;
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
