// `hm9k run` as a real process against the local apiserver: starts with no half, watches the
// resources, reports ready, serves metrics, exits cleanly on SIGTERM; bad configuration is refused
// with a message that names the problem.
import { spawn, spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, testNamespace } from '../support/controlplane.js';
import { freePort, waitFor } from '../../src/devenv/procs.js';

let ns: string;
beforeAll(async () => {
  ns = await testNamespace('run');
});

describe('hm9k run', () => {
  it('refuses bad configuration with every problem named', () => {
    const r = spawnSync('node', ['bin/hm9k.js', 'run', '--apps', '--set', 'logLevel=loud'], { encoding: 'utf8', env: { ...process.env, HM9K_APPS__CC__URL: '' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/invalid configuration/);
    expect(r.stderr).toMatch(/logLevel/);
  });

  it('refuses to run both halves in one process', () => {
    const r = spawnSync('node', ['bin/hm9k.js', 'run', '--apps', '--nodes'], {
      encoding: 'utf8',
      env: { ...process.env, HM9K_APPS__CC__URL: 'http://cc', HM9K_APPS__CC__BULK_USER: 'u', HM9K_APPS__CC__BULK_PASSWORD: 'p', HM9K_APPS__CC__INTERNAL_USER: 'u', HM9K_APPS__CC__INTERNAL_PASSWORD: 'p', HM9K_APPS__API__USER: 'u', HM9K_APPS__API__PASSWORD: 'p' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/separate processes/);
  });

  it('with no half, watches the resources, becomes ready and stops on SIGTERM', async () => {
    const [health, metrics] = [await freePort(), await freePort()];
    const child = spawn(
      'node',
      ['bin/hm9k.js', 'run', '--kubeconfig', controlPlane().state.kubeconfig, '--namespace', ns, '--health-port', String(health), '--metrics-port', String(metrics), '--set', 'bindAddress=127.0.0.1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor('readyz 200', async () => (await fetch(`http://127.0.0.1:${health}/readyz`)).status === 200, 60_000);
      expect((await fetch(`http://127.0.0.1:${health}/healthz`)).status).toBe(200);
      const text = await (await fetch(`http://127.0.0.1:${metrics}/metrics`)).text();
      expect(text).toMatch(/leader_election_master_status\{name="hm9k-hm9k"\} 1/);
      expect(out).toMatch(/"msg":"hm9k started"/);
      expect(out).not.toMatch(/client-key-data|BEGIN .*PRIVATE KEY/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
