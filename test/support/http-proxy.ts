// An HTTP proxy on 127.0.0.1 in front of a REAL service (real nova-api): every request is forwarded
// unchanged (Host header included, so the links Nova builds from it point back at the proxy) and
// recorded; `onRequest` sees each one before it is forwarded and may hold it (a request still in
// nova-api) or kill the client at that moment. Real Nova answers everything: the proxy only gives a
// test the "at this request" moment that the simulator's hooks give.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  body: string;
}

export class HttpProxy {
  /** Every request, in arrival order, as "METHOD /path". */
  readonly requests: string[] = [];
  /** Called before the request is forwarded; the forward waits for the promise it returns. */
  onRequest: ((r: ProxiedRequest) => Promise<void> | void) | undefined;

  private constructor(private readonly server: http.Server, readonly port: number) {}

  static async start(targetPort: number): Promise<HttpProxy> {
    let self: HttpProxy | undefined;
    const server = http.createServer((req, res) => void self!.handle(req, res, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    self = new HttpProxy(server, (server.address() as AddressInfo).port);
    return self;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, targetPort: number): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const r = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8') };
    this.requests.push(`${r.method} ${r.path}`);
    try {
      await this.onRequest?.(r);
    } catch { /* a hook's failure is the test's business, not the request's */ }
    // Forwarded even when the client died meanwhile: a nova-api that has read a request carries it out.
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: r.method, path: r.path, headers: req.headers }, (ur) => {
      if (res.destroyed) { ur.resume(); return; }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (err) => {
      if (res.destroyed) return;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    up.end(body);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
