import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { Registry, Counter } from 'prom-client';
import { startMetricsServer, startProbeServer } from './server.js';
import { createRootLogger, loggerFactory } from './log.js';

describe('probe and metrics servers', () => {
  it('/readyz is 503 until every check passes; /healthz ok; unknown paths 404', async () => {
    let synced = false;
    const srv = await startProbeServer({
      host: '127.0.0.1',
      port: 0,
      healthChecks: new Map([['ping', () => true]]),
      readyChecks: new Map([
        ['informers', () => synced],
        ['throws', () => true],
      ]),
    });
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      const r1 = await fetch(`${base}/readyz`);
      expect(r1.status).toBe(503);
      expect(await r1.text()).toContain('[-]informers failed');
      synced = true;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await srv.close();
    }
  });

  it('a throwing check counts as failed', async () => {
    const srv = await startProbeServer({
      host: '127.0.0.1',
      port: 0,
      healthChecks: new Map([['boom', () => { throw new Error('x'); }]]),
      readyChecks: new Map(),
    });
    try {
      expect((await fetch(`http://127.0.0.1:${srv.port}/healthz`)).status).toBe(503);
    } finally {
      await srv.close();
    }
  });

  it('/metrics serves the registry in Prometheus text format', async () => {
    const reg = new Registry();
    new Counter({ name: 'hm9k_test_total', help: 'x', registers: [reg] }).inc(3);
    const srv = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: reg });
    try {
      const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('hm9k_test_total 3');
    } finally {
      await srv.close();
    }
  });
});

describe('logger', () => {
  it('writes JSON lines with the component and redacts secrets', () => {
    const lines: string[] = [];
    const dest = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = loggerFactory(createRootLogger({ level: 'info', destination: dest as never }));
    log('leader').info({ password: 'hunter2', key: 'ns/name' }, 'hello');
    log('leader').debug('hidden');
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ component: 'leader', level: 'info', msg: 'hello', password: '[redacted]', key: 'ns/name' });
    expect(() => createRootLogger({ level: 'loud' })).toThrow(/invalid log level/);
  });
});
