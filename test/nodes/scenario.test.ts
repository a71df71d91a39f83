// Whole-node scenarios against a real kube-apiserver, real ipmi_sim BMCs, a real sshd, a real SMTP
// listener, the Nova/Keystone simulator and the Consul simulator, at 1/10 production timings or faster.
import { CustomObjectsApi, EventsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACK_FENCE_ANNOTATION, FENCE_FINALIZER, GROUP, NETWORKS, VERSION, type ComputeNode, type FencePolicy, type FencePolicySpec } from '../../src/api/index.js';
import { createRuntime, type ManagedRuntime } from '../../src/kube/runtime.js';
import { nodesConfig } from '../../src/nodes/config.js';
import { startNodes } from '../../src/nodes/index.js';
import { kubeConfig, testNamespace } from '../support/controlplane.js';
import { CONSUL_TOKEN, createComputeNodes, createNodeSecrets, deleteRunObjects, quiesce, seedServers, testPolicy, until as untilOr } from './helpers.js';
import { World } from './world.js';

let lastSeen = new Map<string, string>();
const logger = pino({ level: process.env.HM9K_TEST_LOG ?? 'silent' });

const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 45_000) =>
  untilOr(what, fn, timeoutMs, () => [...lastSeen].map(([k, v]) => `${k}: ${v}`).join('\n'));

describe('compute-node HA, whole node', { timeout: 150_000 }, () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let ns: string;
  let world: World;
  let runtime: ManagedRuntime;
  let nodes: { stop(): Promise<void> };
  let run: string;

  const cn = (name: string) => `${run}-${name}`;
  const seen = new Map<string, string>();
  lastSeen = seen;
  const getNode = async (name: string) => {
    const n = (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(name) })) as ComputeNode;
    seen.set(name, `${n.status?.phase} (${n.status?.waitingFor ?? ''}) fence=${JSON.stringify(n.status?.fence?.steps ?? null)} nets=${JSON.stringify(n.status?.networks)} power=${JSON.stringify(n.status?.power)}`);
    return n;
  };
  /** What `kubectl annotate` does: a merge patch of metadata.annotations (no resourceVersion race with hm9k's status writes). */
  const annotate = (name: string, key: string, value: string) =>
    api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(name), body: { metadata: { annotations: { [key]: value } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const eventReasons = async (name: string, kind: string) =>
    (await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: 'default', fieldSelector: `regarding.name=${name}` })).items.filter((e) => e.regarding?.kind === kind).map((e) => e.reason ?? '');
  const getPolicy = async () => (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: run })) as FencePolicy;

  async function setup(count: number, safety: FencePolicySpec['safety'] = {}, servers = true, tweak: (spec: FencePolicySpec) => void = () => {}, worldOpts: ConstructorParameters<typeof World>[0] = {}) {
    run = `t${Math.random().toString(36).slice(2, 7)}`;
    kc = kubeConfig();
    api = kc.makeApiClient(CustomObjectsApi);
    ns = await testNamespace('nodes');
    world = new World({ consulToken: CONSUL_TOKEN, ...worldOpts });
    await world.start(count);
    if (servers) seedServers(world);
    await createNodeSecrets(kc, ns, world);
    await startController();
    const policy = testPolicy(world, run, { safety });
    tweak(policy.spec);
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: policy });
    await createComputeNodes(api, world, run);
    // Everyone Healthy first, and watched so (BMC read on: the power-on evidence of issue 9 item 4),
    // so that a test that powers a host off does not race hm9k's first power reading.
    for (const n of world.nodes) {
      await until(`${n.name} Healthy and watched`, async () => { const s = (await getNode(n.name)).status; return s?.phase === 'Healthy' && !!s.watchedHealthyAt; });
    }
  }

  async function startController() {
    runtime = await createRuntime({
      component: 'nodes-test', namespace: ns, kubeConfig: kc, logger, leaderElection: false, metricsPort: false, probePort: false, handleSignals: false,
      status: { perObjectIntervalMs: 50 },
    });
    nodes = await startNodes(runtime, nodesConfig({
      namespace: ns, cloudsSecret: 'clouds', cloudName: 'sim', globalMaxUnhealthy: '100%',
      consulWaitMs: 2000, consulMinLoopMs: 50, powerPollIntervalMs: 1000, novaPollIntervalMs: 300, serverCountIntervalMs: 600, resyncMs: 3000, maxConcurrentRemediations: 5,
    }));
    await runtime.start();
  }

  afterEach(async () => {
    await nodes?.stop();
    await runtime?.stop();
    if (api && run) await deleteRunObjects(api, world, run);
    await quiesce(world);
    await world?.stop();
  });
  beforeEach(() => { run = ''; });

  it('storage network lost and unrecoverable -> fenced, forced down, servers evacuated, email; ack -> back in service', async () => {
    await setup(3);
    const n1 = world.node('cmp1')!;
    await world.setRecoveryFails('cmp1', true);
    const t0 = Date.now();
    n1.broken.storage = true;
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 60_000);
    const fence = fenced.status!.fence!;
    console.log(`[figures] storage failure -> Fenced (3 servers evacuated) in ${Date.now() - t0} ms; policy: interval 300ms x failureThreshold 3 = 900 ms, recoveryGracePeriod 1s, 1 recovery attempt + settleTime 1.5s, powerWait 200ms, migration 2 x 150ms`);
    // Fenced: power off confirmed by the BMC (ipmi_sim reports off), steps recorded with the lease holder.
    expect(await n1.bmc.power()).toBe('off');
    expect(fence.powerOffConfirmedAt).toBeTruthy();
    expect(fence.leaseHolder).toBe(runtime.leader.identity);
    expect(fence.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
    // hm9k's finalizer is gone once Fenced is reached.
    await until('finalizer removed', async () => !(await getNode('cmp1')).metadata.finalizers?.includes(FENCE_FINALIZER));
    expect(world.recoverCalls).toContain('cmp1:storage');
    // Nova: forced down, disabled with the marker; every server evacuated to another host.
    const svc = world.nova.services.get('cmp1')!;
    expect(svc).toMatchObject({ forced_down: true, status: 'disabled', disabled_reason: `hm9k fence ${fence.id}` });
    const servers = [...world.nova.servers.values()];
    expect(servers.filter((s) => s.host === 'cmp1')).toEqual([]);
    expect(servers.find((s) => s.name === 'stopped')?.vm_state).toBe('stopped');
    expect(fenced.status!.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    // One evacuation per server.
    const perServer = new Map<string, number>();
    for (const m of world.nova.migrations) perServer.set(m.instance_uuid, (perServer.get(m.instance_uuid) ?? 0) + 1);
    expect([...perServer.values()].every((c) => c === 1)).toBe(true);
    // Email with the details.
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'));
    expect(mail.body).toContain(fence.id);
    expect(mail.body).toContain('acknowledge-fence');
    // Other nodes untouched.
    expect((await getNode('cmp2')).status?.phase).toBe('Healthy');
    expect(await world.node('cmp2')!.bmc.power()).toBe('on');

    // Operator repairs the host (powers it on, fixes storage) and acknowledges the fence id.
    await world.setRecoveryFails('cmp1', false);
    n1.broken.storage = false;
    await n1.bmc.setPower('on');
    await annotate('cmp1', ACK_FENCE_ANNOTATION, fence.id);
    await until('cmp1 Healthy again', async () => (await getNode('cmp1')).status?.phase === 'Healthy', 60_000);
    expect(world.nova.services.get('cmp1')).toMatchObject({ forced_down: false, status: 'enabled', disabled_reason: null });
    expect((await getNode('cmp1')).status?.fence).toBeUndefined();
  });

  it('Nova pages at max_limit 2: a fenced host with more servers than fit a page -> every server evacuated exactly once, the email counts exact', async () => {
    await setup(3, {}, true, () => {}, { nova: { maxLimit: 2 } });
    // cmp1: the 3 seeded servers and 2 more = 5, three pages of its host list; 6 servers in the fleet.
    for (let i = 0; i < 2; i++) world.nova.addServer('cmp1', { name: `p${i}` });
    const ids = [...world.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    expect(ids).toHaveLength(5);
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000);
    expect(fenced.status?.evacuation).toMatchObject({ total: 5, done: 5, failed: 0 });
    expect([...world.nova.servers.values()].filter((s) => s.host === 'cmp1')).toEqual([]);
    const perServer = new Map<string, number>();
    for (const m of world.nova.migrations) perServer.set(m.instance_uuid, (perServer.get(m.instance_uuid) ?? 0) + 1);
    expect([...perServer.keys()].sort()).toEqual([...ids].sort());
    expect([...perServer.values()].every((c) => c === 1)).toBe(true);
    // hm9k really was paged: the simulator answered next links and hm9k asked for the following pages.
    expect(world.nova.requests.filter((r) => r === 'GET /compute/v2.1/servers/detail').length).toBeGreaterThan(3);
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'));
    expect(mail.subject).toContain('fenced, 5/5 servers evacuated');
    expect(world.smtp.mails.filter((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'))).toHaveLength(1);
    // The fleet-wide server count follows the pages too: all 6 servers, now on cmp2 and cmp3.
    await until('status.servers counts all 6 servers', async () => ((await getNode('cmp2')).status?.servers ?? 0) + ((await getNode('cmp3')).status?.servers ?? 0) === 6);
  });

  it('BMC not answering during a fence -> FenceFailed, nothing evacuated, operators told', async () => {
    await setup(3);
    const n1 = world.node('cmp1')!;
    await world.setRecoveryFails('cmp1', true);
    await n1.bmc.kill();
    n1.broken.storage = true;
    const failed = await until('cmp1 FenceFailed', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'FenceFailed' ? n : undefined; }, 60_000);
    expect(failed.status?.fence?.steps.find((s) => s.name === 'confirmOff')?.state).toBe('failed');
    expect(failed.status?.evacuation).toBeUndefined();
    await until('finalizer removed on FenceFailed', async () => !(await getNode('cmp1')).metadata.finalizers?.includes(FENCE_FINALIZER));
    expect(world.nova.migrations).toEqual([]);
    expect(world.nova.services.get('cmp1')).toMatchObject({ forced_down: false, status: 'enabled' });
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('FENCE FAILED'));
    expect(mail.body).toContain('NOT evacuated');
  });

  it('a partition failing 3 of 5 nodes -> storm, nothing fenced', async () => {
    await setup(5, { maxUnhealthy: '40%' });
    for (const name of ['cmp1', 'cmp2', 'cmp3']) {
      await world.setRecoveryFails(name, true);
      world.node(name)!.broken.storage = true;
    }
    const p = await until('StormActive', async () => { const p = await getPolicy(); return p.status?.conditions?.find((c) => c.type === 'StormActive')?.status === 'True' ? p : undefined; });
    expect(p.status?.unhealthyNodes).toBe(3);
    const stormGauge = async () => (await runtime.metrics.getSingleMetric('hm9k_nodes_storm_active')!.get()).values.find((v) => v.labels.policy === run)?.value;
    expect(await stormGauge()).toBe(1);
    // Every failed node reaches the point where it would act, and is held by the storm.
    for (const name of ['cmp1', 'cmp2', 'cmp3']) {
      const n = await until(`${name} held by storm`, async () => { const n = await getNode(name); return n.status?.waitingFor?.includes('storm') ? n : undefined; });
      expect(n.status?.fence).toBeUndefined();
      expect(n.status?.phase).toBe('Suspect');
    }
    for (const n of world.nodes) expect(await n.bmc.power()).toBe('on');
    expect(world.nova.migrations).toEqual([]);
    expect([...world.nova.services.values()].every((s) => !s.forced_down)).toBe(true);
    await world.smtp.waitFor((m) => m.subject.includes('fence held') || m.subject.includes('recovery held'));
    // Storm entered and left: an Event on the held node and on the policy.
    await until('cmp1 Event: held by the storm', async () => (await eventReasons(cn('cmp1'), 'ComputeNode')).some((r) => r === 'FenceHeldStorm' || r === 'RecoveryHeldStorm'));
    expect(await eventReasons(run, 'FencePolicy')).toContain('StormActive');
    for (const name of ['cmp1', 'cmp2', 'cmp3']) {
      await world.setRecoveryFails(name, false);
      world.node(name)!.broken.storage = false;
    }
    await until('storm over', async () => (await getPolicy()).status?.conditions?.find((c) => c.type === 'StormActive')?.status === 'False');
    await until('StormEnded Event', async () => (await eventReasons(run, 'FencePolicy')).includes('StormEnded'));
    expect(await stormGauge()).toBe(0);
    expect(world.nova.migrations).toEqual([]);
  });

  it('storage network down, the recovery command fixes it -> Healthy again, nothing fenced', async () => {
    await setup(3);
    world.node('cmp1')!.broken.storage = true;
    await until('recovery ran', () => world.recoverCalls.includes('cmp1:storage'));
    await until('cmp1 Healthy', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Healthy' && n.status.networks?.storage?.state === 'up'; });
    expect((await getNode('cmp1')).status?.fence).toBeUndefined();
    expect(await world.node('cmp1')!.bmc.power()).toBe('on');
    expect(world.nova.migrations).toEqual([]);
    await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('recovered'));
  });

  it('management or tenant network down -> email only', async () => {
    await setup(3);
    world.node('cmp2')!.broken.management = true;
    world.node('cmp3')!.broken.tenant = true;
    await world.smtp.waitFor((m) => m.subject.includes('cmp2') && m.subject.includes('management network down'));
    await world.smtp.waitFor((m) => m.subject.includes('cmp3') && m.subject.includes('tenant network down'));
    expect((await getNode('cmp2')).status?.phase).toBe('Degraded');
    expect(world.recoverCalls).toEqual([]);
    expect(world.nova.migrations).toEqual([]);
    for (const n of world.nodes) expect(await n.bmc.power()).toBe('on');
  });

  it("a node's storage Consul agent dies while its storage network works -> no fence, email", async () => {
    await setup(3);
    world.node('cmp1')!.agentBroken.storage = true;
    await world.setNodeSaysWorks('cmp1', 'storage', true);
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('agent broken'));
    expect(mail.body).toContain('storage network works');
    const n = await getNode('cmp1');
    expect(n.status?.phase).toBe('Degraded');
    expect(n.status?.fence).toBeUndefined();
    expect(await world.node('cmp1')!.bmc.power()).toBe('on');
    expect(world.nova.migrations).toEqual([]);
  });

  it('host found powered off -> powered on; power-on fails -> email', async () => {
    await setup(3);
    const n2 = world.node('cmp2')!;
    await n2.bmc.setPower('off');
    await until('cmp2 powered on by hm9k', async () => (await n2.bmc.power()) === 'on');
    await until('cmp2 Healthy', async () => (await getNode('cmp2')).status?.phase === 'Healthy');
    const n3 = world.node('cmp3')!;
    await n3.bmc.refusePowerOn(true);
    await n3.bmc.setPower('off');
    await world.smtp.waitFor((m) => m.subject.includes('cmp3') && m.subject.includes('power-on FAILED'));
    expect(await n3.bmc.power()).toBe('off');
    expect((await getNode('cmp3')).status?.fence).toBeUndefined();
    expect(world.nova.migrations).toEqual([]);
  });

  it('a Consul cluster unreachable -> that network unknown, no action', async () => {
    await setup(3);
    await world.consul.storage.stop();
    for (const name of ['cmp1', 'cmp2', 'cmp3']) {
      await until(`${name} Unknown`, async () => { const n = await getNode(name); return n.status?.phase === 'Unknown' && n.status.networks?.storage?.state === 'unknown'; });
    }
    expect(world.recoverCalls).toEqual([]);
    expect(world.nova.migrations).toEqual([]);
    for (const n of world.nodes) expect(await n.bmc.power()).toBe('on');
    expect((await getNode('cmp1')).status?.networks?.management?.state).toBe('up');
  });

  it('controller stopped mid-evacuation -> restarted -> finishes without evacuating any server twice', async () => {
    await setup(3);
    const ids = [...world.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    for (const id of ids) world.nova.stallEvacuationOf.add(id);
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    await until('evacuation under way', async () => (await getNode('cmp1')).status?.evacuation?.servers.some((s) => s.state === 'requested'));
    // The controller goes away in the middle of the evacuation (its in-memory state is lost).
    await nodes.stop();
    await runtime.stop();
    for (const id of ids) world.nova.stallEvacuationOf.delete(id);
    await startController();
    const n = await until('cmp1 Fenced after restart', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 60_000);
    expect(n.status?.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    const perServer = new Map<string, number>();
    for (const m of world.nova.migrations) perServer.set(m.instance_uuid, (perServer.get(m.instance_uuid) ?? 0) + 1);
    expect([...perServer.keys()].sort()).toEqual([...ids].sort());
    expect([...perServer.values()].every((c) => c === 1)).toBe(true);
    expect(n.status?.fence?.steps.filter((s) => s.name === 'powerOff')).toHaveLength(1);
  });

  it('an evacuation the simulator fails for one server -> the others still done, the failure recorded and emailed', async () => {
    await setup(3);
    const bad = [...world.nova.servers.values()].find((s) => s.name === 'a0')!;
    world.nova.failEvacuationOf.add(bad.id);
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    const n = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 60_000);
    expect(n.status?.evacuation).toMatchObject({ total: 3, done: 2, failed: 1 });
    expect(n.status?.evacuation?.servers.find((s) => s.id === bad.id)).toMatchObject({ state: 'failed' });
    expect(n.status?.fence?.steps.find((s) => s.name === 'evacuate')?.state).toBe('failed');
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'));
    expect(mail.body).toContain(`${bad.id}: failed`);
  });

  it('steady state writes nothing', async () => {
    await setup(3);
    await until('policy status', async () => { const p = await getPolicy(); return p.status?.matchedNodes === 3 && p.status.healthyNodes === 3 ? p : undefined; });
    for (const name of ['cmp1', 'cmp2', 'cmp3']) {
      await until(`${name} settled`, async () => { const n = await getNode(name); return n.status?.power?.state === 'on' && n.status.nova?.apiState === 'up' && n.status.servers !== undefined && (n.status.conditions ?? []).every((c) => c.status !== 'Unknown'); });
    }
    // status.servers comes from Nova (the periodic count), not only from an evacuation.
    expect(await Promise.all(['cmp1', 'cmp2', 'cmp3'].map(async (n) => (await getNode(n)).status?.servers))).toEqual([3, 1, 0]);
    await new Promise((r) => setTimeout(r, 1000));
    const statusBefore = await Promise.all(['cmp1', 'cmp2', 'cmp3'].map(async (n) => (await getNode(n)).status));
    const before = await Promise.all(['cmp1', 'cmp2', 'cmp3'].map(async (n) => (await getNode(n)).metadata.resourceVersion));
    // The policy's status settles with its nodes (power read, servers counted): measure from here.
    const p1 = await until('policy settled', async () => { const p = await getPolicy(); return p.status?.unhealthyNodes === 0 ? p : undefined; });
    const consulRequests = () => NETWORKS.reduce((sum, n) => sum + [...world.consul[n].requestCount.values()].reduce((a, b) => a + b, 0), 0);
    const [nova0, consul0, t0] = [world.nova.requests.length, consulRequests(), Date.now()];
    // Many sampling intervals and more than one resync period pass with nothing changing.
    const seenPolicy = new Map<string, string>();
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      const p = await getPolicy();
      if (!seenPolicy.has(p.metadata.resourceVersion!)) seenPolicy.set(p.metadata.resourceVersion!, JSON.stringify(p.status));
      await new Promise((r) => setTimeout(r, 100));
    }
    const perMin = (n: number) => Math.round((n * 60_000) / (Date.now() - t0));
    console.log(`[figures] steady state, 3 nodes, 3 Consul clusters: Consul ${perMin(consulRequests() - consul0)} req/min (blocking queries, wait 2s), Nova ${perMin(world.nova.requests.length - nova0)} req/min (service poll 300ms, server count 600ms), 0 apiserver writes`);
    const after = await Promise.all(['cmp1', 'cmp2', 'cmp3'].map(async (n) => (await getNode(n)).metadata.resourceVersion));
    const statusAfter = await Promise.all(['cmp1', 'cmp2', 'cmp3'].map(async (n) => (await getNode(n)).status));
    expect(statusAfter).toEqual(statusBefore);
    expect(after).toEqual(before);
    expect((await getPolicy()).metadata.resourceVersion, `policy status writes: ${[...seenPolicy].map(([rv, st]) => `${rv}: ${st}`).join('\n')}`).toBe(p1.metadata.resourceVersion);
    // Consul ACLs on (default deny): every request carried the policy's token, none was refused or filtered.
    expect(NETWORKS.map((n) => world.consul[n].aclDenied)).toEqual([0, 0, 0]);
    // A server scheduled to cmp3 shows up in its status at the next count.
    world.nova.addServer('cmp3', { name: 'c0' });
    await until('cmp3 counts 1 server', async () => (await getNode('cmp3')).status?.servers === 1);
  });

  it('a ComputeNode deleted mid-fence keeps its finalizer until the fence is finished, then goes', async () => {
    await setup(3);
    const ids = [...world.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    for (const id of ids) world.nova.stallEvacuationOf.add(id);
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    const mid = await until('evacuation under way', async () => { const n = await getNode('cmp1'); return n.status?.evacuation?.servers.some((s) => s.state === 'requested') ? n : undefined; });
    expect(mid.metadata.finalizers).toContain(FENCE_FINALIZER);
    expect(mid.status?.fence?.powerOffConfirmedAt).toBeTruthy();
    await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn('cmp1') });
    const deleting = await getNode('cmp1');
    expect(deleting.metadata.deletionTimestamp).toBeTruthy();
    expect(deleting.metadata.finalizers).toContain(FENCE_FINALIZER);
    for (const id of ids) world.nova.stallEvacuationOf.delete(id);
    await until('cmp1 gone', async () => {
      try {
        await getNode('cmp1');
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    }, 60_000);
    // The fence finished before the object went: every server evacuated once, service forced down and marked.
    expect([...world.nova.servers.values()].filter((s) => s.host === 'cmp1')).toEqual([]);
    const perServer = new Map<string, number>();
    for (const m of world.nova.migrations) perServer.set(m.instance_uuid, (perServer.get(m.instance_uuid) ?? 0) + 1);
    expect([...perServer.keys()].sort()).toEqual([...ids].sort());
    expect([...perServer.values()].every((c) => c === 1)).toBe(true);
    expect(world.nova.services.get('cmp1')).toMatchObject({ forced_down: true, status: 'disabled' });
    expect(world.nova.services.get('cmp1')?.disabled_reason).toMatch(/^hm9k fence /);
    expect(await world.node('cmp1')!.bmc.power()).toBe('off');
  });

  it('kubectl describe tells the story: Events for a fenced node, in order', async () => {
    await setup(3);
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 60_000);
    const fenceId = fenced.status!.fence!.id;
    // A stale acknowledgement (an older fence id) is rejected; the right one is accepted.
    const ack = (value: string) => annotate('cmp1', ACK_FENCE_ANNOTATION, value);
    await ack('cmp1-stale');
    const events = kc.makeApiClient(EventsV1Api);
    const list = async () => {
      const r = await events.listNamespacedEvent({ namespace: 'default', fieldSelector: `regarding.name=${cn('cmp1')}` });
      return r.items
        .filter((e) => e.regarding?.kind === 'ComputeNode')
        .sort((a, b) => String(a.eventTime ?? a.metadata?.creationTimestamp).localeCompare(String(b.eventTime ?? b.metadata?.creationTimestamp)))
        .map((e) => ({ type: e.type, reason: e.reason ?? '', note: e.note ?? '' }));
    };
    await until('stale acknowledgement rejected', async () => (await list()).some((e) => e.reason === 'AcknowledgementRejected'));
    expect((await getNode('cmp1')).status?.fence?.acknowledged).toBeFalsy();
    await world.setRecoveryFails('cmp1', false);
    world.node('cmp1')!.broken.storage = false;
    await world.node('cmp1')!.bmc.setPower('on');
    await ack(fenceId);
    await until('cmp1 Healthy again', async () => (await getNode('cmp1')).status?.phase === 'Healthy', 60_000);
    await until('ReturnedToService event', async () => (await list()).some((e) => e.reason === 'ReturnedToService'));
    const story = await list();
    const reasons = story.map((e) => e.reason);
    // Every decision has its Event, in the order it happened.
    const expected = ['RecoveryCommandFailed', 'Corroborated', 'Fence', 'PowerOffConfirmed', 'ServiceForcedDown', 'ServiceDisabled', 'EvacuationStarted', 'EvacuationDone', 'NotifyFenced', 'AcknowledgementRejected', 'FenceAcknowledged', 'ReturnedToService'];
    let at = -1;
    for (const r of expected) {
      const i = reasons.indexOf(r, at + 1);
      expect(i, `${r} after position ${at} in ${reasons.join(', ')}`).toBeGreaterThan(at);
      at = i;
    }
    expect(reasons.indexOf('Recover')).toBeLessThan(reasons.indexOf('RecoveryCommandFailed'));
    const note = (r: string) => story.find((e) => e.reason === r)!.note;
    expect(note('Fence')).toContain(fenceId);
    expect(note('EvacuationDone')).toMatch(/3 of 3 server\(s\) evacuated \(\d to cmp[23]/);
    expect(note('AcknowledgementRejected')).toContain('stale');
    expect(note('PowerOffConfirmed')).toContain(fenceId);
    // No warning without a reason a person can read.
    for (const e of story) expect(e.note.length).toBeGreaterThan(10);
    // The conditions say what happened in words.
    const n = await getNode('cmp1');
    expect(n.status?.conditions?.find((c) => c.type === 'NetworkHealthy')).toMatchObject({ status: 'True', reason: 'AllNetworksUp' });
    const f = fenced.status!.conditions!.find((c) => c.type === 'Fenced')!;
    expect(f).toMatchObject({ status: 'True', reason: 'Latched' });
    expect(f.message).toContain(`${ACK_FENCE_ANNOTATION}=${fenceId}`);
    expect(fenced.status!.conditions!.find((c) => c.type === 'Evacuated')).toMatchObject({ status: 'True', reason: 'EvacuationDone', message: '3 of 3 servers evacuated, 0 failed' });
    expect(fenced.status!.conditions!.find((c) => c.type === 'ServiceHealthy')).toMatchObject({ status: 'False', reason: 'ForcedDown' });
  });

  it('nova-compute checked on the node over SSH when no Consul check is configured: not running -> restarted', async () => {
    await setup(3, {}, true, (spec) => {
      spec.detection = { ...spec.detection, novaNodeSideCommand: `${world.sshd.dir}/nova.sh`, novaNodeSideInterval: '1s' };
    });
    await world.sshd.script('nova.sh', [
      'port=$(echo "$SSH_CONNECTION" | awk \'{print $4}\')',
      `D=${world.sshd.dir}`,
      '[ -e "$D/novadead-$port" ] && { echo inactive; exit 3; }',
      'echo active; exit 0',
    ].join('\n'));
    // recover.sh marks recover-nova-<port>; the world's nova-compute restarts when it sees it.
    const dead = (n: string) => `${world.sshd.dir}/novadead-${world.node(n)!.sshPort}`;
    const marker = (n: string) => `${world.sshd.dir}/recover-nova-${world.node(n)!.sshPort}`;
    for (const name of ['cmp1', 'cmp2', 'cmp3']) await until(`${name} node side up`, async () => (await getNode(name)).status?.nova?.nodeSide === 'up');
    const { writeFile, rm } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    await writeFile(dead('cmp2'), '1');
    const down = await until('cmp2 node side down', async () => { const n = await getNode('cmp2'); return n.status?.nova?.nodeSide === 'down' ? n : undefined; });
    expect(down.status?.conditions?.find((c) => c.type === 'ServiceHealthy')).toMatchObject({ status: 'False', reason: 'NotRunningOnNode' });
    await until('nova-compute restart requested over SSH', () => existsSync(marker('cmp2')));
    await rm(marker('cmp2'), { force: true });
    await rm(dead('cmp2'), { force: true });
    await until('cmp2 Healthy with nova-compute running', async () => { const n = await getNode('cmp2'); return n.status?.phase === 'Healthy' && n.status.nova?.nodeSide === 'up'; }, 30_000);
    expect(world.nova.migrations).toEqual([]);
    expect(await world.node('cmp2')!.bmc.power()).toBe('on');
    await until('cmp1 still running nova-compute', async () => (await getNode('cmp1')).status?.nova?.nodeSide === 'up');
  });

  it('issue 9 items 5 and 12: a fence mid-evacuation holds under dryRun, refuses an early acknowledgement, resumes, and the summary goes out', async () => {
    await setup(3);
    const n1 = world.node('cmp1')!;
    const onCmp1 = [...world.nova.servers.values()].filter((s) => s.host === 'cmp1');
    // Every server stalls in Nova: servers are requested in id order, so which two go first is random.
    for (const s of onCmp1) world.nova.stallEvacuationOf.add(s.id);
    await world.setRecoveryFails('cmp1', true);
    n1.broken.storage = true;
    // concurrency 2: two servers requested and stalled in Nova, the third one still pending.
    await until('cmp1 Evacuating with 2 requests in Nova', async () => (await getNode('cmp1')).status?.phase === 'Evacuating' && world.nova.migrations.length === 2, 60_000);
    const requested = world.nova.migrations.map((m) => m.instance_uuid);
    const fenceId = (await getNode('cmp1')).status!.fence!.id;
    // An acknowledgement now is refused: the fence goes on, the node says why.
    await annotate('cmp1', ACK_FENCE_ANNOTATION, fenceId);
    await until('acknowledgement refused', async () => (await getNode('cmp1')).status?.conditions?.find((c) => c.type === 'Acknowledged')?.reason === 'FenceInProgress');
    expect((await getNode('cmp1')).status?.fence?.acknowledged).toBeFalsy();
    expect(await eventReasons(cn('cmp1'), 'ComputeNode')).toContain('AcknowledgementRefused');
    // dryRun mid-fence: hm9k holds where it stands and says so.
    await api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: run, body: { spec: { safety: { dryRun: true } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await until('cmp1 holding under dry run', async () => (await getNode('cmp1')).status?.conditions?.find((c) => c.type === 'Paused')?.message.includes('would evacuate servers'));
    // Nova finishes the two in flight; hm9k, in dry run, starts no new request while it keeps deciding.
    for (const s of onCmp1) world.nova.stallEvacuationOf.delete(s.id);
    const decisions = async () => (await runtime.metrics.getSingleMetric('hm9k_nodes_decisions_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    const base = await decisions();
    await until('several dry-run decisions after the two finished', async () => requested.every((id) => world.nova.servers.get(id)!.host !== 'cmp1') && (await decisions()) >= base + 10);
    expect(world.nova.migrations).toHaveLength(2);
    expect((await getNode('cmp1')).status?.phase).toBe('Evacuating');
    // dryRun off: the fence resumes where it stood and completes; every server evacuated exactly once.
    await api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: run, body: { spec: { safety: { dryRun: false } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 60_000);
    expect(fenced.status!.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    expect(world.nova.migrations).toHaveLength(3);
    expect(new Set(world.nova.migrations.map((m) => m.instance_uuid)).size).toBe(3);
    // The summary goes out; the acknowledgement (still in place) counts after it.
    await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced, 3/3 servers evacuated'));
    await until('acknowledgement accepted once Fenced', async () => (await getNode('cmp1')).status?.fence?.acknowledged === true);
    expect((await getNode('cmp1')).status?.conditions?.find((c) => c.type === 'Paused')).toBeUndefined();
  });

  it('issue 9 item 6: a second fence of the same host evacuates again the servers that migrated back', async () => {
    await setup(3);
    const n1 = world.node('cmp1')!;
    const ids = [...world.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    await world.setRecoveryFails('cmp1', true);
    n1.broken.storage = true;
    const first = await until('cmp1 Fenced (1)', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 60_000);
    expect(first.status!.evacuation).toMatchObject({ total: 3, done: 3 });
    // Repaired, acknowledged, back in service; the servers are migrated back by an operator.
    await world.setRecoveryFails('cmp1', false);
    n1.broken.storage = false;
    await n1.bmc.setPower('on');
    await annotate('cmp1', ACK_FENCE_ANNOTATION, first.status!.fence!.id);
    await until('cmp1 Healthy again', async () => (await getNode('cmp1')).status?.phase === 'Healthy', 60_000);
    for (const id of ids) world.nova.servers.get(id)!.host = 'cmp1';
    // The host fails again.
    await world.setRecoveryFails('cmp1', true);
    n1.broken.storage = true;
    const second = await until('cmp1 Fenced (2)', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' && n.status.fence?.id !== first.status!.fence!.id ? n : undefined; }, 60_000);
    expect(second.status!.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    for (const id of ids) {
      expect(world.nova.servers.get(id)!.host).not.toBe('cmp1');
      expect(world.nova.migrations.filter((m) => m.instance_uuid === id)).toHaveLength(2);
    }
    await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced, 3/3 servers evacuated') && m.body.includes(second.status!.fence!.id));
  });

  it('issue 9 item 4: a re-created ComputeNode for a powered-off host is never powered on (Nova unreadable, then readable)', async () => {
    await setup(3);
    const n2 = world.node('cmp2')!;
    const decisions = async () => (await runtime.metrics.getSingleMetric('hm9k_nodes_decisions_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    // Nova unreadable: neither the fence marker nor evacuation migrations can be read.
    world.nova.failNext = { status: 503, count: 1_000_000, match: /os-services|os-migrations/ };
    await until('cmp2 Nova unknown', async () => (await getNode('cmp2')).status?.nova?.apiState === 'unknown');
    // The host goes off, and its ComputeNode is deleted and re-created (empty status: no history).
    await n2.bmc.setPower('off');
    const old = await getNode('cmp2');
    await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn('cmp2') });
    await until('cmp2 gone', async () => getNode('cmp2').then(() => false, () => true));
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', body: { apiVersion: old.apiVersion, kind: old.kind, metadata: { name: cn('cmp2'), labels: old.metadata.labels }, spec: old.spec } });
    await until('power-on refused', async () => /not powering on/.test((await getNode('cmp2')).status?.waitingFor ?? ''));
    let base = await decisions();
    await until('many decisions later', async () => (await decisions()) >= base + 20);
    expect(await n2.bmc.power()).toBe('off');
    expect((await getNode('cmp2')).status?.waitingFor).toMatch(/not powering on: .*no evidence.*Nova state unknown/);
    // Nova readable again: still no evidence of a healthy host under hm9k's watch, still no power-on.
    world.nova.failNext = undefined;
    await until('cmp2 Nova known', async () => (await getNode('cmp2')).status?.nova?.apiState !== 'unknown');
    base = await decisions();
    await until('many decisions later (Nova readable)', async () => (await decisions()) >= base + 20);
    expect(await n2.bmc.power()).toBe('off');
    expect((await getNode('cmp2')).status?.waitingFor).toMatch(/not powering on: .*no evidence/);
    expect(await eventReasons(cn('cmp2'), 'ComputeNode')).not.toContain('PowerOnRequested');
  });

  it('issue 9 item 7: a server stuck in a task_state is reported failed after perServerTimeout, the slot is freed, the email names it', async () => {
    await setup(4, { maxConcurrentRemediations: 1, maxUnhealthy: '50%' }, true, (spec) => { spec.evacuation = { concurrency: 2, perServerTimeout: '3s' }; });
    const stuck = world.nova.addServer('cmp1', { name: 'stuck', task_state: 'rebooting' });
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    const fenced = await until('cmp1 Fenced despite the stuck server', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000);
    expect(fenced.status!.evacuation).toMatchObject({ total: 4, done: 3, failed: 1 });
    expect(fenced.status!.evacuation!.servers.find((s) => s.id === stuck.id)).toMatchObject({ state: 'failed', error: expect.stringContaining('task_state rebooting') });
    expect(world.nova.migrations.filter((m) => m.instance_uuid === stuck.id)).toEqual([]);
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced, 3/4 servers evacuated'));
    expect(mail.body).toContain(stuck.id);
    expect(mail.body).toContain('need your attention');
    // The policy's one remediation slot is free again: the next failing node is handled.
    await world.setRecoveryFails('cmp2', true);
    world.node('cmp2')!.broken.storage = true;
    await until('cmp2 Fenced', async () => (await getNode('cmp2')).status?.phase === 'Fenced', 90_000);
  });

  it('issue 9 item 8: a fenced host with 230 servers gets every one evacuated exactly once; status stays bounded, counts exact', { timeout: 400_000 }, async () => {
    await setup(3, {}, false, (spec) => { spec.evacuation = { concurrency: 50, perServerTimeout: '60s' }; });
    const ids = Array.from({ length: 230 }, (_, i) => world.nova.addServer('cmp1', { name: `vm${i}` }).id);
    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    // 230 intent writes (one before each request): slow on a loaded machine, hence the long deadline.
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 330_000);
    const e = fenced.status!.evacuation!;
    expect(e).toMatchObject({ total: 230, done: 230, failed: 0 });
    expect(e.servers.length).toBeLessThanOrEqual(200);
    expect(e.servers.length + (e.omitted?.done ?? 0)).toBe(230);
    for (const id of ids) {
      expect(world.nova.servers.get(id)!.host).not.toBe('cmp1');
      expect(world.nova.migrations.filter((m) => m.instance_uuid === id)).toHaveLength(1);
    }
    await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced, 230/230 servers evacuated'));
  });
});
