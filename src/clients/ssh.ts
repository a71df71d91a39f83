// SSH client (ssh2): private key and known_hosts from a Secret; the host key is always verified;
// every command runs under a timeout. Used for recovery and corroboration commands.
import { createHmac } from 'node:crypto';
import { Client } from 'ssh2';

export type SshErrorKind = 'hostKey' | 'auth' | 'unreachable' | 'timeout' | 'protocol';

export class SshError extends Error {
  override name = 'SshError';
  constructor(public readonly kind: SshErrorKind, message: string) {
    super(message);
  }
}

export interface SshTarget {
  host: string;
  port?: number;
  user: string;
  privateKey: string;
  knownHosts: string;
}

export interface CommandResult {
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Does known_hosts hold `key` (base64 blob) for host:port? Supports plain, [host]:port and hashed entries. */
export function knownHostMatches(knownHosts: string, host: string, port: number, keyBase64: string): boolean {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  for (const raw of knownHosts.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let i = 0;
    if (parts[0]?.startsWith('@')) {
      if (parts[0] === '@revoked') continue;
      i = 1; // @cert-authority not supported: skip the marker, match like a plain entry (never trusted as CA)
      continue;
    }
    const hostsField = parts[i];
    const blob = parts[i + 2];
    if (!hostsField || !blob) continue;
    let hostMatch = false;
    if (hostsField.startsWith('|1|')) {
      const [, , salt, hash] = hostsField.split('|');
      if (salt && hash) {
        for (const n of names) {
          const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64');
          if (h === hash) hostMatch = true;
        }
      }
    } else {
      const entries = hostsField.split(',');
      hostMatch = entries.some((e) => !e.startsWith('!') && names.includes(e));
    }
    if (hostMatch && blob === keyBase64) return true;
  }
  return false;
}

export interface SshOptions {
  connectTimeoutMs?: number;
}

export class SshClient {
  constructor(private readonly opts: SshOptions = {}) {}

  /** Runs `command` on the target; resolves with its exit code and output (bounded), rejects with SshError. */
  exec(t: SshTarget, command: string, timeoutMs: number, signal?: AbortSignal): Promise<CommandResult> {
    const port = t.port ?? 22;
    return new Promise((resolve, reject) => {
      const conn = new Client();
      let hostKeyRejected = false;
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        conn.end();
        conn.destroy();
        f();
      };
      const timer = setTimeout(() => finish(() => reject(new SshError('timeout', `ssh ${t.user}@${t.host}:${port} command timed out after ${timeoutMs} ms`))), timeoutMs);
      const onAbort = () => finish(() => reject(new SshError('timeout', 'aborted')));
      signal?.addEventListener('abort', onAbort);
      conn.on('error', (err: Error & { level?: string }) => {
        if (hostKeyRejected) return finish(() => reject(new SshError('hostKey', `host key of ${t.host}:${port} is not in known_hosts: refusing to connect`)));
        if (err.level === 'client-authentication') return finish(() => reject(new SshError('auth', `ssh authentication as ${t.user} failed`)));
        if (err.level === 'client-timeout') return finish(() => reject(new SshError('timeout', `ssh connect to ${t.host}:${port} timed out`)));
        const code = (err as { code?: string }).code;
        finish(() => reject(new SshError(code ? 'unreachable' : 'protocol', `ssh to ${t.host}:${port}: ${err.message}`)));
      });
      conn.on('ready', () => {
        conn.exec(command, (err, stream) => {
          if (err) return finish(() => reject(new SshError('protocol', `exec failed: ${err.message}`)));
          let stdout = '';
          let stderr = '';
          let exitCode: number | null = null;
          let sig: string | undefined;
          stream.on('data', (d: Buffer) => { if (stdout.length < 16384) stdout += d.toString(); });
          stream.stderr.on('data', (d: Buffer) => { if (stderr.length < 16384) stderr += d.toString(); });
          stream.on('exit', (code: number | null, s?: string) => { exitCode = code; if (s) sig = s; });
          stream.on('close', () => finish(() => resolve({ exitCode, ...(sig ? { signal: sig } : {}), stdout, stderr })));
        });
      });
      try {
        conn.connect({
          host: t.host,
          port,
          username: t.user,
          privateKey: t.privateKey,
          readyTimeout: this.opts.connectTimeoutMs ?? Math.min(timeoutMs, 10_000),
          hostVerifier: (key: Buffer) => {
            const ok = knownHostMatches(t.knownHosts, t.host, port, key.toString('base64'));
            if (!ok) hostKeyRejected = true;
            return ok;
          },
        });
      } catch (err) {
        finish(() => reject(new SshError('protocol', `ssh connect: ${(err as Error).message}`)));
      }
    });
  }
}
