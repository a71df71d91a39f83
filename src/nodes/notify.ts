// Notifications: a Kubernetes Event for every decision; email (deduplicated per node and key within
// the policy's minInterval, and rate-limited globally); optional webhook. A failed email is sent
// again on a doubling back-off (emailRetryInitial .. emailRetryMax, emailRetries attempts): a
// decision mails once (a node turns Healthy once), so without a retry the mail would be lost.
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { ComputeNode } from '../api/index.js';
import { requireKey } from '../clients/secrets.js';
import type { EventRecorder } from '../kube/contract.js';
import type { NodesProcessConfig, ResolvedPolicy } from './config.js';
import type { NodeDeps } from './deps.js';
import type { Action } from './fence/types.js';

type NotifyAction = Extract<Action, { type: 'notify' }>;

export class Notifier {
  private readonly sent = new Map<string, number>();
  private tokens: number;
  private lastRefill: number;
  /** Failed emails waiting for their next attempt, by dedup key. */
  private readonly retries = new Map<string, { timer: NodeJS.Timeout; attempt: number }>();
  private stopped = false;
  /** Sent messages (bounded; for `hm9k dump` and tests). */
  readonly history: { at: number; node: string; key: string; subject: string; delivered: boolean; error?: string }[] = [];

  constructor(
    private readonly deps: NodeDeps,
    private readonly events: EventRecorder,
    private readonly log: Logger,
    private readonly config: NodesProcessConfig,
    private readonly counter?: Counter,
    private readonly now = () => Date.now(),
    /** Global email budget: at most `burst` at once, refilled at `perMinute`. */
    private readonly budget = { burst: 20, perMinute: 10 },
  ) {
    this.tokens = budget.burst;
    this.lastRefill = now();
  }

  private take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.budget.burst, this.tokens + ((t - this.lastRefill) / 60_000) * this.budget.perMinute);
    this.lastRefill = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  async notify(node: ComputeNode, policy: ResolvedPolicy | null, a: NotifyAction): Promise<void> {
    this.events.record(node, a.severity === 'info' ? 'Normal' : 'Warning', notifyReason(a.key, node.metadata.name), 'Notify', a.subject);
    const dedupKey = `${node.metadata.name}\u0000${a.key}`;
    const minInterval = policy?.notifications.minIntervalMs ?? 15 * 60_000;
    const last = this.sent.get(dedupKey);
    if (last !== undefined && this.now() - last < minInterval) return;
    const email = policy?.notifications.email ?? this.config.smtpDefault;
    const webhook = policy?.notifications.webhook;
    if (!email && !webhook) return;
    if (!this.take()) {
      this.counter?.inc({ result: 'rate_limited' });
      this.log.warn({ node: node.metadata.name, key: a.key }, 'notification dropped: global email budget exhausted');
      return;
    }
    this.sent.set(dedupKey, this.now());
    let delivered = true;
    let error: string | undefined;
    if (email) {
      const r = await this.sendEmail(node.metadata.name, email, a, dedupKey, 1);
      delivered = r.ok;
      error = r.error;
    }
    if (webhook) {
      try {
        const res = await fetch(webhook.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ node: node.metadata.name, key: a.key, severity: a.severity, subject: a.subject, body: a.body }), signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
      } catch (err) {
        this.log.error({ node: node.metadata.name, key: a.key, err: (err as Error).message }, 'webhook notification failed');
      }
    }
    this.history.push({ at: this.now(), node: node.metadata.name, key: a.key, subject: a.subject, delivered, ...(error ? { error } : {}) });
    if (this.history.length > 200) this.history.shift();
  }

  /** One attempt; a failure schedules the next one (the dedup entry stays: no second copy meanwhile). */
  private async sendEmail(node: string, email: Email, a: NotifyAction, dedupKey: string, attempt: number): Promise<{ ok: boolean; error?: string }> {
    try {
      let username: string | undefined;
      let password: string | undefined;
      if (email.credentialsSecret) {
        const s = await this.deps.secrets.get(email.credentialsSecret);
        username = requireKey(s, 'username', email.credentialsSecret);
        password = requireKey(s, 'password', email.credentialsSecret);
      }
      await this.deps.smtp.send(
        { host: email.smtpHost, port: email.smtpPort, secure: email.secure, ...(username ? { username, password: password ?? '' } : {}) },
        { from: email.from, to: email.to, subject: a.subject, text: `${a.body}\n\n-- hm9k (severity ${a.severity}, key ${a.key})\n` },
      );
      this.retries.delete(dedupKey);
      this.counter?.inc({ result: 'sent' });
      this.log.info({ node, key: a.key, to: email.to, severity: a.severity, ...(attempt > 1 ? { attempt } : {}) }, `email sent: ${a.subject}`);
      return { ok: true };
    } catch (err) {
      const error = (err as Error).message;
      const c = this.config;
      if (this.stopped || attempt >= c.emailRetries) {
        // Given up (or shutting down): a later decision may mail again.
        this.retries.delete(dedupKey);
        this.sent.delete(dedupKey);
        this.counter?.inc({ result: this.stopped ? 'failed' : 'gave_up' });
        this.log.error({ node, key: a.key, err: error, attempt }, this.stopped ? 'email notification failed while stopping' : `email notification given up after ${attempt} attempts`);
        return { ok: false, error };
      }
      const delay = Math.min(c.emailRetryMaxMs, c.emailRetryInitialMs * 2 ** (attempt - 1));
      this.counter?.inc({ result: 'failed' });
      this.log.error({ node, key: a.key, err: error, attempt, retryInMs: delay }, 'email notification failed; it will be sent again');
      const timer = setTimeout(() => void this.sendEmail(node, email, a, dedupKey, attempt + 1), delay);
      timer.unref?.();
      this.retries.set(dedupKey, { timer, attempt });
      return { ok: false, error };
    }
  }

  /** Emails that failed and wait for (or are in) another attempt (for tests and the dump). */
  pendingRetries(): number {
    return this.retries.size;
  }

  /** Stops the retries (shutdown); a retry in flight finishes without scheduling another. */
  stop(): void {
    this.stopped = true;
    for (const r of this.retries.values()) clearTimeout(r.timer);
    if (this.retries.size) this.log.warn({ emails: this.retries.size }, 'stopping with notification emails still failing');
    this.retries.clear();
  }
}

type Email = NonNullable<ResolvedPolicy['notifications']['email']>;

/** A readable Event reason from a notification key: `fence-failed-<fence id>` -> NotifyFenceFailed. */
export function notifyReason(key: string, node: string): string {
  const id = new RegExp(`-${node.slice(0, 40).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[a-z0-9]+$`);
  const base = key.replace(id, '');
  return `Notify${base.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}`.slice(0, 64);
}
