// The node half as a REAL process (`node bin/hm9k.js run --nodes ...`) against the real apiserver,
// real ipmi_sim BMCs, a real sshd and SMTP listener, the Nova/Keystone simulator (reached through
// a clouds.yaml Secret) and the Consul simulator (reached through the FencePolicy), at 1/10
// production timings or faster. The process is SIGKILLed in the middle of a fence and in the
// middle of an evacuation; the next process finishes without fencing or evacuating anything twice.
// Two replicas: only the Lease holder acts; when it dies mid-evacuation the other finishes.
import { CoordinationV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FENCE_FINALIZER, GROUP, VERSION, type ComputeNode, type FencePolicy } from '../../src/api/index.js';
import { freePort, isAlive, killGroup, startProcess, type Started } from '../../src/devenv/procs.js';
import type { SimBmc } from '../support/ipmi.js';
import { controlPlane, kubeConfig, testNamespace } from '../support/controlplane.js';
import { CONSUL_TOKEN, createNodeSecrets, observer, quiesce, seedServers, until as untilOr } from './helpers.js';
import { World } from './world.js';

const LEASE = 'hm9k-nodes-test';

const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000, logs: () => string = () => '') =>
  untilOr(what, fn, timeoutMs, logs, 50);

/** Wraps the BMC's chassis_control script so that every `set` (power on/off) is logged to a file. */
async function logChassisCalls(bmc: SimBmc): Promise<() => string[]> {
  const real = join(bmc.dir, 'chassis-real.sh');
  const log = join(bmc.dir, 'calls.log');
  await rename(join(bmc.dir, 'chassis.sh'), real);
  await writeFile(join(bmc.dir, 'chassis.sh'), `#!/bin/sh\n[ "$2" = set ] && echo "$*" >> "${log}"\nexec "${real}" "$@"\n`);
  await chmod(join(bmc.dir, 'chassis.sh'), 0o755);
  return () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
}

describe('hm9k run --nodes as a real process', { timeout: 240_000 }, () => {
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let ns: string;
  let world: World | undefined;
  let dir: string;
  let run: string;
  const procs: Started[] = [];
  const cn = (name: string) => `${run}-${name}`;
  const getNode = async (name: string) => (await api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(name) })) as ComputeNode;
  // Warnings and errors of each process; everything a dead one printed last (a crash is not JSON).
  const logs = () => procs.map((p) => `--- ${p.logFile} (pid ${p.pid}${isAlive(p.pid) ? '' : ', dead'})\n${existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8').split('\n').filter((l) => !isAlive(p.pid) || /"level":(40|50|60)/.test(l)).slice(-15).join('\n') : ''}`).join('\n');

  async function setup(): Promise<void> {
    run = `p${Math.random().toString(36).slice(2, 7)}`;
    kc = kubeConfig();
    api = kc.makeApiClient(CustomObjectsApi);
    ns = await testNamespace('nodes-proc');
    dir = await mkdtemp(join(tmpdir(), 'hm9k-nodes-proc-'));
    world = new World({ consulToken: CONSUL_TOKEN });
    await world.start(3);
    seedServers(world);
    await createNodeSecrets(kc, ns, world);
    const sd = world.sshd.dir;
    const obs = (c: { url: string }) => observer(world!, c);
    // No email in the policy: the process's nodes.smtpDefault is used.
    const policy: FencePolicy = {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'FencePolicy', metadata: { name: run },
      spec: {
        nodeSelector: { matchLabels: { 'hm9k.io/test-run': run } },
        networks: { management: obs(world.consul.management), storage: obs(world.consul.storage), tenant: obs(world.consul.tenant) },
        detection: { interval: '300ms', failureThreshold: 3, recoveryGracePeriod: '1s', healthyDelay: '1s', novaNodeSideCommand: '', corroboration: { sshCommand: `${sd}/check.sh storage`, timeout: '5s' } },
        recovery: { commands: { storage: `${sd}/recover.sh storage`, novaCompute: `${sd}/recover.sh nova` }, attempts: 1, timeout: '5s', settleTime: '1500ms' },
        // powerWait 1s: the window between the power-off command and its confirmation, where the test kills.
        fencing: { powerOffTimeout: '5s', powerWait: '1s', pollInterval: '200ms', ipmiTimeout: '5s' },
        evacuation: { concurrency: 2, perServerTimeout: '30s' },
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
    // Process configuration at 1/10 production timings or faster (leader election: 8s lease, renew requests time out after 3s: a loaded machine's apiserver answers slowly).
    await writeFile(join(dir, 'hm9k.yaml'), stringify({
      logLevel: 'info',
      bindAddress: '127.0.0.1',
      nodes: {
        cloudsSecret: 'clouds', cloudName: 'sim', globalMaxUnhealthy: '100%', maxConcurrentRemediations: 5,
        consulWait: '2s', consulMinLoop: '50ms', powerPollInterval: '1s', novaPollInterval: '300ms', serverCountInterval: '1s', resync: '3s', httpTimeout: '5s',
        smtpDefault: { smtpHost: '127.0.0.1', smtpPort: world.smtp.port, from: 'hm9k@example.org', to: ['ops@example.org'] },
      },
      leaderElection: { enabled: true, leaseName: LEASE, leaseDuration: '8s', renewDeadline: '6s', retryPeriod: '1s' },
    }));
  }

  /**
   * Each process runs ipmitool through its own wrapper that logs every call (to tell which replica
   * talked to a BMC); `slowPowerOff` makes the wrapper hold `power off` for 30 s after the BMC got it
   * (a slow BMC answer: the process is stopped while it waits).
   */
  async function ipmitoolWrapper(podName: string): Promise<{ path: string; calls: () => string[]; slowPowerOff: (on: boolean) => Promise<void> }> {
    const path = join(dir, `ipmitool-${podName}.sh`);
    const log = join(dir, `ipmitool-${podName}.log`);
    const slow = join(dir, `ipmitool-${podName}.slow`);
    await writeFile(path, [
      '#!/bin/sh',
      `echo "$*" >> "${log}"`,
      'ipmitool "$@"; rc=$?',
      `case "$*" in *"chassis power off"*) [ -e "${slow}" ] && sleep 30;; esac`,
      'exit $rc',
      '',
    ].join('\n'));
    await chmod(path, 0o755);
    return {
      path,
      calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
      slowPowerOff: async (on) => (on ? writeFile(slow, '1') : rm(slow, { force: true })),
    };
  }

  async function startHm9k(podName: string, ipmitoolPath?: string, sets: string[] = []): Promise<Started & { metricsPort: number }> {
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const p = startProcess('node', [
      'bin/hm9k.js', 'run', '--nodes', '--kubeconfig', controlPlane().state.kubeconfig, '--namespace', ns, '--config', join(dir, 'hm9k.yaml'),
      '--metrics-port', String(metricsPort), '--health-port', String(healthPort), '--set', `podName=${podName}`,
      ...(ipmitoolPath ? ['--set', `nodes.ipmitoolPath=${ipmitoolPath}`] : []),
      ...sets.flatMap((x) => ['--set', x]),
    ], join(dir, `${podName}.log`), { cwd: process.cwd(), env: { ...process.env, POD_NAME: podName } });
    procs.push(p);
    return { ...p, metricsPort };
  }

  const sigterm = (p: Started) => {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
  };

  const sigkill = (p: Started) => {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };

  const leaseHolder = async () => (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: LEASE, namespace: ns })).spec?.holderIdentity;

  const evacuationsPerServer = () => {
    const m = new Map<string, number>();
    for (const x of world!.nova.migrations) m.set(x.instance_uuid, (m.get(x.instance_uuid) ?? 0) + 1);
    return m;
  };

  afterEach(async () => {
    for (const p of procs.splice(0)) await killGroup(p.pid, 3000);
    if (world) {
      world.nova.onRequest = undefined;
      world.nova.beforeAction = undefined;
    }
    if (api && run) {
      for (const n of world?.nodes ?? []) {
        // A node left mid-fence by a failed test would keep its finalizer: drop it so the object goes.
        await api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(n.name), body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }] }).catch(() => undefined);
        await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: cn(n.name) }).catch(() => undefined);
      }
      await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: run }).catch(() => undefined);
    }
    await quiesce(world);
    await world?.stop();
    world = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('SIGKILLed mid-fence and again mid-evacuation: the next process finishes, nothing fenced or evacuated twice', async () => {
    await setup();
    const w = world!;
    const chassis = await logChassisCalls(w.node('cmp1')!.bmc);
    const p1 = await startHm9k('p1');
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 60_000, logs);
    const ids = [...w.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    const failedAt = Date.now();
    await w.setRecoveryFails('cmp1', true);
    w.node('cmp1')!.broken.storage = true;

    // 1. Killed in the middle of the fence: the BMC got the power-off command, the confirmation is not recorded yet.
    await until('power-off command reached the BMC', () => chassis().includes('0x20 set power 0'), 60_000, logs);
    sigkill(p1);
    const mid = await getNode('cmp1');
    expect(mid.status?.phase).toBe('Fencing');
    expect(mid.status?.fence?.steps.find((s) => s.name === 'powerOff')?.state).toBe('pending');
    expect(mid.metadata.finalizers).toContain(FENCE_FINALIZER);
    const fenceId = mid.status!.fence!.id;

    // 2. Killed right after its first evacuate call reached Nova (before the answer): Nova carries it out.
    let killedP2 = false;
    let p2: Started | undefined;
    w.nova.onRequest = (what) => {
      if (!killedP2 && p2 && /^POST \/compute\/v2\.1\/servers\/[^/]+\/action$/.test(what)) {
        killedP2 = true;
        sigkill(p2);
      }
    };
    p2 = await startHm9k('p2');
    await until('p2 killed at its first evacuate call', () => killedP2 && !isAlive(p2!.pid), 90_000, logs);
    const mid2 = await getNode('cmp1');
    expect(mid2.status?.phase).toBe('Evacuating');
    expect(mid2.status?.evacuation?.servers.filter((s) => s.state === 'requested')).toHaveLength(1);
    expect(w.nova.migrations).toHaveLength(1);

    // 3. A third process finishes the job.
    await startHm9k('p3');
    const fenced = await until('cmp1 Fenced', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000, logs);
    const fencedAfterMs = Date.now() - failedAt;

    // One fence: one power-off command ever, the same fence id, the latch in Nova.
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    expect(chassis().filter((c) => c.endsWith('set power 1'))).toHaveLength(0);
    expect(await w.node('cmp1')!.bmc.power()).toBe('off');
    expect(fenced.status?.fence?.id).toBe(fenceId);
    expect(fenced.status?.fence?.leaseHolder).toBe('p1');
    expect(fenced.status?.fence?.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
    expect(w.nova.services.get('cmp1')).toMatchObject({ forced_down: true, status: 'disabled', disabled_reason: `hm9k fence ${fenceId}` });
    // One evacuation per server, every server moved.
    const per = evacuationsPerServer();
    expect([...per.keys()].sort()).toEqual([...ids].sort());
    expect([...per.values()]).toEqual([1, 1, 1]);
    expect([...w.nova.servers.values()].filter((s) => s.host === 'cmp1')).toEqual([]);
    expect(fenced.status?.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    // The node half reached SMTP through nodes.smtpDefault; the finalizer is gone; the others untouched.
    const mail = await w.smtp.waitFor((m) => m.subject.includes('cmp1') && m.subject.includes('fenced'));
    expect(mail.body).toContain(fenceId);
    await until('finalizer removed', async () => !(await getNode('cmp1')).metadata.finalizers?.includes(FENCE_FINALIZER));
    await until('status.servers from Nova', async () => (await getNode('cmp1')).status?.servers === 0);
    expect((await getNode('cmp2')).status?.phase).toBe('Healthy');
    expect(await w.node('cmp2')!.bmc.power()).toBe('on');
    console.log(`[figures] process test: storage failure -> Fenced in ${fencedAfterMs} ms with two SIGKILLs and restarts (lease 8s, interval 300ms x threshold 3, grace 1s, settle 1.5s)`);
  });

  it('two replicas: only the Lease holder acts; it dies mid-evacuation and the other finishes', async () => {
    await setup();
    const w = world!;
    const chassis = await logChassisCalls(w.node('cmp1')!.bmc);
    const ipmi = { r1: await ipmitoolWrapper('r1'), r2: await ipmitoolWrapper('r2') };
    const r1 = await startHm9k('r1', ipmi.r1.path);
    const r2 = await startHm9k('r2', ipmi.r2.path);
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 60_000, logs);
    const holder = await until('a leader', leaseHolder);
    const [leader, follower] = holder === 'r1' ? [r1, r2] : [r2, r1];
    const metrics = async (p: { metricsPort: number }) => (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
    const ids = [...w.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);

    const followerIpmi = follower === r1 ? ipmi.r1 : ipmi.r2;
    expect((follower === r1 ? ipmi.r2 : ipmi.r1).calls().length).toBeGreaterThan(0);
    let followerBefore = '';
    let followerIpmiBefore: string[] = [];
    let killed = false;
    w.nova.onRequest = async (what) => {
      if (!killed && /^POST \/compute\/v2\.1\/servers\/[^/]+\/action$/.test(what)) {
        killed = true;
        followerBefore = await metrics(follower);
        followerIpmiBefore = followerIpmi.calls();
        sigkill(leader);
      }
    };
    await w.setRecoveryFails('cmp1', true);
    w.node('cmp1')!.broken.storage = true;
    await until('leader killed at its first evacuate call', () => killed && !isAlive(leader.pid), 60_000, logs);
    // Up to then the follower acted on nothing: no action metric, not the master.
    expect(followerBefore).toMatch(new RegExp(`leader_election_master_status\\{name="${LEASE}"\\} 0`));
    expect(followerBefore).not.toMatch(/^hm9k_nodes_actions_total\{/m);
    // Only the Lease holder talks to BMCs: the standby never ran ipmitool (BMCs have few session slots).
    expect(followerIpmiBefore).toEqual([]);
    expect(w.recoverCalls.filter((c) => c === 'cmp1:storage')).toHaveLength(1);

    const fenced = await until('cmp1 Fenced by the other replica', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000, logs);
    expect(await leaseHolder()).toBe(follower === r1 ? 'r1' : 'r2');
    expect(fenced.status?.fence?.leaseHolder).toBe(holder);
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    const per = evacuationsPerServer();
    expect([...per.keys()].sort()).toEqual([...ids].sort());
    expect([...per.values()]).toEqual([1, 1, 1]);
    expect(fenced.status?.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    expect(w.recoverCalls.filter((c) => c === 'cmp1:storage')).toHaveLength(1);
    const after = await metrics(follower);
    expect(after).toMatch(new RegExp(`leader_election_master_status\\{name="${LEASE}"\\} 1`));
    expect(after).toMatch(/^hm9k_nodes_actions_total\{type="evacuate",result="ok"\} 1/m);
  });
  it('SIGTERM while the BMC has not yet answered the power-off: the standby re-reads the BMC and carries on; one power-off, never FenceFailed', async () => {
    await setup();
    const w = world!;
    const chassis = await logChassisCalls(w.node('cmp1')!.bmc);
    const ipmi1 = await ipmitoolWrapper('s1');
    const ipmi2 = await ipmitoolWrapper('s2');
    await ipmi1.slowPowerOff(true);
    const p1 = await startHm9k('s1', ipmi1.path);
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 60_000, logs);
    await until('s1 leads', async () => (await leaseHolder()) === 's1', 30_000, logs);
    await startHm9k('s2', ipmi2.path);
    const ids = [...w.nova.servers.values()].filter((s) => s.host === 'cmp1').map((s) => s.id);
    await w.setRecoveryFails('cmp1', true);
    w.node('cmp1')!.broken.storage = true;

    // The BMC got the power-off; s1's ipmitool still waits for the answer when SIGTERM arrives.
    await until('power-off command reached the BMC', () => chassis().includes('0x20 set power 0'), 60_000, logs);
    expect(ipmi2.calls()).toEqual([]);
    sigterm(p1);
    await until('s1 exited', () => !isAlive(p1.pid), 30_000, logs);
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
    }, 90_000, logs);
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
    for (const n of ['cmp1', 'cmp2', 'cmp3']) await until(`${n} Healthy`, async () => (await getNode(n)).status?.phase === 'Healthy', 60_000, logs);
    await until('e1 leads', async () => (await leaseHolder()) === 'e1', 30_000, logs);
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
    await until('e1 stopped while its evacuate request is held in nova-api', () => !!heldId && !isAlive(p1.pid), 90_000, logs);
    await until('e2 leads', async () => (await leaseHolder()) === 'e2', 30_000, logs);
    const from = w.nova.requests.length;
    await until('e2 asked Nova about the held server three times', () => w.nova.requests.slice(from).filter((r) => r === `GET /compute/v2.1/servers/${heldId}`).length >= 3, 60_000, logs);
    // Nothing re-sent while the first request's outcome is unknown.
    expect(evacuateCalls.filter((id) => id === heldId)).toHaveLength(1);
    release();

    const fenced = await until('cmp1 Fenced by e2', async () => { const n = await getNode('cmp1'); return n.status?.phase === 'Fenced' ? n : undefined; }, 90_000, logs);
    expect(chassis().filter((c) => c.endsWith('set power 0'))).toHaveLength(1);
    expect([...evacuateCalls].sort()).toEqual([...ids].sort());
    const per = evacuationsPerServer();
    expect([...per.keys()].sort()).toEqual([...ids].sort());
    expect([...per.values()]).toEqual([1, 1, 1]);
    expect(fenced.status?.evacuation).toMatchObject({ total: 3, done: 3, failed: 0 });
    expect(fenced.status?.fence?.steps.map((s) => `${s.name}:${s.state}`)).toEqual(['powerOff:succeeded', 'confirmOff:succeeded', 'forceDown:succeeded', 'disable:succeeded', 'evacuate:succeeded']);
  });
});
