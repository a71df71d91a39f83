// Helpers for the Helm chart tests: run the helm binary (built by scripts/build-tools.sh) with its own
// empty config/cache/data homes, render the chart into objects, write a kubeconfig that impersonates a
// ServiceAccount with the local control plane's admin certificate, and run `hm9k run` as a real process.
import { spawnSync } from 'node:child_process';
import { runCommand } from './command.js';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { findBinary } from '../../src/devenv/controlplane.js';
import { freePort, isAlive, killGroup, sleep, startProcess } from '../../src/devenv/procs.js';

export const CHART = resolve('helm/hm9k');

/** A Kubernetes object as rendered by helm (loosely typed: tests poke at it by path). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests are plain JSON
export type Manifest = Record<string, any>;

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

let homes: string | undefined;
function helmEnv(): NodeJS.ProcessEnv {
  homes ??= mkdtempSync(join(tmpdir(), 'hm9k-helm-home-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('HELM_') || k === 'KUBECONFIG') delete env[k];
  return { ...env, HELM_CONFIG_HOME: join(homes, 'config'), HELM_CACHE_HOME: join(homes, 'cache'), HELM_DATA_HOME: join(homes, 'data') };
}

/**
 * Kubernetes version `helm template` / `lint` check the chart's kubeVersion against:
 * the version the tests run (scripts/build-tools.sh). A helm built from source without the release ldflags
 * (ours) assumes v1.20.0 when no cluster is asked; released binaries assume their client-go version.
 */
export const KUBE_VERSION = '1.32.13';
const OFFLINE = new Set(['template', 'lint']);

/** Runs helm; never throws (callers assert on status and output). */
export function helm(args: string[], opts: { kubeconfig?: string; timeoutMs?: number } = {}): HelmResult {
  const offline = OFFLINE.has(args[0] ?? '') && !args.includes('--kube-version');
  const r = spawnSync(findBinary('helm'), [...args, ...(offline ? ['--kube-version', KUBE_VERSION] : []), ...(opts.kubeconfig ? ['--kubeconfig', opts.kubeconfig] : [])], {
    encoding: 'utf8',
    env: helmEnv(),
    timeout: opts.timeoutMs ?? 60_000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** helm() without blocking the test worker: for install / upgrade / uninstall against a cluster, which can take long on a loaded machine. */
export async function helmAsync(args: string[], opts: { kubeconfig?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await runCommand(findBinary('helm'), [...args, ...(opts.kubeconfig ? ['--kubeconfig', opts.kubeconfig] : [])], { env: helmEnv(), timeoutMs: opts.timeoutMs ?? 120_000 });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Like helm(), but throws with helm's stderr on a non-zero exit. */
export function helmOk(args: string[], opts: { kubeconfig?: string; timeoutMs?: number } = {}): string {
  const r = helm(args, opts);
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Writes a values file (YAML) into a temporary directory and returns its path. */
export function valuesFile(values: object, dir = mkdtempSync(join(tmpdir(), 'hm9k-values-'))): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `values-${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

/** `helm template` of the chart with the given values; returns every rendered object. */
export function render(values: object = {}, opts: { release?: string; namespace?: string; chart?: string } = {}): Manifest[] {
  const out = helmOk(['template', opts.release ?? 'hm9k', opts.chart ?? CHART, '--namespace', opts.namespace ?? 'hm9k-system', '-f', valuesFile(values)]);
  return parseAllDocuments(out)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((d): d is Manifest => !!d && typeof d === 'object');
}

export function find(objs: Manifest[], kind: string, name?: string, namespace?: string): Manifest | undefined {
  return objs.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name) && (namespace === undefined || o.metadata?.namespace === namespace));
}

export function all(objs: Manifest[], kind: string): Manifest[] {
  return objs.filter((o) => o.kind === kind);
}

/**
 * A kubeconfig that authenticates with the control plane's admin client certificate and impersonates
 * `user` (e.g. system:serviceaccount:<ns>:<sa>): the apiserver then authorizes every request as that
 * ServiceAccount (with its groups system:serviceaccounts and system:serviceaccounts:<ns>), through RBAC.
 */
export function impersonatingKubeconfig(adminKubeconfig: string, user: string, dir: string): string {
  const admin = parse(readFileSync(adminKubeconfig, 'utf8')) as { clusters: unknown[]; users: { name: string; user: Record<string, unknown> }[] };
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: admin.clusters,
    users: [{ name: 'impersonated', user: { ...admin.users[0]!.user, as: user } }],
    contexts: [{ name: 'impersonated', context: { cluster: (admin.clusters[0] as { name: string }).name, user: 'impersonated' } }],
    'current-context': 'impersonated',
  };
  const file = join(dir, `kubeconfig-${user.replace(/[^a-z0-9]+/gi, '-')}`);
  writeFileSync(file, stringify(doc), { mode: 0o600 });
  return file;
}

/** `hm9k run` as a real process in its own process group, logging to a file; stop() kills the group. */
export class Hm9kProcess {
  private constructor(
    readonly pid: number,
    readonly logFile: string,
    readonly metricsPort: number,
    readonly healthPort: number,
  ) {}

  static async start(args: string[], env: Record<string, string>, logFile: string): Promise<Hm9kProcess> {
    const [metrics, health] = [await freePort(), await freePort()];
    const cleanEnv: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HM9K_') && k !== 'KUBECONFIG' && k !== 'POD_NAME') cleanEnv[k] = v;
    const p = startProcess(
      process.execPath,
      ['bin/hm9k.js', ...args, '--metrics-port', String(metrics), '--health-port', String(health), '--set', 'bindAddress=127.0.0.1'],
      logFile,
      { env: { ...cleanEnv, ...env }, cwd: resolve('.') },
    );
    return new Hm9kProcess(p.pid, logFile, metrics, health);
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  alive(): boolean {
    return isAlive(this.pid);
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  /** Waits until /metrics answers and shows this process holding its Lease; fails at once if it exits. */
  async waitForLeader(lease: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const re = new RegExp(`leader_election_master_status\\{name="${lease}"\\} 1`);
    for (;;) {
      if (!this.alive()) throw new Error(`hm9k exited before leading ${lease}:\n${this.log().slice(-4000)}`);
      try {
        if (re.test(await this.metrics())) return;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`hm9k did not lead ${lease} within ${timeoutMs} ms:\n${this.log().slice(-4000)}`);
      await sleep(200);
    }
  }

  async stop(): Promise<void> {
    await killGroup(this.pid, 8_000);
  }
}
