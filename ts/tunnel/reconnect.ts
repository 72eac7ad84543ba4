// When and whether to reconnect (AutoReconnect, MaxRetryCount, RetryInterval): which errors are
// final, how long to wait before an attempt, and when a connection counts as having lasted so
// that the count starts again. No I/O and no clock of its own: the tunnel passes the time in,
// and tests drive it with a virtual clock.

import { Code, type SshError } from '../protocol/errors.js';

/** The values of the AutoReconnect setting: when a lost connection is re-established. */
export const AutoReconnect = {
  /** A lost connection ends the tunnel. */
  None: 0,
  /** A connection that was up is re-established (the default). */
  OnLoss: 1,
  /** The first logon is retried too. */
  Always: 2,
} as const;

export interface RetrySettings {
  autoReconnect: number;
  /** Attempts per outage; 0 = no limit. */
  maxRetryCount: number;
  /** Seconds between attempts. */
  retryInterval: number;
}

/**
 * Errors no retry can mend: the server (or the proxy) refused who we are, the server is not
 * who we trust, we share no algorithm, or an option is wrong. Everything else (refused or dropped connections,
 * timeouts, a dead peer, a server that is restarting) is worth another attempt.
 */
const FINAL = new Set<number>([
  Code.AuthFailed,
  Code.HostKeyRejected,
  Code.HostKeyVerifyFailed,
  Code.NegotiationFailed,
  Code.UnsupportedAlgorithm,
  Code.BadVersion,
  Code.BadArgument,
  Code.AccessDenied, // a proxy that refuses our credentials, or a key file others may read
  Code.HostNotFound,
  Code.DnsFailure,
  Code.NoAddressOfFamily, // the name has no address of the family UseIPv6 allows
]);

export function isFinal(error: SshError): boolean {
  return FINAL.has(error.code);
}

/** Attempts are spread over 0-20% more than RetryInterval, so clients that lost one server together do not return in step. */
export const JITTER = 0.2;

/** A connection that stayed up this long (or RetryInterval, if longer) resets the attempt count. */
export const LASTING_CONNECTION_MS = 30_000;

export class RetryCounter {
  private attempts = 0;

  constructor(private readonly settings: () => RetrySettings) {}

  /** Attempts made in the current outage. */
  get count(): number {
    return this.attempts;
  }

  /** Starts the next attempt; false when MaxRetryCount has been used up. */
  next(): boolean {
    const { maxRetryCount } = this.settings();
    if (maxRetryCount > 0 && this.attempts >= maxRetryCount) return false;
    this.attempts++;
    return true;
  }

  /** Retries left after the current one (-1: no limit), as reconnectAttempt reports it. */
  get remaining(): number {
    const { maxRetryCount } = this.settings();
    return maxRetryCount > 0 ? maxRetryCount - this.attempts : -1;
  }

  /** Milliseconds to wait before the current attempt; `random` is in [0, 1). */
  delayMs(random: number): number {
    return Math.round(this.settings().retryInterval * 1000 * (1 + JITTER * random));
  }

  /** A connection was up from `since` to `now` (ms): if it lasted, the next outage starts at attempt 1. */
  connectionEnded(since: number, now: number): void {
    const lasting = Math.max(LASTING_CONNECTION_MS, this.settings().retryInterval * 1000);
    if (now - since >= lasting) this.attempts = 0;
  }

  reset(): void {
    this.attempts = 0;
  }
}
