// A real nats-server (Debian package) on a free loopback port, per test file.
import type { ChildProcess } from 'node:child_process';
import { freePort, killChild, spawnChild, tcpOpen, waitFor } from './children.js';

export class NatsServer {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number, readonly bin: string) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(bin = process.env.NATS_SERVER_BIN ?? 'nats-server'): Promise<NatsServer> {
    const s = new NatsServer(await freePort(), bin);
    await s.restart();
    return s;
  }

  /** Starts it again on the same port (after stop()). */
  async restart(): Promise<void> {
    if (this.child && this.child.exitCode === null) return;
    this.child = spawnChild(this.bin, ['-a', '127.0.0.1', '-p', String(this.port)], 'nats-server');
    const child = this.child;
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`nats-server exited: ${(child as ChildProcess & { tail: () => string }).tail()}`);
      return tcpOpen(this.port);
    }, 'nats-server');
  }

  async stop(): Promise<void> {
    await killChild(this.child);
    this.child = undefined;
  }
}
