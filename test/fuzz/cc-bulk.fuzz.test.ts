// Fuzz: CC bulk API pages through the real CcClient and Fetcher (a local HTTP server answers the
// generated pages), and /bulk_app_state requests through the real ApiServer. Never a throw or a
// 500; a rejected fetch is counted (hm9k_bulk_fetches_total{outcome="failed"}) and changes nothing;
// an accepted one holds only well-typed apps; /bulk_app_state answers 200 with an object, `{}` for
// a bad body, and never reports an app it was not asked for.
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/apps/apiserver/index.js';
import { resolveAppsConfig } from '../../src/apps/config.js';
import { Fetcher } from '../../src/apps/fetcher/index.js';
import { AppsMetrics } from '../../src/apps/status/metrics.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import { APP_STATES, PACKAGE_STATES } from '../../src/api/index.js';
import { CcClient } from '../../src/clients/cc.js';
import { budget, check, mutated, weirdValue } from './support.js';

const logger = pino({ level: 'silent' });
const ident = fc.string({ minLength: 1, maxLength: 10 });
const validApp = fc.record({
  version: ident, instances: fc.nat({ max: 50 }), state: fc.constantFrom(...APP_STATES), package_state: fc.constantFrom(...PACKAGE_STATES),
  memory: fc.nat({ max: 4096 }), updated_at: fc.constant('2024-01-01T00:00:00Z'),
});
const validPage = fc.record({ results: fc.dictionary(ident, validApp, { maxKeys: 5 }), bulk_token: fc.record({ id: fc.nat({ max: 100 }) }) });

/** One HTTP answer of the bulk API: status + body (valid, mutated, truncated, empty, junk). */
const answer = fc.oneof(
  { weight: 4, arbitrary: validPage.map((p) => ({ status: 200, body: JSON.stringify(p) })) },
  { weight: 5, arbitrary: mutated(validPage).map((body) => ({ status: 200, body })) },
  { weight: 1, arbitrary: fc.tuple(validPage, fc.nat()).map(([p, n]) => { const s = JSON.stringify(p); return { status: 200, body: s.slice(0, n % Math.max(1, s.length)) }; }) },
  { weight: 1, arbitrary: fc.constant({ status: 200, body: '{"results":{}}' }) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(200, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503), fc.string({ maxLength: 50 })).map(([status, body]) => ({ status, body })) },
  { weight: 1, arbitrary: weirdValue.map((v) => ({ status: 200, body: JSON.stringify({ results: v, bulk_token: v }) ?? '' })) },
);

let server: Server;
let url = '';
let script: { status: number; body: string }[] = [];
let served = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    const a = script[served++] ?? { status: 200, body: '{"results":{},"bulk_token":{}}' };
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.status === 204 ? undefined : a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const RUNS = 300;
describe('fuzz: CC bulk API and /bulk_app_state', () => {
  it('found: a /bulk_app_state body above the limit is refused with 413 and does not break the next request', async () => {
    const store = new MemoryStore(30_000);
    const api = new ApiServer({ port: 0, user: 'hm', password: 'pw', store, isFresh: () => true, publishHeartbeat: () => {}, malformed: () => {}, logger, maxBodyBytes: 1024 });
    await api.start();
    const auth = `Basic ${Buffer.from('hm:pw').toString('base64')}`;
    try {
      const big = await fetch(`http://127.0.0.1:${api.port}/bulk_app_state`, { method: 'POST', headers: { authorization: auth }, body: `[${'{"droplet":"a","version":"v"},'.repeat(2000)}{}]` });
      expect(big.status).toBe(413);
      await big.text();
      const next = await fetch(`http://127.0.0.1:${api.port}/bulk_app_state`, { method: 'POST', headers: { authorization: auth }, body: '[]' });
      expect(next.status).toBe(200);
    } finally {
      await api.stop();
    }
  });

  it('bulk pages: never throws; failed -> counted, nothing changed; complete -> well typed', { timeout: budget(RUNS, 30) }, async () => {
    const registry = new Registry();
    const metrics = new AppsMetrics(registry);
    const count = async (outcome: string) => (await registry.getSingleMetric('hm9k_bulk_fetches_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
    let failed = 0;
    let complete = 0;
    await check('cc bulk pages', fc.asyncProperty(fc.array(answer, { minLength: 1, maxLength: 5 }), async (pages) => {
      script = pages;
      served = 0;
      const store = new MemoryStore(30_000);
      const config = { ...resolveAppsConfig(undefined), bulkBatchSize: 5, fetchTimeoutMs: 2000 };
      const cc = new CcClient({ url, bulkUser: 'u', bulkPassword: 'p', internalUser: 'u', internalPassword: 'p', timeoutMs: 2000, batchSize: 5, maxPages: 20 });
      const fetcher = new Fetcher({ cc, store, config: () => config, metrics, logger });
      const before = await count('failed');
      const out = await fetcher.fetchOnce(Date.now());
      expect(served).toBeLessThanOrEqual(20);
      if (!out.ok) {
        failed++;
        expect(out.error).toBeTruthy();
        expect(await count('failed')).toBe(before + 1);
        expect(store.desired().size).toBe(0);
        expect(store.lastCompleteFetch()).toBeUndefined();
        return;
      }
      complete++;
      for (const [guid, app] of store.desired()) {
        expect(app.appGuid).toBe(guid);
        expect(typeof app.version === 'string' && app.version.length > 0).toBe(true);
        expect(Number.isInteger(app.instances) && app.instances >= 0).toBe(true);
        expect(APP_STATES).toContain(app.state);
        expect(PACKAGE_STATES).toContain(app.packageState);
      }
    }), RUNS);
    expect(failed).toBeGreaterThan(RUNS / 10);
    expect(complete).toBeGreaterThan(RUNS / 10);
  });

  it('/bulk_app_state: 200 with an object for any body; `{}` for a bad one; only apps asked for', { timeout: budget(RUNS, 30) }, async () => {
    const store = new MemoryStore(30_000);
    store.applyHeartbeat({ dea: 'd', droplets: [{ droplet: 'a', version: 'v', instance: 'i0', index: 0, state: 'RUNNING', state_timestamp: 1 }, { droplet: 'constructor', version: 'v', instance: 'i1', index: 0, state: 'RUNNING', state_timestamp: 1 }] }, Date.now());
    let bad = 0;
    const api = new ApiServer({ port: 0, user: 'hm', password: 'pw', store, isFresh: () => true, publishHeartbeat: () => {}, malformed: () => {}, badRequest: () => { bad++; }, logger, maxBodyBytes: 64 * 1024 });
    await api.start();
    const auth = `Basic ${Buffer.from('hm:pw').toString('base64')}`;
    const query = fc.record({ droplet: fc.oneof(fc.constantFrom('a', 'constructor', '__proto__', 'b'), fc.string({ maxLength: 5 })), version: fc.constantFrom('v', 'w') });
    const body = fc.oneof(
      fc.array(query, { maxLength: 5 }).map((q) => JSON.stringify(q)),
      mutated(fc.array(query, { minLength: 1, maxLength: 3 })),
      fc.string({ maxLength: 100 }),
      fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b).toString('latin1')),
      fc.integer({ min: 70_000, max: 200_000 }).map((n) => `[${'{"droplet":"a","version":"v"},'.repeat(n / 30)}{}]`),
    );
    try {
      await check('/bulk_app_state', fc.asyncProperty(body, async (b) => {
        const before = bad;
        const res = await fetch(`http://127.0.0.1:${api.port}/bulk_app_state`, { method: 'POST', headers: { authorization: auth }, body: b });
        const out = (await res.json()) as Record<string, unknown>;
        if (Buffer.byteLength(b) > 64 * 1024) {
          // Above the limit: refused, and the connection closed (the next request must still work).
          expect(res.status).toBe(413);
          return;
        }
        expect(res.status).toBe(200);
        expect(out && typeof out === 'object' && !Array.isArray(out)).toBe(true);
        let asked: unknown;
        try { asked = JSON.parse(b); } catch { asked = undefined; }
        const valid = Array.isArray(asked) && asked.every((q) => q && typeof q === 'object' && typeof q.droplet === 'string' && typeof q.version === 'string');
        // A bad body is answered {} and counted (hm9k_malformed_messages_total{subject="http:/bulk_app_state"}).
        expect(bad - before).toBe(valid ? 0 : 1);
        if (!valid) expect(out).toEqual({});
        const names = Array.isArray(asked) ? asked.map((q) => (q as { droplet?: unknown })?.droplet) : [];
        for (const k of Object.keys(out)) expect(names).toContain(k);
      }), RUNS);
    } finally {
      await api.stop();
    }
  });
});
