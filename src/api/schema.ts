// Helpers that build OpenAPI v3 schemas acceptable to Kubernetes (structural schemas) while TypeBox
// derives the matching TypeScript types, so one declaration is both the type and the CRD schema.
import { Type, Kind, TypeRegistry, type TSchema, type SchemaOptions, type Static } from '@sinclair/typebox';

// Custom kinds so that TypeBox's Value.Check/Errors/Default understand the Kubernetes-shaped schemas
// below (the symbol-keyed Kind does not survive JSON, so the CRDs are unaffected).
TypeRegistry.Set('StringEnum', (schema: { enum: string[] }, value) => typeof value === 'string' && schema.enum.includes(value));
TypeRegistry.Set('IntOrPercent', (_schema, value) => (typeof value === 'number' && Number.isInteger(value) && value >= 0) || (typeof value === 'string' && /^[0-9]+%?$/.test(value)));
TypeRegistry.Set('StringMap', (_schema, value) => typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string'));
TypeRegistry.Set('ConditionList', (_schema, value) => Array.isArray(value));

export { Type, type Static, type TSchema };

/** A string enum rendered as `{type: string, enum: [...]}` (TypeBox's own union would become anyOf). */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ [Kind]: 'StringEnum', type: 'string', enum: [...values], ...options });
}

/** Go-style duration such as `10s`, `1m30s`, `500ms`. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
/** Longest duration accepted: Node's timers cannot wait longer than 2^31-1 ms (a longer one fires after 1 ms). */
export const MAX_DURATION = '576h';
export function Duration(description: string, def?: string) {
  return Type.String({
    description: `${description} A duration such as 30s, 5m or 1h30m (at most ${MAX_DURATION}).`,
    pattern: DURATION_PATTERN,
    maxLength: 32,
    'x-kubernetes-validations': [{ rule: `!${celDurationOk('self')} || duration(self) <= duration('${MAX_DURATION}')`, message: `must be at most ${MAX_DURATION}` }],
    ...(def === undefined ? {} : { default: def }),
  });
}

/**
 * CEL: `self` (a duration string) parses. Rules that compare durations guard on it, so a malformed
 * value gets only the pattern's message, not a CEL evaluation error as well.
 */
export const celDurationOk = (expr: string) => `${expr}.matches('${DURATION_PATTERN.replace(/\\/g, '\\\\')}')`;

/** A duration where zero (or a value that rounds to it) makes no sense: a period, a timeout, a TTL. */
export function PositiveDuration(description: string, def?: string) {
  return withRules(Duration(`${description} Must be positive.`, def), [
    // At least 1ms, not > 0: hm9k counts in whole milliseconds, so 0.4ms would round to 0 at run time.
    { rule: `!${celDurationOk('self')} || duration(self) >= duration('1ms')`, message: 'must be a positive duration such as 10s, at least 1ms (0 makes no sense here)' },
  ]);
}

/**
 * CEL: when both optional duration fields `a` and `b` of `self` are set and parse, `a` >= `b`
 * (defaults are applied before validation, so defaulted fields take part).
 */
export function durationAtLeast(a: string, b: string, message: string): CelRule {
  return {
    rule: `!has(self.${a}) || !has(self.${b}) || !${celDurationOk(`self.${a}`)} || !${celDurationOk(`self.${b}`)} || duration(self.${a}) >= duration(self.${b})`,
    message,
  };
}

/** An integer or a percentage ("30%"), as Kubernetes' IntOrString. */
export const INT_OR_PERCENT_PATTERN = '^[0-9]+%?$';
export function IntOrPercent(description: string, def?: number | string) {
  return Type.Unsafe<number | string>({
    [Kind]: 'IntOrPercent',
    'x-kubernetes-int-or-string': true,
    description: `${description} An integer (a count) or a percentage such as "30%" (at most 100%).`,
    pattern: INT_OR_PERCENT_PATTERN,
    maxLength: 16,
    'x-kubernetes-validations': [
      {
        rule: "type(self) != string || !self.matches('^[0-9]+%$') || int(self.substring(0, self.size() - 1)) <= 100",
        message: 'a percentage must be at most 100%',
      },
    ],
    ...(def === undefined ? {} : { default: def }),
  });
}

export function Int(description: string, opts: { minimum?: number; maximum?: number; default?: number } = {}) {
  return Type.Integer({ description, ...opts });
}

export function Bool(description: string, def?: boolean) {
  return Type.Boolean({ description, ...(def === undefined ? {} : { default: def }) });
}

export function Str(description: string, opts: SchemaOptions = {}) {
  return Type.String({ description, ...opts });
}

export const Timestamp = (description: string) => Type.String({ description, format: 'date-time' });

/** Name of a Secret in hm9k's own namespace (DNS subdomain). */
export const SecretName = (description: string) =>
  Type.String({
    description: `${description} The name of a Secret in hm9k's own namespace.`,
    pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
    maxLength: 253,
  });

/** A metav1.Condition, as Kubernetes API conventions define it. */
export const Condition = Type.Object(
  {
    type: Str('Type of condition in CamelCase.', { pattern: '^[A-Za-z][A-Za-z0-9]*$', maxLength: 316 }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'Status of the condition.' }),
    reason: Str('A CamelCase reason for the last transition.', { pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$', maxLength: 1024 }),
    message: Str('A human-readable explanation.', { maxLength: 32768 }),
    lastTransitionTime: Timestamp('When the status last changed.'),
    observedGeneration: Type.Optional(Int('The .metadata.generation the condition was computed from.', { minimum: 0 })),
  },
  { description: 'One observation of the object\'s state.' },
);
export type Condition = Static<typeof Condition>;

export const Conditions = Type.Unsafe<Condition[]>({
  ...Type.Array(Condition, { maxItems: 16 }),
  [Kind]: 'ConditionList',
  description: 'Standard conditions, keyed by type.',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

/** CEL rule with a message that a person understands when `kubectl apply` fails. */
export interface CelRule {
  rule: string;
  message: string;
}
export const withRules = <T extends TSchema>(schema: T, rules: CelRule[]): T =>
  ({ ...schema, 'x-kubernetes-validations': [...(((schema as Record<string, unknown>)['x-kubernetes-validations'] as CelRule[] | undefined) ?? []), ...rules] }) as T;

/** A map of strings (`additionalProperties`, since Kubernetes rejects patternProperties). */
export const StringMap = (description: string) =>
  Type.Unsafe<Record<string, string>>({ [Kind]: 'StringMap', type: 'object', additionalProperties: { type: 'string' }, description });
