// The node half under fault: the whole-node world of test/nodes (real kube-apiserver, ipmi_sim BMCs,
// sshd, SMTP, the Nova/Keystone and Consul simulators) with hm9k's node half in this process, and
// a ledger that answers the two questions of every fault scenario: did hm9k take a wrong action
// (a power-off, force-down or evacuation of a host that was not to be fenced, a second power-off or
// a second evacuation of one server), and did it lose one it owed (the failed host fenced and its
// servers evacuated, exactly once)?
import { CustomObjectsApi, type KubeConfig } from '../../../src/kube/client.js';
import { pino } from 'pino';
import { GROUP, VERSION, type ComputeNode, type FencePolicySpec } from '../../../src/api/index.js';
import { createRuntime, type ManagedRuntime } from '../../../src/kube/runtime.js';
import { nodesConfig, type NodesProcessConfig } from '../../../src/nodes/config.js';
import { startNodes } from '../../../src/nodes/index.js';
import { ConsulSim } from '../../../src/sim/consul.js';
import { kubeConfig, testNamespace } from '../../support/controlplane.js';
import { createComputeNodes, createNodeSecrets, quiesce, seedServers, testPolicy, until } from '../../nodes/helpers.js';
import { World } from '../../nodes/world.js';

export const logger = pino({ level: process.env.HM9K_TEST_LOG ?? 'silent' });

export interface NodeWorldOptions {
  count?: number;
  safety?: FencePolicySpec['safety'];
  tweak?: (spec: FencePolicySpec, w: NodeFaultWorld) => void;
  config?: Partial<NodesProcessConfig>;
  /** Extra Consul observers of the storage network, coupled to the world (a test can blind one). */
  extraStorageObservers?: number;
}

export interface Ledger {
  wrong: number;
  lost: number;
  detail: string[];
}

export class NodeFaultWorld {
  world = new World();
  kc!: KubeConfig;
  api!: CustomObjectsApi;
  ns = '';
  run = `f${Math.random().toString(36).slice(2, 7)}`;
  runtime: ManagedRuntime | undefined;
  private nodes: { stop(): Promise<void> } | undefined;
  /** Extra storage observers and whether each is blind (sees every node failed). */
  extra: { sim: ConsulSim; blind: boolean }[] = [];
  private coupler: NodeJS.Timeout | undefined;
  constructor(private readonly o: NodeWorldOptions = {}) {}

  cn(name: string) {
    return `${this.run}-${name}`;
  }

  async getNode(name: string): Promise<ComputeNode> {
    return (await this.api.getClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: this.cn(name) })) as ComputeNode;
  }

  async start(): Promise<void> {
    this.kc = kubeConfig();
    this.api = this.kc.makeApiClient(CustomObjectsApi);
    this.ns = await testNamespace('faults');
    await this.world.start(this.o.count ?? 3);
    seedServers(this.world);
    for (let i = 0; i < (this.o.extraStorageObservers ?? 0); i++) {
      const sim = new ConsulSim();
      await sim.start();
      for (const n of this.world.nodes) sim.addNode(n.name);
      this.extra.push({ sim, blind: false });
    }
    this.coupler = setInterval(() => {
      for (const x of this.extra) for (const n of this.world.nodes) {
        const alive = n.power === 'on' && !n.broken.storage && !n.agentBroken.storage;
        x.sim.setAlive(n.name, x.blind ? false : alive);
      }
    }, 100);
    await createNodeSecrets(this.kc, this.ns, this.world);
    await this.startController();
    const policy = testPolicy(this.world, this.run, { safety: this.o.safety, extraStorage: this.extra.map((x) => x.sim) });
    this.o.tweak?.(policy.spec, this);
    await this.api.createClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', body: policy });
    await createComputeNodes(this.api, this.world, this.run);
    // Healthy and watched so (BMC read on: the power-on evidence), so a scenario never races hm9k's first power reading.
    for (const n of this.world.nodes) await this.until(`${n.name} Healthy and watched`, async () => { const s = (await this.getNode(n.name)).status; return s?.phase === 'Healthy' && !!s.watchedHealthyAt; });
  }

  async startController(): Promise<void> {
    this.runtime = await createRuntime({
      component: 'faults-nodes', namespace: this.ns, kubeConfig: this.kc, logger, leaderElection: false, metricsPort: false, probePort: false, handleSignals: false,
      status: { perObjectIntervalMs: 50 },
    });
    this.nodes = await startNodes(this.runtime, nodesConfig({
      namespace: this.ns, cloudsSecret: 'clouds', cloudName: 'sim', globalMaxUnhealthy: '100%',
      consulWaitMs: 2000, consulMinLoopMs: 50, powerPollIntervalMs: 1000, novaPollIntervalMs: 300, serverCountIntervalMs: 600, resyncMs: 3000, maxConcurrentRemediations: 5,
      ...this.o.config,
    }));
    await this.runtime.start();
  }

  async stopController(): Promise<void> {
    await this.nodes?.stop();
    await this.runtime?.stop();
    this.nodes = undefined;
    this.runtime = undefined;
  }

  /** Polls with a deadline; on timeout names the nodes' phases and fence steps. */
  until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60_000): Promise<T> {
    return until(what, fn, timeoutMs, () => this.lastSeen);
  }
  private lastSeen = '';
  async describe(): Promise<string> {
    const lines: string[] = [];
    for (const n of this.world.nodes) {
      const o = await this.getNode(n.name).catch(() => undefined);
      lines.push(`${n.name}: ${o?.status?.phase} waiting=${o?.status?.waitingFor ?? ''} fence=${JSON.stringify(o?.status?.fence?.steps?.map((s) => `${s.name}:${s.state}`) ?? null)} power=${await n.bmc.power()}`);
    }
    this.lastSeen = lines.join('\n');
    return this.lastSeen;
  }

  /**
   * The ledger. `fenced` are the hosts that had to be fenced (their servers evacuated): each must
   * have exactly one power-off, be forced down, and have each of its servers evacuated exactly once;
   * every other host: no power-off, no force-down, no evacuation from it.
   */
  async ledger(fenced: string[], servers: Map<string, string>): Promise<Ledger> {
    const out: Ledger = { wrong: 0, lost: 0, detail: [] };
    for (const n of this.world.nodes) {
      const offs = (await n.bmc.commands()).filter((c) => c === 'power 0' || c === 'shutdown 1').length;
      const svc = this.world.nova.services.get(n.name);
      const migs = this.world.nova.migrations.filter((m) => m.source_compute === n.name);
      if (fenced.includes(n.name)) {
        if (offs === 0) { out.lost++; out.detail.push(`${n.name}: never powered off`); }
        if (offs > 1) { out.wrong += offs - 1; out.detail.push(`${n.name}: ${offs} power-offs`); }
        if (!svc?.forced_down) { out.lost++; out.detail.push(`${n.name}: not forced down`); }
      } else {
        if (offs > 0) { out.wrong += offs; out.detail.push(`${n.name}: ${offs} power-off(s) of a host that was not to be fenced`); }
        if (svc?.forced_down) { out.wrong++; out.detail.push(`${n.name}: forced down`); }
        if (migs.length) { out.wrong += migs.length; out.detail.push(`${n.name}: ${migs.length} evacuation(s) from it`); }
      }
    }
    for (const [id, from] of servers) {
      const evac = this.world.nova.migrations.filter((m) => m.instance_uuid === id).length;
      if (fenced.includes(from)) {
        if (evac === 0) { out.lost++; out.detail.push(`server ${id} on ${from}: never evacuated`); }
        if (evac > 1) { out.wrong += evac - 1; out.detail.push(`server ${id} on ${from}: evacuated ${evac} times`); }
        const now = this.world.nova.servers.get(id);
        if (now?.host === from) { out.lost++; out.detail.push(`server ${id} still on ${from}`); }
      }
    }
    return out;
  }

  /** Servers by id -> host, as seeded (call before the fault). */
  serversByHost(): Map<string, string> {
    return new Map([...this.world.nova.servers.values()].map((s) => [s.id, s.host]));
  }

  async close(): Promise<void> {
    clearInterval(this.coupler);
    await this.stopController();
    if (this.api) {
      for (const n of this.world.nodes) await this.api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'computenodes', name: this.cn(n.name) }).catch(() => undefined);
      await this.api.deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: 'fencepolicies', name: this.run }).catch(() => undefined);
    }
    await quiesce(this.world);
    await this.world.stop();
    for (const x of this.extra) await x.sim.stop();
  }
}

/** The one line every fault scenario prints. */
export function report(name: string, l: Ledger, checked: string): void {
  console.log(`fault ${name}: wrong ${l.wrong}, lost ${l.lost}, ${checked}${l.detail.length ? ` [${l.detail.join('; ')}]` : ''}`);
}
