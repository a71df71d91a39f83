// `hm9k demo` as CI runs it: unattended (`--script all --exit`), as a child process. It must exit 0
// only when every incident's assertions held, tell each incident's outcome, and leave no process
// behind. A second run checks the interactive mode and that Ctrl-C (SIGINT to the whole process
// group, as a terminal sends it) tears everything down.
//
// Every process the demo starts inherits its environment, so a unique marker variable finds them all
// in /proc afterwards (ps cannot tell them apart otherwise: nats-server, ipmi_sim, sshd...).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openStackMissing } from '../../src/devenv/openstack.js';
import { runCommand } from '../support/command.js';

/** Real OpenStack's packages installed here: the demo must use them (and say so), else say it falls back. */
const REAL_NOVA = openStackMissing() === undefined;

interface Run {
  child: ChildProcess;
  marker: string;
  output: () => string;
  exited: Promise<number | null>;
}

function startDemo(args: string[], opts: { detached?: boolean; command?: string[]; cwd?: string } = {}): Run {
  const marker = randomUUID();
  const env: NodeJS.ProcessEnv = { ...process.env, HM9K_DEMO_RUN_ID: marker };
  // The demo starts its own control plane; nothing of the test run's shared one may leak into it.
  delete env.KUBECONFIG;
  // Nothing of the npm run that started vitest either (package paths, INIT_CWD).
  for (const k of Object.keys(env)) if (k.startsWith('npm_') || k === 'INIT_CWD') delete env[k];
  const [cmd, ...cmdArgs] = opts.command ?? [process.execPath, 'bin/hm9k.js', 'demo'];
  const child = spawn(cmd!, [...cmdArgs, ...args], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: opts.detached === true });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { child, marker, output: () => out, exited };
}

/** Processes whose environment carries the run's marker (everything the demo started, at any depth). */
function processesOf(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((e) => /^[0-9]+$/.test(e))) {
    if (Number(pid) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`HM9K_DEMO_RUN_ID=${marker}`)) continue;
      found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim()}`);
    } catch {
      /* exited meanwhile, or not ours */
    }
  }
  return found;
}

/** `ps` lines that mention the demo's working directory (config files, data dirs, logs). */
function psLinesWith(text: string): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((l) => l.includes(text) && !l.includes(' ps -eo'));
}

async function waitForOutput(run: Run, re: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(run.output())) {
    if (run.child.exitCode !== null) throw new Error(`demo exited (${run.child.exitCode}) before ${re}:\n${run.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`no ${re} within ${timeoutMs} ms:\n${run.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function noneLeft(marker: string, workDir: string | undefined): Promise<void> {
  // Give the kernel a moment to reap the last children.
  for (let i = 0; i < 20 && processesOf(marker).length; i++) await new Promise((r) => setTimeout(r, 250));
  expect(processesOf(marker)).toEqual([]);
  if (workDir) expect(psLinesWith(workDir)).toEqual([]);
}

describe('hm9k demo', () => {
  it('tells exactly what is missing and which project script installs it', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HM9K_CACHE: '/nonexistent/hm9k-cache' };
    delete env.KUBEBUILDER_ASSETS;
    const r = await runCommand(process.execPath, ['bin/hm9k.js', 'demo', '--exit'], { env, timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/missing on this machine/);
    expect(r.stderr).toMatch(/kube-apiserver: kube-apiserver in \/nonexistent\/hm9k-cache\/bin .*installed by scripts\/build-tools\.sh/);
    expect(r.stderr).toMatch(/etcd: .*scripts\/build-tools\.sh/);
    expect(r.stderr).toMatch(/bash scripts\/build-tools\.sh/);
    expect(r.stderr).toMatch(/--install/);
    expect(r.stdout).not.toMatch(/starting/);
  });

  // The README's demo command, as a new user runs it: in a fresh clone of this repository (its committed
  // HEAD), with no node_modules, so `npm run demo` must do its own set-up (scripts/setup.sh). The npm
  // cache and ~/.cache/hm9k (Node, Go-built tools) are the machine's, so the set-up costs an `npm ci`.
  it('a fresh clone: `npm run demo -- --script all --exit` sets itself up, plays every incident (against real OpenStack when installed), asserts each outcome, exits 0 and leaves no process behind', { timeout: 1_500_000 }, async () => {
    const cloneParent = mkdtempSync(join(tmpdir(), 'hm9k-fresh-clone-'));
    const clone = join(cloneParent, 'hm9k');
    const git = await runCommand('git', ['clone', '--quiet', '--no-hardlinks', process.cwd(), clone]);
    expect(git.status, git.stderr).toBe(0);
    expect(existsSync(join(clone, 'node_modules'))).toBe(false);
    const run = startDemo(['--script', 'all', '--exit'], { command: ['npm', 'run', 'demo', '--'], cwd: clone });
    let code: number | null;
    try {
      code = await run.exited;
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
    // The set-up ran and said so.
    expect(run.output(), run.output().slice(-6000)).toMatch(/\[setup\] installing node_modules \(npm ci/);
    expect(run.output()).toMatch(/\[setup\] ready: /);
    rmSync(cloneParent, { recursive: true, force: true });
    const out = run.output();
    const context = `\n--- demo output (end) ---\n${out.slice(-6000)}`;
    expect(code, context).toBe(0);
    const workDir = /working directory (\S+)/.exec(out)?.[1];
    expect(workDir, context).toBeDefined();

    // Real Nova when its packages are installed, and said plainly when not.
    if (REAL_NOVA) {
      expect(out).toMatch(/starting real OpenStack \(MariaDB, RabbitMQ, Keystone/);
      expect(out).toMatch(/starting real OpenStack up in [\d.]+s, \d+ MiB resident/);
      expect(out).not.toMatch(/FALLING BACK/);
    } else {
      expect(out).toMatch(/NO real OpenStack \(OpenStack packages missing .*\): FALLING BACK TO THE NOVA SIMULATOR/);
    }
    // The operator's view is printed at the start.
    expect(out).toMatch(/kubectl --kubeconfig \S+kubeconfig get hm9k -A/);
    expect(out).toMatch(/kubectl --kubeconfig \S+ describe cn cmp1/);
    expect(out).toMatch(/get events -A/);
    expect(out).toMatch(/bin\/hm9k\.js dump --kubeconfig \S+ --apps-url http:\/\/127\.0\.0\.1:\d+/);
    // The live table.
    expect(out).toMatch(/NODE\s+PHASE\s+MGMT\s+STOR\s+TEN\s+POWER\s+SERVERS\s+APP\s+DESIRED\s+RUNNING\s+CRASHED/);
    expect(out).toMatch(/cmp1\s+Fenced\s+\S+\s+\S+\s+\S+\s+off/);

    // Each incident's outcome, in the narrative.
    expect(out).toMatch(/result dea-dies: PASS .*restarted on other DEAs \(\d+ starts, 0 stops\)/);
    expect(out).toMatch(/result crash-loop: PASS .*restarted at once 3 times, then backoff .*Flapping=True/);
    expect(out).toMatch(/result rollout: PASS .*rolled from api-v1 to api-v2: 3 started, then 3 old stopped; nothing else stopped/);
    expect(out).toMatch(new RegExp(`result storage-lost: PASS .*cmp1 fenced \\(ipmi_sim: power off\\), nova-compute forced down, 3 servers evacuated by ${REAL_NOVA ? 'real Nova' : 'the Nova simulator'}, operators mailed`));
    if (REAL_NOVA) expect(out).toMatch(/check\s+ok\s+real Nova: nova-compute on cmp1 forced down and disabled/);
    expect(out).toMatch(/result bmc-dead: PASS .*FenceFailed; nothing evacuated/);
    expect(out).toMatch(/result storm: PASS .*StormActive; nothing fenced, powered off or evacuated/);
    expect(out).toMatch(/summary: 7 of 7 incidents passed/);
    expect(out).not.toMatch(/check\s+FAIL/);
    // The fence email is shown.
    expect(out).toMatch(/\| Subject: \[hm9k\] cmp1: fenced, 3\/3 servers evacuated/);
    expect(out).toMatch(/\| +kubectl annotate computenode cmp1 hm9k\.io\/acknowledge-fence=cmp1-/);
    // No secret of the world in the narrative.
    expect(out).not.toMatch(/BEGIN OPENSSH PRIVATE KEY|bulk-password|internal-password/);

    await noneLeft(run.marker, workDir);
    expect(existsSync(workDir!)).toBe(false);
  });

  it('an outcome that does not hold fails the run: non-zero exit, the failed assertions named', { timeout: 240_000 }, async () => {
    // A FencePolicy that does not evacuate: the storage-lost incident must notice that nothing was evacuated.
    const dir = mkdtempSync(join(tmpdir(), 'hm9k-demo-examples-'));
    try {
      cpSync('examples', dir, { recursive: true });
      const fp = readFileSync(join(dir, 'fencepolicy.yaml'), 'utf8');
      expect(fp).toMatch(/^ {2}evacuation:\n {4}enabled: true$/m);
      writeFileSync(join(dir, 'fencepolicy.yaml'), fp.replace(/^( {2}evacuation:\n {4}enabled:) true$/m, '$1 false'));
      // The simulator (said plainly): this checks the failure report, not Nova; real Nova's start-up is the fresh clone's.
      const run = startDemo(['--script', 'storage-lost', '--exit', '--nova-sim', '--examples', dir]);
      const code = await run.exited;
      const out = run.output();
      expect(code, out.slice(-4000)).toBe(1);
      expect(out).toMatch(/check\s+FAIL\s+every server evacuated/);
      expect(out).toMatch(/result storage-lost: FAIL/);
      expect(out).toMatch(/NO real OpenStack \(asked for with --nova-sim\): FALLING BACK TO THE NOVA SIMULATOR/);
      expect(out).toMatch(/FAILED: storage-lost did not hold/);
      const workDir = /configs, logs and kubeconfig kept in (\S+)/.exec(out)?.[1];
      expect(workDir).toBeDefined();
      expect(existsSync(join(workDir!, 'hm9k-nodes.log'))).toBe(true);
      await noneLeft(run.marker, workDir);
      rmSync(workDir!, { recursive: true, force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--interactive runs incidents typed by name; Ctrl-C tears everything down (real OpenStack included)', { timeout: 600_000 }, async () => {
    const run = startDemo(['--interactive'], { detached: true });
    try {
      await waitForOutput(run, /interactive: type an incident name/, 480_000);
      run.child.stdin!.write('no-such-incident\n');
      await waitForOutput(run, /unknown incident "no-such-incident"/, 10_000);
      run.child.stdin!.write('table\n');
      await waitForOutput(run, /interactive:[\s\S]*\| NODE\s+PHASE/, 10_000);
      run.child.stdin!.write('dea-dies\n');
      await waitForOutput(run, /result dea-dies: (PASS|FAIL)/, 90_000);
      expect(run.output()).toMatch(/result dea-dies: PASS/);
      // Ctrl-C in a terminal: SIGINT to the whole foreground process group.
      process.kill(-run.child.pid!, 'SIGINT');
    } catch (err) {
      process.kill(-run.child.pid!, 'SIGKILL');
      throw err;
    }
    const code = await run.exited;
    const out = run.output();
    expect(code, out.slice(-4000)).toBe(130);
    expect(out).toMatch(/SIGINT: tearing the world down/);
    expect(out).toMatch(/everything stopped/);
    await noneLeft(run.marker, /working directory (\S+)/.exec(out)?.[1]);
  });
});
