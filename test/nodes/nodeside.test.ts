// nova-compute on the node over SSH: LSB exit codes, bounded concurrency (maxParallelSsh), a period,
// no overlap per node, and nodes hm9k is fencing, has fenced or must not touch are not contacted.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ComputeNode } from '../../src/api/index.js';
import { StaticSecrets } from '../../src/clients/secrets.js';
import type { CommandResult, SshTarget } from '../../src/clients/ssh.js';
import { SshError } from '../../src/clients/ssh.js';
import { nodesConfig, resolvePolicy } from '../../src/nodes/config.js';
import { NodeDeps } from '../../src/nodes/deps.js';
import type { FleetView, PolicyEntry } from '../../src/nodes/monitors/network.js';
import { NodeSideMonitor, nodeSideOf } from '../../src/nodes/monitors/nodeside.js';
import { ObservationStore } from '../../src/nodes/observations.js';

const log = pino({ level: 'silent' });

function node(name: string, port: number, extra: { phase?: string; maintenance?: boolean; ssh?: boolean } = {}): ComputeNode {
  return {
    apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name },
    spec: { host: name, ...(extra.ssh === false ? {} : { ssh: { address: '127.0.0.1', port, credentialsSecret: 'ssh' } }), ...(extra.maintenance ? { maintenance: true } : {}) },
    ...(extra.phase ? { status: { phase: extra.phase as never } } : {}),
  };
}

describe('nova-compute node-side check over SSH', () => {
  let mon: NodeSideMonitor | undefined;
  afterEach(() => mon?.stop());

  it.each([
    [{ exitCode: 0, stdout: 'active\n', stderr: '' }, 'up'],
    [{ exitCode: 3, stdout: 'inactive\n', stderr: '' }, 'down'],
    [{ exitCode: 1, stdout: '', stderr: 'System has not been booted with systemd' }, 'unknown'],
    [{ exitCode: 127, stdout: '', stderr: 'sh: systemctl: not found' }, 'unknown'],
    [{ exitCode: null, signal: 'KILL', stdout: '', stderr: '' }, 'unknown'],
  ] as [CommandResult, string][])('maps %j to %s', (r, state) => {
    expect(nodeSideOf(r).state).toBe(state);
  });

  it('the default command is systemctl is-active; an empty command or a Consul check disables it', () => {
    const base = { networks: { storage: { consul: [{ address: 'http://a:1' }] } } };
    expect(resolvePolicy(base).detection.novaNodeSideCommand).toBe('systemctl is-active --quiet nova-compute');
    expect(resolvePolicy({ ...base, detection: { novaNodeSideCommand: '' } }).detection.novaNodeSideCommand).toBeUndefined();
    expect(resolvePolicy({ ...base, detection: { novaNodeSideCheck: 'service:nova-compute' } }).detection.novaNodeSideCommand).toBeUndefined();
  });

  it('runs at most maxParallelSsh sessions at once, once per node per round, skipping fenced, maintenance and ssh-less nodes', async () => {
    const deps = new NodeDeps(nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', maxParallelSsh: 2 }), new StaticSecrets({ ssh: { privateKey: 'k', knownHosts: 'h' } }));
    let active = 0;
    let max = 0;
    const calls: number[] = [];
    // Ports 1..: 1-2 running, 3 not running, 4 unreachable, 5 answers an unknown code.
    deps.ssh.exec = async (t: SshTarget, command: string) => {
      expect(command).toBe('check-nova');
      calls.push(t.port!);
      active++;
      max = Math.max(max, active);
      await new Promise((r) => setTimeout(r, 30));
      active--;
      if (t.port === 4) throw new SshError('unreachable', 'connect ECONNREFUSED');
      return { exitCode: t.port === 3 ? 3 : t.port === 5 ? 4 : 0, stdout: '', stderr: '' };
    };
    const nodes = [
      node('n1', 1), node('n2', 2), node('n3', 3), node('n4', 4), node('n5', 5),
      node('fenced', 6, { phase: 'Fenced' }), node('fencing', 7, { phase: 'Fencing' }), node('maint', 8, { maintenance: true }), node('nossh', 9, { ssh: false }),
    ];
    const policy = resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:1' }] } }, detection: { novaNodeSideCommand: 'check-nova', novaNodeSideInterval: '1h' } });
    const entry: PolicyEntry = { name: 'p', policy };
    const fleet: FleetView = { nodes: () => nodes, policyOf: () => entry, policies: () => [entry] };
    const store = new ObservationStore();
    mon = new NodeSideMonitor(deps, store, fleet, log, undefined, () => 1000);
    mon.sync(); // starts the timer and a first round
    await mon.round('p'); // a concurrent second round skips the nodes still busy
    await new Promise((r) => setTimeout(r, 200));
    expect(max).toBeLessThanOrEqual(2);
    expect(new Set(calls)).toEqual(new Set([1, 2, 3, 4, 5]));
    expect(calls).toHaveLength(5);
    expect(['n1', 'n2', 'n3', 'n4', 'n5', 'fenced'].map((n) => store.get(n).nodeSideSsh?.state)).toEqual(['up', 'up', 'down', 'unknown', 'unknown', undefined]);
    expect(store.get('n4').nodeSideSsh?.detail).toContain('ECONNREFUSED');
    await mon.round('p');
    expect(calls).toHaveLength(10);
    // A replica that does not hold the Lease runs no command on a hypervisor.
    let leader = false;
    const follower = new NodeSideMonitor(deps, new ObservationStore(), fleet, log, undefined, () => 1000, undefined, () => leader);
    follower.sync();
    await follower.round('p');
    expect(calls).toHaveLength(10);
    leader = true;
    await follower.round('p');
    expect(calls).toHaveLength(15);
    follower.stop();
    await deps.stop();
  });
});
