// hm9k's node half as REAL processes (`node bin/hm9k.js run --nodes ...`) against the real apiserver
// and a compute world (test/nodes/world.ts: simulated Nova, or real OpenStack): the set-up shared by
// process.test.ts and real-openstack.test.ts. One namespace, Secrets and work directory per file;
// each test begins a run (its own FencePolicy, ComputeNodes, config and Lease name) and ends it.
import { CoordinationV1Api, CustomObjectsApi, type KubeConfig } from '../../src/kube/client.js';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { GROUP, VERSION, type ComputeNode, type FencePolicy } from '../../src/api/index.js';
import { freePort, isAlive, killGroup, startProcess, type Started } from '../../src/devenv/procs.js';
import { controlPlane, kubeConfig, testNamespace } from '../support/controlplane.js';
import { createComputeNodes, createNodeSecrets, deleteRunObjects, testPolicy, until, type TestPolicyOptions } from './helpers.js';
import type { World } from './world.js';

export interface RunOptions extends TestPolicyOptions {
  /** Changes to the FencePolicy before it is created. */
  tweak?: (policy: FencePolicy) => void;
  /** Process configuration (nodes.*) over the defaults below. */
  nodes?: Record<string, unknown>;
  /** Leader election with a Lease of this run (8s lease); off when false. */
  leaderElection?: boolean;
}

export type Hm9k = Started & { metricsPort: number };

export class Hm9kProcesses {
  kc!: KubeConfig;
  api!: CustomObjectsApi;
  ns = '';
  dir = '';
  run = '';
  readonly procs: Started[] = [];

  constructor(private readonly world: World, private readonly prefix: string) {}

  get lease(): string {
    return `hm9k-${this.run}`;
  }

  /** Namespace, Secrets (clouds.yaml of the world's Nova, BMC, SSH, Consul token) and a work directory. */
  async init(): Promise<void> {
    this.kc = kubeConfig();
    this.api = this.kc.makeApiClient(CustomObjectsApi);
    this.ns = await testNamespace(`nodes-${this.prefix}`);
    this.dir = await mkdtemp(join(tmpdir(), `hm9k-nodes-${this.prefix}-`));
    await createNodeSecrets(this.kc, this.ns, this.world);
  }

  cn(name: string): string {
    return `${this.run}-${name}`;
  }

  /** The last state each node was read in (a timed-out wait prints it). */
  private readonly seen = new Map<string, string>();

  async getNode(name: string): Promise<ComputeNode> {
    const n = (await this.api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: this.cn(name) })) as ComputeNode;
    const s = n.status;
    this.seen.set(name, `${s?.phase} (${s?.waitingFor ?? ''}) power=${s?.power?.state ?? '?'}${s?.power?.error ? ` (${s.power.error})` : ''} nova=${s?.nova?.apiState ?? '?'} fence=${JSON.stringify(s?.fence?.steps?.map((x) => `${x.name}:${x.state}`) ?? null)}`);
    return n;
  }

  async getPolicy(): Promise<FencePolicy> {
    return (await this.api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: this.run })) as FencePolicy;
  }

  async leaseHolder(): Promise<string | undefined> {
    return (await this.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: this.lease, namespace: this.ns })).spec?.holderIdentity;
  }

  /** Warnings and errors of each process; everything a dead one printed last (a crash is not JSON). */
  logs = (): string => [...this.seen].map(([k, v]) => `${k}: ${v}`).join('\n') + '\n' + this.procs.map((p) => `--- ${p.logFile} (pid ${p.pid}${isAlive(p.pid) ? '' : ', dead'})\n${existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8').split('\n').filter((l) => !isAlive(p.pid) || /"level":(40|50|60)/.test(l)).slice(-15).join('\n') : ''}`).join('\n')
    + (this.world.openstack ? `\nOpenStack logs: ${this.world.openstack.dir}/logs (kept with HM9K_KEEP_OPENSTACK=1)` : '');

  until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
    return until(what, fn, timeoutMs, this.logs, 100);
  }

  /** A new run: its FencePolicy, one ComputeNode per world node, the process configuration. */
  async begin(o: RunOptions = {}): Promise<void> {
    this.run = `${this.prefix.slice(0, 1)}${Math.random().toString(36).slice(2, 7)}`;
    const policy = testPolicy(this.world, this.run, { email: false, powerWait: '1s', perServerTimeout: '30s', ...o });
    // No SSH check of nova-compute on the node: the world's nova-compute is not on the sshd's host.
    policy.spec.detection!.novaNodeSideCommand = '';
    o.tweak?.(policy);
    await this.api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: policy });
    await createComputeNodes(this.api, this.world, this.run);
    // 1/10 production timings or faster (leader election: 8s lease, renew requests time out after 3s:
    // a loaded machine's apiserver answers slowly).
    await writeFile(join(this.dir, `${this.run}.yaml`), stringify({
      logLevel: 'info',
      bindAddress: '127.0.0.1',
      nodes: {
        cloudsSecret: 'clouds', cloudName: this.world.openstack ? 'openstack' : 'sim', globalMaxUnhealthy: '100%', maxConcurrentRemediations: 5,
        consulWait: '2s', consulMinLoop: '50ms', powerPollInterval: '1s', novaPollInterval: '300ms', serverCountInterval: '1s', resync: '3s', httpTimeout: '5s',
        smtpDefault: { smtpHost: '127.0.0.1', smtpPort: this.world.smtp.port, from: 'hm9k@example.org', to: ['ops@example.org'] },
        ...o.nodes,
      },
      leaderElection: o.leaderElection === false ? { enabled: false } : { enabled: true, leaseName: this.lease, leaseDuration: '8s', renewDeadline: '6s', retryPeriod: '1s' },
    }));
  }

  /** Waits until every node is Healthy and watched so (the power-on evidence: no race with hm9k's first power reading). */
  async healthy(timeoutMs = 60_000): Promise<void> {
    for (const n of this.world.nodes) {
      await this.until(`${n.name} Healthy and watched`, async () => { const s = (await this.getNode(n.name)).status; return s?.phase === 'Healthy' && !!s.watchedHealthyAt; }, timeoutMs);
    }
  }

  async start(podName: string, ipmitoolPath?: string, sets: string[] = []): Promise<Hm9k> {
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const p = startProcess('node', [
      'bin/hm9k.js', 'run', '--nodes', '--kubeconfig', controlPlane().state.kubeconfig, '--namespace', this.ns, '--config', join(this.dir, `${this.run}.yaml`),
      '--metrics-port', String(metricsPort), '--health-port', String(healthPort), '--set', `podName=${podName}`,
      ...(ipmitoolPath ? ['--set', `nodes.ipmitoolPath=${ipmitoolPath}`] : []),
      ...sets.flatMap((x) => ['--set', x]),
    ], join(this.dir, `${this.run}-${podName}.log`), { cwd: process.cwd(), env: { ...process.env, POD_NAME: podName } });
    this.procs.push(p);
    return { ...p, metricsPort };
  }

  /**
   * Each process runs ipmitool through its own wrapper that logs every call (to tell which replica
   * talked to a BMC); `slowPowerOff` makes the wrapper hold `power off` for 30 s after the BMC got it
   * (a slow BMC answer: the process is stopped while it waits).
   */
  async ipmitoolWrapper(podName: string): Promise<{ path: string; calls: () => string[]; slowPowerOff: (on: boolean) => Promise<void> }> {
    const path = join(this.dir, `${this.run}-ipmitool-${podName}.sh`);
    const log = join(this.dir, `${this.run}-ipmitool-${podName}.log`);
    const slow = join(this.dir, `${this.run}-ipmitool-${podName}.slow`);
    await writeFile(path, ['#!/bin/sh', `echo "$*" >> "${log}"`, 'ipmitool "$@"; rc=$?', `case "$*" in *"chassis power off"*) [ -e "${slow}" ] && sleep 30;; esac`, 'exit $rc', ''].join('\n'));
    await chmod(path, 0o755);
    return {
      path,
      calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
      slowPowerOff: async (on) => (on ? writeFile(slow, '1') : rm(slow, { force: true })),
    };
  }

  async metrics(p: { metricsPort: number }): Promise<string> {
    return (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
  }

  /** Stops the run's processes and deletes its objects. */
  async end(): Promise<void> {
    for (const p of this.procs.splice(0)) await killGroup(p.pid, 3000);
    this.seen.clear();
    if (this.api && this.run) await deleteRunObjects(this.api, this.world, this.run);
    this.run = '';
  }

  /** Ends the run; the work directory (hm9k's logs) goes unless HM9K_KEEP_TEST_LOGS is set. */
  async close(): Promise<void> {
    await this.end();
    if (this.dir && !process.env.HM9K_KEEP_TEST_LOGS) await rm(this.dir, { recursive: true, force: true });
  }
}

export function sigterm(p: Started): void {
  try { process.kill(p.pid, 'SIGTERM'); } catch { /* already gone */ }
}

export function sigkill(p: Started): void {
  try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
}
