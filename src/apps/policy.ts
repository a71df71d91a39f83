// The AppHealthPolicy this process follows, and the config resolved from it. Read afresh on every
// call: an edit to the policy applies from the next cycle on.
import { RELEASE_STOP_HOLD_ANNOTATION, type AppHealthPolicy } from '../api/index.js';
import type { Informer } from '../kube/contract.js';
import { resolveAppsConfig, type AppsConfig, type AppsProcessConfig } from './config.js';

export class PolicySource {
  constructor(
    private readonly informer: Informer<AppHealthPolicy>,
    private readonly pc: Pick<AppsProcessConfig, 'policyName' | 'defaultSpec' | 'configOverride'>,
  ) {}

  /** The named policy, or else the first by name (none: defaults). */
  policy(): AppHealthPolicy | undefined {
    if (this.pc.policyName) return this.informer.get(this.pc.policyName);
    return this.informer.list().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
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
}
