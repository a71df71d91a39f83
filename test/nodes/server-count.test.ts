// status.servers from Nova: one fleet-wide paged list per serverCountInterval, per node counts; a
// failed list keeps the last count (never "no servers"); Nova unreadable -> nova-compute unknown.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ComputeNode } from '../../src/api/index.js';
import { StaticSecrets } from '../../src/clients/secrets.js';
import type { NovaClient, NovaServer } from '../../src/clients/nova.js';
import { nodesConfig } from '../../src/nodes/config.js';
import { NodeDeps } from '../../src/nodes/deps.js';
import type { FleetView, NetworkMonitor } from '../../src/nodes/monitors/network.js';
import { NovaMonitor } from '../../src/nodes/monitors/nova.js';
import { ObservationStore } from '../../src/nodes/observations.js';

const cnode = (name: string): ComputeNode => ({ apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name }, spec: { host: name } });

describe('server count from Nova', () => {
  it('counts per host once per interval; a failed list keeps the last count', async () => {
    let now = 0;
    const deps = new NodeDeps(nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', serverCountIntervalMs: 60_000 }), new StaticSecrets({}));
    let servers: NovaServer[] = [
      { id: '1', status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': 'c1' },
      { id: '2', status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': 'c1' },
      { id: '3', status: 'SHUTOFF', 'OS-EXT-SRV-ATTR:host': 'c2' },
      { id: '4', status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': 'elsewhere' },
    ];
    let lists = 0;
    let listFails = false;
    let novaDown = false;
    const fake = {
      listServices: async () => { if (novaDown) throw new Error('HTTP 503'); return [{ id: 's1', binary: 'nova-compute', host: 'c1', status: 'enabled', state: 'up' }, { id: 's2', binary: 'nova-compute', host: 'c2', status: 'enabled', state: 'up' }]; },
      migrations: async () => [],
      listServers: async (host: string | undefined) => { expect(host).toBeUndefined(); lists++; if (listFails) throw new Error('HTTP 500'); return servers; },
    } as unknown as NovaClient;
    deps.novaClient = async () => fake;
    const nodes = [cnode('c1'), cnode('c2'), cnode('c3')];
    const fleet: FleetView = { nodes: () => nodes, policyOf: () => null, policies: () => [] };
    const store = new ObservationStore();
    const changes: string[] = [];
    store.onChange((n) => changes.push(n));
    const mon = new NovaMonitor(deps, store, fleet, { nodeSideNova: () => 'unknown' } as unknown as NetworkMonitor, pino({ level: 'silent' }), undefined, () => now);
    await mon.poll();
    expect(['c1', 'c2', 'c3'].map((n) => store.get(n).servers)).toEqual([2, 1, 0]);
    // Within the interval: no new list; the service poll alone changes nothing.
    changes.length = 0;
    now += 10_000;
    await mon.poll();
    expect(lists).toBe(1);
    expect(changes).toEqual([]);
    // Next interval: a moved server is counted.
    servers = servers.map((s) => (s.id === '1' ? { ...s, 'OS-EXT-SRV-ATTR:host': 'c3' } : s));
    now += 60_000;
    await mon.poll();
    expect(['c1', 'c2', 'c3'].map((n) => store.get(n).servers)).toEqual([1, 1, 1]);
    // A failed list keeps the last counts.
    listFails = true;
    now += 60_000;
    await mon.poll();
    expect(['c1', 'c2', 'c3'].map((n) => store.get(n).servers)).toEqual([1, 1, 1]);
    // Nova unreadable: nova-compute unknown, counts kept, no list attempted.
    listFails = false;
    novaDown = true;
    const before = lists;
    now += 60_000;
    await mon.poll();
    expect(store.get('c1').nova?.apiState).toBe('unknown');
    expect(store.get('c1').servers).toBe(1);
    expect(lists).toBe(before);
  });
});
