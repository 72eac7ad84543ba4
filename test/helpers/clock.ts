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
  time: number;
}

export function virtualScheduler(random = 0): VirtualScheduler {
  const waits: { ms: number; resolve: () => void }[] = [];
  const unclaimed: number[] = [];
  const claimers: ((ms: number) => void)[] = [];
  const scheduler: VirtualScheduler = {
    time: 1_000_000,
    now: () => scheduler.time,
    random: () => random,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const wait = { ms, resolve };
        waits.push(wait);
        signal.addEventListener(
          'abort',
          () => {
            const i = waits.indexOf(wait);
            if (i >= 0) waits.splice(i, 1);
            reject(signal.reason);
          },
          { once: true },
        );
        const claimer = claimers.shift();
        if (claimer) claimer(ms);
        else unclaimed.push(ms);
      }),
    nextWait: () => {
      if (unclaimed.length > 0) return Promise.resolve(unclaimed.shift()!);
      return new Promise<number>((resolve) => claimers.push(resolve));
    },
    pass: () => {
      const wait = waits.shift();
      if (!wait) throw new Error('no wait is pending');
      scheduler.time += wait.ms;
      wait.resolve();
    },
    get pending() {
      return waits.length;
    },
  };
  return scheduler;
}
