// Small helpers shared by the whole-node test files.
import type { World } from './world.js';

/**
 * Stops the world's coupling loop and waits for an in-flight tick, so that World.stop() (which
 * removes the BMC state directories) never races a tick reading them (ENOENT as an unhandled error).
 */
export async function quiesce(w: World | undefined): Promise<void> {
  if (!w) return;
  const inner = w as unknown as { timer?: NodeJS.Timeout; ticking?: boolean };
  clearInterval(inner.timer);
  for (let i = 0; i < 50 && inner.ticking; i++) await new Promise((r) => setTimeout(r, 20));
}

/** Polls `fn` until it returns something truthy; on timeout throws with `what` and `context()`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 45_000, context: () => string = () => '', stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}\n${context()}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
