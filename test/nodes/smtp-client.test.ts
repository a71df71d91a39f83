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
    expect(m.body).toContain('body line');
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

// Credentials require TLS: a server (or a man in the middle) that does not offer STARTTLS gets no AUTH.
describe('SMTP client with credentials', () => {
  const servers: SimSmtp[] = [];
  afterAll(async () => { for (const s of servers) await s.stop(); });
  const start = async (opts: Parameters<typeof startSmtp>[0]) => { const s = await startSmtp(opts); servers.push(s); return s; };
  const mail = { from: 'hm9k@example.org', to: ['ops@example.org'], subject: '[hm9k] cmp1: fenced', text: 'body' };

  it('STARTTLS not offered (stripped): AUTH refused before the credentials leave, nothing sent, clear error', async () => {
    // The server would accept AUTH over plain text (allowInsecureAuth): only the client can refuse.
    const smtp = await start({ tls: 'none', users: { hm9k: 's3cret' } });
    const client = new SmtpClient(3000);
    try {
      const err = await client.send({ host: smtp.host, port: smtp.port, secure: false, username: 'hm9k', password: 's3cret' }, mail).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmtpError);
      expect((err as SmtpError).kind).toBe('tls');
      expect((err as SmtpError).message).toMatch(/STARTTLS not offered.*refusing to send credentials in plain text/);
      expect((err as SmtpError).message).not.toContain('s3cret');
      expect(smtp.auths).toEqual([]);
      expect(smtp.mails).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('ignoreTLS together with credentials is refused without connecting', async () => {
    const smtp = await start({ tls: 'none', users: { hm9k: 's3cret' } });
    const client = new SmtpClient(3000);
    const err = await client.send({ host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true, username: 'hm9k', password: 's3cret' }, mail).catch((e: unknown) => e);
    expect((err as SmtpError).kind).toBe('tls');
    expect(smtp.auths).toEqual([]);
    client.close();
  });

  it('STARTTLS offered: upgraded, then AUTH over TLS, delivered', async () => {
    const smtp = await start({ tls: 'starttls', users: { hm9k: 's3cret' } });
    const client = new SmtpClient(3000, { tls: { ca: smtp.ca! } });
    try {
      await client.send({ host: smtp.host, port: smtp.port, secure: false, username: 'hm9k', password: 's3cret' }, mail);
      expect(smtp.auths).toEqual([{ user: 'hm9k', secure: true }]);
      expect(smtp.mails).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it('implicit TLS (secure: true, port 465 style) stays possible', async () => {
    const smtp = await start({ tls: 'implicit', users: { hm9k: 's3cret' } });
    const client = new SmtpClient(3000, { tls: { ca: smtp.ca! } });
    try {
      await client.send({ host: smtp.host, port: smtp.port, secure: true, username: 'hm9k', password: 's3cret' }, mail);
      expect(smtp.auths).toEqual([{ user: 'hm9k', secure: true }]);
      expect(smtp.mails).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  it('a certificate the client cannot verify is refused (no AUTH)', async () => {
    const smtp = await start({ tls: 'starttls', users: { hm9k: 's3cret' } });
    const client = new SmtpClient(3000);
    const err = await client.send({ host: smtp.host, port: smtp.port, secure: false, username: 'hm9k', password: 's3cret' }, mail).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpError);
    expect(smtp.auths).toEqual([]);
    client.close();
  });
});
