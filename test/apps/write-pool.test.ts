// WritePool (src/apps/fetcher/write-pool.ts): never more than maxInFlight at once, and no more
// starts than one second's burst plus perSecond per second, on a fake clock.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WritePool } from '../../src/apps/fetcher/write-pool.js';

describe('WritePool', () => {
  afterEach(() => vi.useRealTimers());

  it('rate: a burst of perSecond, then perSecond per second', async () => {
    vi.useFakeTimers();
    const pool = new WritePool({ maxInFlight: 1000, perSecond: 10 }, () => Date.now());
    let started = 0;
    const all = Array.from({ length: 100 }, () => pool.run(async () => void started++));
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toBe(10);
    await vi.advanceTimersByTimeAsync(1000);
    expect(started).toBeGreaterThanOrEqual(19);
    expect(started).toBeLessThanOrEqual(21);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(started).toBe(100);
    await Promise.all(all);
  });

  it('parallelism: at most maxInFlight at once; results and errors reach the caller', async () => {
    const pool = new WritePool({ maxInFlight: 3, perSecond: 1_000_000 });
    let inFlight = 0;
    let max = 0;
    const job = (i: number) => pool.run(async () => {
      inFlight++;
      max = Math.max(max, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      if (i === 7) throw new Error('boom');
      return i;
    });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => job(i)));
    expect(max).toBe(3);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[8]).toEqual({ status: 'fulfilled', value: 8 });
  });
});
