// One Runtime per process: logger, metrics, informers, controllers with their queues and workers,
// status writer, event recorder, leader election, probe and metrics servers, graceful shutdown.
import { hostname } from 'node:os';
import { KubeConfig } from './client.js';
import type { DestinationStream, Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { KINDS, type KindName } from '../api/index.js';
import { shareKeepAliveAgent } from './agent.js';
import type { Controller, Informer, InformerOptions, KubeObject, LeaderElection, ResourceByKind, Runtime, WorkQueue } from './contract.js';
import { ControllerRunner, type ControllerOptions } from './controller.js';
import { RateLimitedEventRecorder, eventsV1Sink, type EventRecorderConfig } from './events.js';
import { ReflectorInformer, type InformerConfig } from './informer.js';
import { LeaseElector, coordinationLeaseClient, defaultIdentity, type LeaderElectionConfig } from './leader.js';
import { pathListerWatcher } from './listwatch.js';
import { createRootLogger, loggerFactory } from './log.js';
import { apiVersionOf, collectionPath, resourceFor, type ResourceRef } from './resources.js';
import { startMetricsServer, startProbeServer, type Check, type RunningServer } from './server.js';
import { RateLimitedStatusWriter, customObjectsStatusClient, type StatusWriterConfig } from './status.js';
import { errorMessage } from './util.js';

export interface LeaderElectionOptions extends Partial<LeaderElectionConfig> {
  /** Lease name (default `hm9k-<component>`), in the runtime's namespace. */
  leaseName?: string;
  /** Holder identity (default: the pod name when podName or POD_NAME is set, else `<hostname>_<uuid>`). */
  identity?: string;
  /** Called when leadership is lost; default process.exit(1) at once. runtime.signal is aborted first. */
  onLost?: () => void;
}

export interface RuntimeOptions {
  /** Component name: reportingController `hm9k.io/<component>`, default Lease `hm9k-<component>`, log field `process`. */
  component: string;
  /** hm9k's own namespace (Leases, Events about cluster-scoped objects, Secrets). */
  namespace: string;
  /** Default: KubeConfig.loadFromDefault() (KUBECONFIG, ~/.kube/config, or in-cluster). */
  kubeConfig?: KubeConfig;
  /** Root logger to use; otherwise one is created with logLevel/logDestination. */
  logger?: Logger;
  logLevel?: string;
  logDestination?: DestinationStream;
  /** Default: a new Registry (with prom-client default process metrics unless defaultMetrics is false). */
  registry?: Registry;
  defaultMetrics?: boolean;
  /** Listen address of both servers (default 0.0.0.0; tests use 127.0.0.1). */
  bindAddress?: string;
  /** Prometheus /metrics port (default 8080; 0 = any free port; false = no server). */
  metricsPort?: number | false;
  /** /healthz and /readyz port (default 8081; 0 = any free port; false = no server). */
  probePort?: number | false;
  /** reportingInstance of Events (default POD_NAME or the host name). */
  podName?: string;
  /** false: this process always leads (single replica, tests). */
  leaderElection?: false | LeaderElectionOptions;
  informer?: Partial<InformerConfig>;
  status?: Partial<StatusWriterConfig>;
  /** Event dedupe/rate limits; clusterScopedNamespace: where events about cluster-scoped objects go (default "default"). */
  events?: Partial<EventRecorderConfig> & { clusterScopedNamespace?: string };
  /** Install SIGTERM/SIGINT handlers that stop the runtime and exit 0 (default true). */
  handleSignals?: boolean;
  /** Longest wait for reconciles in progress on shutdown (default 5 s; the pod's grace period is 10 s). */
  shutdownTimeoutMs?: number;
}

export interface ManagedRuntime extends Runtime {
  status: RateLimitedStatusWriter;
  events: RateLimitedEventRecorder;
  /** As Runtime.addController, plus `leaderOnly` (default true) and rate limiter settings. */
  addController(controller: Controller, options?: ControllerOptions): WorkQueue;
  /** A shared informer for any resource by path (core kinds: see CORE in resources.ts). */
  informerFor<T extends KubeObject>(resource: ResourceRef, options?: InformerOptions): Informer<T>;
  /** Liveness contributors: /healthz is ok when every check returns true. */
  addHealthCheck(name: string, check: () => boolean): void;
  /** Runs on stop(), after the controllers stopped and before the Lease is released. */
  onStop(fn: () => Promise<void> | void): void;
  /** Caches synced and every readiness check true (what /readyz answers). */
  ready(): boolean;
  /** Actual ports once started (useful with port 0). */
  ports(): { metrics?: number; probes?: number };
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Leader election switched off: this process always leads. */
class AlwaysLeader implements LeaderElection {
  constructor(readonly identity: string) {}
  isLeader(): boolean {
    return true;
  }
  transitions(): number {
    return 0;
  }
  waitForLeadership(): Promise<void> {
    return Promise.resolve();
  }
}

export async function createRuntime(options: RuntimeOptions): Promise<ManagedRuntime> {
  if (!options.component || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(options.component)) {
    throw new Error(`runtime: component must be a DNS label, got "${options.component}"`);
  }
  if (!options.namespace) throw new Error('runtime: namespace is required');
  const kc = options.kubeConfig ?? (() => {
    const k = new KubeConfig();
    k.loadFromDefault();
    return k;
  })();
  if (!kc.getCurrentCluster()) throw new Error('runtime: the kubeconfig has no current cluster');
  shareKeepAliveAgent(kc);

  const root = options.logger ?? createRootLogger({ level: options.logLevel, destination: options.logDestination, base: { process: options.component } });
  const logger = loggerFactory(root);
  const log = logger('runtime');
  const registry = options.registry ?? new Registry();
  if (!options.registry && options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  // The pod name, when known, is the Lease holder identity too (kubectl get lease shows which pod
  // leads; pod names are unique, and a restarted container is the same pod taking over its own Lease).
  const explicitPod = options.podName || process.env.POD_NAME || undefined;
  const podName = explicitPod ?? hostname();
  const abort = new AbortController();
  const informers = new Map<string, ReflectorInformer<KubeObject>>();
  const runners: ControllerRunner[] = [];
  const readyChecks = new Map<string, Check>();
  const healthChecks = new Map<string, Check>([['ping', () => true]]);
  const stopHooks: (() => Promise<void> | void)[] = [];
  const servers: RunningServer[] = [];
  const ports: { metrics?: number; probes?: number } = {};
  let started = false;
  let stopping: Promise<void> | undefined;

  const status = new RateLimitedStatusWriter(customObjectsStatusClient(kc), { logger: logger('status'), metrics: registry, config: options.status });
  const events = new RateLimitedEventRecorder(eventsV1Sink(kc), {
    component: options.component,
    instance: podName,
    namespace: options.namespace,
    clusterScopedNamespace: options.events?.clusterScopedNamespace,
    logger: logger('events'),
    metrics: registry,
    config: options.events,
  });

  let elector: LeaseElector | undefined;
  let leader: LeaderElection;
  if (options.leaderElection === false) {
    leader = new AlwaysLeader(explicitPod ?? defaultIdentity());
  } else {
    const le = options.leaderElection ?? {};
    elector = new LeaseElector(coordinationLeaseClient(kc), {
      ...le,
      namespace: options.namespace,
      name: le.leaseName ?? `hm9k-${options.component}`,
      identity: le.identity ?? explicitPod,
      logger: logger('leader'),
      metrics: registry,
      onLost: () => {
        abort.abort(new Error('leadership lost'));
        // Only reached without exiting when onLost is overridden: leader-only workers stop at once.
        if (le.onLost) for (const r of runners) if (r.leaderOnly) void r.stop(0);
        (le.onLost ?? (() => process.exit(1)))();
      },
    });
    leader = elector;
  }

  const allSynced = () => [...informers.values()].every((i) => i.hasSynced());
  readyChecks.set('informers', allSynced);

  function informerFor<T extends KubeObject>(resource: ResourceRef, opts: InformerOptions = {}): Informer<T> {
    const path = collectionPath(resource, opts.namespace);
    const id = `${path}?${opts.labelSelector ?? ''}`;
    let inf = informers.get(id);
    if (!inf) {
      inf = new ReflectorInformer<KubeObject>(pathListerWatcher(kc, path, resource.kind, apiVersionOf(resource)), {
        logger: logger('informer'),
        metrics: registry,
        labelSelector: opts.labelSelector,
        config: options.informer,
      });
      informers.set(id, inf);
      if (started && !abort.signal.aborted) inf.start();
    }
    return inf as unknown as Informer<T>;
  }

  async function startRunner(r: ControllerRunner): Promise<void> {
    try {
      if (r.leaderOnly) await leader.waitForLeadership(abort.signal);
      // As controller-runtime: workers start once the caches they read from are synced.
      await Promise.all([...informers.values()].map((i) => i.waitForSync(abort.signal)));
      if (!abort.signal.aborted && (!r.leaderOnly || leader.isLeader())) r.start();
    } catch (err) {
      if (!abort.signal.aborted) log.error({ err: errorMessage(err), controller: r.controller.name }, 'controller did not start');
    }
  }

  const onSignal = (sig: NodeJS.Signals) => {
    log.info({ signal: sig }, 'shutting down');
    rt.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };

  const rt: ManagedRuntime = {
    kubeConfig: kc,
    namespace: options.namespace,
    logger,
    metrics: registry,
    status,
    events,
    leader,
    signal: abort.signal,
    informer<K extends KindName>(kind: K, opts?: InformerOptions): Informer<ResourceByKind[K]> {
      if (!(kind in KINDS)) throw new Error(`runtime: unknown kind ${String(kind)}`);
      return informerFor<ResourceByKind[K]>(resourceFor(kind), opts);
    },
    informerFor,
    addController(controller: Controller, opts: ControllerOptions = {}): WorkQueue {
      if (runners.some((r) => r.controller.name === controller.name)) throw new Error(`runtime: controller ${controller.name} registered twice`);
      const r = new ControllerRunner(controller, { ...opts, logger: logger('controller'), metrics: registry });
      runners.push(r);
      if (started) void startRunner(r);
      return r.queue;
    },
    addReadinessCheck(name, check) {
      readyChecks.set(name, check);
    },
    addHealthCheck(name, check) {
      healthChecks.set(name, check);
    },
    onStop(fn) {
      stopHooks.push(fn);
    },
    ready() {
      for (const c of readyChecks.values()) {
        try {
          if (!c()) return false;
        } catch {
          return false;
        }
      }
      return true;
    },
    ports: () => ({ ...ports }),
    async start() {
      if (started) return;
      started = true;
      const host = options.bindAddress ?? '0.0.0.0';
      if (options.probePort !== false) {
        const s = await startProbeServer({ host, port: options.probePort ?? 8081, healthChecks, readyChecks });
        servers.push(s);
        ports.probes = s.port;
      }
      if (options.metricsPort !== false) {
        const s = await startMetricsServer({ host, port: options.metricsPort ?? 8080, registry });
        servers.push(s);
        ports.metrics = s.port;
      }
      for (const inf of informers.values()) inf.start();
      elector?.start();
      for (const r of runners) void startRunner(r);
      if (options.handleSignals !== false) {
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      }
      log.info({ namespace: options.namespace, identity: leader.identity, ports }, 'runtime started');
    },
    stop() {
      if (stopping) return stopping;
      stopping = (async () => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        if (!abort.signal.aborted) abort.abort(new Error('shutdown'));
        const timeout = options.shutdownTimeoutMs ?? 5_000;
        await Promise.all(runners.map((r) => r.stop(timeout)));
        for (const fn of stopHooks) {
          try {
            await fn();
          } catch (err) {
            log.warn({ err: errorMessage(err) }, 'stop hook failed');
          }
        }
        status.close();
        await Promise.race([events.flush(), new Promise((r) => setTimeout(r, 2000).unref())]);
        await elector?.stop(true);
        await Promise.all([...informers.values()].map((i) => i.stop()));
        await Promise.all(servers.map((s) => s.close()));
        log.info('runtime stopped');
      })();
      return stopping;
    },
  };
  return rt;
}
