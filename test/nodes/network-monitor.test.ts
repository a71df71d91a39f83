// The network monitor against the Consul simulator with ACLs on: concurrent sync() calls (FencePolicy
// add/update events racing start-up while the token Secret is read) start one sampling timer per
// policy, and a stale observer's reason does not change from one sample to the next.
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ComputeNode, FencePolicySpec } from '../../src/api/index.js';
import { ConsulPool, ConsulWatcher } from '../../src/clients/consul.js';
import type { SecretSource } from '../../src/clients/secrets.js';
import { nodesConfig, resolvePolicy } from '../../src/nodes/config.js';
import type { NodeDeps } from '../../src/nodes/deps.js';
import { NetworkMonitor, type FleetView, type PolicyEntry } from '../../src/nodes/monitors/network.js';
import { ObservationStore } from '../../src/nodes/observations.js';
import { ConsulSim } from '../../src/sim/consul.js';
import { until } from './helpers.js';

const TOKEN = 'acl-secret-1';
const log = pino({ level: 'silent' });

function fleetOf(spec: FencePolicySpec, names: string[]): FleetView {
  const entry: PolicyEntry = { name: 'p', policy: resolvePolicy(spec) };
  const nodes = names.map((n) => ({ apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name: n }, spec: { host: n } }) as ComputeNode);
  return { nodes: () => nodes, policyOf: () => entry, policies: () => [entry] };
}

/** A Secret source that answers after a turn of the event loop (as the apiserver does), counting reads. */
function slowSecrets(data: Record<string, Record<string, string>>): SecretSource & { reads: number } {
  const s = {
    reads: 0,
    async get(name: string) {
      s.reads++;
      await new Promise((r) => setTimeout(r, 30));
      const d = data[name];
      if (!d) throw new Error(`Secret ${name} not found`);
      return d;
    },
  };
  return s as unknown as SecretSource & { reads: number };
}

describe('network monitor with Consul ACL tokens', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('concurrent sync() calls start one sampling timer: one down sample per interval, every watcher released on stop', async () => {
    const sim = new ConsulSim({ aclTokens: { [TOKEN]: { nodeRead: true } } });
    await sim.start();
    cleanup.push(() => sim.stop());
    for (const n of ['cmp1', 'cmp2']) sim.addNode(n);
    const spec: FencePolicySpec = { networks: { storage: { consul: [{ address: sim.url, tokenSecret: 'consul-token' }] } }, detection: { interval: '1s', failureThreshold: 3 } };
    const pool = new ConsulPool({ waitMs: 2000, minLoopMs: 10, errorBackoffMs: 50 });
    cleanup.push(() => pool.stop());
    const secrets = slowSecrets({ 'consul-token': { token: TOKEN } });
    const deps = { consul: pool, secrets, config: nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', consulWaitMs: 2000 }) } as unknown as NodeDeps;
    const store = new ObservationStore();
    // Only the interval timers are faked: the Consul watcher and the Secret read run on real time.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const mon = new NetworkMonitor(deps, store, fleetOf(spec, ['cmp1', 'cmp2']), log);
    cleanup.push(() => mon.stop());
    // Start-up, FencePolicy add and FencePolicy update, as the engine calls them: all at once.
    await Promise.all([mon.sync(), mon.sync(), mon.sync()]);
    expect(vi.getTimerCount()).toBe(1);
    await until('cmp1 storage up through the ACL token', () => { mon.sample('p'); return store.get('cmp1').networks.storage?.state === 'up'; }, 10_000);
    expect(sim.aclDenied).toBe(0);

    sim.setAlive('cmp1', false);
    await until('the watcher sees cmp1 critical', () => pool.all()[0]!.nodeState('cmp1').state === 'down', 10_000);
    vi.advanceTimersByTime(1000);
    // One interval, one sample: failureThreshold 3 needs three intervals, not one.
    expect(store.get('cmp1').networks.storage).toMatchObject({ state: 'down', consecutiveDown: 1 });
    vi.advanceTimersByTime(1000);
    expect(store.get('cmp1').networks.storage).toMatchObject({ state: 'down', consecutiveDown: 2 });

    await mon.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(pool.all()).toHaveLength(0);
  });

  it('a rotated token: Consul refuses the old one (403), the monitor reads the Secret again past its cache and the observer recovers', async () => {
    const acl: Record<string, { nodeRead: boolean }> = { [TOKEN]: { nodeRead: true } };
    const sim = new ConsulSim({ aclTokens: acl });
    await sim.start();
    cleanup.push(() => sim.stop());
    sim.addNode('cmp1');
    const pool = new ConsulPool({ waitMs: 1000, minLoopMs: 10, errorBackoffMs: 50 });
    cleanup.push(() => pool.stop());
    // A cache that would answer the old token for ever unless asked for a fresh read.
    const data: Record<string, Record<string, string>> = { 'consul-token': { token: TOKEN } };
    let cached: Record<string, string> | undefined;
    const fresh: boolean[] = [];
    const secrets: SecretSource = {
      async get(name, opts) {
        fresh.push(opts?.fresh === true);
        if (!cached || opts?.fresh) cached = { ...data[name]! };
        return cached;
      },
    };
    const spec: FencePolicySpec = { networks: { storage: { consul: [{ address: sim.url, tokenSecret: 'consul-token' }] } }, detection: { interval: '100ms' } };
    const deps = { consul: pool, secrets, config: nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', consulWaitMs: 1000, resyncMs: 200 }) } as unknown as NodeDeps;
    const store = new ObservationStore();
    const mon = new NetworkMonitor(deps, store, fleetOf(spec, ['cmp1']), log);
    cleanup.push(() => mon.stop());
    await mon.sync();
    await until('cmp1 up with the first token', () => store.get('cmp1').networks.storage?.state === 'up', 10_000);
    // The operator rotates the token: the new one is in the Secret, the old one is revoked.
    acl['acl-secret-2'] = { nodeRead: true };
    data['consul-token'] = { token: 'acl-secret-2' };
    delete acl[TOKEN];
    await until('refused with the old token', () => store.get('cmp1').networks.storage?.state === 'unknown', 10_000);
    await until('cmp1 up again with the rotated token', () => store.get('cmp1').networks.storage?.state === 'up', 10_000);
    expect(fresh).toContain(true);
    expect(pool.all()).toHaveLength(1); // the old token's watcher was released
  });

  it('a wrong token is "ACL not found" (unknown); a token without node:read gets filtered results (unknown, said so)', async () => {
    const sim = new ConsulSim({ aclTokens: { [TOKEN]: { nodeRead: true }, 'no-read': { nodeRead: false }, 'cmp-only': { nodeRead: 'cmp' } } });
    await sim.start();
    cleanup.push(() => sim.stop());
    for (const n of ['cmp1', 'ctl1']) sim.addNode(n);
    const watch = (token: string | undefined) => {
      const w = new ConsulWatcher({ address: sim.url, ...(token ? { token } : {}), waitMs: 1000, minLoopMs: 10, errorBackoffMs: 50 });
      w.start();
      cleanup.push(() => w.stop());
      return w;
    };
    const wrong = watch('wrong');
    await until('wrong token refused', () => /ACL not found/.test(wrong.view.error ?? ''), 10_000);
    expect(wrong.nodeState('cmp1')).toMatchObject({ state: 'unknown' });
    expect(wrong.view.error).toMatch(/^permission denied: .*ACL not found/);

    for (const w of [watch('no-read'), watch(undefined)]) {
      await until('answered', () => w.view.healthy, 10_000);
      expect(w.nodeState('cmp1').state).toBe('unknown');
      expect(w.nodeState('cmp1').reason).toContain('filtered by ACLs');
    }
    const prefix = watch('cmp-only');
    await until('answered', () => prefix.view.healthy, 10_000);
    expect(prefix.nodeState('cmp1').state).toBe('up');
    expect(prefix.nodeState('ctl1').state).toBe('unknown');
    const ok = watch(TOKEN);
    await until('answered', () => ok.view.healthy, 10_000);
    expect(ok.nodeState('ctl1').state).toBe('up');
    expect(ok.view.filteredByAcls).toBe(false);
  });

  it('a stale observer: the reason is stable while the state is, so no change is reported after the first', async () => {
    const sim = new ConsulSim({ aclToken: TOKEN });
    await sim.start();
    cleanup.push(() => sim.stop());
    sim.addNode('cmp1');
    let clock = Date.parse('2026-01-01T00:00:00Z');
    const now = () => clock;
    // The blocking queries wait 10 minutes and nothing changes in Consul: no answer after the first.
    const pool = new ConsulPool({ waitMs: 600_000, minLoopMs: 10, errorBackoffMs: 50, now });
    cleanup.push(() => pool.stop());
    const spec: FencePolicySpec = { networks: { storage: { consul: [{ address: sim.url, tokenSecret: 'consul-token' }] } }, detection: { interval: '1s' } };
    const deps = { consul: pool, secrets: slowSecrets({ 'consul-token': { token: TOKEN } }), config: nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', consulWaitMs: 1000 }) } as unknown as NodeDeps;
    const store = new ObservationStore();
    let changes = 0;
    store.onChange(() => changes++);
    const mon = new NetworkMonitor(deps, store, fleetOf(spec, ['cmp1']), log, now);
    cleanup.push(() => mon.stop());
    await mon.sync();
    await until('cmp1 up', () => { mon.sample('p'); return store.get('cmp1').networks.storage?.state === 'up'; }, 10_000);
    // Past the staleness limit (2 x consulWait + 30 s): unknown.
    clock += 40_000;
    mon.sample('p');
    expect(store.get('cmp1').networks.storage?.state).toBe('unknown');
    const reason = store.get('cmp1').networks.storage?.reason;
    const before = changes;
    for (let i = 0; i < 10; i++) {
      clock += 1000;
      mon.sample('p');
    }
    // Ten more samples of the same stale observer: nothing to write.
    expect(changes - before).toBe(0);
    expect(store.get('cmp1').networks.storage?.reason).toBe(reason);
    expect(reason).toMatch(/no answer since 2026-01-01T00:00:00/);
  });
});
