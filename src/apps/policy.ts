// The AppHealthPolicy this process follows, and the config resolved from it. Read afresh on every
// call: an edit to the policy applies from the next cycle on.
//
// Which policy is explicit (issue 10): the one apps.policyName names; with no name, the only one
// there is; with none at all, the defaults. Two or more with none named, or a named one that does
// not exist, is not guessed at: the app half follows none, acts on nothing and is not ready, and
// says why (an error log line, a Warning Event on each candidate, the apps-policy readiness check).
// A change of the followed policy is logged and evented, and the next fetch is due at once (its
// timings may differ; desired state must not wait out the old fetch interval).
import type { Logger } from 'pino';
import { RELEASE_STOP_HOLD_ANNOTATION, type AppHealthPolicy } from '../api/index.js';
import type { EventRecorder, Informer } from '../kube/contract.js';
import { resolveAppsConfig, type AppsConfig, type AppsProcessConfig } from './config.js';

export type PolicyChoice =
  | { kind: 'follow'; policy: AppHealthPolicy; why: 'named' | 'only' }
  | { kind: 'defaults' }
  | { kind: 'none'; reason: 'NamedPolicyMissing' | 'AmbiguousPolicies'; message: string; candidates: AppHealthPolicy[] };

/** Pure: the policy to follow among `policies`, given the configured name ('' or undefined: none). */
export function choosePolicy(policies: readonly AppHealthPolicy[], named: string | undefined): PolicyChoice {
  if (named) {
    const p = policies.find((x) => x.metadata.name === named);
    if (p) return { kind: 'follow', policy: p, why: 'named' };
    return {
      kind: 'none',
      reason: 'NamedPolicyMissing',
      message: `AppHealthPolicy ${named} (apps.policyName) does not exist: the app half follows no policy and acts on nothing until it does`,
      candidates: [],
    };
  }
  if (policies.length === 0) return { kind: 'defaults' };
  if (policies.length === 1) return { kind: 'follow', policy: policies[0]!, why: 'only' };
  const names = policies.map((p) => p.metadata.name).sort();
  return {
    kind: 'none',
    reason: 'AmbiguousPolicies',
    message: `${names.length} AppHealthPolicies (${names.join(', ')}) and apps.policyName names none: the app half follows none and acts on nothing; set apps.policyName (chart value apps.policyName) or delete all but one`,
    candidates: [...policies].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)),
  };
}

const choiceKey = (c: PolicyChoice): string =>
  c.kind === 'follow' ? `follow/${c.policy.metadata.name}/${c.policy.metadata.uid ?? ''}` : c.kind === 'defaults' ? 'defaults' : `none/${c.reason}/${c.candidates.map((p) => p.metadata.name).join(',')}`;

export interface PolicyReporting {
  logger: Logger;
  events: EventRecorder;
  /** The followed policy changed (or the half now follows none or the defaults). */
  onSwitch?: () => void;
}

export class PolicySource {
  private lastKey: string | undefined;
  private lastFollowed: string | undefined;

  constructor(
    private readonly informer: Informer<AppHealthPolicy>,
    private readonly pc: Pick<AppsProcessConfig, 'policyName' | 'defaultSpec' | 'configOverride'>,
    private readonly reporting?: PolicyReporting,
  ) {}

  choice(): PolicyChoice {
    return choosePolicy(this.informer.list(), this.pc.policyName);
  }

  /** The followed policy (undefined: the defaults, or none can be followed; see blocked()). */
  policy(): AppHealthPolicy | undefined {
    const c = this.choice();
    return c.kind === 'follow' ? c.policy : undefined;
  }

  /** Why no policy can be followed (then nothing is acted on), or undefined. */
  blocked(): string | undefined {
    const c = this.choice();
    return c.kind === 'none' ? c.message : undefined;
  }

  config(): AppsConfig {
    const c = resolveAppsConfig(this.policy()?.spec ?? this.pc.defaultSpec);
    return this.pc.configOverride ? this.pc.configOverride(c) : c;
  }

  /** The operator's acknowledgement of a stop or shrink hold (its id). */
  releaseAnnotation(): string | undefined {
    return this.policy()?.metadata.annotations?.[RELEASE_STOP_HOLD_ANNOTATION];
  }

  hasSynced(): boolean {
    return this.informer.hasSynced();
  }

  /**
   * Called every leader-loop tick once synced: reports a change of choice once (log line, Event)
   * and returns whether a policy (or the defaults) can be followed.
   */
  observe(): boolean {
    const c = this.choice();
    const key = choiceKey(c);
    if (key !== this.lastKey) {
      const first = this.lastKey === undefined;
      this.lastKey = key;
      this.report(c, first);
      if (!first) this.reporting?.onSwitch?.();
    }
    return c.kind !== 'none';
  }

  private report(c: PolicyChoice, first: boolean): void {
    const r = this.reporting;
    if (!r) return;
    const was = this.lastFollowed;
    if (c.kind === 'follow') {
      const name = c.policy.metadata.name;
      this.lastFollowed = name;
      const how = c.why === 'named' ? 'named by apps.policyName' : 'the only AppHealthPolicy';
      r.logger.info({ policy: name, previous: was ?? null, why: c.why }, first ? 'following AppHealthPolicy' : 'switched AppHealthPolicy');
      // At start-up the log line suffices (steady state is quiet); a switch is evented.
      if (!first) r.events.record(c.policy, 'Normal', 'PolicyFollowed', 'Follow', `The app half follows this AppHealthPolicy now (${how})${was && was !== name ? `; it followed ${was} before` : ''}.`);
    } else if (c.kind === 'defaults') {
      this.lastFollowed = undefined;
      r.logger.info({ previous: was ?? null }, 'no AppHealthPolicy: following the defaults');
    } else {
      this.lastFollowed = undefined;
      r.logger.error({ reason: c.reason, candidates: c.candidates.map((p) => p.metadata.name), previous: was ?? null }, c.message);
      for (const p of c.candidates) r.events.record(p, 'Warning', c.reason, 'Follow', c.message.slice(0, 1000));
    }
  }
}
