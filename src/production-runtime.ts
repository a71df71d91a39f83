// How production runs Node for hm9k (the image's ENV, Dockerfile), in one place so that the benchmarks
// run hm9k the same way. A test checks the Dockerfile against it.
//
// --max-semi-space-size=2 (MB; Node's default grows to 16): the young generation is most of an idle
// hm9k's heap. hm9k's allocation is steady and small (heartbeats, API answers), so a small one costs
// a few more scavenges and no measurable CPU, and saves about 45 MB of RSS (issue 14 item 9:
// 206 -> 160 MB at 2,000 apps). MALLOC_ARENA_MAX=2: glibc's malloc keeps one arena per thread (V8's
// and libuv's workers), each holding freed memory; two are enough for Node's few native allocations.
export const PRODUCTION_NODE_OPTIONS = '--max-semi-space-size=2';
/**
 * V8 flags on Node's command line (the image's ENTRYPOINT; the chart's `nodeFlags`): Node refuses
 * them in NODE_OPTIONS. --optimize-for-size: V8 trades a little speed for memory (smaller heap
 * growth steps, leaner code and inline caches): an idle app half at 2,000 apps 141 -> 124 MB RSS
 * (1.3 CPU s/min), at 10,000 apps 255 -> 209 MB (2.8 -> 5.9 CPU s/min; HM9000 33): issue 14 item 9
 * asks RSS <= 2x HM9000's 68 / 135 MB and CPU <= HM9000's.
 */
export const PRODUCTION_NODE_FLAGS: readonly string[] = ['--optimize-for-size'];
/**
 * For a fleet of hundreds of thousands of instances (set through the chart's `apps.extraEnv`): with
 * 2 MB semi-spaces, heartbeat data that lives for a flush interval is promoted and collected by the
 * old generation; at a million instances that cost a third of the listener's throughput and pushed
 * analyzer passes past a second (issue 14 item 8). Node's default young generation, and an old
 * generation large enough for the store (about 1.2 GB at a million instances).
 */
export const LARGE_FLEET_NODE_OPTIONS = '--max-semi-space-size=16 --max-old-space-size=8192';
/**
 * No --optimize-for-size for such a fleet (the chart's `apps.nodeFlags: []`): at a million instances
 * it made analyzer passes 2.1 s instead of 0.7 s, CPU 75% instead of 34% of a core, and the listener
 * 0.34x instead of 0.51x a bare subscriber (`MILLION_NODE_FLAGS=--optimize-for-size npm run bench -- million`).
 */
export const LARGE_FLEET_NODE_FLAGS: readonly string[] = [];
export const PRODUCTION_MALLOC_ARENA_MAX = '2';

/** The environment of a Node process run as production runs hm9k (for the benchmarks). */
export function productionNodeEnv(env: NodeJS.ProcessEnv = process.env, nodeOptions = PRODUCTION_NODE_OPTIONS): NodeJS.ProcessEnv {
  return { ...env, NODE_OPTIONS: [env.NODE_OPTIONS, nodeOptions].filter(Boolean).join(' '), MALLOC_ARENA_MAX: PRODUCTION_MALLOC_ARENA_MAX };
}
