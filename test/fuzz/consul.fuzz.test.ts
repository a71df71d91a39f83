// Fuzz: Consul answers (health/state and catalog/nodes bodies, X-Consul-Index headers, status codes)
// through the real ConsulWatcher (npm consul client) served by a local HTTP server. Never an
// unhandled rejection; every answer leads either to a view (nodeState is up/down/unknown, `down` only
// when the catalog lists the node and its serfHealth is critical) or to an observer error, which
// makes every node `unknown` and is counted (ConsulPool.onError: hm9k_nodes_source_errors_total{source="consul"}).
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulPool, type ConsulWatcher } from '../../src/clients/consul.js';
import { budget, check, mutated, weirdValue } from './support.js';

const nodeName = fc.constantFrom('cmp1', 'cmp2', 'cmp3', '', '__proto__');
const healthEntry = fc.record({ Node: nodeName, CheckID: fc.constantFrom('serfHealth', 'service:nova'), Status: fc.constantFrom('passing', 'warning', 'critical', 'maintenance'), Output: fc.string({ maxLength: 10 }) });
const catalogEntry = fc.record({ Node: nodeName, Address: fc.constant('127.0.0.1'), Datacenter: fc.constant('dc1') });
const answerOf = <T>(valid: fc.Arbitrary<T>) =>
  fc.record({
    status: fc.oneof({ weight: 8, arbitrary: fc.constant(200) }, { weight: 2, arbitrary: fc.constantFrom(403, 404, 429, 500, 503) }),
    index: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String), fc.constantFrom('', 'abc', '-5', '1e3', '0x10', ' 7')),
    text: fc.oneof(
      { weight: 4, arbitrary: valid.map((v) => JSON.stringify(v)) },
      { weight: 4, arbitrary: mutated(valid) },
      { weight: 1, arbitrary: weirdValue.map((v) => JSON.stringify(v) ?? '') },
      { weight: 1, arbitrary: fc.constantFrom('No cluster leader', '', '[', 'null') },
    ),
  });
const answers = fc.record({ health: answerOf(fc.array(healthEntry, { maxLength: 6 })), catalog: answerOf(fc.array(catalogEntry, { maxLength: 4 })) });
type Answer = { status: number; index: string; text: string };

let srv: Server;
let port = 0;
let current: { health: Answer; catalog: Answer };
beforeAll(async () => {
  srv = createServer((req, res) => {
    req.resume();
    const a = (req.url ?? '').startsWith('/v1/health') ? current.health : current.catalog;
    // Blocking queries: answer a repeated query (index > 0) only after a while, like Consul does.
    const blocking = /[?&]index=[1-9]/.test(req.url ?? '');
    const send = () => {
      if (res.destroyed) return;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (a.index !== '') headers['x-consul-index'] = a.index;
      res.writeHead(a.status, headers);
      res.end(a.text);
    };
    if (blocking) setTimeout(send, 200); else send();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  port = (srv.address() as { port: number }).port;
});
afterAll(async () => {
  srv.closeAllConnections();
  await new Promise((r) => srv.close(r));
});

/** Waits until both loops have answered once (a view) or one failed (an observer error). */
function settled(w: ConsulWatcher, errors: () => number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { clearInterval(t); resolve(); };
    const t = setInterval(() => { if (w.view.healthy || errors() > 0) done(); }, 5);
    setTimeout(done, 1500);
  });
}

const RUNS = 200;
describe('fuzz: Consul answers', () => {
  it('ConsulWatcher: a view or a counted observer error, never a throw; down only with evidence', { timeout: budget(RUNS, 60) }, async () => {
    let errorCases = 0;
    let viewCases = 0;
    await check('consul health/catalog', fc.asyncProperty(answers, async (a) => {
      current = a;
      let errors = 0;
      const pool = new ConsulPool({ waitMs: 1000, minLoopMs: 0, errorBackoffMs: 50 });
      pool.onError = () => { errors++; };
      const w = pool.acquire(`http://127.0.0.1:${port}`, undefined, []);
      try {
        await settled(w, () => errors);
        for (const n of ['cmp1', 'cmp2', 'cmp3', '__proto__', 'absent']) {
          const s = w.nodeState(n);
          expect(['up', 'down', 'unknown']).toContain(s.state);
          if (!w.view.healthy) expect(s.state).toBe('unknown');
          if (s.state === 'down') {
            expect(w.view.catalog.has(n)).toBe(true);
            expect(w.view.checks.get(n)?.get('serfHealth')).toBe('critical');
          }
          if (s.state !== 'unknown') expect(w.view.healthy).toBe(true);
          expect(['up', 'down', 'unknown']).toContain(w.checkState(n, 'service:nova'));
        }
        if (!w.view.healthy) errorCases++; else viewCases++;
        // A non-200 or a non-array body never yields a view.
        if (a.health.status !== 200 && a.catalog.status !== 200) expect(w.view.healthy).toBe(false);
        if (!w.view.healthy && w.view.error !== 'not yet answered') expect(errors).toBeGreaterThan(0);
      } finally {
        await pool.stop();
      }
    }), RUNS);
    expect(errorCases).toBeGreaterThan(0);
    expect(viewCases).toBeGreaterThan(0);
  });
});
