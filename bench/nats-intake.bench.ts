// Heartbeat intake through the real listener (src/apps/listener: subscribe, parse, validate, buffer
// newest per DEA, flush into the memory store) over a real nats-server on loopback, for a realistic
// fleet: 300 DEAs x 100 instances, several heartbeat rounds (each round every DEA's heartbeat once,
// alternating two variants so every flush applies changes). Baseline, measured in the same run on
// the same server and publisher: a bare NATS subscriber that JSON.parses the same payloads. Time per
// round = from the first publish until the last message was handled (and, for the listener, flushed).
// Target: listener throughput >= 0.5 x the baseline.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { resolveAppsConfig } from '../src/apps/config.js';
import { HEARTBEAT_SUBJECT, Listener } from '../src/apps/listener/index.js';
import { AppsMetrics } from '../src/apps/status/metrics.js';
import { MemoryStore } from '../src/apps/store/memory.js';
import type { DeaHeartbeat } from '../src/apps/types.js';
import { NatsServer } from '../src/devenv/nats.js';
import { makeFleet, type BenchRow } from './fleet.js';

const ROUNDS = 6;
const WARMUP = 2;

function variant(hbs: DeaHeartbeat[], round: number): DeaHeartbeat[] {
  return hbs.map((hb) => ({ ...hb, droplets: hb.droplets.map((d, i) => ((i + round) % 50 === 0 ? { ...d, state_timestamp: d.state_timestamp + round } : d)) }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

class CountingListener extends Listener {
  count = 0;
  target = Number.POSITIVE_INFINITY;
  onTarget: (() => void) | undefined;
  override ingestHeartbeat(raw: string | Uint8Array, subject?: string): boolean {
    const ok = super.ingestHeartbeat(raw, subject);
    if (++this.count >= this.target) this.onTarget?.();
    return ok;
  }
}

export async function run(): Promise<BenchRow[]> {
  const fleet = makeFleet(10_000, 100, 3);
  const deas = fleet.heartbeats.length;
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const payloads = [1, 2].map((r) => variant(fleet.heartbeats, r).map((hb) => enc.encode(JSON.stringify(hb))));
  const bytes = payloads[0]!.reduce((a, b) => a + b.byteLength, 0);

  const server = await NatsServer.start();
  const conns: NatsConnection[] = [];
  let listener: CountingListener | undefined;
  try {
    const pub = await connect({ servers: server.url });
    const subNc = await connect({ servers: server.url });
    const lisNc = await connect({ servers: server.url });
    conns.push(pub, subNc, lisNc);

    /** Publishes one round and waits until `done` resolves. */
    const round = async (r: number, arm: () => Promise<void>) => {
      const done = arm();
      const t = process.hrtime.bigint();
      for (const p of payloads[r % 2]!) pub.publish(HEARTBEAT_SUBJECT, p);
      await pub.flush();
      await done;
      return Number(process.hrtime.bigint() - t) / 1e6;
    };

    // Baseline: a bare subscriber decoding the payloads.
    let seen = 0;
    let want = Number.POSITIVE_INFINITY;
    let wake: (() => void) | undefined;
    const byDea = new Map<string, unknown>();
    const sub = subNc.subscribe(HEARTBEAT_SUBJECT, {
      callback: (err, msg) => {
        if (err) return;
        const v = JSON.parse(dec.decode(msg.data)) as { dea: string };
        byDea.set(v.dea, v);
        if (++seen >= want) wake?.();
      },
    });
    await subNc.flush();
    const baseTimes: number[] = [];
    for (let r = 0; r < ROUNDS + WARMUP; r++) {
      const ms = await round(r, () => new Promise<void>((res) => { want = seen + deas; wake = res; }));
      if (r >= WARMUP) baseTimes.push(ms);
    }
    sub.unsubscribe();
    await subNc.flush();

    // The real listener on its own connection (flush timer parked: flushed explicitly per round).
    const config = { ...resolveAppsConfig(), flushIntervalMs: 3_600_000 };
    const store = new MemoryStore(config.actualFreshnessTtlMs);
    listener = new CountingListener({ nats: lisNc, store, config: () => config, metrics: new AppsMetrics(new Registry()), logger: pino({ level: 'silent' }) });
    listener.start();
    await lisNc.flush();
    const l = listener;
    const times: number[] = [];
    const flushes: number[] = [];
    for (let r = 0; r < ROUNDS + WARMUP; r++) {
      const ms = await round(r, async () => {
        await new Promise<void>((res) => { l.target = l.count + deas; l.onTarget = res; });
        const t = process.hrtime.bigint();
        await l.flush();
        flushes.push(Number(process.hrtime.bigint() - t) / 1e6);
      });
      if (r >= WARMUP) times.push(ms);
    }
    const baseMs = median(baseTimes);
    const lisMs = median(times);
    const flushMs = median(flushes.slice(WARMUP));
    const throughput = baseMs / lisMs;
    return [
      {
        bench: 'nats-intake',
        subject: `listener over nats-server, per round: ${deas} DEAs / ${fleet.instances.toLocaleString('en')} instances (${(bytes / 1e6).toFixed(1)} MB), median of ${ROUNDS} rounds`,
        subjectMs: lisMs,
        baseline: 'bare NATS subscriber + JSON.parse, same payloads',
        baselineMs: baseMs,
        note: `${Math.round((deas / lisMs) * 1000).toLocaleString('en')} heartbeats/s vs ${Math.round((deas / baseMs) * 1000).toLocaleString('en')}/s; flush ${flushMs.toFixed(1)} ms (${l.lastFlushChanges} changes); throughput ${throughput.toFixed(2)} x baseline (target >= 0.5: ${throughput >= 0.5 ? 'met' : 'NOT met'}); ${store.instanceCount().toLocaleString('en')} instances stored`,
      },
    ];
  } finally {
    await listener?.stop();
    for (const c of conns) await c.close().catch(() => undefined);
    await server.stop();
  }
}
