/* eslint-disable @typescript-eslint/no-explicit-any */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { RateLimitedStatusWriter, effectiveStatus, statusPatch, type StatusClient } from './status.js';
import { ConflictError, type KubeObject } from './contract.js';
import { deepEqual, mergePatch } from './util.js';
import { resourceFor } from './resources.js';

const logger = pino({ level: 'silent' });

describe('status diffing (pure)', () => {
  it('deepEqual ignores key order and undefined members, not array order', () => {
    expect(deepEqual({ a: 1, b: { c: [1, 2], d: 'x' } }, { b: { d: 'x', c: [1, 2] }, a: 1 })).toBe(true);
    expect(deepEqual({ a: 1, u: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(deepEqual({ a: 1 }, { a: '1' })).toBe(false);
    expect(deepEqual(null, {})).toBe(false);
  });

  it('statusPatch is undefined when nothing changes, minimal otherwise, null for removed fields', () => {
    const cur = { phase: 'Healthy', counts: { a: 1, b: 2 }, conditions: [{ type: 'X', status: 'True' }] };
    expect(statusPatch(cur, { conditions: [{ status: 'True', type: 'X' }], counts: { b: 2, a: 1 }, phase: 'Healthy' })).toBeUndefined();
    expect(statusPatch(cur, { ...cur, counts: { a: 1 } })).toEqual({ status: { counts: { b: null } } });
    expect(statusPatch(cur, { counts: cur.counts, conditions: [] })).toEqual({ status: { phase: null, conditions: [] } });
    expect(statusPatch(undefined, { phase: 'Fenced' })).toEqual({ status: { phase: 'Fenced' } });
    expect(mergePatch({ a: { b: 1 } }, { a: 'x' })).toEqual({ a: 'x' });
  });

  it('effectiveStatus trusts our own newer write over a lagging cache', () => {
    const obj = (rv: string, status: unknown): KubeObject => ({ metadata: { name: 'x', resourceVersion: rv }, status });
    const last = { status: { phase: 'B' }, resourceVersion: '20' };
    expect(effectiveStatus(obj('10', { phase: 'A' }), last)).toEqual({ phase: 'B' });
    expect(effectiveStatus(obj('20', { phase: 'B' }), last)).toEqual({ phase: 'B' });
    expect(effectiveStatus(obj('30', { phase: 'C' }), last)).toEqual({ phase: 'C' });
    expect(effectiveStatus(obj('30', { phase: 'C' }), undefined)).toEqual({ phase: 'C' });
  });
});

function fakeClient(opts: { failFirst?: number[] } = {}) {
  const calls: { op: string; body: unknown }[] = [];
  const failures = [...(opts.failFirst ?? [])];
  let rv = 100;
  const client: StatusClient = {
    async patchStatus(_ref, _ns, name, patch) {
      calls.push({ op: 'patch', body: patch });
      const code = failures.shift();
      if (code) throw Object.assign(new Error(`HTTP ${code}`), { code });
      return { metadata: { name, resourceVersion: String(++rv) } };
    },
    async replaceStatus(_ref, _ns, name, body) {
      calls.push({ op: 'replace', body });
      const code = failures.shift();
      if (code) throw Object.assign(new Error(`HTTP ${code}`), { code });
      return { ...(body as KubeObject), metadata: { name, resourceVersion: String(++rv) } };
    },
  };
  return { client, calls };
}

const cn = (status: unknown, rv = '1'): any => ({ apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name: 'n1', resourceVersion: rv }, spec: {}, status });

describe('RateLimitedStatusWriter', () => {
  it('writes nothing when status is unchanged and counts requests', async () => {
    const { client, calls } = fakeClient();
    const reg = new Registry();
    const w = new RateLimitedStatusWriter(client, { logger, metrics: reg, config: { perObjectIntervalMs: 0 } });
    expect(await w.patchStatus('ComputeNode', cn({ phase: 'Healthy' }), { phase: 'Healthy' } as never)).toBe(false);
    expect(await w.requestCount()).toBe(0);
    expect(await w.patchStatus('ComputeNode', cn({ phase: 'Healthy' }), { phase: 'Fenced' } as never)).toBe(true);
    expect(calls).toEqual([{ op: 'patch', body: { status: { phase: 'Fenced' } } }]);
    // the cache still shows the old object: our own write is remembered, so no second write
    expect(await w.patchStatus('ComputeNode', cn({ phase: 'Healthy' }), { phase: 'Fenced' } as never)).toBe(false);
    expect(await w.requestCount('ComputeNode')).toBe(1);
    expect(await reg.metrics()).toContain('hm9k_status_writes_total{kind="ComputeNode",result="success"} 1');
  });

  it('retries conflicts and server errors, gives up on 4xx', async () => {
    const { client, calls } = fakeClient({ failFirst: [409, 503] });
    const w = new RateLimitedStatusWriter(client, { logger, config: { perObjectIntervalMs: 0, retryInitialMs: 1, retryMaxMs: 2 } });
    expect(await w.patchStatus('ComputeNode', cn({}), { phase: 'Fenced' } as never)).toBe(true);
    expect(calls).toHaveLength(3);
    const bad = fakeClient({ failFirst: [422] });
    const w2 = new RateLimitedStatusWriter(bad.client, { logger, config: { perObjectIntervalMs: 0 } });
    await expect(w2.patchStatus('ComputeNode', cn({}), { phase: 'x' } as never)).rejects.toThrow(/422/);
    expect(bad.calls).toHaveLength(1);
  });

  it('a 404 (object gone) returns false without throwing', async () => {
    const { client } = fakeClient({ failFirst: [404] });
    const w = new RateLimitedStatusWriter(client, { logger, config: { perObjectIntervalMs: 0 } });
    expect(await w.patchStatus('ComputeNode', cn({}), { phase: 'x' } as never)).toBe(false);
  });

  it('over budget a write is delayed, not dropped, and the latest status wins', async () => {
    const { client, calls } = fakeClient();
    const w = new RateLimitedStatusWriter(client, { logger, config: { perObjectIntervalMs: 50 } });
    expect(await w.patchStatus('ComputeNode', cn({}), { phase: 'A' } as never)).toBe(true);
    const p1 = w.patchStatus('ComputeNode', cn({}, '1'), { phase: 'B' } as never);
    const p2 = w.patchStatus('ComputeNode', cn({}, '1'), { phase: 'C' } as never);
    expect(calls).toHaveLength(1); // both delayed
    expect(await p1).toBe(true);
    expect(await p2).toBe(true);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.body).toEqual({ status: { phase: 'C' } });
  });

  it('the global budget delays writes of different objects', async () => {
    const { client, calls } = fakeClient();
    const w = new RateLimitedStatusWriter(client, { logger, config: { perObjectIntervalMs: 0, qps: 5, burst: 1 } });
    const objs = ['a', 'b', 'c'].map((name) => ({ ...cn({}), metadata: { name, resourceVersion: '1' } }) as never);
    const ps = objs.map((o) => w.patchStatus('ComputeNode', o, { phase: 'X' } as never));
    await new Promise((r) => setImmediate(r));
    expect(calls).toHaveLength(1);
    expect(await Promise.all(ps)).toEqual([true, true, true]);
    expect(calls).toHaveLength(3);
  });

  it('updateStatus sends the object with its resourceVersion and maps 409 to ConflictError', async () => {
    const { client, calls } = fakeClient({ failFirst: [409] });
    const w = new RateLimitedStatusWriter(client, { logger, config: { perObjectIntervalMs: 0 } });
    await expect(w.updateStatus('ComputeNode', cn({ phase: 'Fencing' }, '7'))).rejects.toBeInstanceOf(ConflictError);
    const stored = await w.updateStatus('ComputeNode', cn({ phase: 'Fencing' }, '7'));
    expect((calls[1]!.body as KubeObject).metadata.resourceVersion).toBe('7');
    expect(stored.metadata.resourceVersion).toBe('101');
    await expect(w.updateStatus('ComputeNode', { ...cn({}), metadata: { name: 'x' } } as never)).rejects.toThrow(/resourceVersion/);
  });

  it('knows where each kind lives', () => {
    expect(resourceFor('DesiredApp')).toMatchObject({ plural: 'desiredapps', namespaced: true, group: 'hm9k.io' });
  });
});
