// Nova service monitor: one os-services list and one evacuation-migration list per period for
// the whole fleet; per node state, status, forced_down, disabled_reason and open migrations. Every
// serverCountInterval, one paged servers/detail list (all tenants) gives each node's server count.
// nova-compute on the node comes from the Consul service check (novaNodeSideCheck) or, when none is
// configured, from the SSH check (NodeSideMonitor), which is unknown once older than 3 periods.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { ComputeNode, UpDownUnknown } from '../../api/index.js';
import type { NodeDeps } from '../deps.js';
import type { ObservationStore } from '../observations.js';
import type { FleetView, NetworkMonitor, PolicyEntry } from './network.js';

const OPEN_MIGRATION = new Set(['accepted', 'pre-migrating', 'migrating', 'running', 'done', 'queued', 'preparing']);

export class NovaMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private lastCount = -Infinity;
  /** Requests made by this monitor (steady-state cost). */
  requests = 0;

  constructor(
    private readonly deps: NodeDeps,
    private readonly store: ObservationStore,
    private readonly fleet: FleetView,
    private readonly network: NetworkMonitor,
    private readonly log: Logger,
    private readonly errors?: Counter,
    private readonly now = () => Date.now(),
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.deps.config.novaPollIntervalMs);
    this.timer.unref?.();
    void this.poll();
  }

  /** nova-compute as seen on the node: Consul check, else the SSH check while fresh. */
  nodeSide(node: ComputeNode, p: PolicyEntry | null): UpDownUnknown {
    const check = p?.policy.detection.novaNodeSideCheck;
    if (check) return this.network.nodeSideNova(node, check);
    const s = this.store.get(node.metadata.name).nodeSideSsh;
    if (!s || !p?.policy.detection.novaNodeSideCommand) return 'unknown';
    return this.now() - s.at > 3 * p.policy.detection.novaNodeSideIntervalMs ? 'unknown' : s.state;
  }

  /** One fleet-wide count of servers per host (paged). */
  async countServers(nodes: ComputeNode[]): Promise<void> {
    const nova = await this.deps.novaClient();
    this.requests++;
    const servers = await nova.listServers(undefined);
    const perHost = new Map<string, number>();
    for (const s of servers) {
      const h = s['OS-EXT-SRV-ATTR:host'];
      if (h) perHost.set(h, (perHost.get(h) ?? 0) + 1);
    }
    for (const n of nodes) this.store.setServers(n.metadata.name, perHost.get(n.spec.host) ?? 0);
  }

  async poll(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const nodes = this.fleet.nodes();
      if (!nodes.length) return;
      let services: Awaited<ReturnType<Awaited<ReturnType<NodeDeps['novaClient']>>['listServices']>> | undefined;
      let migrations: Awaited<ReturnType<Awaited<ReturnType<NodeDeps['novaClient']>>['migrations']>> | undefined;
      try {
        const nova = await this.deps.novaClient();
        this.requests += 2;
        services = await nova.listServices();
        migrations = await nova.migrations({ type: 'evacuation' });
      } catch (err) {
        this.errors?.inc({ source: 'nova' });
        this.log.warn({ err: (err as Error).message }, 'Nova unreadable: nova-compute state unknown');
      }
      if (services && this.now() - this.lastCount >= this.deps.config.serverCountIntervalMs) {
        try {
          await this.countServers(nodes);
          this.lastCount = this.now();
        } catch (err) {
          // Keep the last count: a failed list never means "no servers".
          this.errors?.inc({ source: 'nova' });
          this.log.warn({ err: (err as Error).message }, 'Nova server list failed: server counts unchanged');
        }
      }
      for (const node of nodes) {
        const p = this.fleet.policyOf(node);
        const nodeSide = this.nodeSide(node, p);
        const prev = this.store.get(node.metadata.name).nova;
        if (!services || !migrations) {
          this.store.setNova(node.metadata.name, { apiState: 'unknown', nodeSide, evacuationMigrations: prev?.evacuationMigrations ?? 0 });
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
            }
          : { apiState: 'unknown', nodeSide, evacuationMigrations: open });
      }
    } finally {
      this.running = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
