// The app half (HM9000's job) as one process component. Every replica runs the listener and the
// API server; only the leader fetches and projects desired state, analyzes, sends and writes
// (etcd, status). A new leader sends nothing until one keep-alive plus one grace period has passed,
// unless it loaded pending actions and crash counts from etcd.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RELEASE_STOP_HOLD_ANNOTATION, type AppHealthPolicy, type DesiredApp } from '../api/index.js';
import type { Informer, Runtime } from '../kube/contract.js';
import { CcClient } from '../clients/cc.js';
import { analyze, type AnalysisCounts, type AppSummary, type Decisions } from './analyzer/index.js';
import { ApiServer } from './apiserver/index.js';
import { resolveAppsConfig, type AppsConfig, type AppsProcessConfig } from './config.js';
import { Fetcher } from './fetcher/index.js';
import { DesiredAppProjection, kubeDesiredAppApi, type DesiredAppApi, type ProjectionResult } from './fetcher/projection.js';
import { HEARTBEAT_SUBJECT, Listener } from './listener/index.js';
import { Sender, type SendRecord, type Transport } from './sender/index.js';
import { desiredAppStatus, policyStatus } from './status/index.js';
import { AppsMetrics } from './status/metrics.js';
import { createStore } from './store/index.js';
import { EtcdStore } from './store/etcd.js';
import { desiredIsFresh } from './store/freshness.js';
import type { MemoryStore } from './store/memory.js';
import { isDesired, isStartingOrRunning, startKey, type DropletExited } from './types.js';

export { resolveAppsConfig, scaleTimings, type AppsConfig, type AppsProcessConfig } from './config.js';

export interface AppsHandle {
  stop(): Promise<void>;
  /** For tests, dumps and benchmarks. */
  readonly store: MemoryStore;
  readonly apiPort: number;
  readonly nats: NatsConnection;
  config(): AppsConfig;
  lastDecisions(): Decisions | undefined;
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
  const project = pc.projectDesiredApps !== false;
  const policies: Informer<AppHealthPolicy> = runtime.informer('AppHealthPolicy');
  const desiredApps: Informer<DesiredApp> | undefined = project ? runtime.informer('DesiredApp', { namespace: pc.desiredAppNamespace }) : undefined;

  const policy = (): AppHealthPolicy | undefined => {
    if (pc.policyName) return policies.get(pc.policyName);
    return policies.list().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
  };
  const config = (): AppsConfig => {
    const c = resolveAppsConfig(policy()?.spec ?? pc.defaultSpec);
    return pc.configOverride ? pc.configOverride(c) : c;
  };
  const releaseAnnotation = () => policy()?.metadata.annotations?.[RELEASE_STOP_HOLD_ANNOTATION];

  const store = createStore(pc.store, config());
  const nats = await connect({
    servers: pc.nats.servers,
    ...(pc.nats.user ? { user: pc.nats.user, pass: pc.nats.pass ?? '' } : {}),
    ...(pc.nats.token ? { token: pc.nats.token } : {}),
    name: 'hm9k-apps',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
  });
  void (async () => {
    for await (const s of nats.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') log.warn({ nats: s.type }, `NATS ${s.type}`);
    }
  })().catch(() => undefined);

  const cc = new CcClient({ url: pc.cc.url, bulkUser: pc.cc.bulkUser, bulkPassword: pc.cc.bulkPassword, internalUser: pc.cc.internalUser, internalPassword: pc.cc.internalPassword, timeoutMs: config().fetchTimeoutMs, batchSize: config().bulkBatchSize });
  const transport: Transport =
    pc.sendVia === 'nats'
      ? {
          sendStart: async (m) => nats.publish('hm9000.start', JSON.stringify(m)),
          sendStop: async (m) => nats.publish('hm9000.stop', JSON.stringify(m)),
        }
      : { sendStart: (m) => cc.sendStart(m), sendStop: (m) => cc.sendStop(m) };

  const projection = project ? new DesiredAppProjection(hooks.desiredAppApi ?? kubeDesiredAppApi(runtime.kubeConfig), pc.desiredAppNamespace) : undefined;
  const fetcher = new Fetcher({ cc, store, config, metrics, logger: runtime.logger('fetcher'), releaseAnnotation });
  const overrides = () => (desiredApps ? DesiredAppProjection.overridesFrom(desiredApps.list(), store.desired()) : (projection?.overrides() ?? new Map()));
  const lastActions = new Map<string, SendRecord>();
  const objectFor = (app: string) => desiredApps?.get(`${pc.desiredAppNamespace}/${app}`);

  const sender = new Sender({
    store,
    transport,
    config,
    metrics,
    logger: runtime.logger('sender'),
    releaseAnnotation,
    pausedApps: () => new Set([...overrides()].filter(([, o]) => o.paused).map(([k]) => k)),
    onOutcome: (r) => {
      lastActions.set(r.message.appGuid, r);
      if (r.outcome === 'held') return;
      const regarding = objectFor(r.message.appGuid) ?? policy();
      if (!regarding) return;
      const verb = r.message.kind === 'start' ? 'Start' : 'Stop';
      const reason = `${verb}${r.message.reason.split('_').map((w) => w[0] + w.slice(1).toLowerCase()).join('')}`;
      const type = r.outcome === 'failed' ? 'Warning' : 'Normal';
      runtime.events.record(regarding, type, reason.slice(0, 128), verb, `${r.outcome}: ${r.message.kind} ${r.message.appGuid} index ${r.message.index} (${r.message.reason})${r.detail ? `: ${r.detail}` : ''}`.slice(0, 1000));
    },
  });

  let last: Decisions | undefined;
  let lastCounts: AnalysisCounts | undefined;
  let lastSummaries = new Map<string, AppSummary>();
  let lastProjection: ProjectionResult | undefined;
  let leading = false;
  let sendAllowedAfter = Number.POSITIVE_INFINITY;
  let stopped = false;
  // One leader task at a time (the loop and the fast path).
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => undefined);
    return p;
  };

  const analyzeOnce = async (now: number, onlyApps?: ReadonlySet<string>): Promise<Decisions> => {
    const cfg = config();
    store.actualFreshness.ttlMs = cfg.actualFreshnessTtlMs;
    const d = analyze(
      {
        actualFresh: store.actualFreshness.isFresh(now),
        desiredFresh: desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs),
        desired: store.desired(),
        instances: store.instancesByApp(),
        crashCounts: store.crashCounts(),
        overrides: overrides(),
      },
      now,
      cfg,
      store.pending(),
      onlyApps ? { onlyApps } : {},
    );
    store.deletePending(d.expired.starts, d.expired.stops);
    store.putPending([...d.starts, ...d.stops]);
    store.putCrashCounts(d.crashCounts);
    if (!onlyApps) store.expireCrashCounts(now, 2 * cfg.crashBackoff.maxBackoffMs);
    try {
      await store.persist();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'storing decisions failed: actual state is not fresh');
      store.revokeFreshness();
    }
    if (!onlyApps) {
      last = d;
      lastCounts = d.counts;
      lastSummaries = d.apps;
      metrics.setCounts(d.counts);
    } else {
      for (const [k, v] of d.apps) lastSummaries.set(k, v);
    }
    if (d.starts.length || d.stops.length) log.info({ starts: d.starts.length, stops: d.stops.length, fastPath: !!onlyApps }, 'analysis queued messages');
    return d;
  };

  const writeStatus = async (now: number) => {
    const cfg = config();
    const p = policy();
    const actualFresh = store.actualFreshness.isFresh(now);
    const desiredFresh = desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs);
    if (p) {
      const st = policyStatus(p, {
        now,
        actualFresh,
        desiredFresh,
        ...(store.freshnessState().streakStart !== undefined ? { actualStreakStart: store.freshnessState().streakStart } : {}),
        ...(store.lastCompleteFetch() !== undefined ? { lastCompleteFetch: store.lastCompleteFetch() } : {}),
        ...(fetcher.lastError ? { fetchError: fetcher.lastError } : {}),
        ...(lastCounts ? { counts: lastCounts } : {}),
        pending: store.pending(),
        ...(sender.hold ? { stopHold: sender.hold } : {}),
        ...(sender.budget.releasedHoldId ? { releasedHoldId: sender.budget.releasedHoldId } : {}),
        ...(fetcher.shrinkHold ? { shrinkHold: fetcher.shrinkHold } : {}),
        sender: sender.stats,
        paused: cfg.paused,
        dryRun: cfg.dryRun,
      });
      await runtime.status.patchStatus('AppHealthPolicy', p, st).catch((err) => log.warn({ err: (err as Error).message }, 'AppHealthPolicy status write failed'));
    }
    if (desiredApps) {
      const desired = store.desired();
      const fresh = actualFresh && desiredFresh;
      for (const obj of desiredApps.list()) {
        const guid = obj.spec?.appGuid ?? obj.metadata.name;
        const st = desiredAppStatus(obj, fresh ? lastSummaries.get(guid) : undefined, lastActions.get(guid), now, desired.has(guid));
        await runtime.status.patchStatus('DesiredApp', obj, st).catch((err) => log.warn({ err: (err as Error).message, app: guid }, 'DesiredApp status write failed'));
      }
    }
  };

  let fetching = false;
  const fetchAndProject = async (now: number) => {
    if (fetching) return;
    fetching = true;
    try {
      const before = store.desired();
      const outcome = await fetcher.fetchOnce(now, runtime.signal);
      const p = policy();
      if (outcome.guarded && p) runtime.events.record(p, 'Warning', 'ShrinkGuard', 'KeepLastGoodDesiredState', `${outcome.guarded.reason} (id ${fetcher.shrinkHold?.id})`);
      if (projection && outcome.ok && leading && (store.desired() !== before || !lastProjection)) {
        lastProjection = await projection.sync(store.desired());
        if (lastProjection.created || lastProjection.updated || lastProjection.deleted) log.info({ created: lastProjection.created, updated: lastProjection.updated, deleted: lastProjection.deleted }, 'DesiredApp projection updated');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'DesiredApp projection failed');
      lastProjection = undefined;
    } finally {
      fetching = false;
    }
  };

  const becomeLeader = async (now: number) => {
    const cfg = config();
    store.setWriter(true);
    let loadedActions = false;
    if (store instanceof EtcdStore) {
      const loaded = await store.load(now);
      await store.syncInstances();
      loadedActions = loaded.loadedPending > 0 || loaded.loadedCrashCounts > 0;
      log.info(loaded, 'leading: loaded state from etcd');
    }
    sendAllowedAfter = loadedActions ? now : now + cfg.keepAliveMs + cfg.gracePeriodMs;
    leading = true;
    log.info({ sendAllowedAfter: new Date(sendAllowedAfter).toISOString() }, 'leading the app half');
  };

  let nextFetch = 0;
  let nextAnalyze = 0;
  let nextSend = 0;
  let nextStatus = 0;
  const tick = async () => {
    const now = Date.now();
    const cfg = config();
    metrics.actualFresh.set(store.actualFreshness.isFresh(now) ? 1 : 0);
    metrics.desiredFresh.set(desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs) ? 1 : 0);
    const age = store.actualFreshness.ageMs(now);
    metrics.actualFreshnessAge.set(age < 0 ? -1 : age / 1000);
    const lcf = store.lastCompleteFetch();
    metrics.desiredFreshnessAge.set(lcf === undefined ? -1 : (now - lcf) / 1000);
    if (!runtime.leader.isLeader()) {
      if (leading) {
        leading = false;
        store.setWriter(false);
        log.warn('lost leadership: no longer fetching, analyzing or sending');
      }
      return;
    }
    if (!leading) await becomeLeader(now);
    if (now >= nextFetch) {
      nextFetch = now + cfg.fetchIntervalMs;
      void fetchAndProject(now);
    }
    if (now >= nextAnalyze) {
      nextAnalyze = now + cfg.analyzeIntervalMs;
      const d = await analyzeOnce(now);
      if (!d.acted) metrics.setCounts(d.counts);
    }
    if (now >= nextSend && now >= sendAllowedAfter) {
      nextSend = now + cfg.sendIntervalMs;
      await sender.run(now);
    }
    if (now >= nextStatus) {
      nextStatus = now + Math.min(cfg.analyzeIntervalMs, cfg.sendIntervalMs);
      await writeStatus(now);
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const loop = () => {
    if (stopped) return;
    void serial(tick)
      .catch((err) => log.error({ err: (err as Error).message }, 'app loop failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, Math.max(20, Math.min(config().flushIntervalMs, 1000)));
      });
  };

  // The fast path: a crash or an evacuation is analyzed (and sent) at once for that app.
  const fastPath = (exit: DropletExited) => {
    if (!leading || stopped) return;
    void serial(async () => {
      const now = Date.now();
      if (now < sendAllowedAfter) return;
      const cfg = config();
      const apps = new Set([exit.droplet]);
      if (exit.reason === 'DEA_SHUTDOWN' || exit.reason === 'DEA_EVACUATION') {
        // HM9000's evacuator: start the index elsewhere at once (priority 2.0, no verification).
        const d = store.desired().get(exit.droplet);
        const fresh = store.actualFreshness.isFresh(now) && desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs);
        const key = startKey(exit.droplet, exit.version, exit.index);
        const runningThere = store.instancesOf(exit.droplet).some((i) => i.version === exit.version && i.index === exit.index && isStartingOrRunning(i.state));
        if (fresh && !cfg.paused && isDesired(d) && d.version === exit.version && exit.index < d.instances && !runningThere && !store.pending().starts.has(key) && !overrides().get(exit.droplet)?.paused) {
          store.putPending([{ kind: 'start', messageId: `start-${key}-${now}`, appGuid: exit.droplet, version: exit.version, index: exit.index, sendOn: now, sentOn: 0, keepAliveMs: cfg.keepAliveMs, skipVerification: true, reason: 'EVACUATION', priority: 2 }]);
        }
      }
      await analyzeOnce(now, apps);
      await sender.run(now, apps);
    }).catch((err) => log.error({ err: (err as Error).message }, 'fast path failed'));
  };

  const listener = new Listener({ nats, store, config, metrics, logger: runtime.logger('listener'), onExited: fastPath });
  listener.start();

  const api = new ApiServer({
    port: pc.api.port,
    ...(pc.api.host ? { host: pc.api.host } : {}),
    user: pc.api.user,
    password: pc.api.password,
    heartbeatEndpoint: pc.api.heartbeatEndpoint !== false,
    store,
    isFresh: () => store.actualFreshness.isFresh(Date.now()),
    publishHeartbeat: (body) => nats.publish(HEARTBEAT_SUBJECT, body),
    malformed: (error, body) => listener.malformed('http:/dea/heartbeat', error, body),
    logger: runtime.logger('apiserver'),
  });
  await api.start();
  runtime.addReadinessCheck('apps-actual-state-fresh', () => store.actualFreshness.isFresh(Date.now()));
  loop();
  log.info({ api: api.port, store: store.kind, sendVia: pc.sendVia }, 'app half started');

  return {
    store,
    apiPort: api.port,
    nats,
    config,
    sender,
    fetcher,
    listener,
    lastDecisions: () => last,
    isLeaderActive: () => leading && Date.now() >= sendAllowedAfter,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await chain.catch(() => undefined);
      await listener.stop();
      await api.stop();
      await nats.close().catch(() => undefined);
      await store.close();
    },
  };
}
