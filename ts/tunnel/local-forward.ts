// Local forwarding mode: each channel the server opens for a forwarding with a
// forwardingHost is joined to a fresh connection to its local target: TCP to
// forwardingHost:forwardingPort, or a Unix socket when forwardingHost is a path.
// Bytes flow both ways with backpressure: window credit goes back to the server only after
// the local socket has taken the bytes, and the local socket is paused while the channel's
// outgoing queue is full. Half-close travels both ways (socket end <-> channel EOF).

import * as net from 'node:net';
import { ChannelOpenFailureReason } from '../protocol/messages.js';

/**
 * What a forwarder may ask of its connection. Each call puts its result on the wire and never
 * throws: on a connection that is closing it does nothing (a false/void result).
 */
export interface ForwarderHost {
  accept(channel: number): void;
  reject(channel: number, reason: number, description: string): void;
  /**
   * Sends data, queueing a copy of what the peer's window cannot take yet; returns false once
   * anything is queued (the socket stops reading until the channel is writable again).
   */
  send(channel: number, data: Uint8Array): boolean;
  /**
   * Calls `forwarder.uncork()` once the received packets being handled now have all been
   * written to it, and returns to the server the window credit it reports.
   */
  uncorkLater(forwarder: LocalForwarder): void;
  /** Keeps the memory the data being handled was read into until the function returned is called. */
  holdInput(): () => void;
  sendEof(channel: number): void;
  close(channel: number): void;
  consume(channel: number, bytes: number): void;
  log(level: 1 | 2 | 3, message: string): void;
  /** A local target refused or failed; the channel failed, others carry on. */
  failed(channel: number, error: Error): void;
}

/**
 * Every local socket reads into this one buffer (net's `onread`): each read is handed to the
 * channel before the next read of any socket can happen, and the channel copies what it
 * cannot send at once, so nothing refers to the buffer between reads.
 */
let sharedReadBuffer: Buffer | null = null;
const SHARED_READ_BUFFER = 256 * 1024;
const EMPTY = Buffer.alloc(0);

/** Where a forwarded channel's local connection goes. */
export type LocalTarget = { kind: 'tcp'; host: string; port: number; /** ForwardingLocalHost ('' = any) */ bindHost: string } | { kind: 'unix'; path: string };

/**
 * A target name that is a Unix socket path. As in OpenSSH's forwarding specs, a name with a
 * '/' in it is a path: host names and addresses never contain one.
 */
export function isSocketPath(name: string): boolean {
  return name.includes('/');
}

/** The target as log lines and errors name it. */
export function describeTarget(target: LocalTarget): string {
  return target.kind === 'unix' ? target.path : `${target.host}:${target.port}`;
}

/** What the session drives for a channel joined to a local socket (see also socks-forward.ts). */
export interface ChannelJoint {
  readonly channel: number;
  /** Data from the server side for the local end. */
  write(data: Uint8Array): void;
  /** The remote end sent EOF. */
  end(): void;
  /** The channel can take more data again. */
  resume(): void;
  /** The channel is closed. */
  destroy(): void;
  /** Bytes from the server waiting in the local socket. */
  readonly buffered: number;
}

export class LocalForwarder implements ChannelJoint {
  private socket: net.Socket | null = null;
  private connected = false;
  /** Bytes written since the last uncork (window credit owed once the kernel has them). */
  private batchBytes = 0;
  private closed = false;
  private corked = false;
  /** The socket still had bytes queued when this batch began: the batch is written as copies. */
  private copying = false;

  constructor(
    readonly channel: number,
    private readonly target: LocalTarget,
    private readonly host: ForwarderHost,
  ) {}

  start(): void {
    const target = this.target;
    const where = target.kind === 'unix' ? { path: target.path } : { host: target.host, port: target.port, noDelay: true, ...(target.bindHost ? { localAddress: target.bindHost } : {}) };
    const name = describeTarget(target);
    const socket = net.connect({
      ...where,
      allowHalfOpen: true,
      onread: {
        buffer: () => (sharedReadBuffer ??= Buffer.allocUnsafe(SHARED_READ_BUFFER)),
        callback: (bytes, buffer) => {
          const chunk = buffer.subarray(0, bytes);
          return this.host.send(this.channel, chunk); // false stops reading until resume()
        },
      },
    });
    this.socket = socket;
    socket.once('connect', () => {
      this.connected = true;
      this.host.log(2, `channel ${this.channel}: connected to ${name}`);
      this.host.accept(this.channel);
    });
    socket.on('end', () => {
      this.host.sendEof(this.channel);
    });
    socket.on('error', (error) => {
      if (!this.connected) {
        this.closed = true;
        this.host.reject(this.channel, ChannelOpenFailureReason.ConnectFailed, `cannot connect to ${name}: ${error.message}`);
        this.host.failed(this.channel, error);
      } else {
        this.host.log(1, `channel ${this.channel}: local connection error: ${error.message}`);
      }
    });
    socket.on('close', () => {
      if (this.closed) return;
      this.closed = true;
      // Everything the target sent is queued on the channel: close once it is flushed.
      this.host.close(this.channel);
    });
  }

  /** Data from the server side for the local target. */
  write(data: Uint8Array): void {
    const socket = this.socket;
    if (!socket || socket.destroyed || socket.writableEnded) {
      this.host.consume(this.channel, data.length);
      return;
    }
    // The packets of one read from the SSH socket leave as one writev, when the host uncorks.
    if (!this.corked) {
      this.corked = true;
      this.copying = socket.writableLength > 0;
      socket.cork();
      this.host.uncorkLater(this);
    }
    // `data` lies in the SSH socket's read buffer. A socket that is already behind gets a
    // copy, so a slow target holds on to its own bytes, not to a whole read buffer per write.
    socket.write(this.copying ? Buffer.from(data) : data);
    this.batchBytes += data.length;
  }

  /**
   * Writes what write() gathered and returns how many of those bytes the kernel took at once
   * (all or nothing: they are owed back to the server as window now). Otherwise the rest waits
   * in the socket's queue, the read buffer it lies in is held, and an empty write queued
   * behind it (it completes after everything before it) releases the buffer and returns the
   * credit once the target has taken the bytes.
   */
  uncork(): number {
    if (!this.corked) return 0;
    this.corked = false;
    const socket = this.socket!;
    socket.uncork();
    const bytes = this.batchBytes;
    this.batchBytes = 0;
    if (socket.writableLength === 0 || socket.destroyed) return bytes;
    const release = this.copying ? () => undefined : this.host.holdInput();
    if (socket.writableEnded) return bytes; // closing: its buffer stays held, for the collector
    socket.write(EMPTY, () => {
      release();
      this.host.consume(this.channel, bytes);
    });
    return 0;
  }

  /** Bytes from the server waiting in the local socket. */
  get buffered(): number {
    return this.socket?.writableLength ?? 0;
  }

  /** The remote end sent EOF: half-close towards the target. */
  end(): void {
    this.socket?.end();
  }

  /** The channel can take more data again. */
  resume(): void {
    if (this.socket && !this.socket.destroyed) this.socket.resume();
  }

  /**
   * The channel is closed: let pending writes drain, then drop the connection. Ended already
   * (the server's EOF came first) is no reason to drop what is still queued: the server's
   * CLOSE often follows its EOF in the same read, long before a slow target has read it all.
   */
  destroy(): void {
    this.closed = true;
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    if (socket.writableLength > 0) {
      if (!socket.writableEnded) socket.end();
      socket.once('finish', () => socket.destroy());
    } else {
      socket.destroy();
    }
  }
}
