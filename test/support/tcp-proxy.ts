// A tiny TCP proxy on 127.0.0.1 for partition tests: forwards to a target port; `cut('reset')`
// destroys every connection and refuses new ones, `cut('blackhole')` keeps sockets open but drops
// all bytes (a half-open network); `slow(ms)` delivers every chunk ms late (a slow server);
// `restore()` forwards again at full speed.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type CutMode = 'reset' | 'blackhole';

export class TcpProxy {
  private mode: CutMode | undefined;
  private delayMs = 0;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  connections = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let self: TcpProxy | undefined;
    const server = net.createServer((client) => self!.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    self = new TcpProxy(server, (server.address() as AddressInfo).port);
    return self;
  }

  private accept(client: net.Socket, port: number, host: string): void {
    this.connections++;
    if (this.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(port, host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (chunk) => {
        if (this.mode === 'blackhole') return; // dropped on the floor
        if (this.delayMs > 0) setTimeout(() => to.destroyed || to.write(chunk), this.delayMs); // (same delay for all: order kept)
        else to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  }

  cut(mode: CutMode = 'reset'): void {
    this.mode = mode;
    if (mode === 'reset') {
      for (const [c, u] of this.pairs) {
        c.resetAndDestroy();
        u.destroy();
      }
      this.pairs.clear();
    }
  }

  /** Every chunk, both ways, is delivered this long after it arrived. */
  slow(delayMs: number): void {
    this.delayMs = delayMs;
  }

  restore(): void {
    this.mode = undefined;
    this.delayMs = 0;
  }

  async close(): Promise<void> {
    for (const [c, u] of this.pairs) {
      c.destroy();
      u.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
