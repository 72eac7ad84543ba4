import { describe, expect, it } from 'vitest';
import { burstFor, MAX_DEBT, MIN_BURST, type TokenBucket, TransferLimiter } from '../../../ts/net/rate-limit.js';
import { virtualScheduler, type VirtualScheduler } from '../../helpers/clock.js';

/** A grant: `bytes` passed at virtual time `at`. */
interface Grant {
  at: number;
  bytes: number;
}

/**
 * Drives a bucket as the socket driver does, with a sender that always has more to send:
 * take everything available, else wait for tokens (the virtual clock passes each wait).
 */
async function sendFor(clock: VirtualScheduler, bucket: TokenBucket, virtualMs: number, want = 1 << 20): Promise<Grant[]> {
  const grants: Grant[] = [];
  const end = clock.time + virtualMs;
  while (clock.time < end) {
    const allowed = bucket.available();
    if (allowed > 0) {
      bucket.take(allowed);
      grants.push({ at: clock.time, bytes: allowed });
      continue;
    }
    const ready = new Promise<void>((resolve) => bucket.whenAvailable(want, resolve));
    await clock.nextWait();
    clock.pass();
    await ready;
  }
  return grants;
}

/** The most bytes granted within any span of the grants, beyond what the rate allows for that span. */
function worstExcess(grants: Grant[], rate: number): number {
  let worst = 0;
  for (let i = 0; i < grants.length; i++) {
    let sum = 0;
    for (let j = i; j < grants.length; j++) {
      sum += grants[j]!.bytes;
      const span = grants[j]!.at - grants[i]!.at;
      worst = Math.max(worst, sum - (rate * span) / 1000);
    }
  }
  return worst;
}

describe('MaxTransferRate token bucket (virtual time)', () => {
  it('lets through at most burst + rate × span in any span, and no single grant above the burst', async () => {
    const clock = virtualScheduler();
    const rate = 100_000;
    const limiter = new TransferLimiter(clock, rate);
    const burst = burstFor(rate);
    expect(burst).toBe(5000); // 50 ms of the rate

    const grants = await sendFor(clock, limiter.outbound, 10_000);
    expect(worstExcess(grants, rate)).toBeLessThanOrEqual(burst);
    expect(Math.max(...grants.map((g) => g.bytes))).toBeLessThanOrEqual(burst);
    expect(limiter.outbound.counters.largestBurst).toBeLessThanOrEqual(burst);
    // Over 10 virtual seconds the sender got (nearly) the whole rate, and never more.
    const total = grants.reduce((sum, g) => sum + g.bytes, 0);
    expect(total).toBeLessThanOrEqual(burst + rate * 10);
    expect(total).toBeGreaterThan(rate * 10 - burst);
    expect(limiter.outbound.counters.bytes).toBe(total);
  });

  it('is smooth: the sender is woken every half burst or so, not once a second for a second of data', async () => {
    const clock = virtualScheduler();
    const limiter = new TransferLimiter(clock, 1_000_000);
    const grants = await sendFor(clock, limiter.outbound, 1000, burstFor(1_000_000) / 2);
    // Grants come at least every 25 ms of virtual time (half of a 50 ms burst).
    for (let i = 1; i < grants.length; i++) expect(grants[i]!.at - grants[i - 1]!.at).toBeLessThanOrEqual(25);
    expect(grants.length).toBeGreaterThanOrEqual(40);
  });

  it('keeps a small floor on the burst, so that a low rate is not sent a byte at a time', () => {
    expect(burstFor(10)).toBe(MIN_BURST);
    const limiter = new TransferLimiter(virtualScheduler(), 10);
    expect(limiter.inbound.available()).toBe(MIN_BURST);
  });

  it('a read larger than the tokens (a stream that cannot size its reads) is a debt paid off before anything else passes, capped at one pipe read', async () => {
    const clock = virtualScheduler();
    const limiter = new TransferLimiter(clock, 10_000);
    const bucket = limiter.inbound;
    // A whole 256 KiB read, sized before the limit applied: 26 s of debt at this rate, uncapped.
    bucket.take(256 * 1024);
    expect(bucket.available()).toBe(0);
    let ready = false;
    bucket.whenAvailable(1000, () => (ready = true));
    // The debt is one pipe read (64 KiB): paying it off and earning 1000 more at 10 000 B/s is 6.65 s.
    expect(await clock.nextWait()).toBe(Math.ceil(((MAX_DEBT + 1000) * 1000) / 10_000));
    clock.pass();
    await Promise.resolve();
    await Promise.resolve();
    expect(ready).toBe(true);
    expect(bucket.available()).toBeGreaterThanOrEqual(1000); // and a few more from rounding the wait up
    expect(bucket.available()).toBeLessThan(1010);
  });

  it('a wait ends at its maxWaitMs, tokens or not', async () => {
    const clock = virtualScheduler();
    const limiter = new TransferLimiter(clock, 100);
    const bucket = limiter.inbound;
    bucket.take(bucket.available() + 5000);
    let ready = false;
    bucket.whenAvailable(2048, () => (ready = true), true, 1500);
    expect(await clock.nextWait()).toBe(1500); // not the 61 s the tokens would take
    clock.pass();
    await Promise.resolve();
    await Promise.resolve();
    expect(ready).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('a waiter that throws is reported to onFailure, from a timer and from setRate alike, and is never thrown to the caller', async () => {
    const clock = virtualScheduler();
    const failures: unknown[] = [];
    const limiter = new TransferLimiter(clock, 1000, (error) => failures.push(error));
    const bucket = limiter.outbound;
    bucket.take(bucket.available());
    bucket.whenAvailable(100, () => {
      throw new Error('from the timer');
    });
    await clock.nextWait();
    clock.pass();
    await Promise.resolve();
    await Promise.resolve();
    expect(failures.map((e) => (e as Error).message)).toEqual(['from the timer']);
    bucket.take(bucket.available());
    bucket.whenAvailable(100, () => {
      throw new Error('from setRate');
    });
    expect(() => limiter.setRate(0)).not.toThrow();
    await Promise.resolve();
    expect(failures.map((e) => (e as Error).message)).toEqual(['from the timer', 'from setRate']);
  });

  it('a rate change takes effect at once: 0 wakes the waiter without any time passing, a new rate replans its wait', async () => {
    const clock = virtualScheduler();
    const limiter = new TransferLimiter(clock, 1000);
    const bucket = limiter.outbound;
    bucket.take(bucket.available());
    let woken = 0;
    bucket.whenAvailable(1000, () => woken++);
    expect(await clock.nextWait()).toBe(1000);
    limiter.setRate(100_000); // a faster rate: the 1 s wait is replaced by a 10 ms one
    expect(clock.pending).toBe(1); // the first wait was given up
    expect(await clock.nextWait()).toBe(10);
    expect(woken).toBe(0);
    limiter.setRate(0);
    expect(woken).toBe(0); // not inside the caller's setRate (the user's config())
    await Promise.resolve();
    expect(woken).toBe(1);
    expect(bucket.available()).toBe(Infinity);
    // Limited again: the bucket starts from a full burst.
    limiter.setRate(2000);
    expect(bucket.available()).toBe(burstFor(2000));
  });

  it('stop() drops a waiter for good', async () => {
    const clock = virtualScheduler();
    const limiter = new TransferLimiter(clock, 1000);
    limiter.inbound.take(limiter.inbound.available());
    let woken = false;
    limiter.inbound.whenAvailable(500, () => (woken = true));
    await clock.nextWait();
    limiter.stop();
    expect(clock.pending).toBe(0);
    limiter.setRate(0);
    // A read charged after the end arms nothing that would keep the process alive.
    limiter.setRate(1000);
    limiter.inbound.take(10_000);
    limiter.inbound.whenAvailable(500, () => (woken = true));
    expect(clock.pending).toBe(0);
    await Promise.resolve();
    expect(woken).toBe(false);
  });
});
