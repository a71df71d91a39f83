// The compute world of whole-node tests and `hm9k demo`: per node a real ipmi_sim BMC and an sshd port;
// three Consul clusters (simulated), Nova+Keystone (simulated, or REAL when an OpenStack from
// ./openstack.ts is given), a real SMTP listener. A loop couples them: a powered-off host's agents die
// and its nova-compute stops reporting (real: the host's nova-compute process is killed, and started
// again on power-on); a lost management network stops a real nova-compute's reports and RPC
// (SIGSTOP, SIGCONT when it is back); recovery scripts run over SSH change the world.
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NETWORKS, type NetworkName } from '../api/index.js';
import { ConsulSim } from '../sim/consul.js';
import { NovaSim, type NovaSimOptions } from '../sim/nova.js';
import type { OpenStack } from './openstack.js';
import { startBmc, type SimBmc } from './ipmi.js';
import { startSmtp, type SimSmtp } from './smtp.js';
import { startSshd, type SimSshd } from './sshd.js';

export interface SimNode {
  name: string;
  bmc: SimBmc;
  sshPort: number;
  /** Network broken on the host (the network itself, not the agent). */
  broken: Record<NetworkName, boolean>;
  /** Consul agent broken while the network works. */
  agentBroken: Record<NetworkName, boolean>;
  /** A recovery command repairs the network. */
  repairable: boolean;
  power: 'on' | 'off';
}

export interface WorldOptions {
  /** Consul ACLs on (default policy deny): the one token with node:read that hm9k must send. */
  consulToken?: string;
  nova?: NovaSimOptions;
  /**
   * A started real OpenStack whose nova-computes are the nodes' (one per node name): the world then
   * couples power and the management network to those processes, and the Nova simulator is not
   * started (world.nova must not be used).
   */
  openstack?: OpenStack;
}

export class World {
  nodes: SimNode[] = [];
  readonly consulToken: string | undefined;
  consul = {} as Record<NetworkName, ConsulSim>;
  nova: NovaSim;
  readonly openstack: OpenStack | undefined;
  sshd!: SimSshd;
  smtp!: SimSmtp;
  recoverCalls: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  /** `nova`: options of the Nova simulator (e.g. a small maxLimit, so that lists are paged). */
  constructor(opts: WorldOptions = {}) {
    this.consulToken = opts.consulToken;
    this.openstack = opts.openstack;
    this.nova = new NovaSim({ migrationStepMs: 150, serviceDownTimeMs: 3000, ...opts.nova });
  }

  async start(count: number): Promise<void> {
    for (const n of NETWORKS) {
      this.consul[n] = new ConsulSim(this.consulToken ? { aclTokens: { [this.consulToken]: { nodeRead: true } } } : {});
      await this.consul[n].start();
    }
    if (!this.openstack) await this.nova.start();
    this.sshd = await startSshd({ extraPorts: count - 1 });
    this.smtp = await startSmtp();
    const ports = [this.sshd.port, ...this.sshd.extraPorts];
    await this.sshd.script('recover.sh', [
      'port=$(echo "$SSH_CONNECTION" | awk \'{print $4}\')',
      `D=${this.sshd.dir}`,
      'touch "$D/recover-$1-$port"',
      '[ -e "$D/fail-$port" ] && exit 1',
      'exit 0',
    ].join('\n'));
    await this.sshd.script('check.sh', [
      'port=$(echo "$SSH_CONNECTION" | awk \'{print $4}\')',
      `D=${this.sshd.dir}`,
      '[ -e "$D/works-$1-$port" ] && { echo "$1 network works"; exit 0; }',
      'echo "$1 network unreachable"; exit 1',
    ].join('\n'));
    for (let i = 0; i < count; i++) {
      const name = `cmp${i + 1}`;
      const bmc = await startBmc(name);
      this.nodes.push({ name, bmc, sshPort: ports[i]!, broken: { management: false, storage: false, tenant: false }, agentBroken: { management: false, storage: false, tenant: false }, repairable: true, power: 'on' });
      for (const n of NETWORKS) this.consul[n].addNode(name);
      this.nova.addHost(name);
    }
    this.nova.setAliveProbe((host) => this.node(host)?.power !== 'off');
    this.timer = setInterval(() => void this.tick(), 100);
  }

  node(name: string): SimNode | undefined {
    return this.nodes.find((n) => n.name === name);
  }

  /** The node says its network works (corroboration exit 0) although its agent looks dead. */
  async setNodeSaysWorks(name: string, net: NetworkName, works: boolean) {
    const n = this.node(name)!;
    const f = join(this.sshd.dir, `works-${net}-${n.sshPort}`);
    if (works) await writeFile(f, '1');
    else await rm(f, { force: true });
  }

  async setRecoveryFails(name: string, fails: boolean) {
    const n = this.node(name)!;
    const f = join(this.sshd.dir, `fail-${n.sshPort}`);
    if (fails) await writeFile(f, '1');
    else await rm(f, { force: true });
  }

  private async tick() {
    if (this.ticking) return;
    this.ticking = true;
    try {
      for (const n of this.nodes) {
        n.power = await n.bmc.power();
        const os = this.openstack;
        if (os) {
          if (n.power === 'off') await os.killCompute(n.name);
          else {
            os.startCompute(n.name);
            os.pauseCompute(n.name, n.broken.management);
          }
        }
        for (const net of NETWORKS) {
          const marker = join(this.sshd.dir, `recover-${net}-${n.sshPort}`);
          if (existsSync(marker)) {
            await rm(marker, { force: true });
            this.recoverCalls.push(`${n.name}:${net}`);
            if (n.repairable && !existsSync(join(this.sshd.dir, `fail-${n.sshPort}`))) n.broken[net] = false;
          }
          const alive = n.power === 'on' && !n.broken[net] && !n.agentBroken[net];
          this.consul[net].setAlive(n.name, alive);
        }
      }
    } finally {
      this.ticking = false;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // Let a tick in flight finish before the BMC state directories go (it reads them).
    for (let i = 0; i < 50 && this.ticking; i++) await new Promise((r) => setTimeout(r, 20));
    await Promise.allSettled([
      ...this.nodes.map((n) => n.bmc.stop()),
      ...NETWORKS.map((n) => this.consul[n]?.stop()),
      ...(this.openstack ? [] : [this.nova.stop()]),
      this.sshd?.stop(),
      this.smtp?.stop(),
    ]);
  }
}
