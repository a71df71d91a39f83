// Crash -> Cloud Controller start request latency through the fast path: a DEA simulator publishes
// droplet.exited CRASHED over a real nats-server, the app half (startApps on the in-memory runtime,
// as test/apps/world.ts runs it, 1/10 timings) analyzes that app at once and POSTs the start to the
// CC simulator. Latency = from the crash (publish) to CC receiving the start. One crash per app
// (first crashes restart at once: no backoff), one at a time. Baseline, measured in the same run:
// a NATS request/reply round trip on the same server. Target: p99 < 1 s.
import { world } from '../test/apps/world.js';
import type { BenchRow } from './fleet.js';

const APPS = 60;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function run(): Promise<BenchRow[]> {
  const spec: [string, number][] = Array.from({ length: APPS }, (_, i) => [`crash-${i}`, 2]);
  const w = await world(spec);
  try {
    const { apps } = await w.start();
    await until(() => apps.isLeaderActive() && apps.store.actualFreshness.isFresh(Date.now()) && apps.store.lastCompleteFetch() !== undefined, 'app half leading, fresh', 60_000);
    // Let the periodic sender settle (nothing to do in a converged fleet).
    await new Promise((r) => setTimeout(r, 1500));
    const lat: number[] = [];
    for (let i = 0; i < APPS; i++) {
      const app = `crash-${i}`;
      const target = w.fleet.instances(app).find((x) => x.index === 0);
      if (!target) continue;
      const before = w.cc.requests.length;
      const wall0 = Date.now();
      w.fleet.crash(target.guid);
      let hit: { at: number } | undefined;
      await until(() => {
        hit = w.cc.requests.slice(before).find((r) => r.endpoint === 'start' && r.status === 200 && (r.body as { droplet?: string }).droplet === app);
        return !!hit;
      }, `start of ${app}`, 10_000);
      // CC records `at` with Date.now() (ms); the poll above adds up to its 5 ms period, so use `at`.
      lat.push(Math.max(hit!.at - wall0, 0));
      await until(() => w.fleet.instances(app).some((x) => x.index === 0 && x.state === 'RUNNING'), `${app} running again`, 10_000);
    }

    // Baseline: NATS request/reply round trips on the same server.
    const sub = w.nc.subscribe('bench.echo', { callback: (_e, m) => void m.respond(m.data) });
    await w.nc.flush();
    const rtt: number[] = [];
    for (let i = 0; i < 200 + 20; i++) {
      const t = performance.now();
      await w.nc.request('bench.echo', 'x', { timeout: 5000 });
      if (i >= 20) rtt.push(performance.now() - t);
    }
    sub.unsubscribe();
    const p50 = pct(lat, 50);
    const p99 = pct(lat, 99);
    return [
      {
        bench: 'crash-latency',
        subject: `crash -> CC start (fast path), p50 of ${lat.length} crashes`,
        subjectMs: p50,
        baseline: 'NATS round trip p50 (same server)',
        baselineMs: pct(rtt, 50),
        note: `max ${Math.max(...lat)} ms; CC timestamps in whole ms`,
      },
      {
        bench: 'crash-latency',
        subject: `crash -> CC start (fast path), p99 of ${lat.length} crashes`,
        subjectMs: p99,
        baseline: 'NATS round trip p99 (same server)',
        baselineMs: pct(rtt, 99),
        note: `target p99 < 1000 ms: ${p99 < 1000 ? 'met' : 'NOT met'}`,
      },
    ];
  } finally {
    await w.close();
  }
}
