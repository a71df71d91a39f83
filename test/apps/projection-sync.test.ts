// ProjectionSync (src/apps/fetcher/projection-sync.ts): the DesiredApp objects follow the accepted
// desired state, nothing is listed or written while they already match, a deleted managed object of
// a desired app is recreated, and people's overrides come back from the objects.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { DesiredAppProjection } from '../../src/apps/fetcher/projection.js';
import { ProjectionSync } from '../../src/apps/fetcher/projection-sync.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import type { DesiredAppState } from '../../src/apps/types.js';
import type { DesiredApp } from '../../src/api/index.js';
import { fakeRuntime, type MapInformer } from './support/fake-runtime.js';

const app = (guid: string, p: Partial<DesiredAppState> = {}): [string, DesiredAppState] => [guid, { appGuid: guid, version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED', ...p }];

function setup() {
  const rt = fakeRuntime();
  const store = new MemoryStore(30_000);
  const informer = rt.informer('DesiredApp') as unknown as MapInformer<DesiredApp>;
  const changed: string[] = [];
  const deleted: string[] = [];
  const sync = new ProjectionSync({
    store,
    namespace: 'cf',
    logger: pino({ level: 'silent' }),
    informer,
    projection: new DesiredAppProjection(rt.desiredAppApi, 'cf'),
    onObjectChanged: (g) => changed.push(g),
    onObjectDeleted: (g) => deleted.push(g),
  });
  const fetched = async (apps: [string, DesiredAppState][], at = 1) => {
    const before = store.desired();
    store.setDesired(new Map(apps), at);
    sync.afterFetch(before);
    await sync.idle();
  };
  return { rt, store, informer, sync, changed, deleted, fetched, calls: rt.desiredAppApi.calls };
}

describe('ProjectionSync', () => {
  it('projects after the first fetch, then lists and writes nothing while the objects match', async () => {
    const s = setup();
    await s.fetched([app('web'), app('api')]);
    expect(s.calls.filter((c) => c.op === 'create').map((c) => c.name).sort()).toEqual(['api', 'web']);
    expect(s.changed.sort()).toEqual(['api', 'web']);
    expect(s.sync.inSync()).toBe(true);
    s.calls.length = 0;
    await s.fetched([app('web'), app('api')], 2); // same content, a new snapshot
    await s.fetched([app('web'), app('api')], 3);
    expect(s.calls).toEqual([]);
    await s.fetched([app('web', { instances: 5 }), app('api')], 4);
    expect(s.calls.map((c) => c.op)).toEqual(['replace']); // from the informer's cache: no LIST
  });

  it('a managed object of a desired app deleted by a person is recreated on resync', async () => {
    const s = setup();
    await s.fetched([app('web')]);
    s.informer.delete('cf/web');
    expect(s.deleted).toEqual(['web']);
    expect(s.sync.dirty).toBe(true);
    s.sync.resync();
    await s.sync.idle();
    expect(s.sync.dirty).toBe(false);
    expect(s.informer.get('cf/web')?.spec.instances).toBe(2);
  });

  it('overrides: paused and crashBackoff from the objects of listed apps only; a status write changes nothing', async () => {
    const s = setup();
    await s.fetched([app('web'), app('api')]);
    const web = s.informer.get('cf/web')!;
    s.informer.set({ ...web, metadata: { ...web.metadata, generation: 2 }, spec: { ...web.spec, paused: true } });
    s.informer.set({ apiVersion: 'hm9k.io/v1alpha1', kind: 'DesiredApp', metadata: { name: 'ghost', namespace: 'cf', generation: 1 }, spec: { appGuid: 'ghost', version: 'v1', instances: 1, state: 'STARTED', packageState: 'STAGED', paused: true } });
    expect([...s.sync.pausedApps()]).toEqual(['web']);
    s.changed.length = 0;
    const now = s.informer.get('cf/web')!;
    s.informer.set({ ...now, status: { observedGeneration: 2 } as DesiredApp['status'] });
    expect(s.changed).toEqual([]);
  });

  it('disabled: no objects, no overrides, never out of sync work', async () => {
    const store = new MemoryStore(30_000);
    const sync = new ProjectionSync({ store, namespace: 'cf', logger: pino({ level: 'silent' }) });
    store.setDesired(new Map([app('web')]), 1);
    sync.afterFetch(new Map());
    expect(sync.busy()).toBe(false);
    expect(sync.enabled).toBe(false);
    expect(sync.hasSynced()).toBe(true);
    expect(sync.overrides().size).toBe(0);
    expect(sync.objectFor('web')).toBeUndefined();
  });
});

describe('DesiredAppProjection writes', () => {
  const apiRecording = (fail: (name: string) => number | undefined = () => undefined) => {
    let inFlight = 0;
    const rec = { maxInFlight: 0, created: [] as string[] };
    const api = {
      listPage: async () => ({ items: [] }),
      create: async (_ns: string, o: DesiredApp) => {
        inFlight++;
        rec.maxInFlight = Math.max(rec.maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 2));
        inFlight--;
        const code = fail(o.metadata.name);
        if (code) throw Object.assign(new Error(`HTTP ${code}`), { code });
        rec.created.push(o.metadata.name);
      },
      replace: async () => {},
      delete: async () => {},
    };
    return { api, rec };
  };
  const many = (n: number) => new Map(Array.from({ length: n }, (_, i) => app(`app-${i}`)));

  it('creates bounded-parallel: never more than maxInFlight writes at once', async () => {
    const { api, rec } = apiRecording();
    const p = new DesiredAppProjection(api, 'cf', 500, { maxInFlight: 4, writesPerSecond: 100_000 });
    const r = await p.sync(many(200), []);
    expect(r.created).toBe(200);
    expect(rec.maxInFlight).toBe(4);
  });

  it('an object that already exists (409: the cache was behind) is not an error; other failures are counted and reported', async () => {
    const { api } = apiRecording((name) => (name === 'app-1' ? 409 : name === 'app-2' ? 500 : undefined));
    const p = new DesiredAppProjection(api, 'cf', 500, { maxInFlight: 2, writesPerSecond: 100_000 });
    const err = await p.sync(many(5), []).catch((e: Error & { result?: { failed: number; created: number } }) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error & { result: { failed: number; created: number } }).result).toMatchObject({ failed: 1, created: 3 });
  });

  it('writes not yet started are skipped once no longer wanted (leadership lost)', async () => {
    const { api, rec } = apiRecording();
    const p = new DesiredAppProjection(api, 'cf', 500, { maxInFlight: 1, writesPerSecond: 100_000 });
    let wanted = true;
    const done = p.sync(many(50), [], () => wanted);
    await new Promise((r) => setTimeout(r, 10));
    wanted = false;
    const r = await done;
    expect(rec.created.length).toBeLessThan(50);
    expect(r.created + r.abandoned).toBe(50);
  });
});
