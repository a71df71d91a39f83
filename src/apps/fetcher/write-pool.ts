// Bounded-parallel, rate-limited execution of apiserver writes: at most `maxInFlight` at once, and
// starts spaced so that no more than `perSecond` begin in any second (a token bucket with a burst of
// one second's worth). Used by the DesiredApp projection so that creating 100,000 objects leaves the
// apiserver healthy. (bottleneck was measured at ~4 ms of scheduling per job: too slow here.)
export interface WritePoolLimits {
  maxInFlight: number;
  perSecond: number;
}

export class WritePool {
  private inFlight = 0;
  private readonly queue: (() => void)[] = [];
  private tokens: number;
  private lastRefill: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private limits: WritePoolLimits,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = limits.perSecond;
    this.lastRefill = this.now();
  }

  setLimits(l: WritePoolLimits): void {
    this.limits = l;
    this.tokens = Math.min(this.tokens, l.perSecond);
    this.pump();
  }

  /** Runs fn when a slot and a token are free; resolves or rejects with it. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push(() => {
        fn()
          .then(resolve, reject)
          .finally(() => {
            this.inFlight--;
            this.pump();
          });
      });
      this.pump();
    });
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.limits.perSecond, this.tokens + ((t - this.lastRefill) / 1000) * this.limits.perSecond);
    this.lastRefill = t;
  }

  private pump(): void {
    this.refill();
    while (this.queue.length > 0 && this.inFlight < Math.max(1, this.limits.maxInFlight) && this.tokens >= 1) {
      this.tokens -= 1;
      this.inFlight++;
      this.queue.shift()!();
    }
    if (this.queue.length > 0 && this.inFlight < this.limits.maxInFlight && !this.timer) {
      // Out of tokens: wake when the next one is due.
      const waitMs = Math.max(1, ((1 - this.tokens) / this.limits.perSecond) * 1000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, waitMs);
    }
  }
}
