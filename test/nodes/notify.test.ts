// Notifications: Events always; email deduplicated per node and key, rate-limited, with a real SMTP listener.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { ComputeNode } from '../../src/api/index.js';
import { StaticSecrets } from '../../src/clients/secrets.js';
import type { EventRecorder } from '../../src/kube/contract.js';
import { nodesConfig, resolvePolicy } from '../../src/nodes/config.js';
import { NodeDeps } from '../../src/nodes/deps.js';
import { Notifier } from '../../src/nodes/notify.js';
import { startSmtp, type SimSmtp } from '../support/smtp.js';

describe('notifier', () => {
  let smtp: SimSmtp;
  let deps: NodeDeps;
  const events: string[] = [];
  const recorder: EventRecorder = { record: (_o, type, reason, _a, note) => { events.push(`${type}/${reason}/${note}`); } };
  const node = { apiVersion: 'hm9k.io/v1alpha1', kind: 'ComputeNode', metadata: { name: 'cmp1' }, spec: { host: 'cmp1' } } as ComputeNode;
  beforeAll(async () => {
    smtp = await startSmtp();
    deps = new NodeDeps(nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c' }), new StaticSecrets({ mail: { username: 'u', password: 'p' } }));
  });
  afterAll(async () => { await deps.stop(); await smtp.stop(); });

  const policy = () => resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:1' }] } }, notifications: { email: { smtpHost: '127.0.0.1', smtpPort: smtp.port, from: 'hm9k@x.org', to: ['ops@x.org'] }, minInterval: '1h' } });
  const msg = (key: string) => ({ type: 'notify' as const, key, severity: 'warning' as const, subject: `[hm9k] cmp1: ${key}`, body: 'details' });

  it('deduplicates per node and key; Events are always written', async () => {
    let now = 1_000_000;
    const n = new Notifier(deps, recorder, pino({ level: 'silent' }), nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c' }), undefined, () => now);
    await n.notify(node, policy(), msg('storage-down'));
    await n.notify(node, policy(), msg('storage-down'));
    await n.notify(node, policy(), msg('other'));
    expect(smtp.mails.filter((m) => m.subject.includes('storage-down'))).toHaveLength(1);
    expect(smtp.mails.filter((m) => m.subject.includes('other'))).toHaveLength(1);
    expect(events.filter((e) => e.includes('storage-down'))).toHaveLength(2);
    now += 3_600_001;
    await n.notify(node, policy(), msg('storage-down'));
    expect(smtp.mails.filter((m) => m.subject.includes('storage-down'))).toHaveLength(2);
  });

  it('rate-limits globally', async () => {
    const n = new Notifier(deps, recorder, pino({ level: 'silent' }), nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c' }), undefined, () => 5, { burst: 2, perMinute: 1 });
    const before = smtp.mails.length;
    for (let i = 0; i < 5; i++) await n.notify(node, policy(), msg(`burst-${i}`));
    expect(smtp.mails.length - before).toBe(2);
  });

  it('a failed delivery is sent again by itself on a back-off, exactly once; a repeat of the same notification meanwhile adds no copy', async () => {
    const cfg = nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', emailRetryInitialMs: 50, emailRetryMaxMs: 200, emailRetries: 5 });
    const n = new Notifier(deps, recorder, pino({ level: 'silent' }), cfg, undefined, () => 7);
    smtp.rejectWith = 451;
    await n.notify(node, policy(), msg('retry-me'));
    expect(n.history.at(-1)).toMatchObject({ delivered: false });
    expect(n.pendingRetries()).toBe(1);
    await n.notify(node, policy(), msg('retry-me')); // the same decision again: deduplicated, not a second copy
    smtp.rejectWith = undefined;
    await smtp.waitFor((m) => m.subject.includes('retry-me'), 10_000);
    await new Promise((r) => setTimeout(r, 400)); // a second copy would arrive by now
    expect(smtp.mails.filter((m) => m.subject.includes('retry-me'))).toHaveLength(1);
    expect(n.pendingRetries()).toBe(0);
    n.stop();
  });

  it('a delivery that keeps failing is given up after emailRetries attempts; a later notification may mail again', async () => {
    const cfg = nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c', emailRetryInitialMs: 20, emailRetryMaxMs: 40, emailRetries: 3 });
    const n = new Notifier(deps, recorder, pino({ level: 'silent' }), cfg, undefined, () => 9);
    smtp.rejectWith = 451;
    await n.notify(node, policy(), msg('give-up'));
    const deadline = Date.now() + 10_000;
    while (n.pendingRetries() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(n.pendingRetries()).toBe(0);
    smtp.rejectWith = undefined;
    await n.notify(node, policy(), msg('give-up'));
    expect(smtp.mails.filter((m) => m.subject.includes('give-up'))).toHaveLength(1);
    n.stop();
  });

  it('a policy with SMTP credentials and a server without STARTTLS: not delivered, credentials never sent, the reason recorded', async () => {
    const plain = await startSmtp({ tls: 'none', users: { u: 'p' } });
    try {
      const n = new Notifier(deps, recorder, pino({ level: 'silent' }), nodesConfig({ namespace: 'x', cloudsSecret: 'c', cloudName: 'c' }), undefined, () => 9);
      const withCreds = resolvePolicy({ networks: { storage: { consul: [{ address: 'http://a:1' }] } }, notifications: { email: { smtpHost: '127.0.0.1', smtpPort: plain.port, from: 'hm9k@x.org', to: ['ops@x.org'], credentialsSecret: 'mail' } } });
      await n.notify(node, withCreds, msg('tls-required'));
      expect(n.history.at(-1)).toMatchObject({ delivered: false });
      expect(n.history.at(-1)?.error).toMatch(/STARTTLS not offered.*refusing to send credentials/);
      expect(plain.auths).toEqual([]);
      expect(plain.mails).toEqual([]);
    } finally {
      await plain.stop();
    }
  });
});
