// A virtual clock for the tunnel's reconnect timing (TunnelScheduler): waits never pass by
// themselves; the test sees each one requested and lets it pass.

import type { TunnelScheduler } from '../../ts/tunnel/tunnel.js';

export interface VirtualScheduler extends TunnelScheduler {
  /** Resolves with the length of the next wait the tunnel asks for (already requested or future). */
  nextWait(): Promise<number>;
  /** Ends the oldest pending wait, advancing the clock by its length. */
  pass(): void;
  /** Waits requested and not yet passed. */
  readonly pending: number;
  /** Resolves with the length of the next method deadline the tunnel waits on (kept apart from the other waits). */
  nextDeadline(): Promise<number>;
  /** Ends the oldest pending deadline wait, advancing the clock by its length. */
  passDeadline(): void;
  /** Deadline waits requested and neither passed nor given up. */
  readonly pendingDeadlines: number;
  time: number;
}

export function virtualScheduler(random = 0): VirtualScheduler {
  type Queue = { waits: { ms: number; due: number; resolve: () => void }[]; unclaimed: number[]; claimers: ((ms: number) => void)[] };
  const queue = (): Queue => ({ waits: [], unclaimed: [], claimers: [] });
  const retries = queue();
  const deadlines = queue();
  const next = (q: Queue) => (q.unclaimed.length > 0 ? Promise.resolve(q.unclaimed.shift()!) : new Promise<number>((resolve) => q.claimers.push(resolve)));
  const passOne = (q: Queue) => {
    const wait = q.waits.shift();
    if (!wait) throw new Error('no wait is pending');
    // Retry waits advance the clock by their length; a deadline ends at its due time (a test
    // may have moved the clock on by hand meanwhile, to say when bytes moved).
    scheduler.time = q === deadlines ? Math.max(scheduler.time, wait.due) : scheduler.time + wait.ms;
    wait.resolve();
  };
  const scheduler: VirtualScheduler = {
    time: 1_000_000,
    now: () => scheduler.time,
    random: () => random,
    sleep: (ms, signal, purpose) =>
      new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const q = purpose === 'deadline' ? deadlines : retries;
        const wait = { ms, due: scheduler.time + ms, resolve };
        q.waits.push(wait);
        signal.addEventListener(
          'abort',
          () => {
            const i = q.waits.indexOf(wait);
            if (i >= 0) q.waits.splice(i, 1);
            // A deadline the work beat was never seen: it is not left for nextDeadline() to find.
            const u = q.unclaimed.indexOf(ms);
            if (purpose === 'deadline' && u >= 0 && i >= 0) q.unclaimed.splice(u, 1);
            reject(signal.reason);
          },
          { once: true },
        );
        const claimer = q.claimers.shift();
        if (claimer) claimer(ms);
        else q.unclaimed.push(ms);
      }),
    nextWait: () => next(retries),
    pass: () => passOne(retries),
    nextDeadline: () => next(deadlines),
    passDeadline: () => passOne(deadlines),
    get pending() {
      return retries.waits.length;
    },
    get pendingDeadlines() {
      return deadlines.waits.length;
    },
  };
  return scheduler;
}
