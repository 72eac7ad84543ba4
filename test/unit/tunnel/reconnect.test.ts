import { describe, expect, it } from 'vitest';
import { isFinal, JITTER, LASTING_CONNECTION_MS, RetryCounter, type RetrySettings } from '../../../ts/tunnel/reconnect.js';
import { SshError, Code } from '../../../ts/protocol/errors.js';

const settings =
  (overrides: Partial<RetrySettings> = {}): (() => RetrySettings) =>
  () => ({ autoReconnect: 1, maxRetryCount: 0, retryInterval: 5, ...overrides });

describe('RetryCounter', () => {
  it('with MaxRetryCount 0 never runs out and reports -1 remaining', () => {
    const counter = new RetryCounter(settings());
    for (let i = 1; i <= 1000; i++) {
      expect(counter.next()).toBe(true);
      expect(counter.count).toBe(i);
      expect(counter.remaining).toBe(-1);
    }
  });

  it('stops after MaxRetryCount attempts, counting down what is left after each', () => {
    const counter = new RetryCounter(settings({ maxRetryCount: 3 }));
    const remaining: number[] = [];
    while (counter.next()) remaining.push(counter.remaining);
    expect(remaining).toEqual([2, 1, 0]);
    expect(counter.count).toBe(3);
  });

  it('waits RetryInterval plus at most 20% jitter', () => {
    const counter = new RetryCounter(settings({ retryInterval: 5 }));
    expect(counter.delayMs(0)).toBe(5000);
    expect(counter.delayMs(0.5)).toBe(5500);
    expect(counter.delayMs(0.999999)).toBeLessThanOrEqual(5000 * (1 + JITTER));
  });

  it('a connection that lasted starts the count again; a short one does not', () => {
    const counter = new RetryCounter(settings({ maxRetryCount: 2 }));
    counter.next();
    counter.next();
    counter.connectionEnded(1_000, 1_000 + LASTING_CONNECTION_MS - 1);
    expect(counter.next()).toBe(false);
    counter.connectionEnded(1_000, 1_000 + LASTING_CONNECTION_MS);
    expect(counter.next()).toBe(true);
    expect(counter.count).toBe(1);
  });

  it('a long RetryInterval also lengthens what counts as lasting', () => {
    const counter = new RetryCounter(settings({ retryInterval: 60 }));
    counter.next();
    counter.connectionEnded(0, 59_000);
    expect(counter.count).toBe(1);
    counter.connectionEnded(0, 60_000);
    expect(counter.count).toBe(0);
  });
});

describe('isFinal', () => {
  it('never retries refused credentials, untrusted host keys, no common algorithm or bad options', () => {
    for (const code of [Code.AuthFailed, Code.HostKeyRejected, Code.HostKeyVerifyFailed, Code.NegotiationFailed, Code.UnsupportedAlgorithm, Code.BadArgument, Code.AccessDenied]) {
      expect(isFinal(new SshError(code, 'x'))).toBe(true);
    }
  });

  it('retries dropped and refused connections, timeouts, dead peers and server disconnects', () => {
    for (const code of [Code.ConnectionDropped, Code.ConnectionRefused, Code.ConnectionReset, Code.Timeout, Code.KeepAliveLimit, Code.ServerDisconnected, Code.CannotDecrypt]) {
      expect(isFinal(new SshError(code, 'x'))).toBe(false);
    }
  });
});
