// Which AppHealthPolicy the app half follows (src/apps/policy.ts): the named one, else the only one,
// else the defaults; two or more with none named, or a named one missing, is none (not guessed at),
// reported once (error log, Warning Event per candidate); a switch is logged and evented.
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AppHealthPolicy } from '../../src/api/index.js';
import { choosePolicy, PolicySource } from '../../src/apps/policy.js';
import type { Informer } from '../../src/kube/contract.js';
import { fakeRuntime, MapInformer } from './support/fake-runtime.js';

const ahp = (name: string, uid = `uid-${name}`): AppHealthPolicy => ({ apiVersion: 'hm9k.io/v1alpha1', kind: 'AppHealthPolicy', metadata: { name, uid }, spec: {} }) as AppHealthPolicy;

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

describe('choosePolicy', () => {
  it('the named one; else the only one; else the defaults', () => {
    expect(choosePolicy([ahp('b'), ahp('a')], 'b')).toMatchObject({ kind: 'follow', why: 'named', policy: { metadata: { name: 'b' } } });
    expect(choosePolicy([ahp('foundation')], undefined)).toMatchObject({ kind: 'follow', why: 'only', policy: { metadata: { name: 'foundation' } } });
    expect(choosePolicy([ahp('foundation')], '')).toMatchObject({ kind: 'follow', why: 'only' });
    expect(choosePolicy([], undefined)).toEqual({ kind: 'defaults' });
  });

  it('two or more with none named: none, not the first by name', () => {
    const c = choosePolicy([ahp('foundation'), ahp('aaa-trial')], undefined);
    expect(c).toMatchObject({ kind: 'none', reason: 'AmbiguousPolicies' });
    expect(c.kind === 'none' && c.message).toMatch(/2 AppHealthPolicies \(aaa-trial, foundation\) and apps.policyName names none: the app half follows none and acts on nothing; set apps.policyName/);
  });

  it('a named policy that does not exist: none (never the defaults, never another one)', () => {
    const c = choosePolicy([ahp('aaa-trial')], 'foundation');
    expect(c).toMatchObject({ kind: 'none', reason: 'NamedPolicyMissing' });
    expect(c.kind === 'none' && c.message).toMatch(/AppHealthPolicy foundation \(apps.policyName\) does not exist/);
  });
});

describe('PolicySource', () => {
  it('a second policy stops the half (error, a Warning on each candidate); deleting it resumes with a logged, evented switch and a fetch at once', () => {
    const rt = fakeRuntime();
    const informer = new MapInformer<AppHealthPolicy>();
    const { lines, logger } = capture();
    let switches = 0;
    const src = new PolicySource(informer as unknown as Informer<AppHealthPolicy>, {}, { logger, events: rt.events, onSwitch: () => switches++ });
    informer.set(ahp('foundation'));
    expect(src.observe()).toBe(true);
    expect(src.policy()?.metadata.name).toBe('foundation');
    expect(lines.map((l) => l.msg)).toEqual(['following AppHealthPolicy']);
    expect(rt.events.recorded).toEqual([]); // start-up: the log line only
    // Steady state: nothing more.
    for (let i = 0; i < 5; i++) expect(src.observe()).toBe(true);
    expect(lines).toHaveLength(1);

    informer.set(ahp('aaa-trial'));
    expect(src.observe()).toBe(false);
    expect(src.policy()).toBeUndefined();
    expect(src.blocked()).toMatch(/2 AppHealthPolicies \(aaa-trial, foundation\)/);
    expect(lines[1]).toMatchObject({ level: 50, reason: 'AmbiguousPolicies', candidates: ['aaa-trial', 'foundation'], previous: 'foundation' });
    expect(rt.events.recorded.map((e) => `${e.type} ${e.reason} ${e.name}`)).toEqual(['Warning AmbiguousPolicies aaa-trial', 'Warning AmbiguousPolicies foundation']);
    expect(switches).toBe(1);
    src.observe();
    expect(lines).toHaveLength(2); // reported once

    informer.delete('aaa-trial');
    expect(src.observe()).toBe(true);
    expect(src.policy()?.metadata.name).toBe('foundation');
    expect(lines[2]).toMatchObject({ level: 30, msg: 'switched AppHealthPolicy', policy: 'foundation' });
    expect(rt.events.recorded[2]).toMatchObject({ type: 'Normal', reason: 'PolicyFollowed', name: 'foundation' });
    expect(switches).toBe(2);
  });

  it('the named policy replacing another is a switch: logged with the previous one, evented', () => {
    const rt = fakeRuntime();
    const informer = new MapInformer<AppHealthPolicy>();
    const { lines, logger } = capture();
    const src = new PolicySource(informer as unknown as Informer<AppHealthPolicy>, { policyName: 'foundation' }, { logger, events: rt.events });
    informer.set(ahp('foundation'));
    informer.set(ahp('aaa-trial'));
    expect(src.observe()).toBe(true);
    expect(src.policy()?.metadata.name).toBe('foundation');
    // Re-created under the same name (new uid): followed again, and said so.
    informer.delete('foundation');
    expect(src.observe()).toBe(false);
    expect(lines[1]).toMatchObject({ level: 50, reason: 'NamedPolicyMissing' });
    informer.set(ahp('foundation', 'uid-2'));
    expect(src.observe()).toBe(true);
    expect(lines[2]).toMatchObject({ msg: 'switched AppHealthPolicy', policy: 'foundation', why: 'named' });
    expect(rt.events.recorded.map((e) => e.reason)).toEqual(['PolicyFollowed']);
  });
});

describe('logAction (issue 10: every action one structured line)', () => {
  it('a sent start at info with its fields; a failed stop at error', async () => {
    const { logAction } = await import('../../src/apps/status/events.js');
    const { lines, logger } = capture();
    const base = { appGuid: 'web', version: 'v1', index: 2, messageId: 'm1', priority: 1, sendOn: 0, keepAliveMs: 0 };
    logAction(logger, { message: { ...base, kind: 'start', reason: 'MISSING' } as never, outcome: 'sent', time: 0 });
    logAction(logger, { message: { ...base, kind: 'stop', reason: 'EXTRA', instanceGuid: 'i2' } as never, outcome: 'failed', time: 0, detail: 'HTTP 500' });
    expect(lines[0]).toMatchObject({ level: 30, action: 'start', app: 'web', version: 'v1', index: 2, reason: 'MISSING', outcome: 'sent', messageId: 'm1', msg: 'start web[2] sent' });
    expect(lines[1]).toMatchObject({ level: 50, action: 'stop', outcome: 'failed', detail: 'HTTP 500' });
  });
});
