// The thin socket layer: moves bytes between a socket (or any duplex stream: a ProxyCommand's
// pipes) and the sans-IO client core,
// hands the core's events to a callback, runs its timer, and turns the socket's own
// backpressure into the core's. Nothing here knows SSH. With a TransferLimiter
// (MaxTransferRate, ./rate-limit.ts): what the core framed waits here (with the core's channel
// data held back) until the outbound bucket lets it go; and the inbound bucket paces the
// window credit the core gives the server, while the socket is always read.

import type { Duplex } from 'node:stream';
import type { ClientEvent, SshClientCore } from '../protocol/client.js';
import { SshError, Code, socketErrorCode } from '../protocol/errors.js';
import type { SocketReader } from './reader.js';
import type { TransferLimiter } from './rate-limit.js';
import { closeSocket, ORDERLY_CLOSE, type ClosePolicy } from './close.js';

/**
 * Above this many bytes waiting in the socket, channel data stops being framed. The kernel's
 * send buffer holds what is in flight; this only has to keep it fed, and every MiB more was a
 * MiB of outgoing buffers alive at once in a fast upload.
 */
const SOCKET_HIGH_WATER = 1024 * 1024;

export class SocketDriver {
  private timer: NodeJS.Timeout | null = null;
  private timerDue = 0;
  private flushing = false;
  private ended = false;
  /** An event handler kept a view into the chunk being received. */
  private inputKept = false;
  /** Bytes read from and written to the socket so far: inactivity timeouts watch it move. */
  bytesMoved = 0;
  /** Framed bytes the rate limit has not let go yet, oldest first (views into the core's output). */
  private readonly throttled: Uint8Array[] = [];
  /** Set once the connection went to the native data plane: the socket is no longer ours. */
  private planeClosed: (() => void) | null = null;
  /** The listeners put on the socket, so that a handover can take them off again. */
  // biome-ignore lint/suspicious/noExplicitAny: listeners of every event's own signature
  private readonly socketListeners: [string, (...args: any[]) => void][] = [];

  private readonly onEvent: (event: ClientEvent) => void;
  private readonly onEventFailed: (event: ClientEvent, error: unknown) => void;
  private readonly beforeIdle: () => boolean;
  private readonly afterFlush: () => void;
  private readonly closePolicy: () => ClosePolicy;

  constructor(
    private readonly core: SshClientCore,
    private readonly socket: Duplex,
    hooks: {
      /** Handles one event of the core. */
      onEvent: (event: ClientEvent) => void;
      /**
       * onEvent threw. The flush goes on: the error is reported here rather than thrown out
       * of a socket callback, where it would abandon the events and bytes still queued
       * (window credit among them) or end the process.
       */
      onEventFailed?: (event: ClientEvent, error: unknown) => void;
      /**
       * Called when the core has nothing more to say, before the flush ends; may act on the
       * core (return window credit, say). Returns true if it did, and the flush goes on.
       */
      beforeIdle?: () => boolean;
      /** Called after each flush, so waiters can re-check conditions that raise no event. */
      afterFlush?: () => void;
      /** Linger and LingerTime, read when the connection closes (./close.ts). */
      closePolicy?: () => ClosePolicy;
    },
    /** The socket's reader when it was opened with one (onread); else 'data' events are used. */
    private readonly reader?: SocketReader,
    /** MaxTransferRate's buckets; its rate may change at any time (0: no limit). */
    private readonly limiter?: TransferLimiter,
  ) {
    this.onEvent = hooks.onEvent;
    this.onEventFailed = hooks.onEventFailed ?? (() => undefined);
    this.beforeIdle = hooks.beforeIdle ?? (() => false);
    this.afterFlush = hooks.afterFlush ?? (() => undefined);
    this.closePolicy = hooks.closePolicy ?? (() => ORDERLY_CLOSE);
    // biome-ignore lint/suspicious/noExplicitAny: the listener table holds listeners of every event's own signature
    const listen = (name: string, listener: (...args: any[]) => void) => {
      socket.on(name, listener);
      this.socketListeners.push([name, listener]);
    };
    if (!reader) {
      listen('data', (chunk: Buffer) => {
        this.bytesMoved += chunk.length;
        core.receive(chunk, Date.now());
        this.flush();
      });
    }
    if (limiter) {
      const bucket = limiter.inbound;
      core.setInboundCredit({
        available: () => bucket.available(),
        take: (bytes) => bucket.take(bytes),
        step: () => bucket.burstSize / 2,
        wait: (bytes) =>
          bucket.whenAvailable(bytes, () => {
            if (this.ended) return;
            core.grantWithheldCredit();
            this.flush();
          }),
      });
    }
    listen('drain', () => {
      if (this.throttled.length === 0) core.setTransmitBlocked(false);
      this.flush();
    });
    listen('error', (error: NodeJS.ErrnoException) => {
      // A transport that is itself an SSH channel (a jump host's) fails with the hop's SshError.
      const why = error instanceof SshError ? error : new SshError(socketErrorCode(error.code), `socket error: ${error.message}`, 'peer', { cause: error });
      core.transportClosed(why);
      this.flush();
    });
    listen('close', () => {
      core.transportClosed(new SshError(Code.ConnectionDropped, 'the connection was dropped by the server', 'peer'));
      this.flush();
    });
  }

  /**
   * The connection went to the native data plane: the socket is left to whoever destroys it
   * (its listeners here are removed, so its close is no loss of the connection). Events and
   * the core's timer still run here; when the connection closes, `closed` ends the plane.
   */
  handOver(closed: () => void): void {
    for (const [name, listener] of this.socketListeners.splice(0)) this.socket.off(name, listener);
    this.planeClosed = closed;
  }

  /** Bytes the native data plane passed up, for the inactivity deadlines watching bytesMoved. */
  countPlaneBytes(bytes: number): void {
    this.bytesMoved += bytes;
  }

  /**
   * A channelData event's bytes are referred to for good (handed to the application): the
   * memory they were read into is never reused.
   */
  keepInput(): void {
    this.inputKept = true;
  }

  /**
   * A channelData event's bytes are still needed for a while (queued in a socket): their
   * memory is not reused until the returned function is called.
   */
  holdInput(): () => void {
    return this.reader ? this.reader.hold() : () => undefined;
  }

  start(): void {
    this.core.start(Date.now());
    this.flush();
    // Attached only now: bytes read before (copies the reader kept) reach a started core.
    const core = this.core;
    this.reader?.attach({
      take: (chunk) => {
        this.bytesMoved += chunk.length;
        core.receive(chunk, Date.now());
        this.flush();
      },
      settle: () => {
        const pinned = core.takeInputPinned() || this.inputKept;
        this.inputKept = false;
        return { backlog: core.inputBacklog, pinned };
      },
      moveBacklog: (target) => core.moveInput(target),
    });
  }

  /** Writes what the core produced, delivers its events, and re-arms its timer. */
  flush(): void {
    if (this.flushing) return; // re-entered from an event handler; the outer loop picks it up
    this.flushing = true;
    try {
      for (;;) {
        const out = this.core.pollTransmit();
        if (out && !this.ended && !this.socket.destroyed) {
          if (this.limiter?.limited || this.throttled.length > 0) {
            this.throttled.push(...out);
            this.writeThrottled();
          } else {
            this.socket.cork();
            for (const packet of out) this.writeBytes(packet);
            this.socket.uncork();
          }
          if (this.socket.writableLength > SOCKET_HIGH_WATER || this.throttled.length > 0) this.core.setTransmitBlocked(true);
        }
        const event = this.core.pollEvent();
        if (!event) {
          if (this.core.pollTransmitPending()) continue;
          if (this.beforeIdle()) continue;
          break;
        }
        try {
          this.onEvent(event);
        } catch (error) {
          try {
            this.onEventFailed(event, error);
          } catch {
            // Reporting failed as well: nothing more can be done from a socket callback.
          }
        }
        if (event.type === 'closed') this.finish(event.error);
      }
    } finally {
      this.flushing = false;
    }
    // Everything handed to the socket has reached the kernel: the core reuses that memory.
    if (this.socket.writableLength === 0 && this.throttled.length === 0) this.core.transmitted();
    this.armTimer();
    this.afterFlush();
  }

  private writeBytes(bytes: Uint8Array): void {
    this.bytesMoved += bytes.length;
    this.socket.write(bytes);
  }

  /**
   * Writes as much of the throttled bytes as the outbound bucket allows, splitting a packet
   * where the tokens run out (TCP carries bytes, not packets), and waits for the rest.
   */
  private writeThrottled(): void {
    const bucket = this.limiter!.outbound;
    this.socket.cork();
    while (this.throttled.length > 0) {
      const allowed = bucket.available();
      if (allowed <= 0) break;
      const head = this.throttled[0]!;
      const part = Math.min(allowed, head.length);
      this.writeBytes(part === head.length ? head : head.subarray(0, part));
      bucket.take(part);
      if (part === head.length) this.throttled.shift();
      else this.throttled[0] = head.subarray(part);
    }
    this.socket.uncork();
    if (this.throttled.length === 0) return;
    const waiting = this.throttled.reduce((sum, bytes) => sum + bytes.length, 0);
    bucket.whenAvailable(waiting, () => {
      if (this.ended || this.socket.destroyed) return;
      this.writeThrottled();
      // All out: channel data may be framed again, unless the socket itself is full.
      if (this.throttled.length === 0 && this.socket.writableLength <= SOCKET_HIGH_WATER) this.core.setTransmitBlocked(false);
      this.flush();
    });
  }

  private finish(error: SshError | null): void {
    if (this.ended) return;
    this.ended = true;
    this.limiter?.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.planeClosed) {
      // The relay writes what it framed (our DISCONNECT) as far as the socket takes it, then closes.
      this.planeClosed();
      return;
    }
    // A peer that stopped answering keep-alives will not read our DISCONNECT or close its end:
    // waiting for either would only keep a dead socket (and the process) around.
    if (error?.code === Code.KeepAliveLimit) {
      this.socket.destroy();
      return;
    }
    // Let queued bytes (our DISCONNECT) reach the server, then close. Bytes the rate limit
    // held back go first, at once: the stream must stay in order, and they are bounded by
    // what the core had framed.
    const out = [...this.throttled.splice(0), ...(this.core.pollTransmit() ?? [])];
    if (!this.socket.destroyed) for (const packet of out) this.socket.write(packet);
    // A server that never closes its end gets 2 s, or LingerTime when that is set.
    closeSocket(this.socket, this.closePolicy(), 2000);
  }

  private armTimer(): void {
    if (this.ended) return;
    const due = this.core.nextTimeout();
    if (due === null) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      return;
    }
    // A deadline that moved later (activity) keeps the earlier timer: it fires, finds
    // nothing due and re-arms. This keeps timer churn off the data path.
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.core.handleTimeout(Date.now());
        this.flush();
      },
      Math.max(0, due - Date.now()),
    );
    this.timer.unref();
  }
}
