// The app half (HM9000's job) as one process component, wired in the order data flows:
//   DEA heartbeat (NATS, or HTTP re-published on NATS) -> listener -> store (actual state)
//   CC bulk API -> fetcher -> store (desired state) -> DesiredApp projection (a view)
//   store -> analyzer -> pending starts/stops -> sender -> CC
// Every replica runs the listener and the API server; only the leader (leader/) fetches,
// analyzes, sends and writes (etcd, status).
import type { NatsConnection } from '@nats-io/transport-node';
import type { AppHealthPolicy, DesiredApp } from '../api/index.js';
import type { Informer, Runtime } from '../kube/contract.js';
import { CcClient } from '../clients/cc.js';
import { HEARTBEAT_SUBJECT } from '../hm9000/messages.js';
import { AnalysisCycle } from './analyzer/cycle.js';
import type { Decisions } from './analyzer/index.js';
import { ApiServer } from './apiserver/index.js';
import type { AppsConfig, AppsProcessConfig } from './config.js';
import { buildAppsDump } from './dump.js';
import { Fetcher } from './fetcher/index.js';
import { DesiredAppProjection, kubeDesiredAppApi, type DesiredAppApi } from './fetcher/projection.js';
import { ProjectionSync } from './fetcher/projection-sync.js';
import { LeaderLoop } from './leader/index.js';
import { Listener } from './listener/index.js';
import { PartitionWatch } from './listener/partition.js';
import { connectNats } from './nats.js';
import { PolicySource } from './policy.js';
import { Sender } from './sender/index.js';
import { httpTransport, natsTransport } from './sender/transport.js';
import { AppEvents, logAction } from './status/events.js';
import { AppsMetrics } from './status/metrics.js';
import { StatusReporter } from './status/reporter.js';
import { createStore } from './store/index.js';
import { desiredIsFresh } from './store/freshness.js';
import type { MemoryStore } from './store/memory.js';

export { resolveAppsConfig, scaleTimings, type AppsConfig, type AppsProcessConfig } from './config.js';

export interface AppsHandle {
  stop(): Promise<void>;
  /** For tests, dumps and benchmarks. */
  readonly store: MemoryStore;
  readonly apiPort: number;
  readonly nats: NatsConnection;
  config(): AppsConfig;
  lastDecisions(): Decisions | undefined;
  /** The last full analyzer pass in ms (benchmarks): work (its slices summed), longest slice, wall time. */
  analysisPass(): { workMs: number; longestSliceMs: number; wallMs: number } | undefined;
  sender: Sender;
  fetcher: Fetcher;
  listener: Listener;
  isLeaderActive(): boolean;
}

export interface AppsTestHooks {
  /** Replaces the apiserver-backed DesiredApp API. */
  desiredAppApi?: DesiredAppApi;
}

export async function startApps(runtime: Runtime, pc: AppsProcessConfig, hooks: AppsTestHooks = {}): Promise<AppsHandle> {
  const log = runtime.logger('apps');
  const metrics = new AppsMetrics(runtime.metrics);
  const policies = new PolicySource(runtime.informer('AppHealthPolicy') as Informer<AppHealthPolicy>, pc, { logger: log, events: runtime.events, onSwitch: () => leader.policySwitched() });
  const config = () => policies.config();
  const releaseAnnotation = () => policies.releaseAnnotation();

  // Actual state: heartbeats -> listener -> store.
  const store = await createStore(pc.store, config());
  const nats = await connectNats(pc.nats, log);

  // Desired state: CC -> fetcher -> store, projected into DesiredApp objects (people's overrides come back from them).
  const cc = new CcClient({ url: pc.cc.url, bulkUser: pc.cc.bulkUser, bulkPassword: pc.cc.bulkPassword, internalUser: pc.cc.internalUser, internalPassword: pc.cc.internalPassword, timeoutMs: config().fetchTimeoutMs, batchSize: config().bulkBatchSize });
  const fetcher = new Fetcher({ cc, store, config, metrics, logger: runtime.logger('fetcher'), releaseAnnotation });
  const project = pc.projectDesiredApps !== false;
  const projection = new ProjectionSync({
    store,
    namespace: pc.desiredAppNamespace,
    logger: log,
    ...(project
      ? {
          informer: runtime.informer('DesiredApp', { namespace: pc.desiredAppNamespace }) as Informer<DesiredApp>,
          projection: new DesiredAppProjection(hooks.desiredAppApi ?? kubeDesiredAppApi(runtime.kubeConfig), pc.desiredAppNamespace, 500, config().projection),
        }
      : {}),
    // (reporter and loop below are built before any informer event or sender outcome can arrive)
    onObjectChanged: (guid) => reporter.objectChanged(guid),
    onObjectDeleted: (guid) => reporter.objectDeleted(guid),
    writing: () => leader.isLeading(),
    config,
  });

  // Decisions: store -> analyzer -> pending messages -> sender -> CC; status and Events report them.
  const events = new AppEvents({ events: runtime.events, policy: () => policies.policy(), objectFor: (a) => projection.objectFor(a), releaseAnnotation });
  const sender = new Sender({
    store,
    transport: pc.sendVia === 'nats' ? natsTransport(nats) : httpTransport(cc),
    config,
    metrics,
    logger: runtime.logger('sender'),
    releaseAnnotation,
    pausedApps: () => projection.pausedApps(),
    stopsTrusted: (now) => fetcher.stopsTrusted(now),
    onOutcome: (r) => {
      reporter.action(r);
      events.action(r);
      logAction(log, r);
    },
  });
  // cc_partition: only this policy's partition is acted on (listener filter, analysis, status).
  const partitions = new PartitionWatch({ config, metrics, logger: runtime.logger('listener') });
  const reporter: StatusReporter = new StatusReporter({ status: runtime.status, policies, store, fetcher, sender, projection, partitions, logger: log, leading: () => leader.isLeading() });
  const analysis = new AnalysisCycle({
    store, config, overrides: () => projection.overrides(), metrics, logger: log, onDecisions: (d, partial) => reporter.decisions(d, partial),
    actualTrusted: (now) => !partitions.onlyOthers(now, config().presenceTtlMs),
  });
  const leader: LeaderLoop = new LeaderLoop({
    leader: runtime.leader,
    // Never lead on defaults: the policy (dryRun, paused, guards) and the overrides (paused apps) must be known first.
    ready: () => policies.hasSynced() && projection.hasSynced() && policies.observe(),
    config,
    store,
    fetcher,
    projection,
    analysis,
    sender,
    reporter,
    events,
    metrics,
    logger: log,
    signal: runtime.signal,
  });

  const listener = new Listener({ nats, store, config, metrics, logger: runtime.logger('listener'), partitions, onExited: (exit) => leader.fastPath(exit) });
  listener.start();

  const api = new ApiServer({
    port: pc.api.port,
    ...(pc.api.host ? { host: pc.api.host } : {}),
    user: pc.api.user,
    password: pc.api.password,
    heartbeatEndpoint: pc.api.heartbeatEndpoint === true,
    heartbeatAuth: pc.api.heartbeatAuth !== false,
    ...(pc.api.heartbeatUser ? { heartbeatUser: pc.api.heartbeatUser } : {}),
    ...(pc.api.heartbeatPassword ? { heartbeatPassword: pc.api.heartbeatPassword } : {}),
    dump: () => {
      const now = Date.now();
      return buildAppsDump(store, now, desiredIsFresh(store.lastCompleteFetch(), now, config().desiredFreshnessTtlMs));
    },
    store,
    isFresh: () => store.actualFreshness.isFresh(Date.now()),
    publishHeartbeat: (body) => nats.publish(HEARTBEAT_SUBJECT, body),
    malformed: (error, body) => listener.malformed('http:/dea/heartbeat', error, body),
    badRequest: (error, body) => listener.malformed('http:/bulk_app_state', error, body),
    logger: runtime.logger('apiserver'),
  });
  await api.start();
  runtime.addReadinessCheck('apps-actual-state-fresh', () => store.actualFreshness.isFresh(Date.now()));
  runtime.addReadinessCheck('apps-policy', () => !policies.hasSynced() || policies.blocked() === undefined);
  leader.start();
  log.info({ api: api.port, store: store.kind, sendVia: pc.sendVia }, 'app half started');

  return {
    store,
    apiPort: api.port,
    nats,
    config,
    sender,
    fetcher,
    listener,
    lastDecisions: () => analysis.last,
    analysisPass: () => (analysis.lastPassMs === undefined ? undefined : { workMs: analysis.lastPassMs, longestSliceMs: analysis.lastPassLongestSliceMs ?? 0, wallMs: analysis.lastPassWallMs ?? 0 }),
    isLeaderActive: () => leader.isActive(),
    async stop() {
      await leader.stop();
      await projection.stop();
      await reporter.stop();
      await listener.stop();
      await api.stop();
      await nats.close().catch(() => undefined);
      cc.close();
      await store.close();
    },
  };
}
