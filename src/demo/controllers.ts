// hm9k itself, as in production: two real processes, `hm9k run --apps` and `hm9k run --nodes`, each
// with its own configuration file (written to the demo's directory), its own Lease, metrics and
// probes. Credentials reach them through the environment only, never through the files.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort, isAlive, killGroup, startProcess, waitFor } from '../devenv/procs.js';
import { CLOUD_NAME, CREDENTIALS, NAMESPACE, SECRETS, type DemoWorld } from './world.js';

export type Half = 'apps' | 'nodes';

export class ControllerProcess {
  private constructor(
    readonly half: Half,
    readonly pid: number,
    readonly configFile: string,
    readonly logFile: string,
    readonly metricsPort: number,
    readonly healthPort: number,
    readonly apiPort: number | undefined,
  ) {}

  static async start(half: Half, world: DemoWorld, dir: string, root: string, ipmitool: string): Promise<ControllerProcess> {
    const [metricsPort, healthPort] = [await freePort(), await freePort()];
    const apiPort = half === 'apps' ? await freePort() : undefined;
    const common = {
      namespace: NAMESPACE,
      podName: `hm9k-${half}-demo-0`,
      kubeconfig: world.kubeconfig,
      logLevel: 'info',
      metricsPort,
      healthPort,
      bindAddress: '127.0.0.1',
      // Leader election on, as in production; a little faster than client-go's 15s/10s/2s.
      leaderElection: { enabled: true, leaseDuration: '8s', renewDeadline: '6s', retryPeriod: '1s' },
      watch: { timeout: '60s', watchdog: '2m', resync: '2m' },
    };
    const config =
      half === 'apps'
        ? {
            ...common,
            apps: {
              nats: { servers: [world.nats.url] },
              cc: { url: world.cc.url, bulkUser: CREDENTIALS.bulkUser, internalUser: CREDENTIALS.internalUser },
              sendVia: 'http',
              store: { kind: 'etcd', endpoints: [world.etcd.endpoint], prefix: '/hm9k-demo/' },
              api: { port: apiPort, host: '127.0.0.1', user: CREDENTIALS.apiUser },
            },
          }
        : {
            ...common,
            nodes: {
              cloudsSecret: SECRETS.clouds,
              cloudName: CLOUD_NAME,
              consulWait: '2s',
              consulMinLoop: '50ms',
              powerPollInterval: '1s',
              novaPollInterval: '500ms',
              // Real Nova on a loaded machine answers in seconds, the simulator at once.
              httpTimeout: world.openstack ? '30s' : '5s',
              resync: '3s',
              ipmitoolPath: ipmitool,
            },
          };
    const configFile = join(dir, `${half}.yaml`);
    writeFileSync(configFile, `# hm9k run --${half}, as hm9k demo runs it (credentials come from the environment)\n${stringify(config)}`);
    const env: NodeJS.ProcessEnv = {};
    // The demo's own environment minus anything that would configure hm9k behind the file's back.
    for (const [k, v] of Object.entries(process.env)) if (!(k.startsWith('HM9K_') && !k.startsWith('HM9K_DEMO')) && k !== 'KUBECONFIG') env[k] = v;
    if (half === 'apps') {
      env.HM9K_APPS__CC__BULK_PASSWORD = CREDENTIALS.bulkPassword;
      env.HM9K_APPS__CC__INTERNAL_PASSWORD = CREDENTIALS.internalPassword;
      env.HM9K_APPS__API__PASSWORD = CREDENTIALS.apiPassword;
    }
    const logFile = join(dir, `hm9k-${half}.log`);
    const p = startProcess(process.execPath, [resolve(root, 'bin/hm9k.js'), 'run', `--${half}`, '--config', configFile], logFile, { env, cwd: root });
    return new ControllerProcess(half, p.pid, configFile, logFile, metricsPort, healthPort, apiPort);
  }

  get lease(): string {
    return `hm9k-${this.half}`;
  }

  alive(): boolean {
    return isAlive(this.pid);
  }

  logTail(chars = 3000): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  /** Ready (/readyz 200) and holding its Lease (leader_election_master_status 1). */
  async waitReady(timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `hm9k run --${this.half} ready and leading`,
      async () => {
        if (!this.alive()) throw new Error(`hm9k run --${this.half} exited; its log (${this.logFile}) ends with:\n${this.logTail()}`);
        try {
          const ready = (await fetch(`http://127.0.0.1:${this.healthPort}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200;
          const metrics = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
          return ready && new RegExp(`leader_election_master_status\\{name="${this.lease}"\\} 1`).test(metrics);
        } catch {
          return false;
        }
      },
      timeoutMs,
      250,
    );
  }

  /** SIGTERM (the runtime releases its Lease and exits), SIGKILL after a grace. */
  async stop(): Promise<void> {
    await killGroup(this.pid, 8000);
  }
}
