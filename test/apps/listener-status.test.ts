import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Listener } from '../../src/apps/listener/index.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { policyStatus } from '../../src/apps/status/index.js';
import { emptyPending } from '../../src/apps/types.js';
import type { NatsConnection } from '@nats-io/transport-node';

function listener() {
  const registry = new Registry();
  const metrics = new AppsMetrics(registry);
  const store = new MemoryStore(30_000);
  const logs: unknown[] = [];
  const logger = pino({ level: 'warn' }, { write: (s: string) => logs.push(JSON.parse(s)) });
  const exits: string[] = [];
  const l = new Listener({ nats: {} as NatsConnection, store, config: () => resolveAppsConfig(), metrics, logger, onExited: (e) => exits.push(e.reason) });
  return { l, store, registry, logs, exits };
}
const hb = (dea: string, state: string, ts = 1) => JSON.stringify({ dea, droplets: [{ droplet: 'a', version: 'v', instance: `${dea}-i`, index: 0, state, state_timestamp: ts }] });

describe('listener', () => {
  it('keeps only the newest heartbeat per DEA per flush, and a flush with heartbeats extends freshness', async () => {
    const { l, store } = listener();
    l.ingestHeartbeat(hb('d1', 'STARTING', 1));
    l.ingestHeartbeat(hb('d1', 'RUNNING', 2));
    await l.flush();
    expect(store.instancesOf('a').map((i) => i.state)).toEqual(['RUNNING']);
    expect(store.freshnessState().lastFlush).toBeDefined();
  });
  it('malformed messages are counted and logged once per kind, never applied', async () => {
    const { l, store, registry, logs } = listener();
    for (const bad of ['', '{', '{"dea":"x"}', '{"dea":"x","droplets":[{"droplet":"a"}]}', '{', hb('d1', 'DANCING')]) l.ingestHeartbeat(bad);
    l.ingestExited('{"droplet":"a","instance":"i","reason":"EXPLODED"}');
    await l.flush();
    expect(store.deaIds()).toEqual([]);
    const m = await registry.getSingleMetric('hm9k_malformed_messages_total')!.get();
    expect(m.values.find((v) => v.labels.subject === 'dea.heartbeat')!.value).toBe(6);
    expect(m.values.find((v) => v.labels.subject === 'droplet.exited')!.value).toBe(1);
    expect(logs.length).toBe(6); // '{' twice: logged once
  });
  it('after a flush the index by app is brought up to date in slices, with no read asking for it (issue 14 item 8)', async () => {
    const { l, store } = listener();
    // 27,000 new instances: more than one slice of index changes.
    for (let d = 0; d < 3; d++) {
      const droplets = Array.from({ length: 9000 }, (_, n) => ({ droplet: `app-${n % 3000}`, version: 'v', instance: `dea-${d}-i${n}`, index: d, state: 'RUNNING', state_timestamp: 1 }));
      expect(l.ingestHeartbeat(JSON.stringify({ dea: `dea-${d}`, droplets }))).toBe(true);
    }
    await l.flush();
    // (unsettledCount applies nothing: only the listener's slices can bring it to 0)
    const deadline = Date.now() + 20_000;
    while (store.unsettledCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(store.unsettledCount()).toBe(0);
    expect(store.instanceCount()).toBe(27_000);
    expect(store.instancesOf('app-7').map((i) => i.dea_guid).sort()).toEqual(['dea-0', 'dea-1', 'dea-2', 'dea-0', 'dea-1', 'dea-2', 'dea-0', 'dea-1', 'dea-2'].sort());
    await l.stop();
  });

  it('droplet.exited CRASHED and DEA_EVACUATION trigger the fast path; STOPPED does not', () => {
    const { l, exits } = listener();
    for (const reason of ['CRASHED', 'STOPPED', 'DEA_EVACUATION', 'DEA_SHUTDOWN']) l.ingestExited(JSON.stringify({ droplet: 'a', version: 'v', instance: 'i', index: 0, reason }));
    expect(exits).toEqual(['CRASHED', 'DEA_EVACUATION', 'DEA_SHUTDOWN']);
  });
});

describe('AppHealthPolicy status', () => {
  const base = { now: Date.UTC(2024, 0, 1), actualFresh: false, desiredFresh: true, pending: emptyPending(), sender: { sent: 0, failed: 0 }, paused: false, dryRun: false };
  it('reports freshness, the stop hold with its id, and -1 counts when not fresh', () => {
    const st = policyStatus(undefined, { ...base, stopHold: { id: 'hold-x', reason: '9 stops', since: base.now, stopsHeld: 9 } });
    const c = Object.fromEntries(st.conditions!.map((x) => [x.type, x]));
    expect(c.ActualStateFresh!.status).toBe('False');
    expect(c.DesiredStateFresh!.status).toBe('True');
    expect(c.StopHold!.status).toBe('True');
    expect(c.StopHold!.message).toContain('hm9k.io/release-stop-hold=hold-x');
    expect(st.stopHold).toMatchObject({ id: 'hold-x', stopsHeld: 9 });
    expect(st.counts!.running).toBe(-1);
  });
  it('is equal when nothing changed (so nothing is written), lastTransitionTime kept', () => {
    const policy = { apiVersion: 'hm9k.io/v1alpha1', kind: 'AppHealthPolicy', metadata: { name: 'cf', generation: 1 }, spec: {} };
    const a = policyStatus(policy, base);
    const b = policyStatus({ ...policy, status: a }, { ...base, now: base.now + 60_000 });
    expect(b).toEqual(a);
  });
});

describe('listener: heartbeats lost to NATS (issue 14 item 8)', () => {
  it('a dropped NATS connection revokes actual freshness at once and is counted (not only after the TTL lapses)', async () => {
    const { NatsServer } = await import('../../src/devenv/nats.js');
    const { connect } = await import('@nats-io/transport-node');
    const server = await NatsServer.start();
    const nats = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    const registry = new Registry();
    const metrics = new AppsMetrics(registry);
    const store = new MemoryStore(30_000);
    const logs: { msg?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => logs.push(JSON.parse(s)) });
    // Freshness as of an unbroken streak that began 40 s ago (one TTL is 30 s); the clock is real.
    const l = new Listener({ nats, store, config: () => resolveAppsConfig(), metrics, logger });
    l.start();
    try {
      store.recordFlush(Date.now() - 40_000);
      store.recordFlush(Date.now() - 20_000);
      store.recordFlush(Date.now());
      expect(store.actualFreshness.isFresh(Date.now())).toBe(true);
      await server.stop();
      const deadline = Date.now() + 20_000;
      while (store.actualFreshness.isFresh(Date.now()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Well within the TTL of the last flush: only the disconnect can have made it stale.
      expect(store.actualFreshness.isFresh(Date.now())).toBe(false);
      const m = await registry.getSingleMetric('hm9k_heartbeat_intake_broken_total')!.get();
      expect(m.values.find((v) => v.labels.why === 'disconnect')?.value).toBeGreaterThanOrEqual(1);
      expect(logs.some((e) => e.msg?.includes('heartbeat intake broken'))).toBe(true);
    } finally {
      await l.stop();
      await nats.close().catch(() => undefined);
      await server.stop();
    }
  });
});
