// The node half as a REAL process (`node bin/hm9k.js run --nodes ...`) against the real apiserver,
// real ipmi_sim BMCs, a real sshd and SMTP listener, the Nova/Keystone simulator (reached through
// a clouds.yaml Secret) and the Consul simulator (reached through the FencePolicy), at 1/10
// production timings or faster: the two SIGTERM hand-overs, where the simulator holds the leader's
// power-off (a slow BMC) or its evacuate request inside nova-api (beforeAction) while the Lease moves.
// SIGKILL mid-fence and mid-evacuation, and two replicas, run against real OpenStack in
// real-openstack.test.ts (same set-up: ./processes.ts).
import { describe, expect, afterEach, it } from 'vitest';
import { isAlive } from '../../src/devenv/procs.js';
import { CONSUL_TOKEN, logChassisCalls, quiesce, seedServers } from './helpers.js';
import { Hm9kProcesses, sigterm } from './processes.js';
import { World } from './world.js';

describe('hm9k run --nodes as a real process', { timeout: 240_000 }, () => {
  let world: World | undefined;
  let h: Hm9kProcesses;
  const getNode = (name: string) => h.getNode(name);
  const leaseHolder = () => h.leaseHolder();
  const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000) => h.until(what, fn, timeoutMs);
  const startHm9k = (podName: string, ipmitoolPath?: string, sets: string[] = []) => h.start(podName, ipmitoolPath, sets);
  const ipmitoolWrapper = (podName: string) => h.ipmitoolWrapper(podName);

  async function setup(): Promise<void> {
    world = new World({ consulToken: CONSUL_TOKEN });
    await world.start(3);
    seedServers(world);
    h = new Hm9kProcesses(world, 'proc');
    await h.init();
    await h.begin();
  }

  const evacuationsPerServer = () => {
    const m = new Map<string, number>();
    for (const x of world!.nova.migrations) m.set(x.instance_uuid, (m.get(x.instance_uuid) ?? 0) + 1);
    return m;
  };

  afterEach(async () => {
    if (world) {
      world.nova.onRequest = undefined;
      world.nova.beforeAction = undefined;
    }
    await h?.close();
    await quiesce(world);
    await world?.stop();
    world = undefined;
  });

  it('SIGTERM while the BMC has not yet answered the power-off: the standby re-reads the BMC and carries on; one power-off, never FenceFailed', async () => {
    await setup();
    const w = world!;
    const chassis = await logChassisCalls(w.node('cmp1')!.bmc);
    const ipmi1 = await ipmitoolWrapper('s1');
    const ipmi2 = await ipmitoolWrapper('s2');
    await ipmi1.slowPowerOff(true);
    const p1 = await startHm9k('s1', ipmi1.path);
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 60_000);
    await until('s1 leads', async () => (await leaseHolder()) === 's1', 30_000);
    await startHm9k('s2', ipmi2.path);
    const ids = [...w.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    await w.setRecoveryFails('cmp1', true);
    w.node('cmp1')!.broken.storage = true;

    // The BMC got the power-off; s1's ipmitool still waits for the answer when SIGTERM arrives.
    await until('power-off command reached the BMC', () => chassis().includes('0x20 set power 0'), 60_000);
    expect(ipmi2.calls()).toEqual([]);
    sigterm(p1);
    await until('s1 exited', () => !isAlive(p1.pid), 30_000);
    const mid = await getNode('cmp1');
    // An aborted step is not a result: the power-off intent stays pending, no FenceFailed.
    expect(mid.status?.phase).toBe('Fencing');
    expect(mid.status?.fence?.steps.find((s) => s.name === 'powerOff')?.state).toBe('pending');
    const fenceId = mid.status!.fence!.id;

    const phases = new Set<string>();
    const fenced = await until('cmp1 Fenced by s2', async () => {
      const n = await getNode('cmp1');
      phases.add(n.status?.phase ?? '');
      return n.status?.phase === 'Fenced' ? n : undefined;
    }, 90_000);
    expect(phases.has('FenceFailed')).toBe(false);
    expect(await leaseHolder()).toBe('s2');
    expect(fenced.status?.fence?.id).toBe(fenceId);
    expect(fenced.status?.fence?.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
    // Exactly one power-off ever reached the BMC; s2 only read its state.
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    expect(chassis().filter((c) => c.endsWith('set power 1'))).toHaveLength(0);
    expect(ipmi2.calls().filter((c) => c.endsWith('chassis power off'))).toEqual([]);
    expect(await w.node('cmp1')!.bmc.power()).toBe('off');
    const per = evacuationsPerServer();
    expect([...per.keys()].sort()).toEqual([...ids].sort());
    expect([...per.values()]).toEqual([1, 1, 1]);
    expect(fenced.status?.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
  });

  it('SIGTERM while an evacuate request is still in nova-api: the standby asks Nova and never re-sends it; every server evacuated exactly once', async () => {
    await setup();
    const w = world!;
    const chassis = await logChassisCalls(w.node('cmp1')!.bmc);
    // HTTP timeout 10s: the settle window (twice that) outlasts the Lease handover by far.
    const sets = ['nodes.httpTimeout=10s'];
    const p1 = await startHm9k('e1', undefined, sets);
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 60_000);
    await until('e1 leads', async () => (await leaseHolder()) === 'e1', 30_000);
    await startHm9k('e2', undefined, sets);
    const ids = [...w.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);

    // nova-api holds e1's first evacuate request (read, not yet carried out) until e2 has led for a while.
    const evacuateCalls: string[] = [];
    let heldId: string | undefined;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    w.nova.beforeAction = (id, action) => {
      if (action !== 'evacuate') return undefined;
      evacuateCalls.push(id);
      if (heldId) return undefined;
      heldId = id;
      sigterm(p1);
      return Promise.race([held, new Promise<void>((r) => setTimeout(r, 120_000).unref())]);
    };
    await w.setRecoveryFails('cmp1', true);
    w.node('cmp1')!.broken.storage = true;
    await until('e1 stopped while its evacuate request is held in nova-api', () => !!heldId && !isAlive(p1.pid), 90_000);
    await until('e2 leads', async () => (await leaseHolder()) === 'e2', 30_000);
    const from = w.nova.requests.length;
    await until('e2 asked Nova about the held server three times', () => w.nova.requests.slice(from).filter((r) => r === `GET /compute/v2.1/servers/${heldId}`).length >= 3, 60_000);
    // Nothing re-sent while the first request's outcome is unknown.
    expect(evacuateCalls.filter((id) => id === heldId)).toHaveLength(1);
    release();

    const fenced = await until('cmp1 Fenced by e2', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000);
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    expect([...evacuateCalls].sort()).toEqual([...ids].sort());
    const per = evacuationsPerServer();
    expect([...per.keys()].sort()).toEqual([...ids].sort());
    expect([...per.values()]).toEqual([1, 1, 1]);
    expect(fenced.status?.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    expect(fenced.status?.fence?.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
  });
});
