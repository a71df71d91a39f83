// The node half (compute-node HA): entry point wired into `hm9k run --nodes`.
import { KubeSecrets, type SecretSource } from '../clients/secrets.js';
import type { Runtime } from '../kube/contract.js';
import type { NodesProcessConfig } from './config.js';
import { NodeDeps } from './deps.js';
import { NodesEngine } from './engine.js';

export { resolvePolicy, validatePolicy, nodesConfig, DEFAULT_NODES_CONFIG, type NodesProcessConfig, type ResolvedPolicy } from './config.js';
export { decide, applyOutcome } from './fence/machine.js';
export type { NodesEngine } from './engine.js';

export interface StartNodesOptions {
  /** Secrets source (default: Secrets in config.namespace through the runtime's kubeconfig). */
  secrets?: SecretSource;
  now?: () => number;
}

/**
 * Starts the node half on `runtime`: informers for ComputeNode and FencePolicy, the Consul, Nova
 * and power monitors, the ComputeNode and FencePolicy reconcilers. Call before runtime.start()
 * (controllers are registered here). Every Secret is read from config.namespace only.
 */
export async function startNodes(runtime: Runtime, config: NodesProcessConfig, options: StartNodesOptions = {}): Promise<{ stop(): Promise<void>; engine: NodesEngine }> {
  const secrets = options.secrets ?? new KubeSecrets(runtime.kubeConfig, config.namespace);
  const deps = new NodeDeps(config, secrets, runtime.metrics);
  const engine = new NodesEngine(runtime, config, deps, options.now ? { now: options.now } : {});
  engine.start();
  runtime.addReadinessCheck('nodes', () => true);
  return { engine, stop: () => engine.stop() };
}
