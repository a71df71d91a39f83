// `hm9k dump`'s text for apps at scale (issue 14 item 11): an app with 200,000 instances renders
// (Math.max(...200,000 indices) threw a RangeError), and an absurd desired count renders its
// missing indices as one range, not one line each.
import { describe, expect, it } from 'vitest';
import { renderApps, type AppsDump } from '../../src/apps/dump.js';

const dump = (instances: number, running: number[]): AppsDump => ({
  at: '2024-05-01T12:00:00.000Z',
  actualFresh: true,
  desiredFresh: true,
  deas: 1,
  apps: [{ appGuid: 'big', desired: { version: 'v1', instances, state: 'STARTED', packageState: 'STAGED' }, instances: running.map((index) => ({ index, version: 'v1', state: 'RUNNING', instance: `i${index}`, dea: 'dea-a' })), crashCounts: [], pendingStarts: [], pendingStops: [] }],
});

describe('dump text at scale', () => {
  it('an app with 200,000 instances renders one line per index', () => {
    const n = 200_000;
    const text = renderApps(dump(n, Array.from({ length: n }, (_, i) => i)), new Date());
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBe(3 + n);
    expect(lines[3]).toBe('  [0] RUNNING on dea-a');
    expect(lines.at(-1)).toBe(`  [${n - 1}] RUNNING on dea-a`);
  });

  it('missing indices: one line for one, one range for a run, also for a billion desired', () => {
    expect(renderApps(dump(5, [1, 2]), new Date())).toContain('  [0] MISSING\n  [1] RUNNING on dea-a\n  [2] RUNNING on dea-a\n  [3-4] MISSING\n');
    const text = renderApps(dump(1_000_000_000, [0, 7]), new Date());
    expect(text).toContain('  [0] RUNNING on dea-a\n  [1-6] MISSING\n  [7] RUNNING on dea-a\n  [8-999999999] MISSING\n');
    expect(text.split('\n').length).toBeLessThan(10);
  });

  it('an instance at an index beyond the desired count is listed, the gap before it as missing (as before)', () => {
    expect(renderApps(dump(1, [0, 3]), new Date())).toContain('  [0] RUNNING on dea-a\n  [1-2] MISSING\n  [3] RUNNING on dea-a\n');
  });
});
