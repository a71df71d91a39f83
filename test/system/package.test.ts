// The npm package (issue 10, item 4): `npm pack` builds dist/ in prepack and ships only what runs
// (bin, dist, crds, examples, README; no src, test, bench, .ci), and an installed tarball runs
// `hm9k version` and `hm9k run --help` without the dev dependencies (no tsx).
// Packed from a copy of the repository's files, so no dist/ appears in the work tree (bin/hm9k.js
// would prefer it to src/ for every later test).
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../support/command.js';

const work = mkdtempSync(join(tmpdir(), 'hm9k-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[], cwd?: string) => runCommand(cmd, args, cwd ? { cwd } : {});

describe('npm package', () => {
  it('npm pack builds and ships only what runs; the installed tarball runs hm9k version and hm9k run --help', { timeout: 600_000 }, async () => {
    const src = join(work, 'src-copy');
    // What a clone holds, plus files not committed yet (a developer's run).
    const tracked = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' }).split('\0').filter((f) => f && existsSync(f));
    for (const f of tracked) cpSync(f, join(src, f), { recursive: true });
    symlinkSync(resolve('node_modules'), join(src, 'node_modules'));
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], src);
    expect(packed.status, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const paths = info!.files.map((f) => f.path);
    expect(paths).toContain('bin/hm9k.js');
    expect(paths).toContain('dist/cli.js');
    expect(paths).toContain('crds/fencepolicies.hm9k.io.yaml');
    expect(paths).toContain('package.json');
    for (const p of paths) expect(p).toMatch(/^(bin|dist|crds|examples)\/|^(package\.json|README\.md|LICENSE)$/);
    expect(paths.filter((p) => p.endsWith('.test.js'))).toEqual([]);

    const prefix = join(work, 'installed');
    const inst = await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--omit=dev', join(work, info!.filename)]);
    expect(inst.status, inst.stderr).toBe(0);
    expect(readdirSync(join(prefix, 'node_modules'))).not.toContain('tsx');
    const bin = join(prefix, 'node_modules', '.bin', 'hm9k');
    const version = await run(bin, ['version'], work);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout).toMatch(/^hm9k \d+\.\d+\.\d+/);
    const help = await run(bin, ['run', '--help'], work);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: hm9k run \[options\]/);
    expect(help.stdout).toMatch(/--nodes/);
    // client-node is inside dist/kube/client.js, tree-shaken (issue 14 item 9), and works from there:
    // a kubeconfig loads and an API client is made from it.
    const client = join(prefix, 'node_modules', 'hm9k', 'dist', 'kube', 'client.js');
    expect(readFileSync(client, 'utf8')).not.toMatch(/from ["']@kubernetes\/client-node/);
    const probe = await run(process.execPath, ['--input-type=module', '-e', `import { KubeConfig, CustomObjectsApi } from ${JSON.stringify(pathToFileURL(client).href)}; const kc = new KubeConfig(); kc.loadFromClusterAndUser({ name: 'c', server: 'https://127.0.0.1:1' }, { name: 'u', token: 't' }); console.log(typeof kc.makeApiClient(CustomObjectsApi).listClusterCustomObject)`], work);
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.stdout.trim()).toBe('function');
  });
});
