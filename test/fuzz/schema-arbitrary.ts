// A fast-check arbitrary derived from a CRD's OpenAPI schema (the TypeBox schemas in src/api): mostly
// values the schema allows (so that the apiserver accepts many objects and hm9k must handle them),
// sometimes one that breaks a rule (so that admission must refuse it with a message).
import fc from 'fast-check';
import { DURATION_PATTERN } from '../../src/api/schema.js';

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  'x-kubernetes-int-or-string'?: boolean;
}

/** Durations from tiny to absurd (0s, fractions of a millisecond, 10^7 hours, many terms). */
export const duration = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.integer({ min: 0, max: 600 }), fc.constantFrom('ms', 's', 'm', 'h')).map(([n, u]) => `${n}${u}`) },
  { weight: 1, arbitrary: fc.constantFrom('0s', '0ms', '0.4ms', '1ms', '0.001s', '10000000h', '99999999999999999999h', '1h30m', '1.5s', '2562047h') },
  { weight: 1, arbitrary: fc.array(fc.tuple(fc.integer({ min: 0, max: 99 }), fc.constantFrom('ms', 's', 'm', 'h')), { minLength: 2, maxLength: 4 }).map((xs) => xs.map(([n, u]) => `${n}${u}`).join('')) },
);

const host = fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?$/);
const breaking = fc.oneof(fc.constant(null), fc.constant(-1), fc.constant(''), fc.constant('not valid !'), fc.constant(1e12), fc.constant([]), fc.constant({}), fc.constant(true));

function leaf(s: Schema): fc.Arbitrary<unknown> {
  if (s.enum) return fc.constantFrom(...s.enum);
  if (s['x-kubernetes-int-or-string']) return fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 150 }).map((n) => `${n}%`), fc.integer({ min: 0, max: 20 }).map(String));
  switch (s.type) {
    case 'boolean': return fc.boolean();
    case 'integer': return fc.integer({ min: s.minimum ?? -5, max: Math.min(s.maximum ?? 1_000_000, 2 ** 31) });
    case 'number': return fc.double({ noNaN: true, min: s.minimum ?? -5, max: s.maximum ?? 1e6 });
    case 'string': {
      if (s.pattern === DURATION_PATTERN) return duration;
      if (s.pattern?.startsWith('^[A-Za-z0-9]([A-Za-z0-9.-]')) return host;
      if (s.pattern === '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$') return host;
      if (s.pattern === '^https?://') return fc.webUrl();
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern)).filter((x) => x.length <= (s.maxLength ?? 1000));
      return fc.string({ maxLength: Math.min(s.maxLength ?? 40, 40) });
    }
    default: return fc.constant(undefined);
  }
}

/** Values for `s`; `breakRate` is the chance that any one field gets a value the schema forbids. */
export function fromSchema(s: Schema, breakRate = 0.02, depth = 0): fc.Arbitrary<unknown> {
  const valid = ((): fc.Arbitrary<unknown> => {
    if (s.type === 'object' && s.properties) {
      const req = new Set(s.required ?? []);
      const entries = Object.entries(s.properties).map(([k, v]) => [k, fromSchema(v, breakRate, depth + 1)] as const);
      return fc.record(Object.fromEntries(entries), { requiredKeys: [...req] as never[] });
    }
    if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') {
      return fc.dictionary(fc.stringMatching(/^[a-z0-9.\/-]{1,20}$/), fromSchema(s.additionalProperties, breakRate, depth + 1), { maxKeys: 3 });
    }
    if (s.type === 'array' && s.items) return fc.array(fromSchema(s.items, breakRate, depth + 1), { minLength: s.minItems ?? 0, maxLength: Math.min(s.maxItems ?? 3, 3) });
    return leaf(s);
  })();
  return fc.oneof({ weight: Math.round(1 / breakRate), arbitrary: valid }, { weight: 1, arbitrary: breaking });
}
