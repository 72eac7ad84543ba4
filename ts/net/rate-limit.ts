// MaxTransferRate: a token bucket per direction of the SSH connection. Each bucket fills at
// the rate (bytes per second) up to a small burst, and a byte passes only with a token, so
// over any span of T seconds at most burst + rate × T bytes pass each way. Outbound, the
// socket driver (./driver.ts) asks how much may be written now, writes that much, and
// otherwise waits here for tokens while channel data stops being framed (the channels'
// windows hold the application back); nothing is buffered beyond what the core had already
// framed. Inbound, the tokens pace the window credit the connection layer gives the server
// (InboundCredit in ../protocol/channels.ts): the server cannot send channel data faster than
// the rate, and the socket is read as fast as ever, so its control messages never wait behind
// that data.
//
// Time comes from a TunnelScheduler-shaped clock, so unit tests run the buckets on virtual
// time. A token bucket is a few lines, and none of the npm rate limiters both take an
// injected clock and answer "how many bytes may pass now" without queueing the bytes
// themselves, so it is written here.

/** The clock the buckets run on: TunnelScheduler's now() and sleep(). */
export interface LimiterClock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/** The smallest burst: a couple of full-size TCP segments, so that a low rate is not sent a byte at a time. */
export const MIN_BURST = 4096;
/** The burst is this many milliseconds of the rate: small enough to be smooth, large enough to need few timer wakes. */
export const BURST_MS = 50;

/** The most a bucket may owe (bytes). */
export const MAX_DEBT = 64 * 1024;

/** The burst a rate allows (bytes). */
export function burstFor(rate: number): number {
  return Math.max(MIN_BURST, Math.ceil((rate * BURST_MS) / 1000));
}

/** What one direction has let through: for tests, benchmarks and logs. */
export interface DirectionCounters {
  /** Bytes passed while a rate was set. */
  bytes: number;
  /**
   * The most bytes that passed at one instant (one clock reading): at most the burst for what
   * was sized to the tokens, more for what could not be (a first window: the debt is paid off after).
   */
  largestBurst: number;
  /** Times the direction had to wait for tokens. */
  waits: number;
}

/** One direction's bucket, and the one party waiting on it (the driver's reader or writer). */
export class TokenBucket {
  private rate = 0;
  private burst = MIN_BURST;
  private tokens = 0;
  private stamp: number;
  /** Bytes taken at clock time `burstAt`, for largestBurst. */
  private burstAt = -1;
  private takenAtBurst = 0;
  private waiter: { want: number; ready: () => void; stop: AbortController; deadline: number } | null = null;
  /** The connection ended: no waiter is kept or called from now on (no timer keeps the process alive). */
  private stopped = false;
  readonly counters: DirectionCounters = { bytes: 0, largestBurst: 0, waits: 0 };

  constructor(
    private readonly clock: LimiterClock,
    /** A waiter's callback threw: reported here, never thrown out of a timer or the caller of setRate. */
    private readonly onFailure: (error: unknown) => void = () => undefined,
  ) {
    this.stamp = clock.now();
  }

  /** 0: no limit. */
  get limited(): boolean {
    return this.rate > 0;
  }

  /** Bytes per second (0: no limit). */
  get bytesPerSecond(): number {
    return this.rate;
  }

  get burstSize(): number {
    return this.burst;
  }

  /** Changes the rate at once; a waiter is woken (no limit) or its wait is planned again. */
  setRate(rate: number): void {
    this.refill();
    const wasLimited = this.rate > 0;
    this.rate = rate;
    this.burst = burstFor(rate);
    // Coming from no limit, the bucket starts full; otherwise it keeps what it had saved up.
    this.tokens = wasLimited ? Math.min(this.tokens, this.burst) : this.burst;
    const waiter = this.waiter;
    if (!waiter) return;
    waiter.stop.abort();
    this.waiter = null;
    // Not from inside the caller's config(): the waiter runs once the caller is done.
    if (rate === 0) queueMicrotask(() => this.call(waiter.ready));
    else this.whenAvailable(waiter.want, waiter.ready, false, waiter.deadline - this.clock.now());
  }

  private call(ready: () => void): void {
    if (this.stopped) return;
    try {
      ready();
    } catch (error) {
      this.onFailure(error);
    }
  }

  /** Whole bytes that may pass now (Infinity with no limit). */
  available(): number {
    if (this.rate === 0) return Infinity;
    this.refill();
    return Math.max(0, Math.floor(this.tokens));
  }

  /**
   * `bytes` passed. They may exceed what was available (a new channel's first window is at
   * least one step): the debt is paid off before anything else passes. The debt is capped at
   * one burst or MAX_DEBT, whichever is more, so that no burst of new channels can hold the
   * rest back for minutes.
   */
  take(bytes: number): void {
    if (this.rate === 0 || bytes <= 0) return;
    this.refill();
    this.tokens = Math.max(this.tokens - bytes, -Math.max(this.burst, MAX_DEBT));
    this.counters.bytes += bytes;
    const at = this.clock.now();
    this.takenAtBurst = at === this.burstAt ? this.takenAtBurst + bytes : bytes;
    this.burstAt = at;
    this.counters.largestBurst = Math.max(this.counters.largestBurst, this.takenAtBurst);
  }

  /**
   * Calls `ready` (once) when `want` bytes may pass, `want` being capped at the burst: at once
   * when they already may, or when no limit is set; and at the latest after `maxWaitMs`,
   * tokens or not. One waiter at a time; a new one replaces it. Nothing after stop().
   */
  whenAvailable(want: number, ready: () => void, counted = true, maxWaitMs = Infinity): void {
    this.cancel();
    if (this.stopped) return;
    const needed = Math.max(1, Math.min(want, this.burst));
    if (this.available() >= needed || maxWaitMs <= 0) return this.call(ready);
    if (counted) this.counters.waits++;
    const stop = new AbortController();
    const deadline = this.clock.now() + maxWaitMs;
    const waiter = { want, ready, stop, deadline };
    this.waiter = waiter;
    const ms = Math.max(1, Math.min(maxWaitMs, Math.ceil(((needed - this.tokens) * 1000) / this.rate)));
    this.clock.sleep(ms, stop.signal).then(
      () => {
        if (this.waiter !== waiter) return;
        this.waiter = null;
        // Rounding may leave it a token short: wait that out too (within the deadline).
        this.whenAvailable(want, ready, false, deadline - this.clock.now());
      },
      () => undefined, // cancelled, or replanned by setRate
    );
  }

  /** Drops the waiter without calling it. */
  cancel(): void {
    this.waiter?.stop.abort();
    this.waiter = null;
  }

  /** The connection ended: drops the waiter, and whenAvailable does nothing from now on. */
  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.stamp;
    this.stamp = now;
    if (this.rate > 0 && elapsed > 0) this.tokens = Math.min(this.burst, this.tokens + (this.rate * elapsed) / 1000);
  }
}

/** MaxTransferRate for one connection: a bucket each way, sharing the rate. */
export class TransferLimiter {
  readonly inbound: TokenBucket;
  readonly outbound: TokenBucket;

  constructor(clock: LimiterClock, rate = 0, onFailure?: (error: unknown) => void) {
    this.inbound = new TokenBucket(clock, onFailure);
    this.outbound = new TokenBucket(clock, onFailure);
    this.setRate(rate);
  }

  /** Bytes per second each way; 0 lifts the limit. Takes effect at once. */
  setRate(rate: number): void {
    this.inbound.setRate(rate);
    this.outbound.setRate(rate);
  }

  get limited(): boolean {
    return this.outbound.limited;
  }

  /** Bytes per second each way (0: no limit). */
  get rate(): number {
    return this.outbound.bytesPerSecond;
  }

  /** Drops both waiters for good: the connection has ended. */
  stop(): void {
    this.inbound.stop();
    this.outbound.stop();
  }
}
