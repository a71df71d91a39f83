// "The compute world" as the demo's incidents (and whoever checks outcomes) see it: servers and where
// they run, evacuation migrations, nova-compute services. Two implementations: the Nova simulator's
// state read directly (src/sim/nova.ts), and real Nova read through its own API (./openstack.ts).
import type { NovaSim, SimMigration, SimService } from '../sim/nova.js';
import type { OpenStack } from './openstack.js';

export interface ComputeServer {
  id: string;
  name: string;
  host: string;
  /** Nova's status: ACTIVE, SHUTOFF, REBUILD, ERROR... */
  status: string;
}

export interface ComputeService {
  host: string;
  /** up or down as Nova computes it (heartbeats within service_down_time, and not forced down). */
  state: 'up' | 'down';
  status: 'enabled' | 'disabled';
  forcedDown: boolean;
  disabledReason: string | null;
}

export interface ComputeMigration {
  id: string;
  /** evacuation or live-migration. */
  type: string;
  serverId: string;
  source: string;
  dest: string | null;
  status: string;
}

export interface ComputeApi {
  /** What answers: 'real OpenStack (Nova 26 Zed)' or 'the Nova simulator'. */
  readonly description: string;
  /** Real Nova (every read is an API call) or the simulator (reads are free). */
  readonly real: boolean;
  /** clouds.yaml for hm9k, the one cloud named `cloud`. */
  cloudsYaml(cloud: string): string;
  /** Boots servers on `host` (stopped after boot when asked); resolves once they are ACTIVE / SHUTOFF. */
  bootServers(host: string, names: string[], opts?: { stopped?: boolean }): Promise<ComputeServer[]>;
  servers(): Promise<ComputeServer[]>;
  service(host: string): Promise<ComputeService | undefined>;
  services(): Promise<ComputeService[]>;
  /** Evacuation migrations, oldest first. */
  evacuations(): Promise<ComputeMigration[]>;
  /** Every migration (evacuations and live migrations), oldest first. */
  migrations(): Promise<ComputeMigration[]>;
}

const STATUS: Record<string, string> = { active: 'ACTIVE', stopped: 'SHUTOFF', error: 'ERROR', building: 'BUILD', paused: 'PAUSED' };

const simMigration = (m: SimMigration): ComputeMigration => ({ id: String(m.id), type: m.migration_type, serverId: m.instance_uuid, source: m.source_compute, dest: m.dest_compute, status: m.status });

export function simCompute(sim: NovaSim): ComputeApi {
  const svc = (s: SimService): ComputeService => ({
    host: s.host, state: sim.serviceState(s), status: s.status, forcedDown: s.forced_down, disabledReason: s.disabled_reason,
  });
  return {
    description: 'the Nova simulator (src/sim/nova.ts)',
    real: false,
    cloudsYaml: (cloud) => sim.cloudsYaml(cloud),
    bootServers: async (host, names, opts = {}) => names.map((name) => {
      const s = sim.addServer(host, { name, vm_state: opts.stopped ? 'stopped' : 'active' });
      return { id: s.id, name: s.name, host: s.host, status: STATUS[s.vm_state] ?? s.vm_state };
    }),
    servers: async () => [...sim.servers.values()].map((s) => ({ id: s.id, name: s.name, host: s.host, status: s.task_state === 'rebuilding' ? 'REBUILD' : (STATUS[s.vm_state] ?? s.vm_state) })),
    service: async (host) => { const s = sim.services.get(host); return s && svc(s); },
    services: async () => [...sim.services.values()].map(svc),
    evacuations: async () => sim.migrations.filter((m) => m.migration_type === 'evacuation').map(simMigration),
    migrations: async () => sim.migrations.map(simMigration),
  };
}

export function realCompute(os: OpenStack): ComputeApi {
  const all = async (): Promise<ComputeMigration[]> =>
    (await os.list<{ id: number; migration_type: string; instance_uuid: string; source_compute: string; dest_compute: string | null; status: string; created_at: string }>('/os-migrations', 'migrations'))
      .sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id - b.id)
      .map((m) => ({ id: String(m.id), type: m.migration_type, serverId: m.instance_uuid, source: m.source_compute, dest: m.dest_compute, status: m.status }));
  const services = async (): Promise<ComputeService[]> =>
    (await os.nova<{ services: { host: string; state: 'up' | 'down'; status: 'enabled' | 'disabled'; forced_down: boolean; disabled_reason: string | null }[] }>('GET', '/os-services?binary=nova-compute')).services
      .map((s) => ({ host: s.host, state: s.state, status: s.status, forcedDown: s.forced_down, disabledReason: s.disabled_reason }));
  return {
    description: 'real OpenStack (Debian\'s Keystone 22, Nova 26 Zed, Placement 8; fake-driver nova-computes)',
    real: true,
    cloudsYaml: (cloud) => os.cloudsYaml(cloud),
    bootServers: (host, names, opts = {}) => os.bootServers(host, names, opts),
    servers: () => os.servers(),
    service: async (host) => (await services()).find((s) => s.host === host),
    services,
    evacuations: async () => (await all()).filter((m) => m.type === 'evacuation'),
    migrations: all,
  };
}
