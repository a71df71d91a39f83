// Fuzz: DEA heartbeats and droplet.exited, as NATS delivers them (bytes) and as POST /dea/heartbeat
// does. Never a throw; a rejected message is counted in hm9k_malformed_messages_total (logged once
// per kind, the log-once set bounded); an accepted one has exactly the wire types the store and the
// analyzer rely on; a flood of malformed messages leaves the store unchanged.
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Listener } from '../../src/apps/listener/index.js';
import { parseExited, parseHeartbeat } from '../../src/hm9000/parse.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { EXIT_REASONS, INSTANCE_STATES, type DeaHeartbeat } from '../../src/apps/types.js';

import { resolveAppsConfig, scaleTimings } from '../../src/apps/config.js';
import { budget, check, hostileBodies } from './support.js';
import { validExited, validHeartbeat } from './arbitraries.js';

const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const nonEmpty = (v: unknown) => typeof v === 'string' && v.length > 0;

function wellTypedHeartbeat(hb: DeaHeartbeat): void {
  expect(nonEmpty(hb.dea)).toBe(true);
  expect(Array.isArray(hb.droplets)).toBe(true);
  for (const d of hb.droplets) {
    expect(nonEmpty(d.droplet) && nonEmpty(d.version) && nonEmpty(d.instance)).toBe(true);
    expect(Number.isInteger(d.index) && d.index >= 0).toBe(true);
    expect(INSTANCE_STATES).toContain(d.state);
    expect(finite(d.state_timestamp)).toBe(true);
    if (d.cc_partition != null) expect(typeof d.cc_partition).toBe('string');
  }
}

const logger = pino({ level: 'silent' });
function listener() {
  const registry = new Registry();
  const metrics = new AppsMetrics(registry);
  const store = new MemoryStore(30_000);
  const config = scaleTimings(resolveAppsConfig(undefined), 10);
  const l = new Listener({ nats: undefined as never, store, config: () => config, metrics, logger });
  const count = async (name: string, labels: Record<string, string> = {}) =>
    (await registry.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
  return { l, store, count };
}

const RUNS = 400;
describe('fuzz: DEA messages', () => {
  // Defects the fuzzer found, kept as fixed examples (each failed before its fix).
  it('found: a droplet.exited whose crash_timestamp is not a number is rejected (it became state_timestamp)', () => {
    const base = { droplet: 'a', version: 'v', instance: 'i0', index: 0, reason: 'CRASHED' };
    expect(parseExited(JSON.stringify({ ...base, crash_timestamp: [{ x: 1 }] })).ok).toBe(false);
    expect(parseExited(JSON.stringify({ ...base, crash_timestamp: '17' })).ok).toBe(false);
    expect(parseExited(JSON.stringify({ ...base, exit_status: {} })).ok).toBe(false);
    // null is dea_ng's "no value": still a valid crash, never lost.
    expect(parseExited(JSON.stringify({ ...base, crash_timestamp: null, exit_status: null, exit_description: null })).ok).toBe(true);
    expect(parseHeartbeat(JSON.stringify({ dea: 'd', droplets: [{ droplet: 'a', version: 'v', instance: 'i', index: 0, state: 'RUNNING', state_timestamp: 1, cc_partition: { x: 1 } }] })).ok).toBe(false);
  });

  it('dea.heartbeat: never throws; rejected -> counted; accepted -> well typed and applied', { timeout: budget(RUNS, 20) }, async () => {
    const { l, store, count } = listener();
    let rejected = 0;
    let accepted = 0;
    await check('dea.heartbeat', fc.asyncProperty(hostileBodies(validHeartbeat, 'droplets'), fc.boolean(), async (body, asBytes) => {
      const raw = asBytes && typeof body === 'string' ? new TextEncoder().encode(body) : body;
      const p = parseHeartbeat(raw);
      if (p.ok) wellTypedHeartbeat(p.value);
      else expect(p.error.length).toBeGreaterThan(0);
      const before = await count('hm9k_malformed_messages_total', { subject: 'dea.heartbeat' });
      const ok = l.ingestHeartbeat(raw);
      expect(ok).toBe(p.ok);
      expect(await count('hm9k_malformed_messages_total', { subject: 'dea.heartbeat' })).toBe(before + (ok ? 0 : 1));
      if (ok) accepted++; else rejected++;
      await l.flush();
      // Every instance the store holds came from a well-typed heartbeat.
      for (const list of store.instancesByApp().values()) for (const i of list) expect(finite(i.state_timestamp) && Number.isInteger(i.index)).toBe(true);
    }), RUNS);
    expect(await count('hm9k_malformed_messages_total', { subject: 'dea.heartbeat' })).toBe(rejected);
    expect(await count('hm9k_received_heartbeats_total')).toBe(accepted);
    // The generator must reach both outcomes, or the property proves nothing.
    expect(rejected).toBeGreaterThan(RUNS / 10);
    expect(accepted).toBeGreaterThan(RUNS / 10);
    // Logged once per kind of error, and the set of kinds is bounded.
    expect((l as unknown as { loggedMalformed: Set<string> }).loggedMalformed.size).toBeLessThanOrEqual(1001);
  });

  it('droplet.exited: never throws; rejected -> counted; accepted -> well typed, store consistent', { timeout: budget(RUNS, 20) }, async () => {
    const { l, store, count } = listener();
    // Something for the exits to hit.
    l.ingestHeartbeat(JSON.stringify({ dea: 'd1', droplets: [{ droplet: 'a', version: 'v', instance: 'i0', index: 0, state: 'RUNNING', state_timestamp: 1 }] }));
    await l.flush();
    let rejected = 0;
    await check('droplet.exited', fc.asyncProperty(hostileBodies(validExited, 'instance'), async (body) => {
      const p = parseExited(body);
      if (p.ok) {
        const v = p.value;
        expect(nonEmpty(v.droplet) && nonEmpty(v.instance) && typeof v.version === 'string').toBe(true);
        expect(EXIT_REASONS).toContain(v.reason);
        expect(Number.isInteger(v.index) && v.index >= 0).toBe(true);
        if (v.crash_timestamp != null) expect(finite(v.crash_timestamp)).toBe(true);
        if (v.exit_status != null) expect(finite(v.exit_status)).toBe(true);
      } else rejected++;
      l.ingestExited(body);
      for (const list of store.instancesByApp().values()) for (const i of list) expect(finite(i.state_timestamp)).toBe(true);
    }), RUNS);
    expect(await count('hm9k_malformed_messages_total', { subject: 'droplet.exited' })).toBe(rejected);
    expect(rejected).toBeGreaterThan(RUNS / 10);
  });

  it('a flood of malformed heartbeats changes nothing in the store and keeps memory bounded', { timeout: budget(RUNS, 20) }, async () => {
    const { l, store } = listener();
    l.ingestHeartbeat(JSON.stringify({ dea: 'd1', droplets: [{ droplet: 'a', version: 'v', instance: 'i0', index: 0, state: 'RUNNING', state_timestamp: 1 }] }));
    await l.flush();
    const snapshot = JSON.stringify([...store.instancesByApp()]);
    const bad = hostileBodies(validHeartbeat, 'droplets').filter((b) => !parseHeartbeat(b).ok);
    const samples = fc.sample(bad, { numRuns: 300, seed: 42 });
    for (let round = 0; round < 3; round++) for (const b of samples) l.ingestHeartbeat(b);
    l.ingestHeartbeat(JSON.stringify({ dea: 'd1', droplets: [{ droplet: 'a', version: 'v', instance: 'i0', index: 0, state: 'RUNNING', state_timestamp: 1 }] }));
    await l.flush();
    expect(JSON.stringify([...store.instancesByApp()])).toBe(snapshot);
    expect((l as unknown as { buffer: Map<string, unknown> }).buffer.size).toBe(0);
    expect((l as unknown as { loggedMalformed: Set<string> }).loggedMalformed.size).toBeLessThanOrEqual(1001);
    console.log(`fuzz dea.heartbeat flood: ${samples.length * 3} malformed messages, store unchanged`);
  });
});
