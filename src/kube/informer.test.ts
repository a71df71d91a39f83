import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ReflectorInformer, diffCache } from './informer.js';
import type { ListerWatcher, ListOptions, RawWatchEvent, WatchOptions } from './listwatch.js';
import type { KubeObject } from './contract.js';

const logger = pino({ level: 'silent' });
const obj = (name: string, rv: string, ns?: string): KubeObject => ({ metadata: { name, namespace: ns, resourceVersion: rv } });
const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** A scripted API server: a store, paginated lists, one live watch at a time. */
function fakeServer() {
  const store = new Map<string, KubeObject>();
  let rv = 10;
  const lists: ListOptions[] = [];
  const watches: WatchOptions[] = [];
  let live: { onEvent: (e: RawWatchEvent) => void; onDone: (err?: unknown) => void } | undefined;
  let failNext: unknown[] = [];
  const lw: ListerWatcher = {
    path: '/apis/x/v1/things',
    async list(opts) {
      lists.push(opts);
      const f = failNext.shift();
      if (f) throw f;
      const all = [...store.values()];
      const start = opts.continue ? Number(opts.continue) : 0;
      const limit = opts.limit ?? all.length;
      const items = all.slice(start, start + limit);
      const next = start + limit < all.length ? String(start + limit) : undefined;
      return { items: items.map((o) => structuredClone(o)), resourceVersion: String(rv), continue: next };
    },
    async watch(opts, onEvent, onDone) {
      watches.push(opts);
      const f = failNext.shift();
      if (f) {
        onDone(f);
        return { abort() {} };
      }
      const me = { onEvent, onDone };
      live = me;
      return {
        abort() {
          if (live === me) live = undefined;
        },
      };
    },
  };
  return {
    lw,
    lists,
    watches,
    store,
    failWith: (...errs: unknown[]) => (failNext = errs),
    hasWatch: () => !!live,
    put(name: string, emit = true) {
      const o = obj(name, String(++rv));
      const type = store.has(name) ? 'MODIFIED' : 'ADDED';
      store.set(name, o);
      if (emit) live?.onEvent({ type, object: structuredClone(o) });
      return o;
    },
    del(name: string, emit = true) {
      const o = store.get(name)!;
      store.delete(name);
      ++rv;
      if (emit) live?.onEvent({ type: 'DELETED', object: { ...o, metadata: { ...o.metadata, resourceVersion: String(rv) } } });
    },
    send: (e: RawWatchEvent) => live?.onEvent(e),
    close: (err?: unknown) => live?.onDone(err),
  };
}

describe('diffCache (pure)', () => {
  it('finds adds, updates (resourceVersion changed) and deletes', () => {
    const cache = new Map([
      ['a', obj('a', '1')],
      ['b', obj('b', '2')],
      ['c', obj('c', '3')],
    ]);
    const fresh = new Map([
      ['a', obj('a', '1')],
      ['b', obj('b', '5')],
      ['d', obj('d', '6')],
    ]);
    const d = diffCache(cache, fresh);
    expect(d.added.map((o) => o.metadata.name)).toEqual(['d']);
    expect(d.updated.map(([o, old]) => [o.metadata.resourceVersion, old.metadata.resourceVersion])).toEqual([['5', '2']]);
    expect(d.deleted).toEqual(['c']);
  });
});

describe('ReflectorInformer (fake API)', () => {
  const cfg = { pageSize: 2, watchdogMs: 10_000, relistPeriodMs: 0, backoffInitialMs: 1, backoffMaxMs: 5, watchTimeoutSeconds: 7 };

  it('lists with pagination, then watches from the list version with bookmarks and a timeout', async () => {
    const s = fakeServer();
    for (const n of ['a', 'b', 'c', 'd', 'e']) s.put(n, false);
    const inf = new ReflectorInformer(s.lw, { logger, config: cfg });
    const added: string[] = [];
    inf.on('add', (o) => added.push(o.metadata.name));
    inf.start();
    await inf.waitForSync();
    expect(s.lists.map((l) => l.continue)).toEqual([undefined, '2', '4']);
    expect(added.sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    await until(() => s.hasWatch(), 'watch');
    expect(s.watches[0]).toMatchObject({ resourceVersion: '15', allowWatchBookmarks: true, timeoutSeconds: 7 });
    await inf.stop();
  });

  it('applies watch events, resumes from the last version (bookmarks too) after a clean close', async () => {
    const s = fakeServer();
    const inf = new ReflectorInformer(s.lw, { logger, config: cfg });
    const seen: string[] = [];
    inf.on('add', (o) => seen.push(`add ${o.metadata.name}`));
    inf.on('update', (o, old) => seen.push(`update ${o.metadata.name} ${old?.metadata.resourceVersion}->${o.metadata.resourceVersion}`));
    inf.on('delete', (o) => seen.push(`delete ${o.metadata.name}`));
    inf.start();
    await until(() => s.hasWatch(), 'watch');
    s.put('a');
    s.put('a');
    s.del('a');
    s.send({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '99' } } });
    expect(seen).toEqual(['add a', 'update a 11->12', 'delete a']);
    s.close();
    await until(() => s.watches.length === 2, 're-watch');
    expect(s.watches[1]!.resourceVersion).toBe('99');
    expect(s.lists).toHaveLength(1); // no relist for a clean close
    await inf.stop();
  });

  it('relists on a 410 ERROR event and fires the differences', async () => {
    const s = fakeServer();
    s.put('keep', false);
    s.put('gone', false);
    const inf = new ReflectorInformer(s.lw, { logger, config: cfg });
    const seen: string[] = [];
    inf.on('add', (o) => seen.push(`add ${o.metadata.name}`));
    inf.on('update', (o) => seen.push(`update ${o.metadata.name}`));
    inf.on('delete', (o) => seen.push(`delete ${o.metadata.name}`));
    inf.start();
    await until(() => s.hasWatch(), 'watch');
    seen.length = 0;
    // changes the watch never delivered (compaction)
    s.del('gone', false);
    s.put('keep', false);
    s.put('new', false);
    s.send({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } });
    await until(() => s.lists.length === 2 && s.hasWatch() && s.watches.length === 2, 'relist and re-watch');
    expect(seen.sort()).toEqual(['add new', 'delete gone', 'update keep']);
    expect(inf.list().map((o) => o.metadata.name).sort()).toEqual(['keep', 'new']);
    await inf.stop();
  });

  it('relists on HTTP 410 from the watch, backs off on other errors and ignores malformed events', async () => {
    const s = fakeServer();
    const reg = new Registry();
    const inf = new ReflectorInformer(s.lw, { logger, metrics: reg, config: cfg });
    inf.start();
    await until(() => s.hasWatch(), 'watch');
    s.failWith(Object.assign(new Error('boom'), { code: 500 }), Object.assign(new Error('Gone'), { statusCode: 410 }));
    s.close(Object.assign(new Error('socket hang up'), {}));
    await until(() => s.lists.length === 2 && s.hasWatch(), 'relist after errors');
    s.send({ type: 'ADDED', object: { metadata: {} } });
    s.send({ type: 'WHAT', object: {} });
    expect(inf.list()).toHaveLength(0);
    const text = await reg.metrics();
    expect(text).toMatch(/hm9k_informer_malformed_events_total\{resource="\/apis\/x\/v1\/things"\} 2/);
    expect(text).toMatch(/hm9k_informer_errors_total\{resource="\/apis\/x\/v1\/things"\} 2/);
    await inf.stop();
  });

  it('a silent watch is aborted by the watchdog and re-opened', async () => {
    const s = fakeServer();
    const inf = new ReflectorInformer(s.lw, { logger, config: { ...cfg, watchdogMs: 30 } });
    inf.start();
    await until(() => s.watches.length >= 3, 'watchdog re-watches');
    expect(s.lists).toHaveLength(1);
    await inf.stop();
  });

  it('waitForVersion resolves when the cache reaches the version, rejects on timeout', async () => {
    const s = fakeServer();
    const inf = new ReflectorInformer(s.lw, { logger, config: cfg });
    inf.start();
    await until(() => s.hasWatch(), 'watch');
    const w = inf.waitForVersion('a', '12', 2000);
    s.put('a'); // 11
    let done = false;
    void w.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false);
    s.put('a'); // 12
    await w;
    await inf.waitForVersion('a', '11'); // already older: immediate
    await expect(inf.waitForVersion('a', '50', 20)).rejects.toThrow(/not at resourceVersion 50/);
    await inf.stop();
  });
});
