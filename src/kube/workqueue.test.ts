import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Queue, RateLimiter } from './workqueue.js';
import { ControllerRunner } from './controller.js';
import { TerminalError } from './contract.js';

const noLimit = { qps: 0, burst: 0 };

describe('work queue', () => {
  afterEach(() => vi.useRealTimers());

  it('deduplicates: N adds of one key give one item', async () => {
    const q = new Queue({ name: 't', rateLimiter: noLimit });
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.len()).toBe(0);
  });

  it('a key added while processing is queued again once, after done', async () => {
    const q = new Queue({ name: 't', rateLimiter: noLimit });
    q.add('a');
    const k = await q.get();
    expect(k).toBe('a');
    q.add('a');
    q.add('a');
    // not handed out while processing
    expect(q.len()).toBe(0);
    q.done('a');
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
  });

  it('never hands one key to two workers at once', async () => {
    const q = new Queue({ name: 't', rateLimiter: noLimit });
    q.add('a');
    const first = await q.get();
    q.add('a');
    let second: string | undefined;
    const p = q.get().then((k) => (second = k));
    await new Promise((r) => setTimeout(r, 5));
    expect(second).toBeUndefined();
    expect(q.isProcessing('a')).toBe(true);
    q.done(first!);
    await p;
    expect(second).toBe('a');
  });

  it('per-item exponential backoff grows from 5 ms, caps at 1000 s, and forget resets it', () => {
    const rl = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 0, burst: 0 });
    const delays = Array.from({ length: 6 }, () => rl.when('a'));
    expect(delays).toEqual([5, 10, 20, 40, 80, 160]);
    expect(rl.when('b')).toBe(5); // per item
    for (let i = 0; i < 30; i++) rl.when('a');
    expect(rl.when('a')).toBe(1_000_000);
    expect(rl.numRequeues('a')).toBe(37);
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.when('a')).toBe(5);
  });

  it('the overall bucket limits bursts of failures across keys', () => {
    let now = 0;
    const rl = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 2 }, () => now);
    expect(rl.when('a')).toBe(5);
    expect(rl.when('b')).toBe(5);
    expect(rl.when('c')).toBe(100); // bucket empty: 1/10 s
    now = 1000;
    expect(rl.when('d')).toBe(5);
  });

  it('delayed adds arrive after their delay; the earliest of two wins', async () => {
    vi.useFakeTimers();
    const q = new Queue({ name: 't', rateLimiter: noLimit });
    q.addAfter('a', 1000);
    q.addAfter('a', 300);
    q.addAfter('a', 5000);
    expect(q.len()).toBe(0);
    expect(q.pending()).toBe(1);
    vi.advanceTimersByTime(299);
    expect(q.len()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.len()).toBe(1);
    expect(q.pending()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(q.len()).toBe(1); // later schedules were merged into the earliest
  });

  it('addRateLimited delays by the backoff and counts retries', async () => {
    vi.useFakeTimers();
    const reg = new Registry();
    const q = new Queue({ name: 'rl', metrics: reg, rateLimiter: noLimit });
    q.addRateLimited('a'); // 5 ms
    q.addRateLimited('a'); // earliest (5 ms) kept
    vi.advanceTimersByTime(4);
    expect(q.len()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.len()).toBe(1);
    const retries = await reg.getSingleMetric('workqueue_retries_total')!.get();
    expect(retries.values.find((v) => v.labels.name === 'rl')?.value).toBe(2);
  });

  it('shutdown wakes idle workers with undefined and refuses new keys', async () => {
    const q = new Queue({ name: 't', rateLimiter: noLimit });
    const p = q.get();
    q.shutdown();
    expect(await p).toBeUndefined();
    q.add('x');
    expect(q.len()).toBe(0);
    expect(await q.get()).toBeUndefined();
  });

  it('exports controller-runtime metric names with label name', async () => {
    const reg = new Registry();
    const q = new Queue({ name: 'm', metrics: reg, rateLimiter: noLimit });
    q.add('a');
    q.add('b');
    const k = await q.get();
    q.done(k!);
    const text = await reg.metrics();
    expect(text).toContain('workqueue_depth{name="m"} 1');
    expect(text).toContain('workqueue_adds_total{name="m"} 2');
    expect(text).toMatch(/workqueue_queue_duration_seconds_count\{name="m"\} 1/);
    expect(text).toMatch(/workqueue_work_duration_seconds_count\{name="m"\} 1/);
  });
});

describe('controller runner', () => {
  const logger = pino({ level: 'silent' });

  it('error -> rate-limited requeue; success -> forget; requeueAfter -> delayed add; terminal -> no retry', async () => {
    const reg = new Registry();
    let calls = 0;
    const runner = new ControllerRunner(
      {
        name: 'c',
        async reconcile(key) {
          calls++;
          if (key === 'err') throw new Error('boom');
          if (key === 'term') throw new TerminalError('bad spec');
          if (key === 'later') return { requeueAfterMs: 60_000 };
        },
      },
      { logger, metrics: reg, rateLimiter: noLimit },
    );
    await runner.processOne('err');
    expect(runner.queue.numRequeues('err')).toBe(1);
    expect(runner.queue.pending()).toBe(1);
    await runner.processOne('err');
    expect(runner.queue.numRequeues('err')).toBe(2);
    await runner.processOne('ok');
    expect(runner.queue.numRequeues('ok')).toBe(0);
    await runner.processOne('term');
    expect(runner.queue.numRequeues('term')).toBe(0);
    await runner.processOne('later');
    expect(runner.queue.pending()).toBe(2); // err and later
    expect(calls).toBe(5);
    const text = await reg.metrics();
    expect(text).toContain('controller_runtime_reconcile_total{controller="c",result="error"} 3');
    expect(text).toContain('controller_runtime_reconcile_total{controller="c",result="success"} 1');
    expect(text).toContain('controller_runtime_reconcile_total{controller="c",result="requeue_after"} 1');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="c"} 3');
    expect(text).toMatch(/controller_runtime_reconcile_time_seconds_count\{controller="c"\} 5/);
    await runner.stop(1000);
  });

  it('with many workers, one key is never reconciled concurrently and every add after a change is seen', async () => {
    const active = new Set<string>();
    let overlap = 0;
    const seen = new Map<string, number>();
    const version = new Map<string, number>();
    const runner = new ControllerRunner(
      {
        name: 'p',
        async reconcile(key) {
          if (active.has(key)) overlap++;
          active.add(key);
          const v = version.get(key) ?? 0;
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          seen.set(key, Math.max(seen.get(key) ?? 0, v));
          active.delete(key);
        },
      },
      { logger, workers: 4, rateLimiter: noLimit },
    );
    runner.start();
    for (let round = 1; round <= 20; round++) {
      for (const k of ['a', 'b', 'c']) {
        version.set(k, round);
        runner.queue.add(k);
      }
      await new Promise((r) => setTimeout(r, Math.random() * 2));
    }
    // wait until the queue is idle
    for (let i = 0; i < 200 && (runner.queue.len() > 0 || ['a', 'b', 'c'].some((k) => runner.queue.isProcessing(k))); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(overlap).toBe(0);
    for (const k of ['a', 'b', 'c']) expect(seen.get(k)).toBe(20);
    await runner.stop(1000);
  });
});
