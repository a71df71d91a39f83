// Writing only what changed: a DesiredApp's status is recomputed only when its summary changed
// (sameSummary), an AppHealthPolicy status that differs only in lastCompleteFetch is not written
// (policyStatusToWrite); and the optional basic auth of POST /dea/heartbeat.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AppSummary } from '../../src/apps/analyzer/index.js';
import { ApiServer } from '../../src/apps/apiserver/index.js';
import { policyStatusToWrite, sameJson, sameSummary } from '../../src/apps/status/index.js';
import { MemoryStore } from '../../src/apps/store/memory.js';
import type { AppHealthPolicyStatus } from '../../src/api/index.js';

const summary = (p: Partial<AppSummary> = {}): AppSummary => ({
  appGuid: 'a',
  desired: { appGuid: 'a', version: 'v1', instances: 2, state: 'STARTED', packageState: 'STAGED' },
  paused: false, running: 2, starting: 0, crashed: 0, missing: 0, flapping: [], gaveUp: [], undesiredRunning: 0, converged: true,
  ...p,
});

describe('sameSummary', () => {
  it('equal summaries (new objects) are the same', () => {
    expect(sameSummary(summary(), summary())).toBe(true);
    expect(sameSummary(summary({ flapping: [{ index: 1, crashCount: 4 }] }), summary({ flapping: [{ index: 1, crashCount: 4 }] }))).toBe(true);
  });
  it.each<[string, Partial<AppSummary>]>([
    ['running', { running: 1 }],
    ['starting', { starting: 1 }],
    ['crashed', { crashed: 1 }],
    ['missing', { missing: 1 }],
    ['undesiredRunning', { undesiredRunning: 1 }],
    ['converged', { converged: false }],
    ['paused', { paused: true }],
    ['flapping count', { flapping: [{ index: 0, crashCount: 3 }] }],
    ['gaveUp', { gaveUp: [0] }],
    ['desired version', { desired: { appGuid: 'a', version: 'v2', instances: 2, state: 'STARTED', packageState: 'STAGED' } }],
    ['desired instances', { desired: { appGuid: 'a', version: 'v1', instances: 3, state: 'STARTED', packageState: 'STAGED' } }],
    ['desired state', { desired: { appGuid: 'a', version: 'v1', instances: 2, state: 'STOPPED', packageState: 'STAGED' } }],
    ['not desired', { desired: undefined }],
  ])('a change in %s is a change', (_what, p) => {
    expect(sameSummary(summary(), summary(p))).toBe(false);
    expect(sameSummary(summary(p), summary())).toBe(false);
  });
  it('missing on one side is a change', () => {
    expect(sameSummary(undefined, summary())).toBe(false);
    expect(sameSummary(summary(), undefined)).toBe(false);
    expect(sameSummary(undefined, undefined)).toBe(true);
  });
});

describe('policyStatusToWrite', () => {
  const base: AppHealthPolicyStatus = {
    conditions: [{ type: 'ActualStateFresh', status: 'True', reason: 'HeartbeatsFlowing', message: 'm', lastTransitionTime: '2024-01-01T00:00:00Z' }],
    counts: { desiredApps: 1, desiredInstances: 2, running: 2, missing: 0, crashed: 0, undesired: 0, pendingStarts: 0, pendingStops: 0 },
    lastCompleteFetch: '2024-01-01T00:00:00Z',
    sender: { sent: 0, failed: 0 },
  };
  it('a newer lastCompleteFetch alone is not written', () => {
    expect(policyStatusToWrite({ ...base, lastCompleteFetch: '2024-01-01T00:01:00Z' }, base)).toBeUndefined();
  });
  it('any other change is written, carrying the newer lastCompleteFetch', () => {
    const next = { ...base, lastCompleteFetch: '2024-01-01T00:01:00Z', counts: { ...base.counts!, running: 1 } };
    expect(policyStatusToWrite(next, base)).toBe(next);
  });
  it('the first status, and the first lastCompleteFetch, are written', () => {
    expect(policyStatusToWrite(base, undefined)).toBe(base);
    const { lastCompleteFetch: _drop, ...without } = base;
    expect(policyStatusToWrite(base, without)).toBe(base);
  });
  it('sameJson ignores key order and undefined fields', () => {
    expect(sameJson({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1, d: undefined })).toBe(true);
    expect(sameJson({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });
});

describe('POST /dea/heartbeat basic auth (api.heartbeatAuth)', () => {
  it('the endpoint is off by default: NATS is the intake', async () => {
    const api = new ApiServer({ port: 0, user: 'hm', password: 'pw', store: new MemoryStore(30_000), isFresh: () => true, publishHeartbeat: () => undefined, malformed: () => undefined, logger: pino({ level: 'silent' }) });
    await api.start();
    try {
      expect((await fetch(`http://127.0.0.1:${api.port}/dea/heartbeat`, { method: 'POST', body: '{"dea":"d","droplets":[]}' })).status).toBe(404);
    } finally {
      await api.stop();
    }
  });
  const serve = async (heartbeatAuth: boolean | undefined) => {
    const published: string[] = [];
    const api = new ApiServer({ port: 0, user: 'hm', password: 'pw', heartbeatEndpoint: true, ...(heartbeatAuth !== undefined ? { heartbeatAuth } : {}), store: new MemoryStore(30_000), isFresh: () => true, publishHeartbeat: (b) => published.push(b), malformed: () => undefined, logger: pino({ level: 'silent' }) });
    await api.start();
    return { api, published, url: `http://127.0.0.1:${api.port}/dea/heartbeat` };
  };
  const hb = JSON.stringify({ dea: 'd1', droplets: [] });
  const auth = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

  it('off only when asked (heartbeatAuth false, loopback): accepted without credentials', async () => {
    const { api, published, url } = await serve(false);
    try {
      expect((await fetch(url, { method: 'POST', body: hb })).status).toBe(202);
      expect(published).toEqual([hb]);
    } finally {
      await api.stop();
    }
  });
  it('on by default (issue 14 item 5): 401 without or with wrong credentials (nothing published), 202 with the API credentials', async () => {
    const { api, published, url } = await serve(undefined);
    try {
      expect((await fetch(url, { method: 'POST', body: hb })).status).toBe(401);
      expect((await fetch(url, { method: 'POST', body: hb, headers: auth('hm', 'nope') })).status).toBe(401);
      expect(published).toEqual([]);
      expect((await fetch(url, { method: 'POST', body: hb, headers: auth('hm', 'pw') })).status).toBe(202);
      expect((await fetch(url, { method: 'POST', body: '{', headers: auth('hm', 'pw') })).status).toBe(400);
      expect(published).toEqual([hb]);
    } finally {
      await api.stop();
    }
  });
});

it('DEAs may have their own heartbeat credentials (heartbeatUser/heartbeatPassword)', async () => {
  const published: string[] = [];
  const api = new ApiServer({ port: 0, user: 'hm', password: 'pw', heartbeatEndpoint: true, heartbeatUser: 'dea', heartbeatPassword: 'dea-pw', store: new MemoryStore(30_000), isFresh: () => true, publishHeartbeat: (b) => published.push(b), malformed: () => undefined, logger: pino({ level: 'silent' }) });
  await api.start();
  const url = `http://127.0.0.1:${api.port}/dea/heartbeat`;
  const auth = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  try {
    expect((await fetch(url, { method: 'POST', body: '{"dea":"d","droplets":[]}', headers: auth('hm', 'pw') })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', body: '{"dea":"d","droplets":[]}', headers: auth('dea', 'dea-pw') })).status).toBe(202);
    expect(published).toHaveLength(1);
  } finally {
    await api.stop();
  }
});
