// The app half's HTTP client on node:http (src/clients/http-request.ts): whole answers, keep-alive,
// and every way an answer can fail to arrive whole is an error, never a short body.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpAgents, httpRequest } from '../../src/clients/http-request.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

const listen = async (srv: Server): Promise<string> => {
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const a = srv.address() as { port: number };
  closers.push(() => srv.close());
  return `http://127.0.0.1:${a.port}`;
};

/** A server that writes `raw` (a whole HTTP answer, or part of one) and then closes the connection. */
const rawServer = (raw: string) => {
  const srv = createTcpServer((s: Socket) => {
    s.once('data', () => s.end(raw));
  });
  return listen(srv);
};

const agents = () => {
  const a = new HttpAgents();
  closers.push(() => a.destroy());
  return a;
};

const get = (a: HttpAgents, url: string, signal = AbortSignal.timeout(5000)) => httpRequest(a, { method: 'GET', url: new URL(url), headers: { accept: 'application/json' }, signal });

describe('httpRequest', () => {
  it('answers status and body, sends the body with its length, reuses one connection', async () => {
    const seen: { method: string; body: string; length: string | undefined; port: number }[] = [];
    const srv = createHttpServer((q: IncomingMessage, s: ServerResponse) => {
      let body = '';
      q.on('data', (c: Buffer) => (body += c.toString()));
      q.on('end', () => {
        seen.push({ method: q.method!, body, length: q.headers['content-length'], port: q.socket.remotePort! });
        s.writeHead(q.method === 'POST' ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify({ got: body }));
      });
    });
    const base = await listen(srv);
    const a = agents();
    const post = await httpRequest(a, { method: 'POST', url: new URL('/x', base), headers: { 'content-type': 'application/json' }, body: '{"é":1}', signal: AbortSignal.timeout(5000) });
    expect(post).toEqual({ status: 200, text: JSON.stringify({ got: '{"é":1}' }) });
    expect(await get(a, `${base}/y`)).toEqual({ status: 404, text: JSON.stringify({ got: '' }) });
    expect(seen.map((s) => [s.method, s.length])).toEqual([['POST', String(Buffer.byteLength('{"é":1}'))], ['GET', undefined]]);
    expect(seen[0]!.port).toBe(seen[1]!.port);
  });

  it('a body shorter than its content-length is an error', async () => {
    const base = await rawServer('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"results":');
    await expect(get(agents(), base)).rejects.toThrow();
  });

  it('a chunked body without its last chunk is an error', async () => {
    const base = await rawServer('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nb\r\n{"results":\r\n');
    await expect(get(agents(), base)).rejects.toThrow();
  });

  it('a connection closed before any answer is an error', async () => {
    const base = await rawServer('');
    await expect(get(agents(), base)).rejects.toThrow();
  });

  it('a refused connection is an error', async () => {
    const srv = createTcpServer();
    const base = await listen(srv);
    srv.close();
    await expect(get(agents(), base)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('aborts a server that never answers, and one that stops mid-body', async () => {
    const hang = createHttpServer(() => undefined);
    const base = await listen(hang);
    closers.unshift(() => hang.closeAllConnections());
    const a = agents();
    await expect(get(a, base, AbortSignal.timeout(200))).rejects.toThrow(/abort/i);
    const stall = createHttpServer((_q, s) => s.writeHead(200, { 'content-length': '10' }).write('{"a'));
    const stalled = await listen(stall);
    closers.unshift(() => stall.closeAllConnections());
    await expect(get(a, stalled, AbortSignal.timeout(200))).rejects.toThrow(/abort/i);
  });
});
