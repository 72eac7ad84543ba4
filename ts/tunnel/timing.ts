// Deadlines for the tunnel's Promise-returning methods (the documented Timeout property). By
// default a timeout is an inactivity timeout, as documented: the deadline moves on by
// `timeout` seconds whenever bytes are sent or received on the connection, so a method fails
// only when nothing has moved for that long. With AbsoluteTimeout=True it is a plain deadline.
// Time comes from a clock that tests replace with a virtual one (TunnelScheduler).

import { SshError, Code } from '../protocol/errors.js';

/**
 * Time as the tunnel sees it: the clock, waits (deadlines, waits between reconnect attempts)
 * and the jitter's random numbers. Tests put a virtual clock here.
 */
export interface TunnelScheduler {
  /** The current time in milliseconds (`Date.now()` unless a test installs a virtual clock). */
  now(): number;
  /**
   * Resolves after `ms`, or rejects once `signal` aborts. `purpose` tells a method's deadline
   * from a wait between reconnect attempts (a virtual clock keeps the two apart).
   */
  sleep(ms: number, signal: AbortSignal, purpose?: 'deadline'): Promise<void>;
  /** A number in [0, 1) for the reconnect jitter (`Math.random()` unless a test fixes it). */
  random(): number;
}

export const realScheduler: TunnelScheduler = {
  now: () => Date.now(),
  // Not unref'd: a tunnel waiting (to reconnect, or for a reply) is alive, and keeps its process alive.
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    }),
  random: () => Math.random(),
};

export interface Deadline {
  /** 0 or less: no deadline. */
  seconds: number;
  clock: Pick<TunnelScheduler, 'now' | 'sleep'>;
  /** When bytes last moved on the connection (clock time); without it, or with `absolute`, the deadline is fixed. */
  lastActivity?: () => number;
  absolute?: boolean;
}

/** Runs `work`, failing with error 301 once the deadline passes (see the file's opening comment). */
export async function withDeadline<T>(deadline: Deadline, what: string, work: () => Promise<T>): Promise<T> {
  const { seconds, clock, lastActivity } = deadline;
  if (!seconds || seconds <= 0) return work();
  const ms = seconds * 1000;
  const inactivity = !deadline.absolute && lastActivity !== undefined;
  const stop = new AbortController();
  const expired = (async (): Promise<never> => {
    let until = clock.now() + ms;
    for (;;) {
      await clock.sleep(Math.max(0, until - clock.now()), stop.signal, 'deadline');
      if (!inactivity) break;
      const idleUntil = Math.max(until, lastActivity() + ms);
      if (idleUntil <= clock.now()) break;
      until = idleUntil; // bytes moved meanwhile: wait out the rest
    }
    throw new SshError(Code.Timeout, inactivity ? `nothing moved for ${seconds} s while ${what}` : `timed out after ${seconds} s while ${what}`, 'local');
  })();
  expired.catch(() => undefined); // settled by `stop` when the work wins the race
  try {
    return await Promise.race([work(), expired]);
  } finally {
    stop.abort();
  }
}

/** A fixed deadline on the real clock. */
export function withTimeout<T>(seconds: number, what: string, work: () => Promise<T>): Promise<T> {
  return withDeadline({ seconds, clock: realScheduler }, what, work);
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** 5000 → "5 s", 5400 → "5.4 s". */
export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}
