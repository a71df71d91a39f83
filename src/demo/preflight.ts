// What `hm9k demo` needs on this machine, and which of the project's scripts provides it. Checked
// before anything starts, so a fresh clone gets one clear message (or, with --install, the scripts run).
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { binDir, findBinary } from '../devenv/controlplane.js';
import { openStackMissing } from '../devenv/openstack.js';

export interface Requirement {
  name: string;
  what: string;
  /** The project script that installs it. */
  script: 'scripts/install-deps.sh' | 'scripts/build-tools.sh';
  /** Debian package, for install-deps.sh requirements. */
  pkg?: string;
  /** Resolved path when present. */
  path?: string;
}

/** Looks an executable up on PATH and in the sbin directories (which a non-root PATH often lacks). */
export function which(cmd: string, extraDirs: string[] = ['/usr/sbin', '/sbin', '/usr/local/sbin']): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs];
  for (const d of dirs) {
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function checkRequirements(): Requirement[] {
  const reqs: Requirement[] = [];
  for (const name of ['kube-apiserver', 'etcd'] as const) {
    let path: string | undefined;
    try {
      path = findBinary(name);
    } catch {
      path = undefined;
    }
    reqs.push({ name, what: `${name} in ${binDir()} (or KUBEBUILDER_ASSETS)`, script: 'scripts/build-tools.sh', ...(path ? { path } : {}) });
  }
  const debian: [string, string, string][] = [
    ['nats-server', 'nats-server', 'NATS server (the CF message bus)'],
    ['ipmi_sim', 'openipmi', "OpenIPMI's ipmi_sim (one BMC per compute node)"],
    ['ipmitool', 'ipmitool', 'ipmitool (hm9k talks IPMI through it)'],
    ['sshd', 'openssh-server', 'OpenSSH sshd (recovery and corroboration commands)'],
    ['ssh-keygen', 'openssh-client', 'ssh-keygen (host and user keys)'],
    ['openssl', 'openssl', 'openssl (certificates of the local control plane)'],
  ];
  for (const [name, pkg, what] of debian) {
    const path = which(name);
    reqs.push({ name, what, script: 'scripts/install-deps.sh', pkg, ...(path ? { path } : {}) });
  }
  return reqs;
}

export function missingReport(missing: Requirement[]): string {
  const lines = ['hm9k demo: missing on this machine:'];
  for (const m of missing) lines.push(`  - ${m.name}: ${m.what}${m.pkg ? ` (Debian package ${m.pkg})` : ''}; installed by ${m.script}`);
  const scripts = [...new Set(missing.map((m) => m.script))].sort((a) => (a === 'scripts/install-deps.sh' ? -1 : 1));
  lines.push('', 'Install with:', ...scripts.map((s) => `  bash ${s}`), '', 'or run the demo with --install to run them now: npm run demo -- --install');
  return `${lines.join('\n')}\n`;
}

/** Checks, and with `install` runs the project's scripts for what is missing. Returns the requirements (all present) or throws with the report. */
export function preflight(opts: { install: boolean; root: string; out: (s: string) => void; openstack?: boolean }): Requirement[] {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) throw new Error(`hm9k demo needs Node.js 20 or newer (this is ${process.versions.node})`);
  let reqs = checkRequirements();
  let missing = reqs.filter((r) => !r.path);
  if (missing.length && opts.install) {
    for (const script of ['scripts/install-deps.sh', 'scripts/build-tools.sh'] as const) {
      if (!missing.some((m) => m.script === script)) continue;
      opts.out(`running bash ${script} (for ${missing.filter((m) => m.script === script).map((m) => m.name).join(', ')})\n`);
      const r = spawnSync('bash', [resolve(opts.root, script)], { stdio: 'inherit', cwd: opts.root });
      if (r.status !== 0) throw new Error(`bash ${script} failed (exit ${r.status ?? r.signal})`);
    }
    reqs = checkRequirements();
    missing = reqs.filter((r) => !r.path);
  }
  if (missing.length) throw Object.assign(new Error(missingReport(missing)), { preflight: true });
  // Real OpenStack is optional (the demo falls back to the simulator and says so): --install adds it.
  if (opts.install && opts.openstack !== false && openStackMissing()) {
    opts.out('running bash scripts/install-openstack.sh (real OpenStack for the node half)\n');
    const r = spawnSync('bash', [resolve(opts.root, 'scripts/install-openstack.sh')], { stdio: 'inherit', cwd: opts.root });
    if (r.status !== 0) opts.out(`bash scripts/install-openstack.sh failed (exit ${r.status ?? r.signal}): the demo falls back to the Nova simulator\n`);
  }
  return reqs;
}
