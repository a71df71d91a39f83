// SMTP client (nodemailer): one transport per server, timeouts, typed errors. Credentials never
// travel in plain text: with a username, the connection must be TLS, either implicit (`secure`,
// port 465) or upgraded with STARTTLS (nodemailer `requireTLS`); a server that does not offer
// STARTTLS (or a man in the middle that strips it) gets no AUTH command and no message.
import type { ConnectionOptions } from 'node:tls';
import nodemailer, { type Transporter } from 'nodemailer';

export class SmtpError extends Error {
  override name = 'SmtpError';
  constructor(message: string, public readonly transient: boolean, public readonly kind: 'tls' | 'smtp' = 'smtp') {
    super(message);
  }
}

export interface SmtpServer {
  host: string;
  port: number;
  secure: boolean;
  username?: string;
  password?: string;
  /** Allow plain SMTP without STARTTLS (loopback test servers); refused together with credentials. */
  ignoreTLS?: boolean;
}

export interface Mail {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

export interface SmtpClientOptions {
  /** Extra TLS options (e.g. `ca` of a private SMTP server; tests). Certificates are always verified. */
  tls?: Pick<ConnectionOptions, 'ca' | 'servername'>;
}

export class SmtpClient {
  private readonly transports = new Map<string, Transporter>();
  constructor(private readonly timeoutMs = 20_000, private readonly opts: SmtpClientOptions = {}) {}

  private transport(s: SmtpServer): Transporter {
    const key = `${s.host}:${s.port}:${s.secure}:${s.username ?? ''}:${s.password ?? ''}:${s.ignoreTLS ?? false}`;
    let t = this.transports.get(key);
    if (!t) {
      t = nodemailer.createTransport({
        host: s.host,
        port: s.port,
        secure: s.secure,
        ...(s.username ? { auth: { user: s.username, pass: s.password ?? '' } } : {}),
        // STARTTLS is mandatory when credentials would be sent over a connection that is not TLS yet.
        ...(s.username && !s.secure ? { requireTLS: true } : {}),
        ...(s.ignoreTLS && !s.username ? { ignoreTLS: true } : {}),
        ...(this.opts.tls ? { tls: { ...this.opts.tls } } : {}),
        connectionTimeout: this.timeoutMs,
        greetingTimeout: this.timeoutMs,
        socketTimeout: this.timeoutMs,
      });
      this.transports.set(key, t);
    }
    return t;
  }

  async send(s: SmtpServer, m: Mail): Promise<string> {
    if (s.username && s.ignoreTLS && !s.secure) {
      throw new SmtpError(`SMTP ${s.host}:${s.port}: refusing to send credentials without TLS (ignoreTLS with a username)`, false, 'tls');
    }
    try {
      const info = await this.transport(s).sendMail({ from: m.from, to: m.to.join(', '), subject: m.subject, text: m.text });
      return String(info.messageId ?? '');
    } catch (err) {
      const e = err as { responseCode?: number; code?: string; message: string };
      if (e.code === 'ETLS' && s.username && !s.secure) {
        // The server did not offer (or refused) STARTTLS: never fall back to AUTH in plain text.
        throw new SmtpError(
          `SMTP ${s.host}:${s.port}: STARTTLS not offered or failed (${e.message}); refusing to send credentials in plain text. Use a server with STARTTLS, or implicit TLS (secure: true, port 465)`,
          false, 'tls',
        );
      }
      const transient = e.responseCode === undefined ? true : e.responseCode >= 400 && e.responseCode < 500;
      throw new SmtpError(`SMTP ${s.host}:${s.port}: ${e.message}`, transient);
    }
  }

  close(): void {
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
  }
}
