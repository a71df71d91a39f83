// One HTTP(S) request on node:http with keep-alive, answering status and whole body. The app half's
// clients use it instead of fetch: fetch loads undici and compiles its llhttp WebAssembly parser,
// about 7-13 MB of RSS that an idle app half does not otherwise need (issue 14 item 9).
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  text: string;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
  /** Aborts the request and its body read (a timeout, a shutdown). */
  signal: AbortSignal;
}

/** Keep-alive agents, one pair per client (idle sockets do not hold the process open). */
export class HttpAgents {
  readonly http = new http.Agent({ keepAlive: true });
  readonly https = new https.Agent({ keepAlive: true });

  destroy(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/**
 * Rejects on a network error, an abort, or a body cut short (a connection closed before the length
 * the answer announced, or before the last chunk): a truncated answer is never returned as whole.
 */
export function httpRequest(agents: HttpAgents, req: HttpRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const secure = req.url.protocol === 'https:';
    const headers = req.body === undefined ? req.headers : { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) };
    const r = (secure ? https : http).request(req.url, { method: req.method, headers, agent: secure ? agents.https : agents.http, signal: req.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        if (!res.complete) reject(new Error('connection closed before the whole answer'));
        else resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    r.on('error', reject);
    r.end(req.body);
  });
}
