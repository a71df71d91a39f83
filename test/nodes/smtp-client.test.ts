// The SMTP client against a real SMTP listener.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpClient, SmtpError } from '../../src/clients/smtp.js';
import { startSmtp, type SimSmtp } from '../support/smtp.js';

describe('SMTP client', () => {
  let smtp: SimSmtp;
  const client = new SmtpClient(3000);
  beforeAll(async () => { smtp = await startSmtp(); });
  afterAll(async () => { client.close(); await smtp?.stop(); });

  it('delivers a message the server receives', async () => {
    await client.send({ host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, { from: 'hm9k@example.org', to: ['ops@example.org'], subject: '[hm9k] cmp1: fenced', text: 'body line' });
    const m = await smtp.waitFor((x) => x.subject.includes('cmp1'));
    expect(m.to).toEqual(['ops@example.org']);
    expect(m.raw).toContain('body line');
  });
  it('a rejection is a typed error (4xx transient, 5xx permanent)', async () => {
    smtp.rejectWith = 550;
    try {
      const err = await client.send({ host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, { from: 'a@b.c', to: ['d@e.f'], subject: 'x', text: 'y' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmtpError);
      expect((err as SmtpError).transient).toBe(false);
    } finally {
      smtp.rejectWith = undefined;
    }
  });
  it('an unreachable server is a transient error', async () => {
    const err = await client.send({ host: '127.0.0.1', port: 1, secure: false, ignoreTLS: true }, { from: 'a@b.c', to: ['d@e.f'], subject: 'x', text: 'y' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect((err as SmtpError).transient).toBe(true);
  });
});
