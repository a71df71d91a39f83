// A real etcd (~/.cache/hm9k/bin/etcd, built by scripts/build-tools.sh) on free loopback ports,
// with its data in a temporary directory, per test file.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killChild, spawnChild, waitFor } from './children.js';

export const ETCD_BIN = process.env.ETCD_BIN ?? join(homedir(), '.cache', 'hm9k', 'bin', 'etcd');

export class EtcdServer {
  private child: ChildProcess | undefined;
  private constructor(readonly clientPort: number, readonly peerPort: number, readonly dataDir: string) {}

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  static async start(): Promise<EtcdServer> {
    const s = new EtcdServer(await freePort(), await freePort(), mkdtempSync(join(tmpdir(), 'hm9k-etcd-')));
    await s.restart();
    return s;
  }

  async restart(): Promise<void> {
    if (this.child && this.child.exitCode === null) return;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.child = spawnChild(ETCD_BIN, [
      '--name', 'default', '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `default=${peer}`,
      '--log-level', 'error',
    ], 'etcd');
    const child = this.child;
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`etcd exited: ${(child as ChildProcess & { tail: () => string }).tail()}`);
      try {
        const r = await fetch(`${this.endpoint}/health`);
        return r.ok;
      } catch {
        return false;
      }
    }, 'etcd health');
  }

  async stop(): Promise<void> {
    await killChild(this.child);
    this.child = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
