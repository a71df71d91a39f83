// One cold listener round of the cold-round bench, in a fresh process (argv[2] = mode): every DEA's
// first heartbeat, as the million world publishes them, into an empty store holding the fleet's
// desired state. `bare`: JSON.parse only (the million bench's baseline). `hm9k`: the listener's intake
// (parse and validate, share unchanged entries, buffer per DEA) with a flush of the buffer every
// 1,000 heartbeats into the store, as the listener's 1 s flush does at 10,000 DEAs per 10 s, and,
// timed apart (`indexMs`), the store's index by app brought up to date after each flush.
// `retain`: parse and validate keeping every parsed heartbeat. `lookup`: that plus one lookup of each
// instance's app in the desired state, the least a store indexed by app does per instance (heartbeats
// come in DEA order and an app's instances are spread over the DEAs: each lookup is a random access).
import { makeFleet } from '../fleet.js';
import { parseHeartbeat } from '../../src/hm9000/parse.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import type { DeaHeartbeat } from '../../src/hm9000/messages.js';

const modes = ['bare', 'retain', 'lookup'] as const;
const mode = modes.find((m) => m === process.argv[2]) ?? 'hm9k';
const instances = Number(process.env.COLD_INSTANCES ?? 1_000_000);
let fleet: ReturnType<typeof makeFleet> | undefined = makeFleet(Math.round(instances / 3), 100, 3);
const enc = new TextEncoder();
const messages = fleet.heartbeats.map((hb) => enc.encode(JSON.stringify(hb)));
const store = new MemoryStore(30_000);
store.setDesired(new Map(fleet.desired), Date.now());
fleet = undefined;
const dec = new TextDecoder();
const buffer = new Map<string, DeaHeartbeat>();
// The listener applies the index changes of a flush in slices between messages: timed apart.
let indexMs = 0;
const flush = () => {
  for (const hb of buffer.values()) store.applyHeartbeat(hb, Date.now());
  buffer.clear();
  const t = performance.now();
  store.settleIndex(Infinity);
  indexMs += performance.now() - t;
};
const kept: DeaHeartbeat[] = [];
const desired = store.desired();
let found = 0;
const started = performance.now();
let n = 0;
for (const m of messages) {
  if (mode === 'bare') {
    JSON.parse(dec.decode(m));
    continue;
  }
  const p = parseHeartbeat(m);
  if (!p.ok) throw new Error(p.error);
  if (mode === 'retain' || mode === 'lookup') {
    kept.push(p.value);
    if (mode === 'lookup') for (const d of p.value.droplets) if (desired.get(d.droplet)) found++;
    continue;
  }
  buffer.set(p.value.dea, store.shareUnchanged(p.value));
  if (++n % 1000 === 0) flush();
}
flush();
const ms = performance.now() - started - indexMs;
process.send!({ op: 'result', ms, indexMs, found, stored: mode === 'retain' || mode === 'lookup' ? kept.reduce((a, hb) => a + hb.droplets.length, 0) : store.instanceCount(), rss: process.memoryUsage().rss });
