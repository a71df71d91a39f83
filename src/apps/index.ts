// The app half (HM9000's job) as one process component. Every replica runs the listener and the
// API server; only the leader fetches and projects desired state, analyzes, sends and writes
// (etcd, status). A new leader sends nothing until one keep-alive plus one grace period has passed,
// unless it loaded pending actions and crash counts from etcd.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { RELEASE_STOP_HOLD_ANNOTATION, type AppHealthPolicy, type AppHealthPolicyStatus, type DesiredApp } from '../api/index.js';
import { keyOf, type Informer, type Runtime } from '../kube/contract.js';
import { CcClient } from '../clients/cc.js';
import { analyze, type AnalysisCounts, type AppSummary, type Decisions } from './analyzer/index.js';
import { ApiServer } from './apiserver/index.js';
import { resolveAppsConfig, type AppsConfig, type AppsProcessConfig } from './config.js';
import { Fetcher } from './fetcher/index.js';
import { DesiredAppProjection, isManaged, kubeDesiredAppApi, sameProjection, type DesiredAppApi, type ProjectionResult } from './fetcher/projection.js';
import { buildAppsDump } from './dump.js';
import { HEARTBEAT_SUBJECT, Listener } from './listener/index.js';
import { Sender, type SendRecord, type Transport } from './sender/index.js';
import { desiredAppStatus, policyStatus, policyStatusToWrite, sameSummary } from './status/index.js';
import { AppsMetrics } from './status/metrics.js';
import { createStore } from './store/index.js';
import { EtcdStore } from './store/etcd.js';
import { desiredIsFresh } from './store/freshness.js';
import type { MemoryStore } from './store/memory.js';
import { isDesired, isStartingOrRunning, startKey, type AppOverrides, type DropletExited } from './types.js';

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
  // Overrides (paused, crash backoff) from the DesiredApp objects, recomputed only when an object or
  // the desired state changed (not on every call: the sender and analyzer ask every cycle).
  let overridesCache: { desired: unknown; value: ReadonlyMap<string, AppOverrides> } | undefined;
  const overrides = (): ReadonlyMap<string, AppOverrides> => {
    if (!desiredApps) return projection?.overrides() ?? new Map();
    const desired = store.desired();
    if (!overridesCache || overridesCache.desired !== desired) overridesCache = { desired, value: DesiredAppProjection.overridesFrom(desiredApps.list(), desired) };
    return overridesCache.value;
  };
  const lastActions = new Map<string, SendRecord>();
  const guidOf = (o: DesiredApp) => o.spec?.appGuid ?? o.metadata.name;
  /** Informer key of the object of each app (name = guid unless a person named it otherwise). */
  const keyByGuid = new Map<string, string>();
  const objectFor = (app: string) => desiredApps?.get(keyByGuid.get(app) ?? `${pc.desiredAppNamespace}/${app}`);

  // DesiredApp status is computed and written only for apps marked dirty: their summary differs
  // from the one last written, they had an action, or their object was created or its spec changed.
  // In steady state nothing is dirty, so 50k apps cost nothing per cycle.
  const statusDirty = new Set<string>();
  const writtenSummary = new Map<string, AppSummary | undefined>();
  let projectionDirty = false;
  if (desiredApps) {
    const track = (o: DesiredApp) => {
      keyByGuid.set(guidOf(o), keyOf(o));
      statusDirty.add(guidOf(o));
    };
    desiredApps.on('add', (o) => {
      overridesCache = undefined;
      track(o);
    });
    desiredApps.on('update', (o, old) => {
      if (old && old.metadata.generation === o.metadata.generation && old.metadata.uid === o.metadata.uid && guidOf(old) === guidOf(o)) return; // a status write (ours)
      overridesCache = undefined;
      track(o);
    });
    desiredApps.on('delete', (o) => {
      overridesCache = undefined;
      const guid = guidOf(o);
      if (keyByGuid.get(guid) === keyOf(o)) keyByGuid.delete(guid);
      writtenSummary.delete(guid);
      // A managed object deleted while its app is desired is recreated soon (never means "undesired").
      if (isManaged(o) && store.desired().has(guid)) projectionDirty = true;
    });
  }

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
      statusDirty.add(r.message.appGuid);
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
      if (d.acted || d.notActingReason === 'Paused') {
        for (const [guid, s] of d.apps) if (!sameSummary(writtenSummary.get(guid), s)) statusDirty.add(guid);
        for (const guid of writtenSummary.keys()) if (!d.apps.has(guid)) statusDirty.add(guid);
        lastSummaries = d.apps;
      }
      metrics.setCounts(d.counts);
    } else {
      for (const [k, v] of d.apps) {
        lastSummaries.set(k, v);
        if (!sameSummary(writtenSummary.get(k), v)) statusDirty.add(k);
      }
    }
    if (d.starts.length || d.stops.length) log.info({ starts: d.starts.length, stops: d.stops.length, fastPath: !!onlyApps }, 'analysis queued messages');
    return d;
  };

  // AppHealthPolicy status: never awaited by the loop (the writer may delay it); a change only in
  // lastCompleteFetch is not written on its own.
  let policyWrite: Promise<unknown> | undefined;
  let lastPolicyStatus: { name: string; uid?: string; status: AppHealthPolicyStatus } | undefined;
  const writePolicyStatus = (now: number, actualFresh: boolean, desiredFresh: boolean) => {
    const cfg = config();
    const p = policy();
    if (!p || policyWrite) return;
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
    const same = lastPolicyStatus && lastPolicyStatus.name === p.metadata.name && lastPolicyStatus.uid === p.metadata.uid;
    const toWrite = policyStatusToWrite(st, same ? lastPolicyStatus!.status : (p.status as AppHealthPolicyStatus | undefined));
    if (!toWrite) return;
    policyWrite = runtime.status
      .patchStatus('AppHealthPolicy', p, toWrite)
      .then(() => {
        lastPolicyStatus = { name: p.metadata.name, ...(p.metadata.uid ? { uid: p.metadata.uid } : {}), status: toWrite };
      })
      .catch((err) => log.warn({ err: (err as Error).message }, 'AppHealthPolicy status write failed'))
      .finally(() => {
        policyWrite = undefined;
      });
  };

  // DesiredApp status: the dirty apps only, a few writes in flight at a time, in the background
  // (the status writer rate-limits per object and globally; the loop never waits for it).
  let statusDrain: Promise<void> | undefined;
  const retryStatus = new Set<string>();
  const writeAppStatus = async (guid: string) => {
    const obj = objectFor(guid);
    if (!obj) return; // no object (yet): its 'add' marks it dirty again
    const summary = lastSummaries.get(guid);
    const st = desiredAppStatus(obj, summary, lastActions.get(guid), Date.now(), store.desired().has(guid));
    try {
      await runtime.status.patchStatus('DesiredApp', obj, st);
      writtenSummary.set(guid, summary);
    } catch (err) {
      retryStatus.add(guid);
      log.warn({ err: (err as Error).message, app: guid }, 'DesiredApp status write failed');
    }
  };
  const drainAppStatus = () => {
    if (statusDrain || !desiredApps) return;
    statusDrain = (async () => {
      const inFlight = 8;
      while (statusDirty.size > 0 && leading && !stopped) {
        const batch: string[] = [];
        for (const guid of statusDirty) {
          batch.push(guid);
          statusDirty.delete(guid);
          if (batch.length >= inFlight) break;
        }
        await Promise.all(batch.map(writeAppStatus));
      }
    })().finally(() => {
      statusDrain = undefined;
    });
  };

  const writeStatus = (now: number) => {
    const cfg = config();
    const actualFresh = store.actualFreshness.isFresh(now);
    const desiredFresh = desiredIsFresh(store.lastCompleteFetch(), now, cfg.desiredFreshnessTtlMs);
    writePolicyStatus(now, actualFresh, desiredFresh);
    // While not fresh, DesiredApp status stays as last written (the policy's conditions say why):
    // a NATS blip must not rewrite every app's status.
    if (actualFresh && desiredFresh && desiredApps) {
      for (const g of retryStatus) statusDirty.add(g);
      retryStatus.clear();
      drainAppStatus();
    }
  };

  // Stop holds and their release are reported as Events on the AppHealthPolicy.
  let holdReported: string | undefined;
  let releaseReported: string | undefined;
  let staleReported: string | undefined;
  const reportHold = () => {
    const p = policy();
    if (!p) return;
    const h = sender.hold;
    if (h && h.id !== holdReported) {
      holdReported = h.id;
      runtime.events.record(p, 'Warning', 'StopHold', 'HoldStops', `${h.reason}. Every stop is held, starts go on; release with: kubectl annotate ahp ${p.metadata.name} ${RELEASE_STOP_HOLD_ANNOTATION}=${h.id} --overwrite`.slice(0, 1000));
    }
    const ann = releaseAnnotation();
    if (h && ann && ann !== h.id && ann !== fetcher.shrinkHold?.id && `${h.id}/${ann}` !== staleReported) {
      staleReported = `${h.id}/${ann}`;
      runtime.events.record(p, 'Warning', 'StaleStopHoldRelease', 'HoldStops', `The annotation ${RELEASE_STOP_HOLD_ANNOTATION}=${ann} does not name the current hold ${h.id}: stops stay held.`);
    }
    const rel = sender.budget.releasedHoldId;
    if (rel && rel !== releaseReported) {
      releaseReported = rel;
      runtime.events.record(p, 'Normal', 'StopHoldReleased', 'ReleaseStops', `Stop hold ${rel} released by annotation: the held stops are sent.`);
    }
  };

  /** Whether the DesiredApp objects (as the informer sees them) already project the desired state: then no LIST and no write. */
  const projectionInSync = (): boolean => {
    if (!desiredApps || !desiredApps.hasSynced()) return false;
    const desired = store.desired();
    for (const [guid, d] of desired) {
      const o = objectFor(guid);
      if (!o) {
        if (/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(guid)) return false;
        continue; // not projectable (name rules): sync would skip it too
      }
      if (isManaged(o) && !sameProjection(o.spec, d)) return false;
    }
    for (const o of desiredApps.list()) if (isManaged(o) && !desired.has(guidOf(o))) return false;
    return true;
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
      if (projection && outcome.ok && leading && (!lastProjection || projectionDirty || (store.desired() !== before && !projectionInSync()))) {
        projectionDirty = false;
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

  /** A person deleted managed objects of desired apps: recreate them without waiting for the next fetch. */
  const resyncProjection = async () => {
    if (!projection || fetching) return;
    fetching = true;
    projectionDirty = false;
    try {
      lastProjection = await projection.sync(store.desired());
      if (lastProjection.created) log.info({ created: lastProjection.created }, 'DesiredApp objects recreated');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'DesiredApp projection failed');
      projectionDirty = true;
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
    if (!leading) {
      // Never lead on defaults: the policy (dryRun, paused, guards) and the overrides (paused apps)
      // must be known first.
      if (!policies.hasSynced() || (desiredApps && !desiredApps.hasSynced())) return;
      await becomeLeader(now);
    }
    if (now >= nextFetch) {
      nextFetch = now + cfg.fetchIntervalMs;
      void fetchAndProject(now);
    } else if (projectionDirty && projection && !fetching && store.lastCompleteFetch() !== undefined) {
      void resyncProjection();
    }
    if (now >= nextAnalyze) {
      nextAnalyze = now + cfg.analyzeIntervalMs;
      const d = await analyzeOnce(now);
      if (!d.acted) metrics.setCounts(d.counts);
    }
    if (now >= nextSend && now >= sendAllowedAfter) {
      nextSend = now + cfg.sendIntervalMs;
      await sender.run(now);
      reportHold();
    }
    if (now >= nextStatus) {
      nextStatus = now + Math.min(cfg.analyzeIntervalMs, cfg.sendIntervalMs);
      writeStatus(now);
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
        // It replaces a start queued but not yet sent for another reason (a MISSING start waits a
        // grace period and has no keep-alive), as HM9000's evacuator saved its start over it.
        const queued = store.pending().starts.get(key);
        const replaceable = !queued || (queued.sentOn === 0 && queued.reason !== 'EVACUATION');
        if (fresh && !cfg.paused && isDesired(d) && d.version === exit.version && exit.index < d.instances && !runningThere && replaceable && !overrides().get(exit.droplet)?.paused) {
          store.putPending([{ kind: 'start', messageId: `start-${key}-${now}`, appGuid: exit.droplet, version: exit.version, index: exit.index, sendOn: now, sentOn: 0, keepAliveMs: cfg.keepAliveMs, skipVerification: true, reason: 'EVACUATION', priority: 2 }]);
        }
      }
      await analyzeOnce(now, apps);
      await sender.run(now, apps);
      reportHold();
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
    heartbeatAuth: pc.api.heartbeatAuth === true,
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
      await statusDrain?.catch(() => undefined);
      await policyWrite?.catch(() => undefined);
      await listener.stop();
      await api.stop();
      await nats.close().catch(() => undefined);
      await store.close();
    },
  };
}
