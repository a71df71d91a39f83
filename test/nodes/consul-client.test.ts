// The Consul watcher against the Consul simulator: blocking queries, unknown vs down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulWatcher } from '../../src/clients/consul.js';
import { ConsulSim, matchFilter } from '../../src/sim/consul.js';

async function until(pred: () => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Consul watcher against the simulator', () => {
  const sim = new ConsulSim({ aclToken: 'tok' });
  let w: ConsulWatcher;
  beforeAll(async () => {
    await sim.start();
    for (const n of ['a', 'b', 'c']) sim.addNode(n);
    w = new ConsulWatcher({ address: sim.url, token: 'tok', waitMs: 2000, minLoopMs: 10, errorBackoffMs: 50, checkIds: ['nova'] });
    w.start();
    await until(() => w.view.healthy);
  });
  afterAll(async () => { await w?.stop(); await sim.stop(); });

  it('alive nodes are up; a failed member is down', async () => {
    expect(w.nodeState('a').state).toBe('up');
    sim.setAlive('b', false);
    await until(() => w.nodeState('b').state === 'down');
    expect(w.nodeState('b').reason).toContain('serfHealth critical');
    sim.setAlive('b', true);
    await until(() => w.nodeState('b').state === 'up');
  });
  it('a node absent from the catalog is unknown, not down', async () => {
    sim.removeNode('c');
    // The catalog and the health checks are two blocking queries: for a moment the checks may
    // already lack serfHealth while the catalog still lists the node. Either way: never down.
    const seen = new Set<string>();
    await until(() => {
      const s = w.nodeState('c');
      seen.add(s.state);
      return (s.reason ?? '').includes('absent');
    });
    expect(w.nodeState('c').state).toBe('unknown');
    expect(seen.has('down')).toBe(false);
    expect(w.nodeState('zzz').state).toBe('unknown');
  });
  it('a service check is reported through the same query', async () => {
    sim.setCheck('a', 'nova', 'critical', 'nova-compute');
    await until(() => w.checkState('a', 'nova') === 'down');
    sim.setCheck('a', 'nova', 'passing', 'nova-compute');
    await until(() => w.checkState('a', 'nova') === 'up');
  });
  it('blocking queries: steady state costs few requests', async () => {
    const before = w.requests;
    await new Promise((r) => setTimeout(r, 1000));
    // Two loops, each waiting up to 2 s: at most a handful in a second.
    expect(w.requests - before).toBeLessThanOrEqual(4);
  });
  it('leaderless is unknown, never down', async () => {
    sim.setLeader(false);
    await until(() => w.nodeState('a').state === 'unknown');
    expect(w.nodeState('a').reason).toContain('No cluster leader');
    expect(w.nodeState('b').state).toBe('unknown');
    sim.setLeader(true);
    await until(() => w.nodeState('a').state === 'up');
  });
  it('unreachable is unknown, and recovers', async () => {
    const port = sim.port;
    await sim.stop();
    await until(() => w.nodeState('a').state === 'unknown');
    expect(w.nodeState('a').reason).toContain('unreachable');
    await sim.start(port);
    await until(() => w.nodeState('a').state === 'up');
  });
  it('a wrong token is unknown', async () => {
    const bad = new ConsulWatcher({ address: sim.url, token: 'wrong', waitMs: 1000, minLoopMs: 10, errorBackoffMs: 50 });
    bad.start();
    try {
      await until(() => !!bad.view.error && bad.view.error !== 'not yet answered');
      expect(bad.nodeState('a').state).toBe('unknown');
      expect(bad.view.error).toMatch(/403|denied|ACL/);
    } finally {
      await bad.stop();
    }
  });
  it('filter subset', () => {
    expect(matchFilter('CheckID == "serfHealth" or CheckID == "x"', { CheckID: 'x' })).toBe(true);
    expect(matchFilter('CheckID == "serfHealth"', { CheckID: 'x' })).toBe(false);
  });
});
