// The actual-state store behind one interface: memory (default) or etcd.
import { MemoryStore } from './memory.js';
import { EtcdStore } from './etcd.js';
import type { AppsConfig, AppsProcessConfig } from '../config.js';

export { MemoryStore, K, type AppsStore, type ApplyResult, type LoadResult } from './memory.js';
export { EtcdStore } from './etcd.js';
export { ActualFreshness, desiredIsFresh, type ObservedSpan } from './freshness.js';

export function createStore(store: AppsProcessConfig['store'], config: AppsConfig): MemoryStore {
  if (store.kind === 'etcd') {
    return new EtcdStore({
      endpoints: store.endpoints,
      ...(store.prefix ? { prefix: store.prefix } : {}),
      actualFreshnessTtlMs: config.actualFreshnessTtlMs,
      crashTtlMs: 2 * config.crashBackoff.maxBackoffMs,
    });
  }
  return new MemoryStore(config.actualFreshnessTtlMs);
}
