// The command line (src/cli.ts, commander): per-command help generated from the options, usage errors
// exit 2 naming the problem, `dump --skip-nodes` without `--apps-url` refuses, and no kubeconfig is
// one clear error and a fast exit (issue 10, item 12).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const hm9k = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = spawnSync(process.execPath, ['bin/hm9k.js', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('hm9k command line', () => {
  it.each([
    ['run', [/--apps/, /--nodes/, /--config <file>/, /--set <path=value>/, /--namespace/, /--kubeconfig/, /--log-level/, /--metrics-port/, /--health-port/]],
    ['dump', [/--json/, /--kubeconfig/, /--apps-url/, /--apps-user/, /--apps-password-env/, /--skip-nodes/]],
    ['crds', [/--write <dir>/]],
  ] as const)('hm9k %s --help lists every option and exits 0', (cmd, flags) => {
    const r = hm9k([cmd, '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: hm9k ${cmd} \\[options\\]`));
    for (const f of flags) expect(r.stdout).toMatch(f);
  });

  it('the top-level help names every command; an unknown option is a usage error (exit 2) that says which', () => {
    const h = hm9k(['--help']);
    expect(h.code).toBe(0);
    for (const c of ['run', 'crds', 'dump', 'demo', 'config-reference', 'version']) expect(h.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    const bad = hm9k(['run', '--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown option '--bogus'/);
    expect(hm9k(['version']).stdout).toMatch(/^hm9k \d+\.\d+\.\d+/);
  });

  it('dump --skip-nodes without --apps-url refuses instead of printing nothing', () => {
    const r = hm9k(['dump', '--skip-nodes']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--skip-nodes leaves out the nodes, so --apps-url URL is needed/);
  });

  it('no kubeconfig and not in a cluster: one clear error, exit 1 at once', () => {
    const home = mkdtempSync(join(tmpdir(), 'hm9k-nohome-'));
    const env = { HOME: home, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' };
    for (const args of [['run'], ['dump']]) {
      const r = hm9k(args, env);
      expect(r.code, r.stderr).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toEqual([expect.stringMatching(new RegExp(`^hm9k: no kubeconfig found \\(looked at --kubeconfig, KUBECONFIG \\(unset\\), ${home}/\\.kube/config\\); not in a cluster`))]);
      expect(r.stderr).not.toMatch(/HTTP protocol is not allowed/);
    }
  });
});
