// The fetcher's unconfirmed removals (README, safety rules): CC's bulk API ends paging with an empty
// page, so an empty page mid-paging reads as a complete desired state lacking the apps after it. The
// fetcher marks the apps the previous complete fetch desired and this one omits; the analyzer does
// not stop them until a second fetch also lacks them. Real fetcher, CC simulator over HTTP.
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { analyze } from '../../src/apps/analyzer/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { Fetcher } from '../../src/apps/fetcher/index.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { emptyPending } from '../../src/apps/types.js';
import { CcClient } from '../../src/clients/cc.js';
import { CloudControllerSim } from '../../src/sim/cc.js';

const T0 = 1_700_000_000_000;
const config = resolveAppsConfig(undefined);
let cc: CloudControllerSim;
beforeEach(async () => {
  cc = new CloudControllerSim();
  await cc.listen();
  // 10 apps of one instance, paged 2 at a time: 5 pages and a final empty one.
  for (let i = 0; i < 10; i++) cc.setApp({ guid: `a${i}`, version: 'v1', instances: 1, state: 'STARTED', package_state: 'STAGED' });
});
afterEach(() => cc.close());

function harness() {
  const store = new MemoryStore(config.actualFreshnessTtlMs);
  const client = new CcClient({ url: cc.url, bulkUser: 'bulk_api', bulkPassword: 'bulk-password', internalUser: 'internal_api', internalPassword: 'internal-password', timeoutMs: 5000, batchSize: 2 });
  const fetcher = new Fetcher({ cc: client, store, config: () => ({ ...config, bulkBatchSize: 2 }), metrics: new AppsMetrics(new Registry()), logger: pino({ level: 'silent' }) });
  const heartbeat = (at: number) => {
    store.applyHeartbeat({ dea: 'dea-0', droplets: Array.from({ length: 10 }, (_, i) => ({ droplet: `a${i}`, version: 'v1', instance: `i${i}`, index: 0, state: 'RUNNING' as const, state_timestamp: 1 })) }, at);
    store.recordFlush(at);
  };
  for (let t = T0 - config.actualFreshnessTtlMs; t <= T0; t += config.heartbeatPeriodMs) heartbeat(t);
  /** The stops one analysis pass over the store decides, by app. */
  const stops = (now: number) =>
    analyze(
      { actualFresh: store.actualFreshness.isFresh(now), desiredFresh: true, desired: store.desired(), instances: store.instancesByApp(), crashCounts: new Map(), unconfirmedRemovals: store.unconfirmedRemovals() },
      now,
      config,
      emptyPending(),
    ).stops.map((s) => s.appGuid).sort();
  return { store, fetcher, stops };
}

it('an empty page mid-paging: the apps after it are not stopped; the next complete fetch brings them back', async () => {
  const { store, fetcher, stops } = harness();
  expect((await fetcher.fetchOnce(T0)).apps).toBe(10);
  expect(store.unconfirmedRemovals().size).toBe(0);
  // Page 5 (a8, a9) empty: paging ends there, 20% of the apps missing (under the shrink guard's 30%).
  cc.inject({ kind: 'empty', endpoint: 'bulk', page: 5 });
  const partial = await fetcher.fetchOnce(T0 + 1);
  expect(partial).toMatchObject({ ok: true, apps: 8, unconfirmedRemovals: 2 });
  expect([...store.unconfirmedRemovals()].sort()).toEqual(['a8', 'a9']);
  expect(stops(T0 + 1)).toEqual([]);
  expect((await fetcher.fetchOnce(T0 + 2)).apps).toBe(10);
  expect(store.unconfirmedRemovals().size).toBe(0);
  expect(stops(T0 + 2)).toEqual([]);
  // A second partial fetch after a complete one is again unconfirmed (not a confirmation).
  cc.inject({ kind: 'empty', endpoint: 'bulk', page: 5 });
  await fetcher.fetchOnce(T0 + 3);
  expect(stops(T0 + 3)).toEqual([]);
});

it('an app deleted in CC is stopped once a second fetch also lacks it; an app listed STOPPED at once', async () => {
  const { store, fetcher, stops } = harness();
  await fetcher.fetchOnce(T0);
  cc.deleteApp('a3');
  cc.updateApp('a5', { state: 'STOPPED' });
  await fetcher.fetchOnce(T0 + 1);
  expect([...store.unconfirmedRemovals()]).toEqual(['a3']);
  expect(stops(T0 + 1)).toEqual(['a5']);
  await fetcher.fetchOnce(T0 + 2);
  expect(store.unconfirmedRemovals().size).toBe(0);
  expect(stops(T0 + 2)).toEqual(['a3', 'a5']);
});

it('a fetch refused by the shrink guard keeps the unconfirmed removals of the state it keeps', async () => {
  const { store, fetcher } = harness();
  await fetcher.fetchOnce(T0);
  cc.deleteApp('a0');
  await fetcher.fetchOnce(T0 + 1);
  expect([...store.unconfirmedRemovals()]).toEqual(['a0']);
  // Page 2 empty: 7 of the 9 apps lost, refused; the kept state still lacks a0 unconfirmed.
  cc.inject({ kind: 'empty', endpoint: 'bulk', page: 2 });
  expect((await fetcher.fetchOnce(T0 + 2)).guarded).toBeDefined();
  expect([...store.unconfirmedRemovals()]).toEqual(['a0']);
});
