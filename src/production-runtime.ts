// How production runs Node for hm9k (the image's ENV, Dockerfile), in one place so that the benchmarks
// and the demo run hm9k the same way. A test checks the Dockerfile against it.
//
// --max-semi-space-size=2 (MB; Node's default grows to 16): the young generation is most of an idle
// hm9k's heap. hm9k's allocation is steady and small (heartbeats, API answers), so a small one costs
// a few more scavenges and no measurable CPU, and saves about 45 MB of RSS (issue 14 item 9:
// 206 -> 160 MB at 2,000 apps). MALLOC_ARENA_MAX=2: glibc's malloc keeps one arena per thread (V8's
// and libuv's workers), each holding freed memory; two are enough for Node's few native allocations.
export const PRODUCTION_NODE_OPTIONS = '--max-semi-space-size=2';
export const PRODUCTION_MALLOC_ARENA_MAX = '2';

/** The environment of a Node process run as production runs hm9k (for benchmarks and the demo). */
export function productionNodeEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, NODE_OPTIONS: [env.NODE_OPTIONS, PRODUCTION_NODE_OPTIONS].filter(Boolean).join(' '), MALLOC_ARENA_MAX: PRODUCTION_MALLOC_ARENA_MAX };
}
