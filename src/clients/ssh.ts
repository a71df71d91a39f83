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

/**
 * What known_hosts says about `key` (base64 blob) for host:port:
 * - `revoked`: the key is on a `@revoked` line. Refused for every host, whatever that line's host
 *   pattern and whatever other line lists it (stricter than OpenSSH, which scopes the line by its
 *   patterns: a revoked key is never accepted anywhere).
 * - `trusted`: a plain (or hashed) line for this host lists the key.
 * - `unknown`: no line for this host lists it. `@cert-authority` lines are never trusted: hm9k does
 *   not verify host certificates (the known_hosts must list the host key itself); `certAuthorityOnly`
 *   says the file had such lines, so the error can name the cause.
 */
export type KnownHostVerdict = { verdict: 'trusted' } | { verdict: 'revoked' } | { verdict: 'unknown'; certAuthorityLines: number };

export function checkKnownHost(knownHosts: string, host: string, port: number, keyBase64: string): KnownHostVerdict {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  let trusted = false;
  let certAuthorityLines = 0;
  for (const raw of knownHosts.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    const marker = parts[0]?.startsWith('@') ? parts[0] : undefined;
    const i = marker ? 1 : 0;
    const hostsField = parts[i];
    const blob = parts[i + 2];
    if (!hostsField || !blob) continue;
    if (marker === '@revoked') {
      if (blob === keyBase64) return { verdict: 'revoked' };
      continue;
    }
    if (marker === '@cert-authority') { certAuthorityLines++; continue; }
    if (marker) continue; // an unknown marker: never trusted
    if (blob === keyBase64 && hostFieldMatches(hostsField, names)) trusted = true;
  }
  return trusted ? { verdict: 'trusted' } : { verdict: 'unknown', certAuthorityLines };
}

/** Does known_hosts trust `key` for host:port? (Not revoked, and listed for the host.) */
export function knownHostMatches(knownHosts: string, host: string, port: number, keyBase64: string): boolean {
  return checkKnownHost(knownHosts, host, port, keyBase64).verdict === 'trusted';
}

/** OpenSSH host patterns: hashed `|1|salt|hash`, or a comma list with `*`/`?` wildcards and `!` negation. */
function hostFieldMatches(field: string, names: string[]): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return names.some((n) => createHmac('sha1', Buffer.from(salt, 'base64')).update(n).digest('base64') === hash);
  }
  let positive = false;
  for (const pat of field.split(',')) {
    const negated = pat.startsWith('!');
    const re = globToRegExp(negated ? pat.slice(1) : pat);
    if (!names.some((n) => re.test(n))) continue;
    if (negated) return false; // a negated match excludes the line whatever else matches
    positive = true;
  }
  return positive;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
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
      let hostKeyRejected: string | undefined;
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
        if (hostKeyRejected) return finish(() => reject(new SshError('hostKey', hostKeyRejected!)));
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
            const v = checkKnownHost(t.knownHosts, t.host, port, key.toString('base64'));
            if (v.verdict === 'revoked') hostKeyRejected = `host key of ${t.host}:${port} is marked @revoked in known_hosts: refusing to connect`;
            else if (v.verdict === 'unknown') {
              hostKeyRejected = `host key of ${t.host}:${port} is not in known_hosts: refusing to connect${v.certAuthorityLines ? ` (known_hosts has ${v.certAuthorityLines} @cert-authority line(s): hm9k does not verify host certificates; list the host's own key)` : ''}`;
            }
            return v.verdict === 'trusted';
          },
        });
      } catch (err) {
        finish(() => reject(new SshError('protocol', `ssh connect: ${(err as Error).message}`)));
      }
    });
  }
}
