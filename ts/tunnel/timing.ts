// Deadlines for the tunnel's Promise-returning methods (the documented Timeout property).

import { SshError, Code } from '../protocol/errors.js';

/** Runs `work`, failing with error 301 after `seconds` (0 or less: no deadline). */
export async function withTimeout<T>(seconds: number, what: string, work: () => Promise<T>): Promise<T> {
  if (!seconds || seconds <= 0) return work();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SshError(Code.Timeout, `timed out after ${seconds} s while ${what}`, 'local')), seconds * 1000);
  });
  try {
    return await Promise.race([work(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** 5000 → "5 s", 5400 → "5.4 s". */
export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)} s`;
}
