// Freshness exactly as HM9000 defines it (hm9000.md section 5).
//
// Actual state is fresh when heartbeats have been flushed successfully without a gap longer than
// the TTL, AND that unbroken streak began at least one TTL ago. A cold start or a gap therefore
// needs one TTL of continuous healthy intake before anything is trusted. A flush that takes too
// long, or a store write error, revokes freshness.
export interface ActualFreshnessState {
  /** ms epoch when the current unbroken streak of successful flushes began. */
  streakStart?: number;
  /** ms epoch of the last successful flush. */
  lastFlush?: number;
}

/** ms epochs: heartbeats flowed without a gap longer than the TTL from `from` until `until`. */
export interface ObservedSpan {
  from: number;
  until: number;
}

export class ActualFreshness {
  state: ActualFreshnessState = {};
  constructor(public ttlMs: number) {}

  recordFlush(now: number): void {
    const { lastFlush, streakStart } = this.state;
    const broken = lastFlush === undefined || streakStart === undefined || now - lastFlush > this.ttlMs;
    this.state = { streakStart: broken ? now : streakStart, lastFlush: now };
  }

  revoke(): void {
    this.state = {};
  }

  isFresh(now: number): boolean {
    const { lastFlush, streakStart } = this.state;
    if (lastFlush === undefined || streakStart === undefined) return false;
    return now - lastFlush <= this.ttlMs && now - streakStart >= this.ttlMs;
  }

  /**
   * The span of unbroken heartbeat intake that a flush at `now` belongs to (as if it were recorded
   * when it carried heartbeats), or undefined when there is none. A DEA's silence is measured only
   * inside it (hm9k's rule, stricter than HM9000's wall clock): time spent blind never counts.
   */
  observedSpan(now: number, carriedHeartbeats: boolean): ObservedSpan | undefined {
    const { lastFlush, streakStart } = this.state;
    const has = lastFlush !== undefined && streakStart !== undefined;
    if (carriedHeartbeats) return { from: has && now - lastFlush <= this.ttlMs ? streakStart : now, until: now };
    return has ? { from: streakStart, until: lastFlush } : undefined;
  }

  /** Seconds since the streak began, or -1 when there is none (metrics). */
  ageMs(now: number): number {
    const { lastFlush, streakStart } = this.state;
    if (lastFlush === undefined || streakStart === undefined || now - lastFlush > this.ttlMs) return -1;
    return now - streakStart;
  }
}

/** Desired state is fresh when a complete fetch succeeded within the TTL. */
export function desiredIsFresh(lastCompleteFetch: number | undefined, now: number, ttlMs: number): boolean {
  return lastCompleteFetch !== undefined && now - lastCompleteFetch <= ttlMs;
}
