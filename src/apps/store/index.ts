// The actual-state store behind one interface: memory (default) or etcd.
import { MemoryStore } from './memory.js';
import type { AppsConfig, AppsProcessConfig } from '../config.js';

export { MemoryStore, K, type AppsStore, type ApplyResult, type LoadResult } from './memory.js';
export type { EtcdStore } from './etcd.js';
export { ActualFreshness, desiredIsFresh, type ObservedSpan } from './freshness.js';

/**
 * The store the process configuration names. The etcd client (etcd3, gRPC, protobuf: about 17 MB of
 * RSS) is loaded only for the etcd store, not for the default memory one (issue 14 item 9).
 */
export async function createStore(store: AppsProcessConfig['store'], config: AppsConfig): Promise<MemoryStore> {
  if (store.kind === 'etcd') {
    const { EtcdStore } = await import('./etcd.js');
    return new EtcdStore({
      endpoints: store.endpoints,
      ...(store.prefix ? { prefix: store.prefix } : {}),
      actualFreshnessTtlMs: config.actualFreshnessTtlMs,
      crashTtlMs: 2 * config.crashBackoff.maxBackoffMs,
    });
  }
  return new MemoryStore(config.actualFreshnessTtlMs);
}
