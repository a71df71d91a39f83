// The demo's world on loopback: a local control plane (etcd + kube-apiserver with the CRDs), NATS,
// etcd for the app state store, the Cloud Controller simulator with a DEA fleet publishing real
// heartbeats, and the compute world (real OpenStack from Debian's packages when installed, else the
// Nova/Keystone simulator, said plainly; three Consul simulators, one ipmi_sim BMC per node, a real sshd
// running the recovery scripts, a real SMTP listener capturing mail).
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CoreV1Api, KubeConfig } from '../kube/client.js';
import { LocalControlPlane, findBinary } from '../devenv/controlplane.js';
import { World as ComputeWorld } from '../devenv/compute-world.js';
import { realCompute, simCompute, type ComputeApi } from '../devenv/compute-api.js';
import { OpenStack, openStackMissing } from '../devenv/openstack.js';
import { NatsServer } from '../devenv/nats.js';
import { BMC_PASSWORD, BMC_USER } from '../devenv/ipmi.js';
import type { EtcdServer } from '../devenv/etcd.js';
import { CloudControllerSim } from '../sim/cc.js';
import { DeaFleet } from '../sim/dea.js';

export const NAMESPACE = 'hm9k';
export const CLOUD_NAME = 'openstack';
export const SECRETS = { bmc: 'bmc-credentials', ssh: 'ssh-recovery', clouds: 'openstack-clouds' } as const;

/** The apps Cloud Foundry runs in the demo: guid and instance count (4 DEAs). */
export const DEMO_APPS: [string, number][] = [
  ['web', 4],
  ['api', 3],
  ['worker', 2],
  ['billing', 2],
  ['crashy', 2],
];

/** Credentials of the CC simulator and of hm9k's own API; they reach hm9k as process environment only. */
export const CREDENTIALS = {
  bulkUser: 'bulk_api',
  bulkPassword: 'bulk-password',
  internalUser: 'internal_api',
  internalPassword: 'internal-password',
  apiUser: 'hm9k',
  apiPassword: 'demo-api-password',
};

export interface DemoWorldOptions {
  dir: string;
  nodes: number;
  natsBin: string;
  deas?: number;
  step?: (what: string) => void;
  /** 'auto': real OpenStack when its packages are installed, else the simulator (said plainly); 'sim': the simulator. */
  nova?: 'auto' | 'sim';
}

export class DemoWorld {
  cp!: LocalControlPlane;
  kc!: KubeConfig;
  nats!: NatsServer;
  etcd!: EtcdServer;
  nc!: NatsConnection;
  fleet!: DeaFleet;
  cc!: CloudControllerSim;
  compute!: ComputeWorld;
  /** Nova as the incidents read it: real Nova's API, or the simulator's state. */
  nova!: ComputeApi;
  /** The real OpenStack, when the demo runs one. */
  openstack: OpenStack | undefined;
  /** Why the simulator stands in for real Nova (undefined: real Nova). */
  simulatorReason: string | undefined;
  /** Stops what started, in reverse order. */
  private stoppers: (() => Promise<unknown>)[] = [];

  constructor(readonly o: DemoWorldOptions) {}

  get kubeconfig(): string {
    return this.cp.state.kubeconfig;
  }

  async start(): Promise<void> {
    const step = this.o.step ?? (() => undefined);
    mkdirSync(this.o.dir, { recursive: true });
    step('local control plane (etcd + kube-apiserver, CRDs installed)');
    this.cp = await LocalControlPlane.start({ dir: join(this.o.dir, 'controlplane') });
    this.stoppers.push(() => this.cp.stop({ keepDir: true }));
    this.kc = new KubeConfig();
    this.kc.loadFromFile(this.cp.state.kubeconfig);

    step('NATS, and etcd for the app state store');
    this.nats = await NatsServer.start(this.o.natsBin);
    this.stoppers.push(() => this.nats.stop());
    process.env.ETCD_BIN ??= findBinary('etcd');
    const { EtcdServer } = await import('../devenv/etcd.js');
    this.etcd = await EtcdServer.start();
    this.stoppers.push(() => this.etcd.destroy());

    step(`Cloud Controller simulator and a fleet of ${this.o.deas ?? 4} DEAs`);
    this.nc = await connect({ servers: this.nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200, name: 'hm9k-demo-world' });
    this.stoppers.push(() => this.nc.close());
    this.fleet = new DeaFleet({ nats: this.nc, count: this.o.deas ?? 4, heartbeatPeriodMs: 1000, startupMs: 300, evacuationTimeoutMs: 3000 });
    this.stoppers.push(() => this.fleet.stopAll());
    this.cc = new CloudControllerSim({ dea: this.fleet, ...CREDENTIALS });
    await this.cc.listen();
    this.stoppers.push(() => this.cc.close());
    let slot = 0;
    for (const [guid, n] of DEMO_APPS) {
      this.cc.setApp({ guid, version: `${guid}-v1`, instances: n, state: 'STARTED', package_state: 'STAGED' });
      for (let i = 0; i < n; i++) this.fleet.place(this.fleet.deaIds()[slot++ % this.fleet.deaIds().length]!, guid, `${guid}-v1`, i);
    }
    this.fleet.start();

    const names = Array.from({ length: this.o.nodes }, (_, i) => `cmp${i + 1}`);
    this.simulatorReason = this.o.nova === 'sim' ? 'asked for with --nova-sim' : openStackMissing();
    if (!this.simulatorReason) {
      step(`real OpenStack (MariaDB, RabbitMQ, Keystone, Placement, Glance, Neutron, Nova api/conductor/scheduler) and ${names.length} fake-driver nova-computes: about a minute, 2-3 GB`);
      // service_down_time 30s: a nova-compute starved by a loaded machine must not look dead.
      const os = new OpenStack({ dir: join(this.o.dir, 'openstack'), reportIntervalS: 5, serviceDownTimeS: 30 });
      this.stoppers.push(() => os.stop(true));
      await os.start(names);
      this.openstack = os;
      step(`real OpenStack up in ${os.timings.total}s, ${await os.memoryMiB()} MiB resident (logs in ${os.dir}/logs)`);
    } else {
      step(`NO real OpenStack (${this.simulatorReason}): FALLING BACK TO THE NOVA SIMULATOR (src/sim/nova.ts) for Nova and Keystone; real OpenStack: bash scripts/install-openstack.sh, or npm run demo -- --install`);
    }
    this.compute = new ComputeWorld(this.openstack ? { openstack: this.openstack } : {});
    this.nova = this.openstack ? realCompute(this.openstack) : simCompute(this.compute.nova);
    step(`compute world: ${this.openstack ? 'real Nova/Keystone' : 'Nova/Keystone simulator'}, 3 Consul clusters (simulated), ${this.o.nodes} ipmi_sim BMCs, sshd, SMTP`);
    this.stoppers.push(async () => {
      // After a terminal's Ctrl-C, sshd and ipmi_sim (same process group) are already gone, killed by
      // the signal; their stop() waits for an exit that has already happened. Bounded, then the
      // directories are removed here.
      await Promise.race([this.compute.stop(), new Promise((r) => setTimeout(r, 6000).unref())]);
      for (const d of [this.compute.sshd?.dir, ...this.compute.nodes.map((n) => n.bmc.dir)]) if (d) rmSync(d, { recursive: true, force: true });
    });
    await this.compute.start(this.o.nodes);
    // Servers on the hypervisors: cmp1 has three (one stopped), cmp2 two, the others one each
    // (booted through Nova's API and scheduler when Nova is real).
    if (this.openstack) step('booting the servers through real Nova\'s API and scheduler');
    await Promise.all([
      this.nova.bootServers('cmp1', ['db-primary', 'web-01']),
      this.nova.bootServers('cmp1', ['batch-01'], { stopped: true }),
      this.nova.bootServers('cmp2', ['web-02', 'cache-01']),
      ...this.compute.nodes.slice(2).map((n) => this.nova.bootServers(n.name, [`vm-${n.name}`])),
    ]);
  }

  /** The hm9k namespace and the Secrets the node half reads (BMC, SSH, clouds.yaml). */
  async createNamespaceAndSecrets(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const secret = (name: string, data: Record<string, string>) => core.createNamespacedSecret({ namespace: NAMESPACE, body: { metadata: { name }, type: 'Opaque', stringData: data } });
    await secret(SECRETS.bmc, { username: BMC_USER, password: BMC_PASSWORD });
    await secret(SECRETS.ssh, { privateKey: this.compute.sshd.privateKey, knownHosts: this.compute.sshd.knownHosts });
    await secret(SECRETS.clouds, { 'clouds.yaml': this.nova.cloudsYaml(CLOUD_NAME) });
  }

  /** Stops every simulator and process of the world, last started first. */
  async stop(): Promise<void> {
    for (const s of this.stoppers.reverse()) await s().catch(() => undefined);
    this.stoppers = [];
  }
}
