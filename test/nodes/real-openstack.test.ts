// The node half as a REAL process against REAL OpenStack (Debian bookworm's Zed packages, started by
// src/devenv/openstack.ts): Keystone, Nova API + conductor + scheduler, Placement, Glance, Neutron
// (no agents), RabbitMQ, MariaDB, and one fake-driver nova-compute per node, coupled to the node's
// real ipmi_sim BMC (power off kills that host's nova-compute, power on starts it). Servers are booted
// through the real API and scheduler; Nova's [api] max_limit is 2 so every list hm9k reads is paged.
// Consul stays simulated (see README), as do the kube-apiserver-side parts' peers in process.test.ts.
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FENCE_FINALIZER, GROUP, VERSION, type ComputeNode, type FencePolicy } from '../../src/api/index.js';
import { OpenStack, type RealServer } from '../../src/devenv/openstack.js';
import { freePort, isAlive, killGroup, startProcess, type Started } from '../../src/devenv/procs.js';
import { BMC_PASSWORD, BMC_USER, type SimBmc } from '../support/ipmi.js';
import { controlPlane, kubeConfig, testNamespace } from '../support/controlplane.js';
import { quiesce, until as untilOr } from './helpers.js';
import { World } from './world.js';

const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 120_000, logs: () => string = () => '') =>
  untilOr(what, fn, timeoutMs, logs, 250);

/** Wraps the BMC's chassis_control script so that every `set` (power on/off) is logged to a file. */
async function logChassisCalls(bmc: SimBmc): Promise<() => string[]> {
  const real = join(bmc.dir, 'chassis-real.sh');
  const log = join(bmc.dir, 'calls.log');
  await rename(join(bmc.dir, 'chassis.sh'), real);
  await writeFile(join(bmc.dir, 'chassis.sh'), `#!/bin/sh\n[ "$2" = set ] && echo "$*" >> "${log}"\nexec "${real}" "$@"\n`);
  await chmod(join(bmc.dir, 'chassis.sh'), 0o755);
  return () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
}

describe('hm9k run --nodes against real OpenStack (Zed from Debian)', { timeout: 900_000 }, () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let ns: string;
  let world: World;
  let os: OpenStack;
  let coupling: NodeJS.Timeout | undefined;
  let dir: string;
  const run = `r${Math.random().toString(36).slice(2, 7)}`;
  const procs: Started[] = [];
  const cn = (name: string) => `${run}-${name}`;
  const getNode = async (name: string) => (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(name) })) as ComputeNode;
  const logs = () => procs.map((p) => `--- ${p.logFile} (pid ${p.pid}${isAlive(p.pid) ? '' : ', dead'})\n${existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8').split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-15).join('\n') : ''}`).join('\n') + `\nOpenStack logs: ${os?.dir}/logs (kept with HM9K_KEEP_OPENSTACK=1)`;

  beforeAll(async () => {
    kc = kubeConfig();
    api = kc.makeApiClient(CustomObjectsApi);
    ns = await testNamespace('nodes-real');
    dir = await mkdtemp(join(tmpdir(), 'hm9k-nodes-real-'));
    world = new World();
    await world.start(3);
    // service_down_time 30s: a compute starved by a loaded machine must not look dead to hm9k.
    os = new OpenStack({ maxLimit: 2, reportIntervalS: 2, serviceDownTimeS: 30 });
    await os.start(world.nodes.map((n) => n.name));
    console.log(`[figures] real OpenStack up in ${os.timings.total}s (${JSON.stringify(os.timings)}), ${await os.memoryMiB()} MiB resident`);
    // The BMC's power is the host's: off kills its nova-compute, on starts it again.
    let busy = false;
    coupling = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        for (const n of world.nodes) {
          if (n.power === 'off' && os.computeRunning(n.name)) await os.killCompute(n.name);
          else if (n.power === 'on' && !os.computeRunning(n.name)) os.startCompute(n.name);
        }
      })().finally(() => { busy = false; });
    }, 200);
    const core = kc.makeApiClient(CoreV1Api);
    const secret = (name: string, data: Record<string, string>) => core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: data } });
    await secret('clouds', { 'clouds.yaml': os.cloudsYaml('openstack') });
    await secret('bmc', { username: BMC_USER, password: BMC_PASSWORD });
    await secret('ssh', { privateKey: world.sshd.privateKey, knownHosts: world.sshd.knownHosts });
  }, 900_000);

  afterAll(async () => {
    for (const p of procs.splice(0)) await killGroup(p.pid, 3000);
    if (coupling) clearInterval(coupling);
    if (api) {
      for (const n of world?.nodes ?? []) {
        await api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(n.name), body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }] }).catch(() => undefined);
        await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(n.name) }).catch(() => undefined);
      }
      await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: run }).catch(() => undefined);
    }
    await os?.stop();
    await quiesce(world);
    await world?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  async function startHm9k(podName: string): Promise<Started> {
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const p = startProcess('node', [
      'bin/hm9k.js', 'run', '--nodes', '--kubeconfig', controlPlane().state.kubeconfig, '--namespace', ns, '--config', join(dir, 'hm9k.yaml'),
      '--metrics-port', String(metricsPort), '--health-port', String(healthPort), '--set', `podName=${podName}`,
    ], join(dir, `${podName}.log`), { cwd: process.cwd(), env: { ...process.env, POD_NAME: podName } });
    procs.push(p);
    return p;
  }

  it('storage lost and recovery fails: fenced through IPMI, every server evacuated exactly once by real Nova at 2.93, power states kept, SIGKILL mid-fence changes nothing', async () => {
    // Servers through the real API and scheduler: two active and one stopped on cmp1, one on cmp2.
    const active = await os.bootServers('cmp1', ['a0', 'a1']);
    const stopped = await os.bootServers('cmp1', ['stopped'], { stopped: true });
    await os.bootServers('cmp2', ['b0']);
    const onCmp1 = [...active, ...stopped].map((s) => s.id).sort();
    expect((await os.servers()).filter((s) => s.host === 'cmp1').map((s) => s.id).sort()).toEqual(onCmp1);

    const sd = world.sshd.dir;
    const obs = (c: { url: string }) => ({ consul: [{ address: c.url }] });
    const policy: FencePolicy = {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'FencePolicy', metadata: { name: run },
      spec: {
        nodeSelector: { matchLabels: { 'hm9k.io/test-run': run } },
        networks: { management: obs(world.consul.management), storage: obs(world.consul.storage), tenant: obs(world.consul.tenant) },
        detection: { interval: '300ms', failureThreshold: 3, recoveryGracePeriod: '1s', healthyDelay: '1s', novaNodeSideCommand: '', corroboration: { sshCommand: `${sd}/check.sh storage`, timeout: '5s' } },
        recovery: { commands: { storage: `${sd}/recover.sh storage`, novaCompute: `${sd}/recover.sh nova` }, attempts: 1, timeout: '5s', settleTime: '1500ms' },
        fencing: { powerOffTimeout: '5s', powerWait: '1s', pollInterval: '200ms', ipmiTimeout: '5s' },
        // The default microversion (2.94) is above Zed's 2.93: hm9k must negotiate down.
        evacuation: { concurrency: 2, perServerTimeout: '180s' },
        safety: { maxUnhealthy: '40%', maxConcurrentRemediations: 2 },
        notifications: { minInterval: '1m' },
      },
    };
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: policy });
    for (const n of world.nodes) {
      const body: ComputeNode = {
        apiVersion: `${GROUP}/${VERSION}`, kind: 'ComputeNode', metadata: { name: cn(n.name), labels: { 'hm9k.io/test-run': run } },
        spec: { host: n.name, bmc: { address: '127.0.0.1', port: n.bmc.port, cipherSuite: 3, credentialsSecret: 'bmc' }, ssh: { address: '127.0.0.1', port: n.sshPort, user: world.sshd.user, credentialsSecret: 'ssh' } },
      };
      await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', body });
    }
    await writeFile(join(dir, 'hm9k.yaml'), stringify({
      logLevel: 'info',
      bindAddress: '127.0.0.1',
      nodes: {
        cloudsSecret: 'clouds', cloudName: 'openstack', globalMaxUnhealthy: '100%', maxConcurrentRemediations: 5,
        consulWait: '2s', consulMinLoop: '50ms', powerPollInterval: '1s', novaPollInterval: '500ms', serverCountInterval: '2s', resync: '3s', httpTimeout: '30s',
        smtpDefault: { smtpHost: '127.0.0.1', smtpPort: world.smtp.port, from: 'hm9k@example.org', to: ['ops@example.org'] },
      },
      leaderElection: { enabled: false },
    }));

    const chassis = await logChassisCalls(world.node('cmp1')!.bmc);
    const p1 = await startHm9k('p1');
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 180_000, logs);
    // status.servers comes from real Nova's paged GET /servers?host= (max_limit 2, three servers).
    await until('cmp1 status.servers = 3 from paged Nova lists', async () => (await getNode('cmp1')).status?.servers === 3, 120_000, logs);

    await world.setRecoveryFails('cmp1', true);
    world.node('cmp1')!.broken.storage = true;
    // Killed in the middle of the fence: the BMC got the power-off command, its confirmation not recorded.
    await until('power-off command reached the BMC', () => chassis().includes('0x20 set power 0'), 180_000, logs);
    process.kill(-p1.pid, 'SIGKILL');
    const fenceId = (await getNode('cmp1')).status!.fence!.id;
    await startHm9k('p2');

    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 600_000, logs);
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    expect(chassis().filter((c) => c.endsWith('set power 1'))).toHaveLength(0);
    expect(fenced.status?.fence?.id).toBe(fenceId);
    expect(fenced.status?.fence?.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
    // Nova's own record: cmp1 forced down and disabled with the fence id as the reason.
    const svc = (await os.nova<{ services: { host: string; forced_down: boolean; status: string; disabled_reason: string | null }[] }>('GET', '/os-services?binary=nova-compute')).services.find((s) => s.host === 'cmp1');
    expect(svc).toMatchObject({ forced_down: true, status: 'disabled', disabled_reason: `hm9k fence ${fenceId}` });
    // hm9k asked for 2.94 (its default), Zed offers 2.93: it used 2.93, where evacuate keeps power states.
    expect(fenced.status?.evacuation).toMatchObject({ microversion: '2.93', total: 3, done: 3, failed: 0 });
    // Exactly one evacuation per server in Nova's os-migrations (read page by page), every one done.
    const migs = (await os.migrations()).filter((m) => m.source_compute === 'cmp1');
    expect(migs.map((m) => m.instance_uuid).sort()).toEqual(onCmp1);
    expect(migs.every((m) => m.status === 'done')).toBe(true);
    const after = new Map((await os.servers()).map((s) => [s.id, s] as [string, RealServer]));
    for (const id of onCmp1) expect(['cmp2', 'cmp3']).toContain(after.get(id)!.host);
    for (const s of active) expect(after.get(s.id)!.status).toBe('ACTIVE');
    expect(after.get(stopped[0]!.id)!.status).toBe('SHUTOFF');
    await until('finalizer removed', async () => !(await getNode('cmp1')).metadata.finalizers?.includes(FENCE_FINALIZER), 120_000, logs);
    await until('status.servers 0 from Nova', async () => (await getNode('cmp1')).status?.servers === 0, 120_000, logs);
    const mail = await world.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'));
    expect(mail.raw).toContain(fenceId);
    expect((await getNode('cmp2')).status?.phase).toBe('Healthy');
    expect(os.computeRunning('cmp1')).toBe(false);
    const evacMs = migs.map((m) => Date.parse(`${m.updated_at}Z`) - Date.parse(`${m.created_at}Z`));
    console.log(`[figures] real Nova evacuations: ${migs.length}, each ${evacMs.join('/')} ms (os-migrations created->updated)`);
  });
});
