// bin/hm9k.js picks the compiled CLI only when it cannot be stale: a dist/ older than a source edit
// (left by an earlier `npm run demo` or `npm run build`) must not run instead of the sources.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../support/command.js';

describe('bin/hm9k.js', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hm9k-bin-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'dist'));
  mkdirSync(join(dir, 'src', 'sub'), { recursive: true });
  copyFileSync(resolve('bin/hm9k.js'), join(dir, 'bin', 'hm9k.js'));
  symlinkSync(resolve('node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'dist', 'cli.js'), "console.log('built');\n");
  writeFileSync(join(dir, 'src', 'cli.ts'), "const from: string = 'source';\nconsole.log(from);\n");
  writeFileSync(join(dir, 'src', 'sub', 'deep.ts'), 'export {};\n');
  const run = async () => (await runCommand(process.execPath, [join(dir, 'bin', 'hm9k.js')], { timeoutMs: 120_000 })).stdout.trim();
  const at = (path: string, s: number) => utimesSync(join(dir, path), s, s);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs dist/ when it is newer than every source file', async () => {
    at('src/cli.ts', 1000);
    at('src/sub/deep.ts', 1000);
    at('dist/cli.js', 2000);
    expect(await run()).toBe('built');
  });
  it('runs the sources when any source file (even a nested one) is newer than dist/', async () => {
    at('src/sub/deep.ts', 3000);
    expect(await run()).toBe('source');
  });
  it('runs dist/ where there are no sources (the package, the image)', async () => {
    rmSync(join(dir, 'src'), { recursive: true });
    expect(await run()).toBe('built');
  });
});

describe('npm run demo', () => {
  // The script builds first (sh -c '...'); its arguments must still reach `hm9k demo`: they were
  // dropped once, so `npm run demo -- --script all --exit` ran the interactive world until Ctrl-C.
  it('passes its arguments through to hm9k demo', async () => {
    const r = await runCommand('npm', ['run', '--silent', 'demo', '--', '--help'], { timeoutMs: 170_000, env: { ...process.env, HM9K_SKIP_SETUP: '1' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Without --exit the world keeps running/);
  }, 180_000);
});
