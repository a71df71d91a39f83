// A synthetic Cloud Foundry fleet for the benchmarks: desired apps (CC's bulk answer) and one
// heartbeat per DEA (dea_ng's format), with a little realistic disorder: some indices missing,
// some crashed, some extras and duplicates, a few apps STOPPED or on an old version.
import type { DeaHeartbeat, DesiredAppState, DropletHeartbeat } from '../src/apps/types.js';

export interface Fleet {
  desired: Map<string, DesiredAppState>;
  heartbeats: DeaHeartbeat[];
  instances: number;
}

/** Deterministic pseudo-random numbers (no Math.random: every run measures the same fleet). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function makeFleet(apps: number, instancesPerDea: number, instancesPerApp: number, seed = 42): Fleet {
  const r = rng(seed);
  const desired = new Map<string, DesiredAppState>();
  const droplets: DropletHeartbeat[] = [];
  const ts = 1_700_000_000;
  for (let a = 0; a < apps; a++) {
    const guid = `app-${a.toString(36).padStart(6, '0')}-0000-4000-8000-${a.toString(16).padStart(12, '0')}`;
    const version = `v-${a % 97}-${a}`;
    const roll = r();
    const state = roll < 0.01 ? 'STOPPED' : 'STARTED';
    desired.set(guid, { appGuid: guid, version, instances: instancesPerApp, state, packageState: roll > 0.995 ? 'PENDING' : 'STAGED' });
    for (let i = 0; i < instancesPerApp; i++) {
      const x = r();
      if (x < 0.005) continue; // missing
      const v = x > 0.997 ? `old-${version}` : version; // an old version still running
      droplets.push({ cc_partition: 'default', droplet: guid, version: v, instance: `${guid}-${i}`, index: i, state: x < 0.01 ? 'CRASHED' : 'RUNNING', state_timestamp: ts + i });
    }
    if (r() < 0.002) droplets.push({ cc_partition: 'default', droplet: guid, version, instance: `${guid}-extra`, index: instancesPerApp, state: 'RUNNING', state_timestamp: ts });
    if (r() < 0.002) droplets.push({ cc_partition: 'default', droplet: guid, version, instance: `${guid}-dup`, index: 0, state: 'RUNNING', state_timestamp: ts + 5 });
  }
  // Spread instances over DEAs, instancesPerDea each (shuffled so an app's instances land on different DEAs).
  for (let i = droplets.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [droplets[i], droplets[j]] = [droplets[j]!, droplets[i]!];
  }
  const heartbeats: DeaHeartbeat[] = [];
  for (let d = 0; d * instancesPerDea < droplets.length; d++) {
    heartbeats.push({ dea: `dea-${d}`, droplets: droplets.slice(d * instancesPerDea, (d + 1) * instancesPerDea) });
  }
  return { desired, heartbeats, instances: droplets.length };
}

/** Runs fn `runs` times after `warmup` runs; returns the median in ms. */
export async function medianMs(fn: () => unknown | Promise<unknown>, runs = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export interface BenchRow {
  bench: string;
  /** What was measured. */
  subject: string;
  subjectMs: number;
  /** What it is compared with, measured in the same run. */
  baseline: string;
  baselineMs: number;
  /** Extra figures (throughput, memory, targets). */
  note?: string;
  /** Unit of subjectMs / baselineMs when they are not milliseconds (e.g. 'req/min'). */
  unit?: string;
}
