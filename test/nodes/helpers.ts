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
