// `npm run bench -- cold-round` (issue 14 item 8, the listener's cold round in isolation): the first
// heartbeat of every DEA of the million fleet (COLD_INSTANCES, default 1,000,000 instances on 10,000
// DEAs) through the listener's intake and flushes into an empty store, against a bare JSON.parse of
// the same payloads, each in a fresh process with the large-fleet Node options and COLD_RUNS (3) runs
// each (median), the listener's parse and validation keeping every parsed heartbeat (no store), and
// that plus one lookup of each instance's app in the desired state: the floor of a store indexed by app.
// No NATS and no other process: the quick loop for work on the store's cold path,
// whose whole-system figure is the million bench's "cold round" (target >= 0.5x).
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LARGE_FLEET_NODE_FLAGS, LARGE_FLEET_NODE_OPTIONS, productionNodeEnv } from '../src/production-runtime.js';
import type { BenchRow } from './fleet.js';

const dir = dirname(fileURLToPath(import.meta.url));
interface Result { ms: number; indexMs?: number; stored: number; found: number; rss: number }

const once = (mode: 'bare' | 'retain' | 'lookup' | 'hm9k'): Promise<Result> =>
  new Promise((resolve, reject) => {
    const p = fork(join(dir, 'cold-round', 'intake.js'), [mode], { execArgv: [...LARGE_FLEET_NODE_FLAGS], env: productionNodeEnv(process.env, LARGE_FLEET_NODE_OPTIONS), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    // (the child's IPC channel would keep it, and its ~1 GB heap, alive through the next runs)
    p.once('message', (m: Result) => {
      p.kill();
      resolve(m);
    });
    p.once('exit', (code) => reject(new Error(`cold-round ${mode}: exited with ${code} before its result`)));
  });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchRow[]> {
  const runs = Number(process.env.COLD_RUNS ?? 3);
  const modes = ['bare', 'retain', 'lookup', 'hm9k'] as const;
  const results = { bare: [] as Result[], retain: [] as Result[], lookup: [] as Result[], hm9k: [] as Result[] };
  for (let i = 0; i < runs; i++) for (const mode of modes) results[mode].push(await once(mode));
  // A lookup that misses is cheaper: the floor holds only if every instance's app was found.
  for (const r of results.lookup) if (r.found !== r.stored) throw new Error(`cold-round lookup: ${r.found} of ${r.stored} apps found`);
  const [bareMs, retainMs, lookupMs, hm9kMs] = modes.map((mode) => median(results[mode].map((r) => r.ms))) as [number, number, number, number];
  const last = results.hm9k[runs - 1]!;
  const indexMs = median(results.hm9k.map((r) => r.indexMs ?? 0));
  const totalMs = median(results.hm9k.map((r) => r.ms + (r.indexMs ?? 0)));
  const n = last.stored.toLocaleString('en');
  console.log(`cold-round: ${n} instances into an empty store: listener ${hm9kMs.toFixed(0)} ms, bare JSON.parse ${bareMs.toFixed(0)} ms: throughput ${(bareMs / hm9kMs).toFixed(2)}x (target >= 0.5); the index by app brought up to date between messages ${indexMs.toFixed(0)} ms more: listener and index ${totalMs.toFixed(0)} ms, ${(bareMs / totalMs).toFixed(2)}x; RSS ${(last.rss / 1e6).toFixed(0)} MB; parse and validation keeping every parsed heartbeat (no store) ${retainMs.toFixed(0)} ms: ${(bareMs / retainMs).toFixed(2)}x; that plus one app lookup per instance ${lookupMs.toFixed(0)} ms: ${(bareMs / lookupMs).toFixed(2)}x`);
  return [
    { bench: 'cold-round', subject: `listener cold round, ${n} instances (median of ${runs})`, subjectMs: hm9kMs, baseline: 'bare JSON.parse, same payloads', baselineMs: bareMs, note: `throughput ${(bareMs / hm9kMs).toFixed(2)}x` },
    { bench: 'cold-round', subject: `listener cold round and the index by app brought up to date (median of ${runs})`, subjectMs: totalMs, baseline: 'bare JSON.parse, same payloads', baselineMs: bareMs, note: `throughput ${(bareMs / totalMs).toFixed(2)}x (index ${indexMs.toFixed(0)} ms)` },
    { bench: 'cold-round', subject: `parse + validate, keeping every heartbeat, no store (median of ${runs})`, subjectMs: retainMs, baseline: 'bare JSON.parse, same payloads', baselineMs: bareMs, note: `throughput ${(bareMs / retainMs).toFixed(2)}x: the floor of a store with an object per instance` },
    { bench: 'cold-round', subject: `parse + validate + keep + one app lookup per instance (median of ${runs})`, subjectMs: lookupMs, baseline: 'bare JSON.parse, same payloads', baselineMs: bareMs, note: `throughput ${(bareMs / lookupMs).toFixed(2)}x: the floor of a store indexed by app` },
  ];
}
