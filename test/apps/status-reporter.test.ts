// StatusReporter (src/apps/status/reporter.ts): DesiredApp status is written for changed apps only,
// nothing at all in steady state, nothing while state is not fresh, a failed write is retried, and
// nothing is written by a replica that does not lead.
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CcClient } from '../../src/clients/cc.js';
import { analyze } from '../../src/apps/analyzer/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { Fetcher } from '../../src/apps/fetcher/index.js';
import { DesiredAppProjection } from '../../src/apps/fetcher/projection.js';
import { ProjectionSync } from '../../src/apps/fetcher/projection-sync.js';
import { PolicySource } from '../../src/apps/policy.js';
import { Sender } from '../../src/apps/sender/index.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { StatusReporter } from '../../src/apps/status/reporter.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { emptyPending, type DesiredAppState, type InstanceHeartbeat } from '../../src/apps/types.js';
import type { AppHealthPolicy, DesiredApp } from '../../src/api/index.js';
import type { Informer } from '../../src/kube/contract.js';
import { fakeRuntime, type MapInformer } from './support/fake-runtime.js';

const log = pino({ level: 'silent' });
const cfg = resolveAppsConfig(undefined);

async function setup() {
  const rt = fakeRuntime();
  const writes: string[] = [];
  let failNext = 0;
  const failed: string[] = [];
  const patch = rt.status.patchStatus.bind(rt.status);
  rt.status.patchStatus = async (kind, obj, st) => {
    writes.push(`${kind}/${obj.metadata.name}`);
    if (failNext > 0 && failNext--) {
      failed.push(`${kind}/${obj.metadata.name}`);
      throw new Error('apiserver unavailable');
    }
    return patch(kind, obj, st);
  };
  const store = new MemoryStore(cfg.actualFreshnessTtlMs);
  const metrics = new AppsMetrics(new Registry());
  const policies = new PolicySource(rt.informer('AppHealthPolicy') as Informer<AppHealthPolicy>, {});
  const config = () => policies.config();
  const fetcher = new Fetcher({ cc: new CcClient({ url: 'http://127.0.0.1:1', bulkUser: 'u', bulkPassword: 'p', internalUser: 'u', internalPassword: 'p', timeoutMs: 100, batchSize: 1 }), store, config, metrics, logger: log });
  const sender = new Sender({ store, config, metrics, logger: log, transport: { sendStart: async () => {}, sendStop: async () => {} } });
  const informer = rt.informer('DesiredApp') as unknown as MapInformer<DesiredApp>;
  const leading = { value: true };
  let reporter: StatusReporter | undefined;
  const projection = new ProjectionSync({ store, namespace: 'cf', logger: log, informer, projection: new DesiredAppProjection(rt.desiredAppApi, 'cf'), onObjectChanged: (g) => reporter?.objectChanged(g), onObjectDeleted: (g) => reporter?.objectDeleted(g) });
  reporter = new StatusReporter({ status: rt.status, policies, store, fetcher, sender, projection, logger: log, leading: () => leading.value });
  const desired = new Map<string, DesiredAppState>([
    ['web', { appGuid: 'web', version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED' }],
    ['api', { appGuid: 'api', version: 'v1', instances: 1, state: 'STARTED', packageState: 'STAGED' }],
  ]);
  const T = 1_700_000_000_000;
  store.setDesired(desired, T);
  projection.afterFetch(new Map());
  await projection.idle();
  for (let t = T - cfg.actualFreshnessTtlMs; t <= T; t += 10_000) store.recordFlush(t);
  const instances = (webRunning: number) => {
    const list: InstanceHeartbeat[] = [];
    for (let i = 0; i < webRunning; i++) list.push({ droplet: 'web', version: 'v1', instance: `w${i}`, index: i, state: 'RUNNING', state_timestamp: 1, dea_guid: 'd' });
    return new Map<string, InstanceHeartbeat[]>([['web', list], ['api', [{ droplet: 'api', version: 'v1', instance: 'a0', index: 0, state: 'RUNNING', state_timestamp: 1, dea_guid: 'd' }]]]);
  };
  const pass = (webRunning: number) => analyze({ actualFresh: true, desiredFresh: true, desired, instances: instances(webRunning), crashCounts: new Map() }, T, cfg, emptyPending());
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
  };
  return { reporter: reporter!, writes, failed, pass, settle, T, store, leading, failNext: (n: number) => (failNext = n) };
}

const appWrites = (w: string[]) => w.filter((x) => x.startsWith('DesiredApp/')).sort();

describe('StatusReporter', () => {
  it('writes the changed apps only, and nothing at all in steady state', async () => {
    const s = await setup();
    s.reporter.decisions(s.pass(2), false);
    s.reporter.write(s.T);
    await s.settle();
    expect(appWrites(s.writes)).toEqual(['DesiredApp/api', 'DesiredApp/web']);
    s.writes.length = 0;
    for (let i = 1; i <= 5; i++) {
      s.reporter.decisions(s.pass(2), false);
      s.reporter.write(s.T + i);
      await s.settle();
    }
    expect(s.writes).toEqual([]);
    s.reporter.decisions(s.pass(1), false); // web lost an instance
    s.reporter.write(s.T + 10);
    await s.settle();
    expect(appWrites(s.writes)).toEqual(['DesiredApp/web']);
  });

  it('while actual state is not fresh, DesiredApp status is left as written', async () => {
    const s = await setup();
    s.store.revokeFreshness();
    s.reporter.decisions(s.pass(2), false);
    s.reporter.write(s.T);
    await s.settle();
    expect(appWrites(s.writes)).toEqual([]);
  });

  it('a failed write is retried at the next report; a replica that does not lead writes no DesiredApp status', async () => {
    const s = await setup();
    s.failNext(1);
    s.reporter.decisions(s.pass(2), false);
    s.reporter.write(s.T);
    await s.settle();
    expect(appWrites(s.writes)).toHaveLength(2);
    expect(s.failed).toHaveLength(1);
    s.writes.length = 0;
    s.reporter.write(s.T + 1);
    await s.settle();
    expect(appWrites(s.writes)).toEqual(s.failed);

    s.leading.value = false;
    s.writes.length = 0;
    s.reporter.decisions(s.pass(0), false);
    s.reporter.write(s.T + 2);
    await s.settle();
    expect(appWrites(s.writes)).toEqual([]);
  });
});
