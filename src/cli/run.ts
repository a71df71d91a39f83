// `hm9k run`: one half per process (the chart runs two Deployments from one image), or neither, in
// which case the runtime still starts, watches the resources and reports ready.
import { loadKubeConfig } from './kubeconfig.js';
import { loadConfig, type ProcessConfig } from '../config.js';
import { parseDuration } from '../api/index.js';
import { createRuntime, type ManagedRuntime } from '../kube/runtime.js';
import type { AppsProcessConfig } from '../apps/config.js';
import { nodesConfig, type NodesProcessConfig } from '../nodes/config.js';

export interface RunOptions {
  apps?: boolean;
  nodes?: boolean;
  config?: string;
  set?: string[];
  namespace?: string;
  kubeconfig?: string;
  logLevel?: string;
  metricsPort?: string;
  healthPort?: string;
}

/** The process configuration from `hm9k run`'s options (parsed by commander in src/cli.ts), the environment and the file. */
export function runConfig(values: RunOptions): { config: ProcessConfig; half: 'apps' | 'nodes' | undefined } {
  const sets: [string, string][] = (values.set ?? []).map((s) => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${JSON.stringify(s)}: expected path=value`);
    return [s.slice(0, eq), s.slice(eq + 1)];
  });
  const flag = (path: string, v: string | undefined) => (v === undefined ? [] : [[path, v] as [string, string]]);
  sets.push(
    ...flag('namespace', values.namespace),
    ...flag('kubeconfig', values.kubeconfig),
    ...flag('logLevel', values.logLevel),
    ...flag('metricsPort', values.metricsPort),
    ...flag('healthPort', values.healthPort),
  );
  if (values.apps) sets.push(['apps.enabled', 'true']);
  if (values.nodes) sets.push(['nodes.enabled', 'true']);
  const config = loadConfig({ ...(values.config ? { file: values.config } : {}), env: process.env, sets });
  if (config.apps.enabled && config.nodes.enabled) {
    throw new Error('run the app half and the node half in separate processes (hm9k run --apps; hm9k run --nodes): they must never share an event loop, a Lease or a permission');
  }
  return { config, half: config.apps.enabled ? 'apps' : config.nodes.enabled ? 'nodes' : undefined };
}

export function appsProcessConfig(c: ProcessConfig): AppsProcessConfig {
  const a = c.apps;
  return {
    nats: { servers: a.nats.servers, ...(a.nats.user ? { user: a.nats.user } : {}), ...(a.nats.password ? { pass: a.nats.password } : {}), ...(a.nats.token ? { token: a.nats.token } : {}) },
    cc: { url: a.cc.url, internalUser: a.cc.internalUser, internalPassword: a.cc.internalPassword, bulkUser: a.cc.bulkUser, bulkPassword: a.cc.bulkPassword },
    sendVia: a.sendVia,
    store: a.store.kind === 'etcd' ? { kind: 'etcd', endpoints: a.store.endpoints, prefix: a.store.prefix } : { kind: 'memory' },
    api: {
      port: a.api.port, host: a.api.host, user: a.api.user, password: a.api.password, heartbeatEndpoint: a.api.heartbeatEndpoint, heartbeatAuth: a.api.heartbeatAuth,
      ...(a.api.heartbeatUser ? { heartbeatUser: a.api.heartbeatUser } : {}),
      ...(a.api.heartbeatPassword ? { heartbeatPassword: a.api.heartbeatPassword } : {}),
    },
    desiredAppNamespace: a.desiredAppNamespace || c.namespace,
    ...(a.policyName ? { policyName: a.policyName } : {}),
  };
}

export function nodesProcessConfig(c: ProcessConfig): NodesProcessConfig {
  const n = c.nodes;
  return nodesConfig({
    namespace: c.namespace,
    cloudsSecret: n.cloudsSecret,
    cloudName: n.cloudName,
    globalMaxUnhealthy: n.globalMaxUnhealthy,
    maxConcurrentRemediations: n.maxConcurrentRemediations,
    maxParallelIpmi: n.maxParallelIpmi,
    maxParallelSsh: n.maxParallelSsh,
    consulWaitMs: parseDuration(n.consulWait),
    consulMinLoopMs: parseDuration(n.consulMinLoop),
    powerPollIntervalMs: parseDuration(n.powerPollInterval),
    novaPollIntervalMs: parseDuration(n.novaPollInterval),
    httpTimeoutMs: parseDuration(n.httpTimeout),
    maxResponseBytes: n.maxResponseBytes,
    maxPages: n.maxPages,
    tokenRefreshPercent: n.tokenRefreshPercent,
    tokenRetryIntervalMs: parseDuration(n.tokenRetryInterval),
    resyncMs: parseDuration(n.resync),
    emailRetryInitialMs: parseDuration(n.emailRetryInitial),
    emailRetryMaxMs: parseDuration(n.emailRetryMax),
    emailRetries: n.emailRetries,
    ipmitoolPath: n.ipmitoolPath,
    workers: n.workers,
    serverCountIntervalMs: parseDuration(n.serverCountInterval),
    ...(n.smtpDefault
      ? {
          smtpDefault: {
            smtpHost: n.smtpDefault.smtpHost,
            smtpPort: n.smtpDefault.smtpPort,
            secure: n.smtpDefault.secure,
            from: n.smtpDefault.from,
            to: [...n.smtpDefault.to],
            ...(n.smtpDefault.credentialsSecret ? { credentialsSecret: n.smtpDefault.credentialsSecret } : {}),
          },
        }
      : {}),
  });
}

export async function startProcess(config: ProcessConfig, half: 'apps' | 'nodes' | undefined): Promise<{ runtime: ManagedRuntime; stop(): Promise<void> }> {
  const kubeConfig = loadKubeConfig(config.kubeconfig || undefined);
  const le = config.leaderElection;
  const runtime = await createRuntime({
    component: half ?? 'hm9k',
    namespace: config.namespace,
    kubeConfig,
    logLevel: config.logLevel,
    bindAddress: config.bindAddress,
    metricsPort: config.metricsPort,
    probePort: config.healthPort,
    ...(config.podName ? { podName: config.podName } : {}),
    leaderElection: le.enabled
      ? {
          ...(le.leaseName ? { leaseName: le.leaseName } : {}),
          leaseDurationMs: parseDuration(le.leaseDuration),
          renewDeadlineMs: parseDuration(le.renewDeadline),
          retryPeriodMs: parseDuration(le.retryPeriod),
        }
      : false,
    informer: { watchTimeoutSeconds: Math.round(parseDuration(config.watch.timeout) / 1000), watchdogMs: parseDuration(config.watch.watchdog), relistPeriodMs: parseDuration(config.watch.resync) },
  });
  const log = runtime.logger('run');
  let stopHalf: () => Promise<void> = async () => {};
  if (half === 'apps') {
    const { startApps } = await import('../apps/index.js');
    const handle = await startApps(runtime, appsProcessConfig(config));
    stopHalf = () => handle.stop();
  } else if (half === 'nodes') {
    const { startNodes } = await import('../nodes/index.js');
    const handle = await startNodes(runtime, nodesProcessConfig(config));
    stopHalf = () => handle.stop();
  } else {
    // No half configured: watch every kind so that the caches, probes and metrics can be checked.
    runtime.informer('AppHealthPolicy');
    runtime.informer('ComputeNode');
    runtime.informer('FencePolicy');
    runtime.informer('DesiredApp');
    log.warn('no subsystem enabled (pass --apps or --nodes): watching resources only');
  }
  runtime.onStop(stopHalf);
  await runtime.start();
  log.info({ half: half ?? 'none', namespace: config.namespace, ports: runtime.ports() }, 'hm9k started');
  return { runtime, stop: () => runtime.stop() };
}

export async function runCommand(values: RunOptions): Promise<number> {
  const { config, half } = runConfig(values);
  await startProcess(config, half);
  return 0; // the runtime keeps the process alive and handles SIGTERM
}
