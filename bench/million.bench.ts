// `npm run bench -- million` (issue 14 item 8): 1,000,000 instances on 10,000 DEAs, 333,333 apps,
// through a real nats-server, hm9k's real listener, store, fetcher, analyzer and sender loop at
// production timings (10 s heartbeats), for MILLION_PERIODS (6) heartbeat periods after actual
// state became fresh. Three processes: the world (CC simulator + DEA heartbeats, bench/million/
// world.ts), hm9k (bench/million/hm9k.ts: its CPU and RSS are measured alone), and this one, which
// also runs the baseline: a bare NATS subscriber that JSON.parses the same payloads. Targets:
// fresh and staying fresh, analyzer pass < 1 s, RSS < 2 GB, listener throughput >= 0.5x the bare
// subscriber (cold round included). MILLION_INSTANCES scales it down on a small machine.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { HEARTBEAT_SUBJECT } from '../src/hm9000/messages.js';
import { NatsServer } from '../src/devenv/nats.js';
import { LARGE_FLEET_NODE_FLAGS, LARGE_FLEET_NODE_OPTIONS, productionNodeEnv } from '../src/production-runtime.js';
import type { BenchRow } from './fleet.js';

const dir = dirname(fileURLToPath(import.meta.url));
const periodMs = 10_000;

interface Result {
  firstFreshAfterMs: number;
  samples: number;
  staleAfterFresh: number;
  passes: number[];
  slices: number[];
  walls: number[];
  maxLoopDelayMs: number;
  intakeBroken: number;
  cpuShare: number;
  wallMs: number;
  rss: number;
  heapUsed: number;
  instances: number;
  listenerMsPerRound: number;
  coldListenerMs: number;
  indexMsPerRound: number;
  coldIndexMs: number;
  receivedPerRound: number;
}

// hm9k's process runs Node as the image does with the large-fleet options (src/production-runtime.ts:
// Node's young generation, an 8 GB old-generation limit, LARGE_FLEET_NODE_FLAGS; MILLION_NODE_FLAGS replaces
// those flags). MILLION_CPU_PROF=dir: hm9k's process writes a V8 CPU profile there (node --cpu-prof).
const child = (file: string, env: Record<string, string>): ChildProcess =>
  fork(join(dir, 'million', file), { execArgv: [...(file === 'world.js' ? ['--max-old-space-size=8192'] : []), ...(file === 'hm9k.js' ? (process.env.MILLION_NODE_FLAGS?.split(' ').filter(Boolean) ?? LARGE_FLEET_NODE_FLAGS) : []), ...(file === 'hm9k.js' && process.env.MILLION_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.MILLION_CPU_PROF}`] : [])], env: { ...(file === 'hm9k.js' ? productionNodeEnv(process.env, LARGE_FLEET_NODE_OPTIONS) : process.env), ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const message = <T>(p: ChildProcess, op: string, timeoutMs: number): Promise<T> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${op}: no answer within ${timeoutMs} ms`)), timeoutMs);
    p.on('message', (m: { op: string }) => {
      if (m.op === op) {
        clearTimeout(t);
        resolve(m as T);
      }
    });
    p.once('exit', (code) => reject(new Error(`${op}: child exited with ${code}`)));
  });

export async function run(): Promise<BenchRow[]> {
  const nats = await NatsServer.start();
  const instancesWanted = process.env.MILLION_INSTANCES ?? '1000000';
  // Baseline: a bare subscriber decoding the same payloads (JSON.parse), time per round.
  const nc = await connect({ servers: nats.url });
  let bareMs = 0;
  let bareFirst: number | undefined;
  let bareCold = 0;
  let bareMsgs = 0;
  const dec = new TextDecoder();
  nc.subscribe(HEARTBEAT_SUBJECT, {
    callback: (_e, m) => {
      const t = performance.now();
      bareFirst ??= Date.now();
      JSON.parse(dec.decode(m.data));
      const ms = performance.now() - t;
      bareMs += ms;
      bareMsgs++;
      if (Date.now() - bareFirst < periodMs) bareCold += ms;
    },
  });
  const world = child('world.js', { NATS_URL: nats.url, MILLION_INSTANCES: instancesWanted });
  const w = await message<{ ccUrl: string; instances: number; deas: number; apps: number; bytesPerRound: number }>(world, 'ready', 600_000);
  process.stderr.write(`million: world ready (${w.instances} instances, ${w.deas} DEAs, ${w.apps} apps, ${(w.bytesPerRound / 1e6).toFixed(0)} MB per round)\n`);
  const hm9k = child('hm9k.js', { NATS_URL: nats.url, CC_URL: w.ccUrl });
  const bareAt = { ms: bareMs, msgs: bareMsgs, at: Date.now() };
  let r: Result;
  try {
    r = await message<Result>(hm9k, 'result', 900_000);
  } finally {
    hm9k.send({ op: 'stop' });
    world.send({ op: 'stop' });
  }
  // Bare subscriber over the same wall-clock span as hm9k's whole run, per round.
  const bareMsPerRound = ((bareMs - bareAt.ms) / (Date.now() - bareAt.at)) * periodMs;
  const bareMsgsPerRound = ((bareMsgs - bareAt.msgs) / (Date.now() - bareAt.at)) * periodMs;
  await nc.close();
  await new Promise((res) => setTimeout(res, 2000));
  world.kill();
  hm9k.kill();
  await nats.stop();

  const sorted = [...r.passes].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const max = sorted[sorted.length - 1] ?? NaN;
  const longestSlice = Math.max(...r.slices);
  const maxWall = Math.max(...r.walls);
  const throughput = bareMsPerRound / r.listenerMsPerRound;
  const cold = bareCold / r.coldListenerMs;
  const coldWithIndex = bareCold / (r.coldListenerMs + r.coldIndexMs);
  const line =
    `million: ${w.instances.toLocaleString('en')} instances / ${w.deas.toLocaleString('en')} DEAs / ${w.apps.toLocaleString('en')} apps, ${(r.wallMs / periodMs).toFixed(0)} heartbeat periods: ` +
    `actual state fresh ${(r.firstFreshAfterMs / 1000).toFixed(0)} s after start and ${r.staleAfterFresh === 0 ? 'stayed fresh' : `NOT fresh in ${r.staleAfterFresh} of ${r.samples} samples`} (store ${r.instances.toLocaleString('en')} instances); ` +
    `analyzer pass median ${median.toFixed(0)} ms, max ${max.toFixed(0)} ms of work (target < 1000) in slices of at most ${longestSlice.toFixed(0)} ms (${maxWall.toFixed(0)} ms wall), event loop held up at most ${r.maxLoopDelayMs.toFixed(0)} ms, heartbeat intake broken ${r.intakeBroken} times; CPU ${(r.cpuShare * 100).toFixed(0)}% of one core; RSS ${(r.rss / 1e6).toFixed(0)} MB (target < 2000), heap ${(r.heapUsed / 1e6).toFixed(0)} MB; ` +
    `heartbeats received per period: hm9k ${r.receivedPerRound.toFixed(0)}, bare subscriber ${bareMsgsPerRound.toFixed(0)}, DEAs ${w.deas}; ` +
    `listener throughput ${throughput.toFixed(2)}x a bare NATS subscriber decoding the same payloads (${r.listenerMsPerRound.toFixed(0)} vs ${bareMsPerRound.toFixed(0)} ms per round), cold round ${cold.toFixed(2)}x (target >= 0.5; ${r.coldListenerMs.toFixed(0)} vs ${bareCold.toFixed(0)} ms); the index by app, brought up to date between messages, ${r.indexMsPerRound.toFixed(0)} ms more per round and ${r.coldIndexMs.toFixed(0)} ms in the cold round (listener and index: cold round ${coldWithIndex.toFixed(2)}x)`;
  console.log(line);
  return [
    {
      bench: 'million',
      subject: `listener time per heartbeat round, ${w.instances.toLocaleString('en')} instances`,
      subjectMs: r.listenerMsPerRound,
      baseline: 'bare NATS subscriber JSON.parse, same payloads',
      baselineMs: bareMsPerRound,
      note: `analyzer pass median ${median.toFixed(0)} ms; CPU ${(r.cpuShare * 100).toFixed(0)}%; RSS ${(r.rss / 1e6).toFixed(0)} MB; ${r.staleAfterFresh === 0 ? 'stayed fresh' : 'freshness lost'}`,
    },
  ];
}
