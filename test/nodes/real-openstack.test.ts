// The node half as REAL processes against REAL OpenStack (Debian bookworm's Zed packages, started by
// src/devenv/openstack.ts): Keystone, Nova API + conductor + scheduler, Placement, Glance, Neutron
// (no agents), RabbitMQ, MariaDB, and one fake-driver nova-compute per node, coupled to the node's
// real ipmi_sim BMC by the world (power off kills that host's nova-compute, power on starts it; a lost
// management network SIGSTOPs it). Servers are booted through the real API and scheduler; Nova's
// [api] max_limit is 2 so every list hm9k reads is paged. One control plane for the whole file (its
// start-up is the expensive part): each test begins its own run (FencePolicy, ComputeNodes, Lease)
// and the world is put back in service after it (power on, Nova services un-forced and enabled).
// hm9k reaches nova-api through a recording HTTP proxy (test/support/http-proxy.ts) that gives the
// tests the moment of a request ("SIGKILL at the first evacuate call"); real Nova answers everything.
// Consul stays simulated (see README).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_FINALIZER } from '../../src/api/index.js';
import { OpenStack, type RealServer } from '../../src/devenv/openstack.js';
import { isAlive, type Started } from '../../src/devenv/procs.js';
import { HttpProxy, type ProxiedRequest } from '../support/http-proxy.js';
import { CONSUL_TOKEN, logChassisCalls, quiesce } from './helpers.js';
import { Hm9kProcesses, sigkill, type RunOptions } from './processes.js';
import { World } from './world.js';

const HOSTS = ['cmp1', 'cmp2', 'cmp3'];
/** Real Nova on a loaded 2-core machine: slower answers, minutes per evacuation in the worst case. */
const REAL: RunOptions = { perServerTimeout: '180s', nodes: { novaPollInterval: '500ms', serverCountInterval: '2s', httpTimeout: '30s' } };
const isEvacuate = (r: ProxiedRequest) => r.method === 'POST' && /\/servers\/[^/]+\/action$/.test(r.path) && r.body.includes('"evacuate"');

interface NovaService { id: string; host: string; state: string; status: string; forced_down: boolean; disabled_reason: string | null }

describe('hm9k run --nodes against real OpenStack (Zed from Debian)', { timeout: 900_000 }, () => {
  let world: World;
  let os: OpenStack;
  let proxy: HttpProxy;
  let h: Hm9kProcesses;
  const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 180_000) => h.until(what, fn, timeoutMs);
  const services = async () => (await os.nova<{ services: NovaService[] }>('GET', '/os-services?binary=nova-compute')).services;
  const service = async (host: string) => (await services()).find((s) => s.host === host)!;
  const migrationsFrom = async (host: string) => (await os.migrations()).filter((m) => m.source_compute === host);
  const onHost = async (host: string) => (await os.servers()).filter((s) => s.host === host).map((s) => s.id).sort();
  const fencedNode = (name: string, timeoutMs = 600_000) => until(`${name} Fenced`, async () => { const n = await h.getNode(name); return n.status?.phase === 'Fenced' ? n : undefined; }, timeoutMs);
  const evacuationsPerServer = async (host: string) => {
    const m = new Map<string, number>();
    for (const x of await migrationsFrom(host)) m.set(x.instance_uuid, (m.get(x.instance_uuid) ?? 0) + 1);
    return m;
  };

  beforeAll(async () => {
    // service_down_time 30s: a compute starved by a loaded machine must not look dead to hm9k.
    os = new OpenStack({ maxLimit: 2, reportIntervalS: 2, serviceDownTimeS: 30 });
    await os.start(HOSTS);
    console.log(`[figures] real OpenStack up in ${os.timings.total}s (${JSON.stringify(os.timings)}), ${await os.memoryMiB()} MiB resident`);
    proxy = await HttpProxy.start(os.ports.nova);
    await os.setPublicComputeEndpoint(`http://127.0.0.1:${proxy.port}/v2.1`);
    world = new World({ consulToken: CONSUL_TOKEN, openstack: os });
    await world.start(HOSTS.length);
    h = new Hm9kProcesses(world, 'real');
    await h.init();
    // Through the real API and scheduler: two active and one stopped on cmp1, one on cmp2.
    await os.bootServers('cmp1', ['a0', 'a1']);
    await os.bootServers('cmp1', ['stopped'], { stopped: true });
    await os.bootServers('cmp2', ['b0']);
  }, 900_000);

  afterEach(async () => {
    proxy.onRequest = undefined;
    await h.end();
    // Back in service: every fault undone, every host powered on, Nova's services un-forced and enabled.
    for (const n of world.nodes) {
      for (const net of ['management', 'storage', 'tenant'] as const) { n.broken[net] = false; n.agentBroken[net] = false; }
      await world.setRecoveryFails(n.name, false);
      await n.bmc.refusePowerOn(false);
      if ((await n.bmc.power()) === 'off') await n.bmc.setPower('on');
    }
    await os.resetComputeServices();
    await os.waitComputesUp(HOSTS, 300_000);
    world.smtp.mails.length = 0;
    world.recoverCalls.length = 0;
  }, 600_000);

  afterAll(async () => {
    await h?.close();
    await quiesce(world);
    await world?.stop();
    await proxy?.stop();
    await os?.stop();
  }, 120_000);

  it('management network lost: its nova-compute stops reporting (SIGSTOP) and real Nova says down; tenant down elsewhere: email only, nothing recovered, forced down, fenced or evacuated; back -> Healthy', async () => {
    await h.begin({ ...REAL, leaderElection: false });
    await h.start('n1');
    await h.healthy(240_000);
    const before = (await os.migrations()).length;
    world.node('cmp2')!.broken.management = true;
    world.node('cmp3')!.broken.tenant = true;
    await world.smtp.waitFor((m) => m.subject.includes('cmp2') && m.subject.includes('management network down'), 120_000);
    await world.smtp.waitFor((m) => m.subject.includes('cmp3') && m.subject.includes('tenant network down'), 120_000);
    // The lost management network reached Nova: no reports for service_down_time, so nova-compute is down (not forced).
    await until('real Nova reports cmp2 nova-compute down', async () => (await service('cmp2')).state === 'down', 180_000);
    await until('hm9k sees Nova say down', async () => (await h.getNode('cmp2')).status?.nova?.apiState === 'down', 60_000);
    const n2 = await h.getNode('cmp2');
    expect(n2.status?.phase).toBe('Degraded');
    expect(n2.status?.fence).toBeUndefined();
    expect((await h.getNode('cmp3')).status?.phase).toBe('Degraded');
    expect(world.recoverCalls).toEqual([]);
    for (const s of await services()) expect(s).toMatchObject({ forced_down: false, status: 'enabled' });
    expect((await os.migrations()).length).toBe(before);
    for (const n of world.nodes) expect(await n.bmc.power()).toBe('on');
    world.node('cmp2')!.broken.management = false;
    world.node('cmp3')!.broken.tenant = false;
    await until('cmp2 up in Nova and Healthy again', async () => (await service('cmp2')).state === 'up' && (await h.getNode('cmp2')).status?.phase === 'Healthy', 180_000);
    expect((await os.migrations()).length).toBe(before);
  });

  it('storage lost on 2 of 3 nodes (above maxUnhealthy 40%): storm, nothing powered off, forced down or evacuated in real Nova', async () => {
    await h.begin({ ...REAL, leaderElection: false });
    const p = await h.start('s1');
    await h.healthy(240_000);
    const before = (await os.migrations()).length;
    for (const name of ['cmp1', 'cmp2']) {
      await world.setRecoveryFails(name, true);
      world.node(name)!.broken.storage = true;
    }
    const pol = await until('StormActive', async () => { const x = await h.getPolicy(); return x.status?.conditions?.find((c) => c.type === 'StormActive')?.status === 'True' ? x : undefined; });
    expect(pol.status?.unhealthyNodes).toBe(2);
    for (const name of ['cmp1', 'cmp2']) {
      const n = await until(`${name} held by the storm`, async () => { const n = await h.getNode(name); return n.status?.waitingFor?.includes('storm') ? n : undefined; });
      expect(n.status?.fence).toBeUndefined();
      expect(n.status?.phase).toBe('Suspect');
    }
    expect(await h.metrics(p)).toMatch(new RegExp(`^hm9k_nodes_storm_active\\{policy="${h.run}"\\} 1`, 'm'));
    await world.smtp.waitFor((m) => m.subject.includes('fence held') || m.subject.includes('recovery held'), 60_000);
    for (const n of world.nodes) expect(await n.bmc.power()).toBe('on');
    for (const s of await services()) expect(s).toMatchObject({ forced_down: false, status: 'enabled', state: 'up' });
    expect((await os.migrations()).length).toBe(before);
    for (const name of ['cmp1', 'cmp2']) {
      await world.setRecoveryFails(name, false);
      world.node(name)!.broken.storage = false;
    }
    await until('storm over', async () => (await h.getPolicy()).status?.conditions?.find((c) => c.type === 'StormActive')?.status === 'False');
    expect((await os.migrations()).length).toBe(before);
  });

  it('host found powered off -> powered on through IPMI, its nova-compute restarted and up in real Nova; power-on refused -> email, left off', async () => {
    await h.begin({ ...REAL, leaderElection: false });
    await h.start('o1');
    await h.healthy(240_000);
    const before = (await os.migrations()).length;
    const n3 = world.node('cmp3')!;
    const pid = os.computePid('cmp3');
    await n3.bmc.setPower('off');
    await until('cmp3 nova-compute gone with the power', () => os.computePid('cmp3') !== pid, 30_000);
    await until('cmp3 powered on by hm9k', async () => { await h.getNode('cmp3'); return (await n3.bmc.power()) === 'on'; }, 240_000);
    await until('cmp3 nova-compute up again in real Nova, node Healthy', async () => os.computeRunning('cmp3') && (await service('cmp3')).state === 'up' && (await h.getNode('cmp3')).status?.phase === 'Healthy', 240_000);
    expect(os.computePid('cmp3')).not.toBe(pid);
    await n3.bmc.refusePowerOn(true);
    await n3.bmc.setPower('off');
    await world.smtp.waitFor((m) => m.subject.includes('cmp3') && m.subject.includes('power-on FAILED'), 120_000);
    expect(await n3.bmc.power()).toBe('off');
    expect(os.computeRunning('cmp3')).toBe(false);
    expect((await h.getNode('cmp3')).status?.fence).toBeUndefined();
    expect((await service('cmp3')).forced_down).toBe(false);
    expect((await os.migrations()).length).toBe(before);
  });

  it('storage lost and recovery fails: fenced through IPMI, every server evacuated exactly once by real Nova at 2.93, power states kept; SIGKILLed mid-fence and again at its first evacuate call, the third process finishes', async () => {
    await h.begin(REAL);
    const active = (await os.servers()).filter((s) => s.host === 'cmp1' && s.status === 'ACTIVE');
    const stopped = (await os.servers()).filter((s) => s.host === 'cmp1' && s.status === 'SHUTOFF');
    const onCmp1 = await onHost('cmp1');
    expect(onCmp1).toHaveLength(3);
    expect([active.length, stopped.length]).toEqual([2, 1]);
    const chassis = await logChassisCalls(world.node('cmp1')!.bmc);
    const p1 = await h.start('p1');
    await h.healthy(240_000);
    // status.servers comes from real Nova's paged GET /servers?host= (max_limit 2, three servers).
    await until('cmp1 status.servers = 3 from paged Nova lists', async () => (await h.getNode('cmp1')).status?.servers === 3, 120_000);

    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    // 1. Killed in the middle of the fence: the BMC got the power-off command, its confirmation not recorded.
    await until('power-off command reached the BMC', () => chassis().includes('0x20 set power 0'), 180_000);
    sigkill(p1);
    const mid = await h.getNode('cmp1');
    expect(mid.status?.phase).toBe('Fencing');
    expect(mid.status?.fence?.steps.find((s) => s.name === 'powerOff')?.state).toBe('pending');
    expect(mid.metadata.finalizers).toContain(FENCE_FINALIZER);
    const fenceId = mid.status!.fence!.id;

    // 2. Killed as its first evacuate call reaches nova-api (before the answer): real Nova carries it out.
    let p2: Started | undefined;
    let killedP2 = false;
    proxy.onRequest = (r) => {
      if (!killedP2 && p2 && isEvacuate(r)) {
        killedP2 = true;
        sigkill(p2);
      }
    };
    p2 = await h.start('p2');
    await until('p2 killed at its first evacuate call', () => killedP2 && !isAlive(p2!.pid), 300_000);
    const mid2 = await h.getNode('cmp1');
    expect(mid2.status?.phase).toBe('Evacuating');
    expect(mid2.status?.evacuation?.servers.filter((s) => s.state === 'requested')).toHaveLength(1);
    await until('the evacuation in os-migrations', async () => (await migrationsFrom('cmp1')).length === 1, 60_000);

    // 3. A third process finishes the job.
    await h.start('p3');
    const fenced = await fencedNode('cmp1');
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    expect(chassis().filter((c) => c.endsWith('set power 1'))).toHaveLength(0);
    expect(fenced.status?.fence?.id).toBe(fenceId);
    expect(fenced.status?.fence?.leaseHolder).toBe('p1');
    expect(fenced.status?.fence?.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
    // Nova's own record: cmp1 forced down and disabled with the fence id as the reason.
    expect(await service('cmp1')).toMatchObject({ forced_down: true, status: 'disabled', disabled_reason: `hm9k fence ${fenceId}` });
    // hm9k asked for 2.94 (its default), Zed offers 2.93: it used 2.93, where evacuate keeps power states.
    expect(fenced.status?.evacuation).toMatchObject({ microversion: '2.93', total: 3, done: 3, failed: 0 });
    // Exactly one evacuation per server in Nova's os-migrations (read page by page), every one done.
    const per = await evacuationsPerServer('cmp1');
    expect([...per.keys()].sort()).toEqual(onCmp1);
    expect([...per.values()]).toEqual([1, 1, 1]);
    const migs = await migrationsFrom('cmp1');
    expect(migs.every((m) => m.status === 'done')).toBe(true);
    const after = new Map((await os.servers()).map((s) => [s.id, s] as [string, RealServer]));
    for (const id of onCmp1) expect(['cmp2', 'cmp3']).toContain(after.get(id)!.host);
    for (const s of active) expect(after.get(s.id)!.status).toBe('ACTIVE');
    expect(after.get(stopped[0]!.id)!.status).toBe('SHUTOFF');
    await until('finalizer removed', async () => !(await h.getNode('cmp1')).metadata.finalizers?.includes(FENCE_FINALIZER), 120_000);
    await until('status.servers 0 from Nova', async () => (await h.getNode('cmp1')).status?.servers === 0, 120_000);
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'), 60_000);
    expect(mail.raw).toContain(fenceId);
    expect((await h.getNode('cmp2')).status?.phase).toBe('Healthy');
    expect(os.computeRunning('cmp1')).toBe(false);
    const evacMs = migs.map((m) => Date.parse(`${m.updated_at}Z`) - Date.parse(`${m.created_at}Z`));
    console.log(`[figures] real Nova evacuations: ${migs.length}, each ${evacMs.join('/')} ms (os-migrations created->updated)`);
  });

  it('two replicas: only the Lease holder acts; it is SIGKILLed at its first evacuate call and the other finishes, every server evacuated once by real Nova', async () => {
    await h.begin(REAL);
    // cmp3 this time (never fenced): three new servers on it, besides any the previous fence moved there.
    await os.bootServers('cmp3', ['r0', 'r1', 'r2']);
    const ids = await onHost('cmp3');
    expect(ids.length).toBeGreaterThanOrEqual(3);
    const chassis = await logChassisCalls(world.node('cmp3')!.bmc);
    const ipmi = { r1: await h.ipmitoolWrapper('r1'), r2: await h.ipmitoolWrapper('r2') };
    const r1 = await h.start('r1', ipmi.r1.path);
    const r2 = await h.start('r2', ipmi.r2.path);
    await h.healthy(240_000);
    const holder = await until('a leader', () => h.leaseHolder(), 60_000);
    const [leader, follower] = holder === 'r1' ? [r1, r2] : [r2, r1];
    const followerIpmi = follower === r1 ? ipmi.r1 : ipmi.r2;
    expect((follower === r1 ? ipmi.r2 : ipmi.r1).calls().length).toBeGreaterThan(0);
    let followerBefore = '';
    let followerIpmiBefore: string[] = [];
    let killed = false;
    proxy.onRequest = async (r) => {
      if (!killed && isEvacuate(r)) {
        killed = true;
        followerIpmiBefore = followerIpmi.calls();
        sigkill(leader);
        followerBefore = await h.metrics(follower);
      }
    };
    await world.setRecoveryFails('cmp3', true);
    world.node('cmp3')!.broken.storage = true;
    await until('leader killed at its first evacuate call', () => killed && !isAlive(leader.pid), 300_000);
    await until('follower metrics read', () => followerBefore !== '', 30_000);
    // Up to then the follower acted on nothing: not the master, no action metric, no BMC call.
    expect(followerBefore).toMatch(new RegExp(`leader_election_master_status\\{name="${h.lease}"\\} 0`));
    expect(followerBefore).not.toMatch(/^hm9k_nodes_actions_total\{/m);
    expect(followerIpmiBefore).toEqual([]);

    const fenced = await fencedNode('cmp3');
    expect(await h.leaseHolder()).toBe(follower === r1 ? 'r1' : 'r2');
    expect(fenced.status?.fence?.leaseHolder).toBe(holder);
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    const per = await evacuationsPerServer('cmp3');
    expect([...per.keys()].sort()).toEqual(ids);
    expect([...per.values()].every((n) => n === 1)).toBe(true);
    expect(fenced.status?.evacuation).toMatchObject({ microversion: '2.93', total: ids.length, done: ids.length, failed: 0 });
    expect(world.recoverCalls.filter((c) => c === 'cmp3:storage')).toHaveLength(1);
    const after = await h.metrics(follower);
    expect(after).toMatch(new RegExp(`leader_election_master_status\\{name="${h.lease}"\\} 1`));
    expect(after).toMatch(/^hm9k_nodes_actions_total\{type="evacuate",result="ok"\} 1/m);
    for (const id of ids) expect(['cmp1', 'cmp2']).toContain((await os.server(id)).host);
  });
});
