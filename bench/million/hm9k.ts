// hm9k's app half in its own process for the million bench: the real listener, store, fetcher,
// analyzer and sender loop (startApps, production timings, memory store, projection off: it needs
// an apiserver, and bench/desiredapps.bench.ts measures it), against the world process's NATS and
// CC. Reports freshness, analyzer pass times, listener time, CPU and memory over the run.
import { startApps } from '../../src/apps/index.js';
import { fakeRuntime } from '../../test/apps/support/fake-runtime.js';

const periodMs = 10_000;
const runtime = fakeRuntime({ logLevel: process.env.HM9K_BENCH_LOG ?? 'silent' });
const apps = await startApps(runtime, {
  nats: { servers: [process.env.NATS_URL!] },
  cc: { url: process.env.CC_URL!, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password' },
  sendVia: 'http',
  store: { kind: 'memory' },
  api: { port: 0, user: 'hm', password: 'pw' },
  desiredAppNamespace: 'cf',
  projectDesiredApps: false,
});

// Listener time: heartbeat intake (parse, validate, buffer) and flushes into the store.
const l = apps.listener;
let listenerMs = 0;
let received = 0;
let firstHeartbeatAt: number | undefined;
let coldListenerMs = 0;
const ingest = l.ingestHeartbeat.bind(l);
l.ingestHeartbeat = (raw, subject) => {
  const t = performance.now();
  firstHeartbeatAt ??= Date.now();
  received++;
  const ok = ingest(raw, subject);
  const ms = performance.now() - t;
  listenerMs += ms;
  if (Date.now() - firstHeartbeatAt < periodMs) coldListenerMs += ms;
  return ok;
};
const flush = l.flush.bind(l);
l.flush = async () => {
  const t = performance.now();
  await flush();
  const ms = performance.now() - t;
  listenerMs += ms;
  if (firstHeartbeatAt !== undefined && Date.now() - firstHeartbeatAt < periodMs + 1000) coldListenerMs += ms;
};

// The index by app, brought up to date between messages (and by reads): timed apart.
const store = apps.store;
let indexMs = 0;
let coldIndexMs = 0;
const settleIndex = store.settleIndex.bind(store);
store.settleIndex = (max) => {
  const t = performance.now();
  const left = settleIndex(max);
  const ms = performance.now() - t;
  indexMs += ms;
  if (firstHeartbeatAt !== undefined && Date.now() - firstHeartbeatAt < periodMs + 1000) coldIndexMs += ms;
  return left;
};

const started = Date.now();
let firstFresh: number | undefined;
let staleAfterFresh = 0;
let samples = 0;
const passes: number[] = [];
const slices: number[] = [];
const walls: number[] = [];
let lastPass: { workMs: number } | undefined;
// The longest the event loop was held up (any cause), sampled every 1 s tick.
const { monitorEventLoopDelay } = await import('node:perf_hooks');
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();
const intakeBroken = async () => ((await runtime.metrics.getSingleMetric('hm9k_heartbeat_intake_broken_total')?.get())?.values ?? []).reduce((a, v) => a + v.value, 0);
let window: { at: number; cpu: NodeJS.CpuUsage; listenerMs: number; indexMs: number; received: number } | undefined;
const periods = Number(process.env.MILLION_PERIODS ?? 6);
const timer = setInterval(() => {
  const now = Date.now();
  const fresh = apps.store.actualFreshness.isFresh(now);
  if (fresh && firstFresh === undefined) {
    firstFresh = now;
    window = { at: now, cpu: process.cpuUsage(), listenerMs, indexMs, received };
    loopDelay.reset(); // (start-up, module loading included before, is not the steady loop)
  }
  if (firstFresh !== undefined) {
    samples++;
    if (!fresh) staleAfterFresh++;
  }
  const p = apps.analysisPass();
  if (p !== undefined && p !== lastPass) {
    lastPass = p;
    passes.push(p.workMs);
    slices.push(p.longestSliceMs);
    walls.push(p.wallMs);
  }
  if (window && now - window.at >= periods * periodMs) {
    clearInterval(timer);
    void finish(now);
  }
}, 1000);
const finish = async (now: number) => {
  {
    if (!window) return;
    const cpu = process.cpuUsage(window.cpu);
    const wall = now - window.at;
    const mem = process.memoryUsage();
    process.send!({
      op: 'result',
      firstFreshAfterMs: firstFresh! - started,
      samples,
      staleAfterFresh,
      passes,
      slices,
      walls,
      maxLoopDelayMs: loopDelay.max / 1e6,
      intakeBroken: await intakeBroken(),
      cpuShare: (cpu.user + cpu.system) / 1000 / wall,
      wallMs: wall,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      instances: apps.store.instanceCount(),
      listenerMsPerRound: ((listenerMs - window.listenerMs) / wall) * periodMs,
      coldListenerMs,
      indexMsPerRound: ((indexMs - window.indexMs) / wall) * periodMs,
      coldIndexMs,
      receivedPerRound: ((received - window.received) / wall) * periodMs,
      decided: apps.lastDecisions()?.counts,
    });
  }
};
process.on('message', async (m: { op: string }) => {
  if (m.op === 'stop') {
    await apps.stop().catch(() => undefined);
    process.exit(0);
  }
});
