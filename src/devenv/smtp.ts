// A real SMTP listener (smtp-server) on a loopback port that captures every message for the tests.
// By default plain SMTP without STARTTLS and without AUTH; options add accounts (AUTH accepted even
// over plain text, so that only the client can be what refuses it), STARTTLS or implicit TLS with a
// self-signed certificate for 127.0.0.1 (`ca`).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { freePort as freeTcpPort } from './procs.js';

export interface CapturedMail {
  from: string;
  to: string[];
  subject: string;
  raw: string;
  /** The decoded text body (quoted-printable soft line breaks joined): what a person reads. */
  body: string;
}

export interface SimSmtp {
  host: string;
  port: number;
  mails: CapturedMail[];
  /** Every AUTH the server received: user, and whether the connection was TLS at that moment. */
  auths: { user: string; secure: boolean }[];
  /** The self-signed certificate (PEM) of a TLS listener: the client's `ca`. */
  ca?: string;
  /** Reject every message with this SMTP code (e.g. 451, 550); undefined accepts. */
  rejectWith?: number;
  waitFor(pred: (m: CapturedMail) => boolean, timeoutMs?: number): Promise<CapturedMail>;
  stop(): Promise<void>;
}

export interface SmtpOptions {
  /** none: no STARTTLS (default); starttls: offered; implicit: TLS from the first byte (port 465 style). */
  tls?: 'none' | 'starttls' | 'implicit';
  /** Accounts (user -> password); AUTH PLAIN/LOGIN is then offered, over plain text too. */
  users?: Record<string, string>;
}

async function selfSigned(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hm9k-smtp-'));
  try {
    await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    return { key: await readFile(join(dir, 'key.pem'), 'utf8'), cert: await readFile(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startSmtp(opts: SmtpOptions = {}): Promise<SimSmtp> {
  const port = await freeTcpPort();
  const tls = opts.tls ?? 'none';
  const pem = tls === 'none' ? undefined : await selfSigned();
  const sim: SimSmtp = {
    host: '127.0.0.1', port, mails: [], auths: [], ...(pem ? { ca: pem.cert } : {}),
    async waitFor(pred, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = sim.mails.find(pred);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`no matching mail; got: ${sim.mails.map((x) => x.subject).join(' | ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const users = opts.users;
  const server = new SMTPServer({
    authOptional: !users,
    disabledCommands: tls === 'starttls' ? [] : ['STARTTLS'],
    ...(pem ? { key: pem.key, cert: pem.cert } : {}),
    secure: tls === 'implicit',
    ...(users ? { allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'] } : {}),
    onAuth(auth, session, callback) {
      sim.auths.push({ user: auth.username ?? '', secure: session.secure });
      if (users && auth.username && users[auth.username] === auth.password) return callback(null, { user: auth.username });
      return callback(new Error('Invalid username or password'));
    },
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (d: Buffer) => { raw += d.toString(); });
      stream.on('end', () => {
        if (sim.rejectWith) {
          const err = new Error('rejected by test') as Error & { responseCode: number };
          err.responseCode = sim.rejectWith;
          return callback(err);
        }
        const subject = /^Subject: (.*(?:\r?\n[ \t].*)*)/im.exec(raw)?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
        sim.mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject,
          raw,
          body: mailText(raw).body,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return sim;
}

/** The text of a captured mail (headers From/To/Subject and the decoded text body). */
export function mailText(raw: string): { headers: Record<string, string>; body: string } {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  let body = split < 0 ? '' : raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  if (/quoted-printable/i.test(headers['content-transfer-encoding'] ?? '')) {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    body = Buffer.from(bytes, 'latin1').toString('utf8');
  } else if (/base64/i.test(headers['content-transfer-encoding'] ?? '')) {
    body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  }
  return { headers, body: body.replace(/\r\n/g, '\n').trimEnd() };
}
