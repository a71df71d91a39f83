// The image runs Node as src/production-runtime.ts says (the benchmarks measure hm9k that way), and
// Node accepts the options from the environment and the flags from its command line.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PRODUCTION_MALLOC_ARENA_MAX, PRODUCTION_NODE_FLAGS, PRODUCTION_NODE_OPTIONS, productionNodeEnv } from '../src/production-runtime.js';
import { imageEntrypoint } from './support/dockerfile.js';

const envOf = (dockerfile: string, name: string) => new RegExp(`^\\s*(?:ENV\\s+)?${name}=(\\S+?)\\s*\\\\?$`, 'm').exec(dockerfile)?.[1];

describe('production Node runtime', () => {
  it('the Dockerfile sets NODE_OPTIONS and MALLOC_ARENA_MAX as src/production-runtime.ts says', () => {
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    expect(envOf(dockerfile, 'NODE_OPTIONS')).toBe(PRODUCTION_NODE_OPTIONS);
    expect(envOf(dockerfile, 'MALLOC_ARENA_MAX')).toBe(PRODUCTION_MALLOC_ARENA_MAX);
  });

  it('Node takes the options from the environment: the young generation is the small one', () => {
    const newSpace = (env: NodeJS.ProcessEnv) => {
      const r = spawnSync(process.execPath, ['-e', "const keep = Array.from({ length: 300000 }, (_, i) => ({ i })); console.log(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size, keep.length)"], { env, encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(0);
      return Number(r.stdout.split(' ')[0]);
    };
    const { NODE_OPTIONS: _, ...plain } = process.env;
    const production = newSpace(productionNodeEnv(plain));
    expect(production).toBeLessThanOrEqual(3 * 2 * 1024 * 1024); // (semi-spaces of 2 MB)
    expect(newSpace(plain)).toBeGreaterThan(production);
  });

  it('the node flags go on the command line, where Node takes them (NODE_OPTIONS refuses them); the image runs them', () => {
    expect(imageEntrypoint()).toEqual(['/usr/bin/tini', '--', 'node', ...PRODUCTION_NODE_FLAGS, '/app/bin/hm9k.js']);
    const { NODE_OPTIONS: _, ...plain } = process.env;
    const onCommandLine = spawnSync(process.execPath, [...PRODUCTION_NODE_FLAGS, '-e', 'console.log(JSON.stringify(process.execArgv))'], { env: plain, encoding: 'utf8', timeout: 30_000 });
    expect(onCommandLine.status, onCommandLine.stderr).toBe(0);
    expect(JSON.parse(onCommandLine.stdout).slice(0, PRODUCTION_NODE_FLAGS.length)).toEqual(PRODUCTION_NODE_FLAGS);
    for (const flag of PRODUCTION_NODE_FLAGS) {
      const inEnv = spawnSync(process.execPath, ['-e', '0'], { env: { ...plain, NODE_OPTIONS: flag }, encoding: 'utf8', timeout: 30_000 });
      expect(inEnv.status).not.toBe(0);
      expect(inEnv.stderr).toMatch(/not allowed in NODE_OPTIONS/);
    }
  });

  it('keeps NODE_OPTIONS the caller already set', () => {
    expect(productionNodeEnv({ NODE_OPTIONS: '--enable-source-maps' }).NODE_OPTIONS).toBe(`--enable-source-maps ${PRODUCTION_NODE_OPTIONS}`);
  });
});
