// Whole-node drain (issue 12 items 1, 4-6): real kube-apiserver, real ipmi_sim BMCs read by ipmitool
// (sensors and SEL), real SMTP, the Nova simulator (os-migrateLive, live-migration records).
// A CPU temperature past critical -> disabled with the drain id, every server live-migrated exactly
// once (no evacuation), left disabled, mailed; the operator drain and undrain.
import { CustomObjectsApi, EventsV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DRAIN_ANNOTATION, GROUP, UNDRAIN_ANNOTATION, VERSION, type ComputeNode, type FencePolicy, type FencePolicySpec } from '../../src/api/index.js';
import { createRuntime, type ManagedRuntime } from '../../src/kube/runtime.js';
import { nodesConfig } from '../../src/nodes/config.js';
import { startNodes } from '../../src/nodes/index.js';
import { kubeConfig, testNamespace } from '../support/controlplane.js';
import { CONSUL_TOKEN, createNodeSecrets, deleteRunObjects, observer, quiesce, until as untilOr } from './helpers.js';
import { World } from './world.js';

const logger = pino({ level: process.env.HM9K_TEST_LOG ?? 'silent' });
let lastSeen = '';
const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000) => untilOr(what, fn, timeoutMs, () => lastSeen);

describe('drain by live migration, whole node', { timeout: 180_000 }, () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let world: World;
  let runtime: ManagedRuntime | undefined;
  let nodes: { stop(): Promise<void> } | undefined;
  let run = '';
  let registry: Registry;
  const cn = (name: string) => `${run}-${name}`;
  const getNode = async (name: string) => {
    const n = (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(name) })) as ComputeNode;
    lastSeen = `${name}: ${n.status?.phase} (${n.status?.waitingFor ?? ''}) hw=${JSON.stringify(n.status?.hardware?.state)} drain=${JSON.stringify(n.status?.drain ?? null)}`;
    return n;
  };
  const annotate = (name: string, key: string, value: string) =>
    api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(name), body: { metadata: { annotations: { [key]: value } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  const eventReasons = async (name: string) =>
    (await kc.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: 'default', fieldSelector: `regarding.name=${name}` })).items.filter((e) => e.regarding?.kind === 'ComputeNode').map((e) => e.reason ?? '');

  async function startController(ns: string) {
    registry = new Registry();
    runtime = await createRuntime({
      component: 'nodes-drain-test', namespace: ns, kubeConfig: kc, logger, leaderElection: false, metricsPort: false, probePort: false, handleSignals: false,
      status: { perObjectIntervalMs: 50 }, registry, defaultMetrics: false,
    });
    nodes = await startNodes(runtime, nodesConfig({
      namespace: ns, cloudsSecret: 'clouds', cloudName: 'sim', globalMaxUnhealthy: '100%',
      consulWaitMs: 2000, consulMinLoopMs: 50, powerPollIntervalMs: 1000, novaPollIntervalMs: 300, serverCountIntervalMs: 600, resyncMs: 3000, maxConcurrentRemediations: 5,
    }));
    await runtime.start();
  }

  let ns = '';
  async function setup(count: number, tweak: (s: FencePolicySpec) => void = () => {}, migrationStepMs = 100) {
    run = `d${Math.random().toString(36).slice(2, 7)}`;
    kc = kubeConfig();
    api = kc.makeApiClient(CustomObjectsApi);
    ns = await testNamespace('drain');
    world = new World({ consulToken: CONSUL_TOKEN, nova: { migrationStepMs } });
    await world.start(count);
    await createNodeSecrets(kc, ns, world);
    await startController(ns);
    const obs = (c: { url: string }) => observer(world, c);
    const policy: FencePolicy = {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'FencePolicy', metadata: { name: run },
      spec: {
        nodeSelector: { matchLabels: { 'hm9k.io/test-run': run } },
        networks: { management: obs(world.consul.management), storage: obs(world.consul.storage) },
        detection: { interval: '300ms', failureThreshold: 3, recoveryGracePeriod: '1s', healthyDelay: '1s' },
        recovery: { attempts: 0 },
        hardware: { interval: '500ms', samples: 2 },
        drain: { concurrency: 3, perServerTimeout: '30s' },
        safety: { maxUnhealthy: '50%', maxConcurrentRemediations: 2 },
        notifications: { email: { smtpHost: '127.0.0.1', smtpPort: world.smtp.port, from: 'hm9k@example.org', to: ['ops@example.org'] }, minInterval: '1m' },
      },
    };
    tweak(policy.spec);
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: policy });
    for (const n of world.nodes) {
      await api.createClusterCustomObject({
        group: GROUP, version: VERSION, plural: 'computenodes',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ComputeNode', metadata: { name: cn(n.name), labels: { 'hm9k.io/test-run': run } }, spec: { host: n.name, bmc: { address: '127.0.0.1', port: n.bmc.port, cipherSuite: 3, credentialsSecret: 'bmc' } } },
      });
    }
    for (const n of world.nodes) {
      await until(`${n.name} Healthy, hardware ok, SEL cursor saved`, async () => {
        const s = (await getNode(n.name)).status;
        return s?.phase === 'Healthy' && s.hardware?.state === 'ok' && s.hardware.selCursor !== undefined;
      });
    }
  }

  afterEach(async () => {
    await nodes?.stop();
    await runtime?.stop();
    if (api && run) await deleteRunObjects(api, world, run);
    await quiesce(world);
    await world?.stop();
    nodes = undefined;
    runtime = undefined;
  });

  it('CPU temperature critical -> disabled with the drain id, every server live-migrated exactly once, left disabled, mailed; undrain returns it', async () => {
    await setup(3);
    const ids = Array.from({ length: 10 }, (_, i) => world.nova.addServer('cmp1', { name: `vm${i}` }).id);
    world.nova.addServer('cmp2', { name: 'other' });
    const before = (await getNode('cmp1')).status!.hardware!.selCursor!;
    const t0 = Date.now();
    await world.node('cmp1')!.bmc.setCpuTemperature(95); // past critical (90), below non-recoverable (100)
    const draining = await until('cmp1 Draining', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Draining' || n.status?.phase === 'Drained' ? n : undefined; });
    expect(draining.status!.hardware!.state).toBe('drain');
    expect(draining.status!.hardware!.sensors?.find((s) => s.name === 'CPU Temp')).toMatchObject({ state: 'critical', reading: expect.stringContaining('95') });
    const drained = await until('cmp1 Drained', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Drained' ? n : undefined; });
    console.log(`[figures] CPU temperature critical -> host empty (10 servers, concurrency 3) in ${Date.now() - t0} ms; hardware interval 500ms x samples 2, one live migration 4 x 100ms in the Nova simulator`);
    const d = drained.status!.drain!;
    expect(d).toMatchObject({ source: 'hardware', result: 'empty', total: 10, migrated: 10, failed: 0, left: 0, disabled: 'succeeded' });
    // Nova: disabled with the drain marker, not forced down; every server elsewhere, still ACTIVE.
    expect(world.nova.services.get('cmp1')).toMatchObject({ status: 'disabled', disabled_reason: `hm9k drain ${d.id}`, forced_down: false });
    for (const id of ids) {
      const s = world.nova.servers.get(id)!;
      expect(s.host).not.toBe('cmp1');
      expect(s.vm_state).toBe('active');
    }
    // Exactly one live migration per server, no evacuation at all.
    const perServer = new Map<string, number>();
    for (const m of world.nova.migrations) {
      expect(m.migration_type).toBe('live-migration');
      perServer.set(m.instance_uuid, (perServer.get(m.instance_uuid) ?? 0) + 1);
    }
    expect([...perServer.keys()].sort()).toEqual([...ids].sort());
    expect([...perServer.values()].every((c) => c === 1)).toBe(true);
    // Mailed at start and at the end; the end mail says how to undrain.
    await world.smtp.waitFor((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('draining'));
    const end = await world.smtp.waitFor((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('drained, 10 server(s) live-migrated'));
    expect(end.body).toContain(`${UNDRAIN_ANNOTATION}=${d.id}`);
    // The SEL entry of the threshold crossing moved the cursor (persisted in status).
    await until('SEL cursor advanced', async () => ((await getNode('cmp1')).status?.hardware?.selCursor ?? -2) > before);
    const reasons = await eventReasons(cn('cmp1'));
    for (const r of ['HardwareDrain', 'DrainStarted', 'DrainServiceDisabled', 'DrainPlanned', 'DrainComplete']) expect(reasons).toContain(r);
    const metrics = await registry.getSingleMetricAsString('hm9k_nodes_drains_total');
    expect(metrics).toMatch(/result="empty"\} 1/);
    expect(await registry.getSingleMetricAsString('hm9k_nodes_hardware_sensor_state')).toMatch(new RegExp(`node="${cn('cmp1')}",sensor="CPU Temp"\\} 2`));
    // Left disabled: steady state, no further migration.
    const nMigrations = world.nova.migrations.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(world.nova.migrations.length).toBe(nMigrations);
    expect((await getNode('cmp1')).status?.phase).toBe('Drained');
    // Undrain (the fault still holds: no new hardware drain until it clears once).
    await annotate('cmp1', UNDRAIN_ANNOTATION, d.id);
    await until('cmp1 back in service', async () => { const n = await getNode('cmp1'); return !n.status?.drain && n.status?.undrained?.id === d.id; });
    expect(world.nova.services.get('cmp1')).toMatchObject({ status: 'enabled' });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await getNode('cmp1')).status?.drain).toBeUndefined();
    expect(await registry.getSingleMetricAsString('hm9k_nodes_drains_total')).toMatch(/result="undrained"\} 1/);
  });

  it('operator drain (hm9k.io/drain): a stopped server is reported and stays; the end mail lists it; the same annotation does not drain again after undrain', async () => {
    await setup(2);
    const active = world.nova.addServer('cmp1', { name: 'web' }).id;
    const stopped = world.nova.addServer('cmp1', { name: 'batch', vm_state: 'stopped' }).id;
    await annotate('cmp1', DRAIN_ANNOTATION, 'firmware upgrade');
    const drained = await until('cmp1 Drained', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Drained' ? n : undefined; });
    const d = drained.status!.drain!;
    expect(d).toMatchObject({ source: 'operator', operatorReason: 'firmware upgrade', result: 'incomplete', migrated: 1, failed: 1, total: 2 });
    expect(d.servers.find((s) => s.id === stopped)).toMatchObject({ state: 'skipped' });
    expect(world.nova.servers.get(active)!.host).toBe('cmp2');
    expect(world.nova.servers.get(stopped)!.host).toBe('cmp1');
    expect(world.nova.migrations.map((m) => m.instance_uuid)).toEqual([active]);
    const end = await world.smtp.waitFor((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('drain incomplete'));
    expect(end.body).toContain(`${stopped}: skipped (vm_state stopped`);
    await annotate('cmp1', UNDRAIN_ANNOTATION, d.id);
    await until('cmp1 undrained', async () => !(await getNode('cmp1')).status?.drain);
    await new Promise((r) => setTimeout(r, 1500));
    const n = await getNode('cmp1');
    expect(n.status?.drain).toBeUndefined();
    expect(n.status?.phase).toBe('Healthy');
    expect(world.nova.services.get('cmp1')).toMatchObject({ status: 'enabled' });
  });

  it('hm9k restarted mid-drain asks Nova before repeating: every server live-migrated exactly once', async () => {
    await setup(3, (p) => { p.drain = { concurrency: 2, perServerTimeout: '60s' }; }, 700);
    const ids = Array.from({ length: 4 }, (_, i) => world.nova.addServer('cmp1', { name: `vm${i}` }).id);
    await annotate('cmp1', DRAIN_ANNOTATION, 'restart test');
    // Stop hm9k while migrations it requested are running in Nova (recorded as requested).
    await until('two live migrations requested and accepted', async () => ((await getNode('cmp1')).status?.drain?.servers ?? []).filter((s) => s.state === 'requested' && s.answer === 'accepted').length === 2);
    await nodes!.stop();
    await runtime!.stop();
    const migrationsAtStop = world.nova.migrations.length;
    expect(migrationsAtStop).toBe(2);
    await startController(ns);
    const drained = await until('cmp1 Drained after the restart', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Drained' ? n : undefined; }, 90_000);
    expect(drained.status!.drain).toMatchObject({ result: 'empty', migrated: 4, failed: 0 });
    const perServer = new Map<string, number>();
    for (const m of world.nova.migrations) perServer.set(m.instance_uuid, (perServer.get(m.instance_uuid) ?? 0) + 1);
    expect([...perServer.keys()].sort()).toEqual([...ids].sort());
    expect([...perServer.values()]).toEqual([1, 1, 1, 1]);
  });

  it('the host fails mid-drain: the fence path takes over and evacuates only what is still there (never both)', async () => {
    await setup(3, (p) => {
      p.drain = { concurrency: 1, perServerTimeout: '60s' };
      p.networks.storage!.action = 'RecoverThenFence';
      p.recovery = { attempts: 0 };
      p.fencing = { powerOffTimeout: '5s', powerWait: '200ms', pollInterval: '200ms', ipmiTimeout: '5s' };
      p.evacuation = { concurrency: 3, perServerTimeout: '30s' };
    }, 400);
    const ids = Array.from({ length: 4 }, (_, i) => world.nova.addServer('cmp1', { name: `vm${i}` }).id);
    await annotate('cmp1', DRAIN_ANNOTATION, 'hand-over test');
    await until('one server live-migrated', async () => ((await getNode('cmp1')).status?.drain?.migrated ?? 0) >= 1);
    world.node('cmp1')!.broken.storage = true; // the host fails: its storage network is gone
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000);
    expect(fenced.status!.drain?.result).toBe('handedOver');
    expect(await world.node('cmp1')!.bmc.power()).toBe('off');
    // Every server is off the host, each moved by exactly one kind of migration, once.
    for (const id of ids) expect(world.nova.servers.get(id)!.host).not.toBe('cmp1');
    const kinds = new Map<string, string[]>();
    for (const m of world.nova.migrations) kinds.set(m.instance_uuid, [...(kinds.get(m.instance_uuid) ?? []), m.migration_type]);
    const live = ids.filter((id) => kinds.get(id)?.includes('live-migration') && world.nova.migrations.some((m) => m.instance_uuid === id && m.migration_type === 'live-migration' && m.status === 'completed'));
    for (const id of ids) {
      const k = kinds.get(id) ?? [];
      const completedLive = world.nova.migrations.some((m) => m.instance_uuid === id && m.migration_type === 'live-migration' && m.status === 'completed');
      expect(k.filter((x) => x === 'evacuation').length, `${id}: ${k.join(',')}`).toBe(completedLive ? 0 : 1);
      expect(k.filter((x) => x === 'live-migration').length).toBeLessThanOrEqual(1);
    }
    expect(live.length).toBeGreaterThanOrEqual(1);
    const e = fenced.status!.evacuation!;
    expect(e.failed).toBe(0);
    expect(await eventReasons(cn('cmp1'))).toContain('DrainHandedOver');
  });

  it('SEL cursor in status: an entry is mailed once, never again after a restart; one logged while hm9k was down is mailed after it', async () => {
    await setup(2);
    const bmc = world.node('cmp1')!.bmc;
    const selMails = (what: string) => world.smtp.mails.filter((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('BMC event log') && m.subject.includes(what));
    // Non-critical (80 C < 85 C < 90 C): the crossing is logged in the SEL; the sensor rule is Notify.
    await bmc.setCpuTemperature(85);
    await world.smtp.waitFor((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('Upper Non-critical going high'));
    const hw = await until('hardware notify in status', async () => { const n = await getNode('cmp1'); return n.status?.hardware?.state === 'notify' ? n.status.hardware : undefined; });
    expect(hw.sensors?.find((x) => x.name === 'CPU Temp')).toMatchObject({ state: 'nonCritical' });
    await world.smtp.waitFor((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('hardware fault'));
    const cursor = (await getNode('cmp1')).status!.hardware!.selCursor!;
    await nodes!.stop();
    await runtime!.stop();
    // While hm9k is down the CPU gets hotter: a new SEL entry (critical going high).
    await bmc.setCpuTemperature(95);
    await startController(ns);
    await world.smtp.waitFor((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('Upper Critical going high'), 60_000);
    await until('SEL cursor moved past the new entry', async () => ((await getNode('cmp1')).status?.hardware?.selCursor ?? -2) > cursor);
    await new Promise((r) => setTimeout(r, 2000));
    expect(selMails('Upper Non-critical going high')).toHaveLength(1);
    expect(selMails('Upper Critical going high')).toHaveLength(1);
    // The hardware-fault mail went out on the change only (steady state is quiet).
    expect(world.smtp.mails.filter((m) => m.subject.includes(cn('cmp1')) && m.subject.includes('hardware fault'))).toHaveLength(1);
  });
});
