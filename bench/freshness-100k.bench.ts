// Does actual state become and stay fresh at 100,000 apps / 300,000 instances / 3,000 DEAs, and at
// what memory? The memory store + the real listener (intake as the NATS callback calls it:
// ingestHeartbeat on the raw bytes, then one flush per heartbeat period). Production timings: a
// round every heartbeatPeriod (10 s) on a virtual clock (the listener's `now`, advanced by one period
// per round plus the real time spent), so a flush that really takes longer than a heartbeat period
// revokes freshness exactly as in production. Round 1 is cold (every instance new), later rounds
// change 2% of the instances. "holds" = fresh from one TTL after the first flush until the end, and
// every intake+flush shorter than the heartbeat period (the listener's own limit) and the TTL.
// Baseline, measured in the same run: JSON.parse of the same round's messages.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { Registry } from 'prom-client';
import { resolveAppsConfig } from '../src/apps/config.js';
import { Listener } from '../src/apps/listener/index.js';
import { AppsMetrics } from '../src/apps/status/metrics.js';
import { MemoryStore } from '../src/apps/store/memory.js';
import type { DeaHeartbeat } from '../src/apps/types.js';
import { makeFleet, type BenchRow } from './fleet.js';

const ROUNDS = 8;

function variant(hbs: DeaHeartbeat[], round: number): DeaHeartbeat[] {
  return hbs.map((hb) => ({ ...hb, droplets: hb.droplets.map((d, i) => ((i + round) % 50 === 0 ? { ...d, state_timestamp: d.state_timestamp + round } : d)) }));
}

const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

export async function run(): Promise<BenchRow[]> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  gc?.();
  const mem0 = process.memoryUsage();
  let fleet: ReturnType<typeof makeFleet> | undefined = makeFleet(100_000, 100, 3);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  // Two encoded variants alternate (keeps the bench's own memory bounded).
  let encoded: Uint8Array[][] = [1, 2].map((r) => variant(fleet!.heartbeats, r).map((hb) => enc.encode(JSON.stringify(hb))));
  let cold: Uint8Array[] = fleet.heartbeats.map((hb) => enc.encode(JSON.stringify(hb)));
  const bytes = cold.reduce((a, b) => a + b.byteLength, 0);

  const config = resolveAppsConfig();
  const period = config.heartbeatPeriodMs;
  const ttl = config.actualFreshnessTtlMs;
  let virtual = Date.parse('2025-01-01T00:00:00Z');
  let realStart = Date.now();
  const now = () => virtual + (Date.now() - realStart);
  const store = new MemoryStore(ttl);
  const listener = new Listener({ nats: {} as never, store, config: () => config, metrics: new AppsMetrics(new Registry()), logger: pino({ level: 'silent' }), now });

  const times: number[] = [];
  const fresh: boolean[] = [];
  let firstFresh = -1;
  let revoked = false;
  for (let r = 0; r < ROUNDS; r++) {
    const msgs = r === 0 ? cold : encoded[r % 2]!;
    const t = process.hrtime.bigint();
    for (const m of msgs) listener.ingestHeartbeat(m);
    await listener.flush();
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    times.push(ms);
    if (store.freshnessState().lastFlush === undefined) revoked = true;
    const f = store.actualFreshness.isFresh(now());
    fresh.push(f);
    if (f && firstFresh < 0) firstFresh = r;
    // Next round one heartbeat period later (virtual), whatever this one really took.
    virtual += period;
    realStart = Date.now();
  }

  // Baseline: JSON.parse of one steady round's messages.
  const baseTimes: number[] = [];
  for (let r = 0; r < 4; r++) {
    const t = process.hrtime.bigint();
    const byDea = new Map<string, unknown>();
    for (const m of encoded[r % 2]!) {
      const v = JSON.parse(dec.decode(m)) as { dea: string };
      byDea.set(v.dea, v);
    }
    baseTimes.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  baseTimes.sort((a, b) => a - b);
  const deaCount = fleet.heartbeats.length;
  const instances = fleet.instances;
  // Memory of what stays: the store and the listener (the bench's own fleet and messages dropped).
  fleet = undefined;
  encoded = [];
  cold = [];
  gc?.();
  const mem1 = process.memoryUsage();
  const baseMs = baseTimes[Math.floor(baseTimes.length / 2)]!;
  const steady = times.slice(1).sort((a, b) => a - b);
  const steadyMedian = steady[Math.floor(steady.length / 2)]!;
  const worst = Math.max(...times);
  // Fresh from the first round one TTL after the first flush, and never lost afterwards.
  const expectedFirst = Math.ceil(ttl / period);
  const stays = firstFresh >= 0 && fresh.slice(firstFresh).every(Boolean);
  const holds = stays && !revoked && worst < period && worst < ttl;
  const verdict = holds ? 'holds' : 'does not hold';
  console.log(`freshness-100k: ${verdict} (rounds fresh: ${fresh.map((f) => (f ? 'F' : '-')).join('')}; first fresh after round ${firstFresh + 1}, expected ${expectedFirst + 1}; cold ${times[0]!.toFixed(0)} ms, steady median ${steadyMedian.toFixed(0)} ms, worst ${worst.toFixed(0)} ms vs heartbeat period ${period} ms / TTL ${ttl} ms; rss ${mb(mem1.rss)}, heap used ${mb(mem1.heapUsed)}${gc ? '' : ' (no gc: heap not collected first)'})`);
  return [
    {
      bench: 'freshness-100k',
      subject: `intake+flush per round, cold: 100,000 apps / ${instances.toLocaleString('en')} instances / ${deaCount} DEAs (${(bytes / 1e6).toFixed(0)} MB)`,
      subjectMs: times[0]!,
      baseline: 'JSON.parse of one round',
      baselineMs: baseMs,
      note: `${(times[0]! / period * 100).toFixed(1)}% of the heartbeat period (${period} ms), ${(times[0]! / ttl * 100).toFixed(1)}% of the TTL (${ttl} ms)`,
    },
    {
      bench: 'freshness-100k',
      subject: `intake+flush per round, steady (2% changed), median of ${ROUNDS - 1} rounds`,
      subjectMs: steadyMedian,
      baseline: 'JSON.parse of one round',
      baselineMs: baseMs,
      note: `worst ${worst.toFixed(0)} ms; ${(steadyMedian / ttl * 100).toFixed(1)}% of the TTL; fresh ${fresh.map((f) => (f ? 'F' : '-')).join('')} (first after round ${firstFresh + 1}, expected ${expectedFirst + 1}); ${verdict}`,
    },
    {
      bench: 'freshness-100k',
      subject: 'memory after the rounds (store + listener; the bench\'s own fleet and messages dropped, then GC)',
      subjectMs: mem1.heapUsed / 1e6,
      baseline: 'heap used before building the fleet',
      baselineMs: mem0.heapUsed / 1e6,
      unit: 'MB',
      note: `rss ${mb(mem1.rss)} (before ${mb(mem0.rss)}); heap used +${mb(mem1.heapUsed - mem0.heapUsed)}; ${store.instanceCount().toLocaleString('en')} instances stored${gc ? '' : '; no --expose-gc'}`,
    },
  ];
}
