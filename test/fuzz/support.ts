// Shared settings for the property-based fuzzers (fast-check). Every property runs a bounded number
// of cases in `npm test`; `npm run fuzz` (or HM9K_FUZZ_RUNS=N) runs N per target. The seed is printed
// with each target's line and in fast-check's failure message (`seed`, `path`): replay a failure with
// HM9K_FUZZ_SEED=<seed> HM9K_FUZZ_PATH=<path> npx vitest run test/fuzz/<file>.
import fc from 'fast-check';

const envRuns = Number(process.env.HM9K_FUZZ_RUNS ?? '');
const envSeed = process.env.HM9K_FUZZ_SEED;
const envPath = process.env.HM9K_FUZZ_PATH;

/** Cases per target: HM9K_FUZZ_RUNS when set, else the target's bounded default. */
export function runs(defaultRuns: number): number {
  return Number.isInteger(envRuns) && envRuns > 0 ? envRuns : defaultRuns;
}

/** Per-test timeout that grows with the number of cases (a long `npm run fuzz` must not time out). */
export function budget(defaultRuns: number, msPerCase: number, floorMs = 60_000): number {
  return Math.max(floorMs, runs(defaultRuns) * msPerCase * 3);
}

/** A fresh seed per run (printed), or the one to replay. */
function seed(): number {
  return envSeed !== undefined ? Number(envSeed) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
}

/** Runs a property and prints `fuzz <target>: <n> cases, seed <s>`; a failure names seed and path. */
export async function check<T>(target: string, prop: fc.IAsyncPropertyWithHooks<T> | fc.IPropertyWithHooks<T>, defaultRuns: number): Promise<void> {
  const s = seed();
  const numRuns = runs(defaultRuns);
  const params: fc.Parameters<T> = { numRuns, seed: s, endOnFailure: true, ...(envPath ? { path: envPath } : {}) };
  try {
    await fc.assert(prop as fc.IAsyncPropertyWithHooks<T>, params);
  } catch (err) {
    (err as Error).message = `fuzz ${target} failed (replay: HM9K_FUZZ_SEED=${s} and the path below)\n${(err as Error).message}`;
    throw err;
  }
  console.log(`fuzz ${target}: ${numRuns} cases, seed ${s}`);
}

// ---- hostile input -------------------------------------------------------------------------------

/** Bytes that are not valid UTF-8 (lone continuation bytes, truncated sequences, overlongs). */
export const invalidUtf8 = fc
  .array(fc.constantFrom(0x80, 0xbf, 0xc0, 0xc1, 0xe0, 0xed, 0xf5, 0xff, 0xfe, 0xf0, 0x9f), { minLength: 1, maxLength: 16 })
  .chain((bad) => fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map(([a, b]) => Buffer.concat([Buffer.from(`{"dea":"${a}`), Buffer.from(bad), Buffer.from(`${b}"}`)])));

/** JSON nested `depth` levels deep (arrays or objects). */
export const deepNesting = fc.tuple(fc.integer({ min: 50, max: 20_000 }), fc.boolean()).map(([depth, arr]) => (arr ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)));

/** A large array of small junk values inside an otherwise plausible field. */
export const hugeArray = (field: string) =>
  fc.tuple(fc.integer({ min: 1000, max: 20_000 }), fc.jsonValue({ maxDepth: 1 })).map(([n, v]) => `{"${field}":[${new Array(n).fill(JSON.stringify(v) ?? 'null').join(',')}]}`);

/** Replace one value somewhere inside `obj` (a path chosen by `picks`) with `v`. */
export function mutateAt(obj: unknown, picks: number[], v: unknown): unknown {
  if (picks.length === 0 || obj === null || typeof obj !== 'object') return v;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(obj) ? [...obj] : { ...(obj as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return v;
  const k = keys[picks[0]! % keys.length]!;
  (copy as Record<string, unknown>)[k] = mutateAt((copy as Record<string, unknown>)[k], picks.slice(1), v);
  return copy;
}

/** Weird values: wrong types, special numbers, prototype keys, control characters, long strings. */
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53 + 1, -0, 1e308, '', ' ', '\u0000', '__proto__', 'constructor', 'toString', '\ud800', 'NaN'),
  fc.string({ maxLength: 5000 }),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'a'), fc.jsonValue({ maxDepth: 1 })),
);

/** A valid object mutated once or more, serialized (sometimes with a prototype key spelled out in the text). */
export function mutated<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<string> {
  return fc
    .tuple(valid, fc.array(fc.tuple(fc.array(fc.nat(), { maxLength: 4 }), weirdValue), { minLength: 1, maxLength: 3 }), fc.boolean())
    .map(([v, muts, proto]) => {
      let o: unknown = v;
      for (const [p, w] of muts) o = mutateAt(o, p, w);
      const s = JSON.stringify(o) ?? 'null';
      return proto && s.startsWith('{') ? `{"__proto__":{"polluted":1},${s.slice(1)}` : s;
    });
}

/** Everything a hostile or broken peer might send as one message body, plus the valid case. */
export function hostileBodies<T>(valid: fc.Arbitrary<T>, arrayField: string): fc.Arbitrary<string | Uint8Array> {
  return fc.oneof(
    { weight: 3, arbitrary: valid.map((v) => JSON.stringify(v)) },
    { weight: 6, arbitrary: mutated(valid) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? '') },
    { weight: 1, arbitrary: invalidUtf8 },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: hugeArray(arrayField) },
  );
}

/** Fails the test on an unhandled rejection or uncaught exception while `fn` runs (vitest would only warn later). */
export async function noUnhandled<T>(fn: () => Promise<T>): Promise<T> {
  const seen: unknown[] = [];
  const onRej = (e: unknown) => seen.push(e);
  process.on('unhandledRejection', onRej);
  process.on('uncaughtException', onRej);
  try {
    const v = await fn();
    await new Promise((r) => setTimeout(r, 20));
    if (seen.length) throw new Error(`unhandled rejection/exception: ${String((seen[0] as Error)?.stack ?? seen[0])}`);
    return v;
  } finally {
    process.off('unhandledRejection', onRej);
    process.off('uncaughtException', onRej);
  }
}
