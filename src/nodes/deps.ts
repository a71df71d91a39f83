// The node half's outside world: clients built from process config and Secrets in hm9k's namespace.
import { Counter, type Registry } from 'prom-client';
import type { ComputeNode } from '../api/index.js';
import { ConsulPool } from '../clients/consul.js';
import { IpmiClient, type BmcTarget } from '../clients/ipmi.js';
import { KeystoneClient, parseCloudsYaml } from '../clients/keystone.js';
import type { RejectHook } from '../clients/limits.js';
import { NovaClient } from '../clients/nova.js';
import { requireKey, type SecretSource } from '../clients/secrets.js';
import { SmtpClient } from '../clients/smtp.js';
import { SshClient, type SshTarget } from '../clients/ssh.js';
import type { NodesProcessConfig } from './config.js';

/** A counting semaphore (bounded concurrency for BMC and SSH calls). */
export class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}

export class NodeDeps {
  readonly ipmi: IpmiClient;
  readonly ssh = new SshClient();
  readonly smtp = new SmtpClient();
  readonly consul: ConsulPool;
  readonly ipmiSem: Semaphore;
  readonly sshSem: Semaphore;
  private nova: NovaClient | undefined;
  /** Counts answers refused by a size, paging or format limit (hm9k_nodes_api_rejected_total{api,reason}). */
  readonly onReject: RejectHook;

  constructor(readonly config: NodesProcessConfig, readonly secrets: SecretSource, metrics?: Registry) {
    const name = 'hm9k_nodes_api_rejected_total';
    const rejected = metrics
      ? ((metrics.getSingleMetric(name) as Counter | undefined) ??
        new Counter({ name, help: 'Answers from Nova, Keystone or Consul refused by a limit (body size, page count, paging or format), by api and reason.', labelNames: ['api', 'reason'], registers: [metrics] }))
      : undefined;
    this.onReject = (api, reason) => rejected?.inc({ api, reason });
    this.ipmi = new IpmiClient({ ipmitoolPath: config.ipmitoolPath, timeoutMs: 15_000 });
    this.consul = new ConsulPool({ waitMs: config.consulWaitMs, minLoopMs: config.consulMinLoopMs, maxBodyBytes: config.maxResponseBytes, onReject: this.onReject });
    this.ipmiSem = new Semaphore(config.maxParallelIpmi);
    this.sshSem = new Semaphore(config.maxParallelSsh);
  }

  async novaClient(): Promise<NovaClient> {
    if (this.nova) return this.nova;
    const s = await this.secrets.get(this.config.cloudsSecret);
    const cloud = parseCloudsYaml(requireKey(s, 'clouds.yaml', this.config.cloudsSecret), this.config.cloudName);
    const c = this.config;
    this.nova = new NovaClient(
      new KeystoneClient(cloud, { timeoutMs: c.httpTimeoutMs, refreshFraction: c.tokenRefreshPercent / 100, minReauthIntervalMs: c.tokenRetryIntervalMs, maxBodyBytes: c.maxResponseBytes, onReject: this.onReject }),
      { timeoutMs: c.httpTimeoutMs, maxBodyBytes: c.maxResponseBytes, maxPages: c.maxPages, onReject: this.onReject },
    );
    return this.nova;
  }

  async bmcTarget(node: ComputeNode): Promise<BmcTarget> {
    const b = node.spec.bmc;
    if (!b) throw new Error(`ComputeNode ${node.metadata.name} has no spec.bmc`);
    const s = await this.secrets.get(b.credentialsSecret);
    return {
      address: b.address,
      port: b.port ?? 623,
      username: requireKey(s, 'username', b.credentialsSecret),
      password: requireKey(s, 'password', b.credentialsSecret),
      cipherSuite: b.cipherSuite ?? 17,
      privilege: b.privilege ?? 'ADMINISTRATOR',
    };
  }

  async sshTarget(node: ComputeNode): Promise<SshTarget> {
    const x = node.spec.ssh;
    if (!x) throw new Error(`ComputeNode ${node.metadata.name} has no spec.ssh`);
    const s = await this.secrets.get(x.credentialsSecret);
    return {
      host: x.address,
      port: x.port ?? 22,
      user: x.user ?? 'root',
      privateKey: requireKey(s, 'privateKey', x.credentialsSecret),
      knownHosts: requireKey(s, 'knownHosts', x.credentialsSecret),
    };
  }

  async stop(): Promise<void> {
    await this.consul.stop();
    this.smtp.close();
  }
}
