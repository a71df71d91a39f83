// A real SMTP listener (smtp-server) on a loopback port that captures every message for the tests.
import { SMTPServer } from 'smtp-server';
import { freePort as freeTcpPort } from './procs.js';

export interface CapturedMail {
  from: string;
  to: string[];
  subject: string;
  raw: string;
}

export interface SimSmtp {
  host: string;
  port: number;
  mails: CapturedMail[];
  /** Reject every message with this SMTP code (e.g. 451, 550); undefined accepts. */
  rejectWith?: number;
  waitFor(pred: (m: CapturedMail) => boolean, timeoutMs?: number): Promise<CapturedMail>;
  stop(): Promise<void>;
}

export async function startSmtp(): Promise<SimSmtp> {
  const port = await freeTcpPort();
  const sim: SimSmtp = {
    host: '127.0.0.1', port, mails: [],
    async waitFor(pred, timeoutMs = 20_000) {
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
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
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
