// SMTP client (nodemailer): one transport per server, timeouts, typed errors.
import nodemailer, { type Transporter } from 'nodemailer';

export class SmtpError extends Error {
  override name = 'SmtpError';
  constructor(message: string, public readonly transient: boolean) {
    super(message);
  }
}

export interface SmtpServer {
  host: string;
  port: number;
  secure: boolean;
  username?: string;
  password?: string;
  /** Allow plain SMTP without STARTTLS (loopback test servers). */
  ignoreTLS?: boolean;
}

export interface Mail {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

export class SmtpClient {
  private readonly transports = new Map<string, Transporter>();
  constructor(private readonly timeoutMs = 20_000) {}

  private transport(s: SmtpServer): Transporter {
    const key = `${s.host}:${s.port}:${s.secure}:${s.username ?? ''}:${s.password ?? ''}:${s.ignoreTLS ?? false}`;
    let t = this.transports.get(key);
    if (!t) {
      t = nodemailer.createTransport({
        host: s.host,
        port: s.port,
        secure: s.secure,
        ...(s.username ? { auth: { user: s.username, pass: s.password ?? '' } } : {}),
        ...(s.ignoreTLS ? { ignoreTLS: true } : {}),
        connectionTimeout: this.timeoutMs,
        greetingTimeout: this.timeoutMs,
        socketTimeout: this.timeoutMs,
      });
      this.transports.set(key, t);
    }
    return t;
  }

  async send(s: SmtpServer, m: Mail): Promise<string> {
    try {
      const info = await this.transport(s).sendMail({ from: m.from, to: m.to.join(', '), subject: m.subject, text: m.text });
      return String(info.messageId ?? '');
    } catch (err) {
      const e = err as { responseCode?: number; code?: string; message: string };
      const transient = e.responseCode === undefined ? true : e.responseCode >= 400 && e.responseCode < 500;
      throw new SmtpError(`SMTP ${s.host}:${s.port}: ${e.message}`, transient);
    }
  }

  close(): void {
    for (const t of this.transports.values()) t.close();
    this.transports.clear();
  }
}
