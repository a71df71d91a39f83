// `hm9k dump` for compute nodes: a known world renders to the expected operator view (text and JSON).
import { describe, expect, it } from 'vitest';
import { nodeDump, renderNodes } from '../../src/cli/dump-nodes.js';
import type { ComputeNode, FencePolicy } from '../../src/api/index.js';

const now = new Date('2026-11-21T12:00:00Z');
const t = (secAgo: number) => new Date(now.getTime() - secAgo * 1000).toISOString();

const fenced: ComputeNode = {
  apiVersion: 'hm9k.io/v1alpha1',
  kind: 'ComputeNode',
  metadata: { name: 'cmp-2' },
  spec: { host: 'cmp-2' },
  status: {
    phase: 'Fenced',
    phaseSince: t(300),
    waitingFor: 'operator acknowledgement of fence f-7',
    networks: { management: { state: 'up' }, storage: { state: 'down', since: t(600), reason: 'serfHealth critical' }, tenant: { state: 'up' } },
    nova: { apiState: 'down', status: 'disabled', forcedDown: true, disabledReason: 'hm9k fence f-7', nodeSide: 'unknown' },
    power: { state: 'off', readAt: t(5) },
    servers: 0,
    recovery: { attempts: 2, kind: 'storage', lastAttempt: t(420), lastResult: 'exit 1: link down' },
    fence: {
      id: 'f-7', reason: 'storage network down, recovery failed', startedAt: t(400), leaseHolder: 'hm9k-nodes-abc', leaseTransitions: 3, powerOffConfirmedAt: t(395),
      steps: [
        { name: 'powerOff', state: 'succeeded' },
        { name: 'confirmOff', state: 'succeeded' },
        { name: 'forceDown', state: 'succeeded' },
        { name: 'disable', state: 'succeeded' },
        { name: 'evacuate', state: 'succeeded' },
      ],
    },
    evacuation: {
      startedAt: t(390), microversion: '2.94', total: 2, done: 1, failed: 1,
      servers: [
        { id: 'srv-a', from: 'cmp-2', to: 'cmp-1', state: 'done' },
        { id: 'srv-b', from: 'cmp-2', state: 'failed', error: 'migration error' },
      ],
    },
    conditions: [
      { type: 'Fenced', status: 'True', reason: 'PowerOffConfirmed', message: 'fenced by hm9k (f-7)', lastTransitionTime: t(395) },
      { type: 'NetworkHealthy', status: 'False', reason: 'StorageDown', message: 'storage network down', lastTransitionTime: t(600) },
      { type: 'PoweredOn', status: 'False', reason: 'Off', message: 'off', lastTransitionTime: t(395) },
    ],
  },
};
const healthy: ComputeNode = {
  apiVersion: 'hm9k.io/v1alpha1',
  kind: 'ComputeNode',
  metadata: { name: 'cmp-1' },
  spec: { host: 'cmp-1', maintenance: true },
  status: { phase: 'Maintenance', networks: { management: { state: 'up' }, storage: { state: 'up' }, tenant: { state: 'unknown', since: t(30), reason: 'no Consul leader' } }, nova: { apiState: 'up', status: 'enabled', nodeSide: 'up' }, power: { state: 'on', readAt: t(20) }, servers: 3 },
};
const policy: FencePolicy = {
  apiVersion: 'hm9k.io/v1alpha1',
  kind: 'FencePolicy',
  metadata: { name: 'default' },
  spec: { networks: { storage: { consul: [{ address: 'http://127.0.0.1:8500' }] } } },
  status: { matchedNodes: 2, healthyNodes: 1, unhealthyNodes: 1, remediationsInFlight: 0, conditions: [{ type: 'StormActive', status: 'False', reason: 'BelowThreshold', message: '1 of 2 unhealthy', lastTransitionTime: t(100) }] },
};

describe('hm9k dump: nodes', () => {
  it('renders the operator view', () => {
    expect(renderNodes([fenced, healthy], [policy], now)).toBe(`Compute nodes: 2
  policy default: matched=2 healthy=1 unhealthy=1 in-flight=0

cmp-1 (host cmp-1)  phase=Maintenance  [maintenance]
  networks     management=up  storage=up  tenant=unknown (30s ago: no Consul leader)
  nova         api=up enabled  node-side=up
  power        on (read 20s ago)
  servers      3

cmp-2 (host cmp-2)  phase=Fenced since 5m ago
  waiting for  operator acknowledgement of fence f-7
  networks     management=up  storage=down (10m ago: serfHealth critical)  tenant=up
  nova         api=down disabled forced-down reason="hm9k fence f-7"  node-side=unknown
  power        off (read 5s ago)
  servers      0
  recovery     2 attempt(s) of storage, last 7m ago: exit 1: link down
  fence        f-7 7m ago by hm9k-nodes-abc (lease transitions 3): storage network down, recovery failed
               powerOff ok, confirmOff ok, forceDown ok, disable ok, evacuate ok
               power off confirmed 7m ago
               acknowledge after repair: kubectl annotate cn cmp-2 hm9k.io/acknowledge-fence=f-7
  evacuation   1/2 done, 1 failed (microversion 2.94, 7m ago)
               srv-a  cmp-2 -> cmp-1  done
               srv-b  cmp-2 -> ?  failed  migration error
  condition    Fenced=True PowerOffConfirmed: fenced by hm9k (f-7)
  condition    NetworkHealthy=False StorageDown: storage network down
  condition    PoweredOn=False Off: off
`);
  });

  it('says what the bounded evacuation list leaves out (issue 9 item 8)', () => {
    const big: ComputeNode = { ...fenced, status: { ...fenced.status, evacuation: { ...fenced.status!.evacuation!, total: 230, done: 120, failed: 1, planned: 200, omitted: { done: 119, failed: 0 } } } };
    expect(renderNodes([big], [], now)).toContain('               not listed: 119 evacuated, 30 not yet planned\n');
  });

  it('shows the hardware sensors and the drain record (issue 12 item 6)', () => {
    const draining: ComputeNode = {
      apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name: 'cmp-3' }, spec: { host: 'cmp-3' },
      status: {
        phase: 'Draining', phaseSince: t(30),
        hardware: { state: 'drain', reasons: ['cpuTemperatureCritical (Drain): CPU Temp 95 degrees C is critical'], selCursor: 4, sensors: [{ name: 'CPU Temp', kind: 'cpuTemperature', state: 'critical', reading: '95 degrees C' }, { name: 'Fan1', kind: 'fan', state: 'ok' }] },
        drain: {
          id: 'cmp-3-d1', reason: 'hardware: CPU Temp 95 degrees C is critical', source: 'hardware', startedAt: t(30), leaseHolder: 'hm9k-0', leaseTransitions: 1, disabled: 'succeeded', microversion: '2.25',
          total: 2, migrated: 1, failed: 0, left: 1, servers: [{ id: 'srv-a', state: 'migrated', to: 'cmp-1', migrationId: '7' }, { id: 'srv-b', state: 'requested' }],
        },
      },
    };
    const out = renderNodes([draining], [], now);
    expect(out).toContain('  hardware     drain  sensors: 2 (CPU Temp critical 95 degrees C)  SEL cursor 4\n               cpuTemperatureCritical (Drain): CPU Temp 95 degrees C is critical\n');
    expect(out).toContain('  drain        cmp-3-d1 30s ago (hardware): hardware: CPU Temp 95 degrees C is critical\n               disable ok; 1/2 live-migrated, 0 need an operator, 1 left (microversion 2.25)\n               srv-a  migrated -> cmp-1  migration 7\n               srv-b  requested\n');
    const done = renderNodes([{ ...draining, status: { ...draining.status, phase: 'Drained', drain: { ...draining.status!.drain!, result: 'empty' } } }], [], now);
    expect(done).toContain('return to service: kubectl annotate cn cmp-3 hm9k.io/undrain=cmp-3-d1');
    expect(nodeDump(draining).drain?.id).toBe('cmp-3-d1');
  });

  it('shows a storm and a paused policy', () => {
    const storm: FencePolicy = { ...policy, spec: { ...policy.spec, safety: { paused: true } }, status: { ...policy.status, conditions: [{ type: 'StormActive', status: 'True', reason: 'TooManyUnhealthy', message: '3 of 4 nodes unhealthy (max 1)', lastTransitionTime: t(1) }] } };
    expect(renderNodes([], [storm], now)).toMatch(/STORM: 3 of 4 nodes unhealthy \(max 1\)  PAUSED/);
  });

  it('gives JSON with every record and unknown for what was never observed', () => {
    const d = nodeDump({ apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name: 'new', annotations: { 'hm9k.io/acknowledge-fence': 'f-1' } }, spec: { host: 'new' } });
    expect(d).toEqual({
      name: 'new', host: 'new', phase: 'Unknown', maintenance: false,
      networks: { management: { state: 'unknown' }, storage: { state: 'unknown' }, tenant: { state: 'unknown' } },
      nova: { apiState: 'unknown' }, power: { state: 'unknown' }, acknowledgement: 'f-1', conditions: [],
    });
    expect(JSON.parse(JSON.stringify(nodeDump(fenced))).evacuation.servers).toHaveLength(2);
  });
});
