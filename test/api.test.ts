// The checked-in CRDs are generated from src/api: this fails when they drift.
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { crdFiles } from '../src/cli/crds.js';
import { parse } from 'yaml';
import { parseDuration, formatDuration } from '../src/api/index.js';

describe('crds/', () => {
  it('matches what `hm9k crds` generates (run `npm run crds` after changing src/api)', () => {
    const generated = crdFiles();
    const onDisk = readdirSync('crds').filter((f) => f.endsWith('.yaml')).sort();
    expect(onDisk).toEqual([...generated.keys()].sort());
    for (const [file, text] of generated) expect(readFileSync(`crds/${file}`, 'utf8'), file).toBe(text);
  });

  it('reads back identically under YAML 1.1, as helm and kubectl read it (on/off stay strings)', async () => {
    const { allCrds } = await import('../src/api/index.js');
    const byName = new Map(allCrds().map((c) => [(c.metadata as { name: string }).name, c]));
    for (const [file, text] of crdFiles()) {
      const doc = parse(text, { version: '1.1' }) as { metadata: { name: string } };
      expect(doc, file).toEqual(byName.get(doc.metadata.name));
    }
  });

  it('bounds every list in every status (maxItems)', () => {
    const unbounded: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.type === 'array' && path.includes('.status') && typeof n.maxItems !== 'number') unbounded.push(path);
      for (const [k, v] of Object.entries(n)) walk(v, `${path}.${k}`);
    };
    for (const [file, text] of crdFiles()) walk(parse(text), file);
    expect(unbounded).toEqual([]);
  });
});

describe('durations', () => {
  it.each([
    ['10s', 10_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['2h', 7_200_000],
  ])('parses %s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', '10', 's', '10 s', '1d', '5m garbage'])('rejects %j with a clear error', (text) => {
    expect(() => parseDuration(text)).toThrow(/invalid duration/);
  });
  it('formats round values', () => {
    expect(formatDuration(90_000)).toBe('90s');
    expect(formatDuration(120_000)).toBe('2m');
    expect(formatDuration(250)).toBe('250ms');
  });
});

describe('docs/configuration.md', () => {
  it('matches the schemas (regenerate: node bin/hm9k.js config-reference > docs/configuration.md)', async () => {
    const { configurationReference } = await import('../src/cli/config-reference.js');
    expect(readFileSync('docs/configuration.md', 'utf8')).toBe(configurationReference());
  });
});

describe('docs/grafana/hm9k-dashboard.json', () => {
  it('only charts metrics that the code registers', async () => {
    const { execFileSync } = await import('node:child_process');
    const dash = JSON.parse(readFileSync('docs/grafana/hm9k-dashboard.json', 'utf8')) as { panels: { targets?: { expr: string }[] }[] };
    const names = new Set(dash.panels.flatMap((p) => p.targets ?? []).flatMap((t) => t.expr.match(/\b(hm9k|controller_runtime|workqueue|leader_election)_[a-z_]+/g) ?? []));
    expect(names.size).toBeGreaterThan(10);
    const src = execFileSync('grep', ['-rhoE', "'(hm9k|controller_runtime|workqueue|leader_election)_[a-z_]+'", 'src'], { encoding: 'utf8' });
    const registered = new Set(src.split('\n').map((l) => l.replace(/'/g, '')).filter(Boolean));
    expect([...names].filter((n) => !registered.has(n))).toEqual([]);
  });
});
