// Runs a command without blocking the test worker. A spawnSync that lasts longer than vitest's RPC
// timeout (60 s) makes the worker's pending "onTaskUpdate" call time out, an unhandled error that
// fails the whole run although every test passed (CI on a loaded 2-core machine: `npm run demo --
// --help` builds first and took 85 s there).
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** Exit code; null when killed by a signal (or the timeout). */
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCommand(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      resolve({ status: err ? (typeof code === 'number' ? code : null) : 0, stdout, stderr: stderr || (err && typeof code !== 'number' ? String(err) : '') });
    });
  });
}
