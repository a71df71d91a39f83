// Small helpers shared by the whole-node test files.
import { CoreV1Api, type CustomObjectsApi, type KubeConfig } from '../../src/kube/client.js';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GROUP, VERSION, type ComputeNode, type FencePolicy, type FencePolicySpec } from '../../src/api/index.js';
import { BMC_PASSWORD, BMC_USER, type SimBmc } from '../support/ipmi.js';
import type { World } from './world.js';

/**
 * Stops the world's coupling loop and waits for an in-flight tick, so that World.stop() (which
 * removes the BMC state directories) never races a tick reading them (ENOENT as an unhandled error).
 */
export async function quiesce(w: World | undefined): Promise<void> {
  if (!w) return;
  const inner = w as unknown as { timer?: NodeJS.Timeout; ticking?: boolean };
  clearInterval(inner.timer);
  for (let i = 0; i < 50 && inner.ticking; i++) await new Promise((r) => setTimeout(r, 20));
}

/** Polls `fn` until it returns something truthy; on timeout throws with `what` and `context()`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 45_000, context: () => string = () => '', stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${context()}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** The servers every whole-node test starts with: two active and one stopped on cmp1, one on cmp2. */
export function seedServers(world: World): void {
  for (let i = 0; i < 2; i++) world.nova.addServer('cmp1', { name: `a${i}` });
  world.nova.addServer('cmp1', { name: 'stopped', vm_state: 'stopped' });
  world.nova.addServer('cmp2', { name: 'b0' });
}

/** The Secrets the node half reads in its namespace: clouds.yaml, BMC credentials, SSH key and known hosts. */
export async function createNodeSecrets(kc: KubeConfig, ns: string, world: World): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const secret = (name: string, data: Record<string, string>) => core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: data } });
  // Real OpenStack's cloud is named 'openstack', the simulator's 'sim'.
  await secret('clouds', { 'clouds.yaml': world.openstack ? world.openstack.cloudsYaml('openstack') : world.nova.cloudsYaml('sim') });
  await secret('bmc', { username: BMC_USER, password: BMC_PASSWORD });
  await secret('ssh', { privateKey: world.sshd.privateKey, knownHosts: world.sshd.knownHosts });
  if (world.consulToken) await secret('consul-token', { token: world.consulToken });
}

/** The Consul ACL token every whole-node test world runs with (the Consul simulators deny without it). */
export const CONSUL_TOKEN = 'c0ffee00-hm9k-test-token';

/** A FencePolicy network rule observing `c`, with the world's ACL token Secret when it has one. */
export function observer(world: World, c: { url: string }): { consul: { address: string; tokenSecret?: string }[] } {
  return { consul: [{ address: c.url, ...(world.consulToken ? { tokenSecret: 'consul-token' } : {}) }] };
}

/** Options of testPolicy: what differs between the whole-node test files. */
export interface TestPolicyOptions {
  /** The policy's own email (SMTP of the world); false: none, the process's nodes.smtpDefault is used. */
  email?: boolean;
  /** fencing.powerWait: the window between the power-off command and its confirmation (default 200ms). */
  powerWait?: string;
  /** evacuation.perServerTimeout (default 20s; real Nova on a loaded machine needs minutes). */
  perServerTimeout?: string;
  safety?: FencePolicySpec['safety'];
  /** Observers of the storage network besides the world's own Consul (default: none). */
  extraStorage?: { url: string }[];
}

/**
 * The FencePolicy every whole-node test starts from, selecting the ComputeNodes labelled with `run`,
 * at 1/10 production timings or faster: detection 300ms x 3, grace 1s, one recovery attempt and 1.5s
 * settle, SSH corroboration and recovery through the world's sshd scripts.
 */
export function testPolicy(world: World, run: string, o: TestPolicyOptions = {}): FencePolicy {
  const dir = world.sshd.dir;
  const obs = (c: { url: string }) => observer(world, c);
  return {
    apiVersion: `${GROUP}/${VERSION}`, kind: 'FencePolicy', metadata: { name: run },
    spec: {
      nodeSelector: { matchLabels: { 'hm9k.io/test-run': run } },
      networks: { management: obs(world.consul.management), storage: { consul: [...obs(world.consul.storage).consul, ...(o.extraStorage ?? []).map((c) => ({ address: c.url }))] }, tenant: obs(world.consul.tenant) },
      detection: { interval: '300ms', failureThreshold: 3, recoveryGracePeriod: '1s', healthyDelay: '1s', corroboration: { sshCommand: `${dir}/check.sh storage`, timeout: '5s' } },
      recovery: { commands: { storage: `${dir}/recover.sh storage`, novaCompute: `${dir}/recover.sh nova` }, attempts: 1, timeout: '5s', settleTime: '1500ms' },
      fencing: { powerOffTimeout: '5s', powerWait: o.powerWait ?? '200ms', pollInterval: '200ms', ipmiTimeout: '5s' },
      evacuation: { concurrency: 2, perServerTimeout: o.perServerTimeout ?? '20s' },
      safety: { maxUnhealthy: '40%', maxConcurrentRemediations: 2, ...o.safety },
      notifications: { ...(o.email === false ? {} : { email: { smtpHost: '127.0.0.1', smtpPort: world.smtp.port, from: 'hm9k@example.org', to: ['ops@example.org'] } }), minInterval: '1m' },
    },
  };
}

/** One ComputeNode per world node, labelled with `run` and named `<run>-<host>`. */
export async function createComputeNodes(api: CustomObjectsApi, world: World, run: string): Promise<void> {
  for (const n of world.nodes) {
    const body: ComputeNode = {
      apiVersion: `${GROUP}/${VERSION}`, kind: 'ComputeNode', metadata: { name: `${run}-${n.name}`, labels: { 'hm9k.io/test-run': run } },
      spec: { host: n.name, bmc: { address: '127.0.0.1', port: n.bmc.port, cipherSuite: 3, credentialsSecret: 'bmc' }, ssh: { address: '127.0.0.1', port: n.sshPort, user: world.sshd.user, credentialsSecret: 'ssh' } },
    };
    await api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', body });
  }
}

/** Deletes a run's ComputeNodes (finalizers dropped first: a failed test may leave one mid-fence) and its FencePolicy. */
export async function deleteRunObjects(api: CustomObjectsApi, world: World | undefined, run: string): Promise<void> {
  for (const n of world?.nodes ?? []) {
    const name = `${run}-${n.name}`;
    await api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name, body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }] }).catch(() => undefined);
    await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name }).catch(() => undefined);
  }
  await api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: run }).catch(() => undefined);
}

/** Wraps the BMC's chassis_control script so that every `set` (power on/off) is logged; returns a reader of that log. */
export async function logChassisCalls(bmc: SimBmc): Promise<() => string[]> {
  const real = join(bmc.dir, 'chassis-real.sh');
  const log = join(bmc.dir, 'calls.log');
  if (!existsSync(real)) {
    await rename(join(bmc.dir, 'chassis.sh'), real);
    await writeFile(join(bmc.dir, 'chassis.sh'), `#!/bin/sh\n[ "$2" = set ] && echo "$*" >> "${log}"\nexec "${real}" "$@"\n`);
    await chmod(join(bmc.dir, 'chassis.sh'), 0o755);
  }
  const skip = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
  return () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).slice(skip) : []);
}
