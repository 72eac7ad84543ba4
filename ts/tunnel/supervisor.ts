// Reconnection (AutoReconnect, MaxRetryCount, RetryInterval): after a lost connection, new
// attempts until one logs on, then every requested forwarding asked for again on its old
// port, and a refused one retried on the live connection. The tunnel owns the sessions and
// its state; this file owns the waiting, the counting and the reconnectAttempt events.

import { SshError, Code, asSshError } from '../protocol/errors.js';
import { formatSeconds } from './timing.js';
import type { TunnelEvents, TunnelStateEvent, ReconnectAttemptEvent } from './events.js';
import { isFinal, RetryCounter, type RetrySettings } from './reconnect.js';
import type { RequestedForwarding, Session } from './session.js';
import { listenName } from './forward-request.js';
import { isSocketPath } from './local-forward.js';
import type { TunnelScheduler } from './tunnel.js';

export interface ReconnectorHost {
  readonly sshHost: string;
  readonly sshPort: number;
  /** Seconds per request (the tunnel's timeout). */
  readonly timeout: number;
  readonly scheduler: TunnelScheduler;
  /** The forwardings to restore, in the order they were requested; entries are updated in place. */
  readonly requested: RequestedForwarding[];
  retrySettings(): RetrySettings;
  /** Opens a socket and logs on; the session becomes the tunnel's current one. */
  startSession(): Promise<Session>;
  currentSession(): Session | null;
  emit<K extends keyof TunnelEvents & string>(event: K, ...args: TunnelEvents[K]): void;
  emitState(event: TunnelStateEvent): void;
  log(level: 1 | 2 | 3, message: string): void;
  /** A new connection is logged on; its forwardings are being restored. */
  reconnected(): void;
  /** Reconnecting ended the tunnel. */
  gaveUp(error: SshError): void;
  forwardedPortChanged(port: number): void;
}

export class Reconnector {
  private readonly retries: RetryCounter;
  /** Aborts the wait between attempts and every forwarding retry. */
  private abort: AbortController | null = null;

  constructor(private readonly host: ReconnectorHost) {
    this.retries = new RetryCounter(() => host.retrySettings());
  }

  /** A new logon: the count starts again. */
  reset(): void {
    this.retries.reset();
  }

  /** Stops the wait between attempts and every forwarding retry. */
  stop(): void {
    this.abort?.abort(new SshError(Code.BadState, 'reconnecting was stopped', 'local'));
    this.abort = null;
  }

  /** A connection that was up from `since` to `now` ended (a lasting one resets the count). */
  connectionEnded(since: number, now: number): void {
    this.retries.connectionEnded(since, now);
  }

  private retryEvent(retryType: 0 | 1, counter: RetryCounter, remoteListeningPort: number): ReconnectAttemptEvent {
    const { maxRetryCount, retryInterval } = this.host.retrySettings();
    return {
      host: this.host.sshHost,
      port: this.host.sshPort,
      retryCount: counter.count,
      retriesRemaining: counter.remaining,
      maxRetryCount,
      retryInterval,
      retryType,
      remoteListeningPort,
      cancel: false,
    };
  }

  /**
   * Waits, then tries to connect again, until a connection is up, an error no retry can mend
   * comes, MaxRetryCount is used up (1037) or the application cancels. Returns the session, or
   * throws the error that ends the tunnel.
   */
  private async connectWithRetries(lost: SshError, signal: AbortSignal): Promise<Session> {
    let lastError = lost;
    for (;;) {
      if (!this.retries.next()) {
        throw new SshError(
          Code.ReconnectLimit,
          `gave up reconnecting to ${this.host.sshHost}:${this.host.sshPort} after ${this.retries.count} attempts; last error: ${lastError.message}`,
          lastError.origin,
          { cause: lastError },
        );
      }
      const delayMs = this.retries.delayMs(this.host.scheduler.random());
      this.host.emitState({ state: 'reconnecting', attempt: this.retries.count, delayMs, error: lastError });
      this.host.log(1, `connection lost: ${lastError.message}; reconnecting in ${formatSeconds(delayMs)} (attempt ${this.retries.count})`);
      await this.host.scheduler.sleep(delayMs, signal);
      const event = this.retryEvent(0, this.retries, 0);
      this.host.emit('reconnectAttempt', event);
      if (event.cancel) throw lastError;
      try {
        return await this.host.startSession();
      } catch (error) {
        if (signal.aborted) throw error;
        lastError = asSshError(error);
        if (isFinal(lastError)) throw lastError;
      }
    }
  }

  /** AutoReconnect 2: the first logon is retried as a reconnect would be. */
  async logonWithRetries(): Promise<void> {
    try {
      await this.host.startSession();
      return;
    } catch (error) {
      const e = asSshError(error);
      if (isFinal(e)) throw e;
      this.stop();
      const abort = new AbortController();
      this.abort = abort;
      await this.connectWithRetries(e, abort.signal);
      this.retries.reset();
    }
  }

  /** The connection that was up is gone: get it back and every forwarding with it. */
  async reconnect(lost: SshError): Promise<void> {
    this.stop(); // forwarding retries of the connection just lost
    const abort = new AbortController();
    this.abort = abort;
    let session: Session;
    try {
      session = await this.connectWithRetries(lost, abort.signal);
    } catch (error) {
      if (!abort.signal.aborted) this.host.gaveUp(asSshError(error)); // else logoff or reset took over
      return;
    }
    if (abort.signal.aborted) {
      session.abort('reconnecting was stopped'); // a logoff came while this one was logging on
      return;
    }
    this.host.reconnected();
    for (const forwarding of [...this.host.requested]) {
      if (!session.isLoggedOn) return;
      await this.restoreForwarding(session, forwarding, abort.signal);
    }
    if (session.isLoggedOn) this.host.emitState({ state: 'up' });
  }

  /**
   * Asks for a forwarding again on a new connection, on the port it had. A port-0 forwarding
   * whose old port is taken gets a fresh one (reported by forwardingRestored). A fixed port the
   * server refuses, typically because sshd still holds the dead session's listener, is retried
   * every RetryInterval in the background (reconnectAttempt with retryType 1) while the other
   * forwardings serve; past MaxRetryCount it is given up with 10057.
   */
  private async restoreForwarding(session: Session, forwarding: RequestedForwarding, signal: AbortSignal): Promise<void> {
    const previousPort = forwarding.boundPort;
    const granted = (boundPort: number) => {
      forwarding.boundPort = boundPort;
      this.host.forwardedPortChanged(boundPort);
      this.host.log(1, `remote forwarding ${listenName(forwarding, boundPort)} restored${boundPort !== previousPort ? ` (was port ${previousPort})` : ''}`);
      this.host.emit('forwardingRestored', {
        address: forwarding.address,
        requestedPort: forwarding.port,
        previousPort,
        boundPort,
        forwardingHost: forwarding.forwardingHost,
        forwardingPort: forwarding.forwardingPort,
        dynamic: forwarding.dynamic,
      });
    };
    const attempt = async (port: number): Promise<SshError | null> => {
      try {
        granted((await session.requestForwarding(forwarding, port, this.host.timeout)).boundPort);
        return null;
      } catch (error) {
        return asSshError(error);
      }
    };
    const first = await attempt(previousPort || forwarding.port);
    if (!first || !session.isLoggedOn) return;
    if (forwarding.port === 0 && (await attempt(0)) === null) return;
    void this.retryForwarding(session, forwarding, previousPort || forwarding.port, first, signal, attempt);
  }

  private async retryForwarding(
    session: Session,
    forwarding: RequestedForwarding,
    port: number,
    firstError: SshError,
    signal: AbortSignal,
    attempt: (port: number) => Promise<SshError | null>,
  ): Promise<void> {
    const counter = new RetryCounter(() => this.host.retrySettings());
    let lastError = firstError;
    try {
      for (;;) {
        this.host.log(1, `remote forwarding of ${listenName(forwarding, port)} failed (${lastError.message}); retrying in ${this.host.retrySettings().retryInterval} s`);
        if (!counter.next()) {
          const e = new SshError(
            Code.TunnelReconnectLimit,
            `gave up forwarding ${isSocketPath(forwarding.address) ? forwarding.address : `remote port ${port}`} after ${counter.count} attempts: ${lastError.message}`,
            lastError.origin,
          );
          this.host.emit('error', { errorCode: e.code, description: e.message });
          return this.dropForwarding(forwarding);
        }
        await this.host.scheduler.sleep(counter.delayMs(this.host.scheduler.random()), signal);
        if (!session.isLoggedOn || this.host.currentSession() !== session || !this.host.requested.includes(forwarding)) return;
        const event = this.retryEvent(1, counter, port);
        this.host.emit('reconnectAttempt', event);
        if (event.cancel) return this.dropForwarding(forwarding);
        const error = await attempt(port);
        if (!error) return;
        lastError = error;
      }
    } catch {
      return; // stopped: logoff, reset, or a new reconnect
    }
  }

  /** A forwarding given up after a reconnect is no longer requested. */
  private dropForwarding(forwarding: RequestedForwarding): void {
    const index = this.host.requested.indexOf(forwarding);
    if (index >= 0) this.host.requested.splice(index, 1);
  }
}
