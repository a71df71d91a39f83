// The listener's heartbeat intake: every DEA's heartbeat (as NATS delivers it: bytes) parsed,
// validated and buffered (newest per DEA), then one flush applying them to the actual state (only
// changes). Two rounds: cold (every instance new) and steady (the same fleet again, 2% of the
// instances changed state). Baseline, measured in the same run: JSON.parse of the same messages into
// a Map by DEA (what a bare NATS subscriber decoding the payloads does). The target is a
// throughput of at least 0.5 x the baseline.
import { Registry } from 'prom-client';
import pino from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import { resolveAppsConfig } from '../src/apps/config.js';
import { Listener } from '../src/apps/listener/index.js';
import { AppsMetrics } from '../src/apps/status/metrics.js';
import { MemoryStore } from '../src/apps/store/memory.js';
import type { DeaHeartbeat } from '../src/apps/types.js';
import { makeFleet, medianMs, type BenchRow } from './fleet.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function steadyVariant(hbs: DeaHeartbeat[], round: number): DeaHeartbeat[] {
  return hbs.map((hb) => ({ ...hb, droplets: hb.droplets.map((d, i) => ((i + round) % 50 === 0 ? { ...d, state_timestamp: d.state_timestamp + round } : d)) }));
}

export async function run(): Promise<BenchRow[]> {
  const fleet = makeFleet(30_000, 100, 3);
  const config = resolveAppsConfig();
  const cold = fleet.heartbeats.map((hb) => enc.encode(JSON.stringify(hb)));
  const steady = [1, 2, 3, 4, 5, 6, 7, 8].map((r) => steadyVariant(fleet.heartbeats, r).map((hb) => enc.encode(JSON.stringify(hb))));
  const bytes = cold.reduce((a, b) => a + b.byteLength, 0);

  const listenerWith = () => {
    const store = new MemoryStore(30_000);
    const listener = new Listener({ nats: {} as NatsConnection, store, config: () => config, metrics: new AppsMetrics(new Registry()), logger: pino({ level: 'silent' }) });
    return { store, listener };
  };
  const intake = async (listener: Listener, msgs: Uint8Array[]) => {
    for (const m of msgs) listener.ingestHeartbeat(m);
    await listener.flush();
  };
  const baseline = (msgs: Uint8Array[]) => {
    const byDea = new Map<string, unknown>();
    for (const m of msgs) {
      const v = JSON.parse(dec.decode(m)) as { dea: string };
      byDea.set(v.dea, v);
    }
    return byDea.size;
  };

  const rows: BenchRow[] = [];
  const per = (ms: number) => `${Math.round((cold.length / ms) * 1000).toLocaleString('en')} heartbeats/s, ${Math.round((fleet.instances / ms) * 1000).toLocaleString('en')} instances/s`;

  // Cold: a fresh store each run (every instance is a change).
  const baseCold = await medianMs(() => baseline(cold), 5, 2);
  const coldMs = await medianMs(async () => intake(listenerWith().listener, cold), 5, 1);
  rows.push({ bench: 'listener', subject: `intake+flush, cold: ${cold.length} DEAs / ${fleet.instances.toLocaleString('en')} instances (${(bytes / 1e6).toFixed(1)} MB)`, subjectMs: coldMs, baseline: 'JSON.parse of the same messages', baselineMs: baseCold, note: `${per(coldMs)}; throughput ${(baseCold / coldMs).toFixed(2)} x baseline (target >= 0.5)` });

  // Steady: one store, the fleet again each run with 2% of instances changed.
  const { listener, store } = listenerWith();
  await intake(listener, cold);
  let round = 0;
  const baseSteady = await medianMs(() => baseline(steady[round++ % steady.length]!), 5, 2);
  round = 0;
  const steadyMs = await medianMs(async () => intake(listener, steady[round++ % steady.length]!), 5, 2);
  rows.push({ bench: 'listener', subject: `intake+flush, steady (2% changed): ${cold.length} DEAs / ${store.instanceCount().toLocaleString('en')} instances`, subjectMs: steadyMs, baseline: 'JSON.parse of the same messages', baselineMs: baseSteady, note: `${per(steadyMs)}; throughput ${(baseSteady / steadyMs).toFixed(2)} x baseline (target >= 0.5); ${listener.lastFlushChanges} changes applied in the last flush` });
  return rows;
}
