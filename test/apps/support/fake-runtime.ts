// An in-memory Runtime (src/kube/contract.ts) for app-half tests that do not need the apiserver:
// informers over maps, a status writer and event recorder that record calls, a switchable leader,
// and an in-memory DesiredApp API (with paginated LIST) that feeds the DesiredApp informer.
import { KubeConfig } from '../../../src/kube/client.js';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { KindName } from '../../../src/api/index.js';
import { keyOf, type Informer, type KubeObject, type ResourceByKind, type Runtime, type WatchEventType } from '../../../src/kube/contract.js';
import type { DesiredAppApi } from '../../../src/apps/fetcher/projection.js';
import type { DesiredApp } from '../../../src/api/index.js';

export class MapInformer<T extends KubeObject> implements Informer<T> {
  readonly items = new Map<string, T>();
  private handlers: { event: WatchEventType; fn: (o: T, old?: T) => void }[] = [];
  get(key: string) {
    return this.items.get(key);
  }
  list() {
    return [...this.items.values()];
  }
  on(event: WatchEventType, handler: (obj: T, old?: T) => void) {
    this.handlers.push({ event, fn: handler });
  }
  hasSynced() {
    return true;
  }
  async waitForSync() {}
  async waitForVersion() {}
  set(o: T) {
    const old = this.items.get(keyOf(o));
    this.items.set(keyOf(o), o);
    for (const h of this.handlers) if (h.event === (old ? 'update' : 'add')) h.fn(o, old);
  }
  delete(key: string) {
    const o = this.items.get(key);
    this.items.delete(key);
    if (o) for (const h of this.handlers) if (h.event === 'delete') h.fn(o);
  }
}

export interface FakeRuntime extends Runtime {
  leaderFlag: { value: boolean };
  informers: Map<string, MapInformer<KubeObject>>;
  statusWrites: { kind: string; name: string; status: unknown }[];
  events: Runtime['events'] & { recorded: { reason: string; type: string; note: string; name: string }[] };
  desiredAppApi: DesiredAppApi & { calls: { op: string; name?: string }[] };
}

export function fakeRuntime(opts: { leader?: boolean; logLevel?: string } = {}): FakeRuntime {
  const logger = pino({ level: opts.logLevel ?? process.env.HM9K_TEST_LOG ?? 'silent' });
  const informers = new Map<string, MapInformer<KubeObject>>();
  const informer = <K extends KindName>(kind: K) => {
    let i = informers.get(kind);
    if (!i) informers.set(kind, (i = new MapInformer()));
    return i as unknown as Informer<ResourceByKind[K]>;
  };
  const leaderFlag = { value: opts.leader ?? true };
  const statusWrites: FakeRuntime['statusWrites'] = [];
  const recorded: FakeRuntime['events']['recorded'] = [];
  const ac = new AbortController();
  let rv = 1;
  const calls: { op: string; name?: string }[] = [];
  const daInformer = () => informer('DesiredApp') as unknown as MapInformer<DesiredApp>;
  const desiredAppApi: FakeRuntime['desiredAppApi'] = {
    calls,
    async listPage(namespace, limit, cont) {
      calls.push({ op: 'list' });
      const all = daInformer().list().filter((o) => o.metadata.namespace === namespace).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
      const start = cont ? Number(cont) : 0;
      const items = all.slice(start, start + limit);
      return { items: structuredClone(items), ...(start + limit < all.length ? { continue: String(start + limit) } : {}) };
    },
    async create(namespace, obj) {
      calls.push({ op: 'create', name: obj.metadata.name });
      daInformer().set({ ...structuredClone(obj), metadata: { ...obj.metadata, namespace, resourceVersion: String(rv++), generation: 1 } });
    },
    async replace(namespace, obj) {
      calls.push({ op: 'replace', name: obj.metadata.name });
      daInformer().set({ ...structuredClone(obj), metadata: { ...obj.metadata, namespace, resourceVersion: String(rv++) } });
    },
    async delete(namespace, name) {
      calls.push({ op: 'delete', name });
      daInformer().delete(`${namespace}/${name}`);
    },
  };
  const rt: FakeRuntime = {
    kubeConfig: new KubeConfig(),
    namespace: 'hm9k-system',
    logger: (component) => logger.child({ component }),
    metrics: new Registry(),
    informer,
    addController: () => ({ add() {}, addAfter() {}, addRateLimited() {}, forget() {}, len: () => 0 }),
    status: {
      async patchStatus(kind, obj, status) {
        const inf = informers.get(kind);
        const cur = inf?.get(keyOf(obj));
        if (cur && JSON.stringify(cur.status) === JSON.stringify(status)) return false;
        statusWrites.push({ kind, name: obj.metadata.name, status });
        if (cur) inf!.set({ ...cur, status } as KubeObject);
        return true;
      },
      async updateStatus(_kind, obj) {
        return obj;
      },
    },
    events: {
      recorded,
      record(regarding, type, reason, _action, note) {
        recorded.push({ reason, type, note, name: regarding.metadata.name });
      },
    },
    leader: {
      identity: 'test',
      isLeader: () => leaderFlag.value,
      transitions: () => 0,
      waitForLeadership: async () => {},
    },
    addReadinessCheck() {},
    signal: ac.signal,
    leaderFlag,
    informers,
    statusWrites,
    desiredAppApi,
  };
  return rt;
}
