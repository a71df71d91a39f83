// Secrets are looked up by name in hm9k's own namespace only (never a namespace from a resource).
import { CoreV1Api, type KubeConfig } from '../kube/client.js';

export class SecretError extends Error {
  override name = 'SecretError';
}

export interface SecretSource {
  /**
   * Decoded string values of a Secret's data (and stringData-like plain values). `fresh` skips any
   * cache: the caller has reason to think the value changed (a rotated credential was refused).
   */
  get(name: string, opts?: { fresh?: boolean }): Promise<Record<string, string>>;
}

export class KubeSecrets implements SecretSource {
  private readonly api: CoreV1Api;
  private readonly cache = new Map<string, { at: number; value: Record<string, string> }>();
  constructor(kc: KubeConfig, private readonly namespace: string, private readonly ttlMs = 30_000, private readonly now = () => Date.now()) {
    this.api = kc.makeApiClient(CoreV1Api);
  }
  async get(name: string, opts: { fresh?: boolean } = {}): Promise<Record<string, string>> {
    const hit = this.cache.get(name);
    if (hit && opts.fresh !== true && this.now() - hit.at < this.ttlMs) return hit.value;
    let secret;
    try {
      secret = await this.api.readNamespacedSecret({ name, namespace: this.namespace });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 404) throw new SecretError(`Secret ${this.namespace}/${name} not found`);
      // The chart grants `get` on the named Secrets only (resourceNames): say which value to extend.
      if (code === 403) throw new SecretError(`Secret ${this.namespace}/${name} is forbidden to hm9k: the node half may read only the Secrets listed in the chart value nodes.rbac.secretNames (plus nodes.cloudsSecret and nodes.smtpDefault.credentialsSecret); add ${name} there`);
      throw new SecretError(`cannot read Secret ${this.namespace}/${name}: ${(err as Error).message}`);
    }
    const value: Record<string, string> = {};
    for (const [k, v] of Object.entries(secret.data ?? {})) value[k] = Buffer.from(v, 'base64').toString('utf8');
    for (const [k, v] of Object.entries(secret.stringData ?? {})) value[k] = v;
    this.cache.set(name, { at: this.now(), value });
    return value;
  }
}

/** In-memory secrets, for tests and the demo. */
export class StaticSecrets implements SecretSource {
  constructor(private readonly data: Record<string, Record<string, string>>) {}
  async get(name: string): Promise<Record<string, string>> {
    const v = this.data[name];
    if (!v) throw new SecretError(`Secret ${name} not found`);
    return v;
  }
}

export function requireKey(secret: Record<string, string>, key: string, name: string): string {
  const v = secret[key];
  if (v === undefined || v === '') throw new SecretError(`Secret ${name} has no key ${key}`);
  return v;
}
