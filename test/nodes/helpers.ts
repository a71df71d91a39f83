// Small helpers shared by the whole-node test files.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { BMC_PASSWORD, BMC_USER } from '../support/ipmi.js';
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
  await secret('clouds', { 'clouds.yaml': world.nova.cloudsYaml('sim') });
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
