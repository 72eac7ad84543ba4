// Local forwarding on the native data plane: the channel's local connection is opened here, as
// LocalForwarder opens it, but never read by Node: it is created paused, and once connected its
// descriptor goes to the relay thread with the channel (the plane takes a duplicate, and Node's
// socket is destroyed), which moves its bytes from then on. Whatever the target sent meanwhile
// waits in the kernel for the relay.

import * as net from 'node:net';
import { ChannelOpenFailureReason } from '../protocol/messages.js';
import { socketDescriptor } from '../net/socket-options.js';
import { describeTarget, type ChannelJoint, type LocalTarget } from './local-forward.js';

/** What a native forwarder asks of its session. */
export interface NativeForwarderHost {
  /** Accepts the channel and hands it, with the connected socket `fd`, to the plane; false if it could not be. */
  adopt(channel: number, fd: number): boolean;
  reject(channel: number, reason: number, description: string): void;
  log(level: 1 | 2 | 3, message: string): void;
  /** A local target refused or failed; the channel failed, others carry on. */
  failed(channel: number, error: Error): void;
}

export class NativeForwarder implements ChannelJoint {
  private socket: net.Socket | null = null;
  private done = false;

  constructor(
    readonly channel: number,
    private readonly target: LocalTarget,
    private readonly host: NativeForwarderHost,
  ) {}

  start(): void {
    const target = this.target;
    const name = describeTarget(target);
    const socket = new net.Socket({ allowHalfOpen: true });
    // Paused before the connect, Node never starts reading it: every byte is the relay's.
    socket.pause();
    this.socket = socket;
    socket.once('connect', () => {
      if (this.done) return socket.destroy();
      this.done = true;
      const fd = socketDescriptor(socket);
      const adopted = fd !== null && this.host.adopt(this.channel, fd);
      // Not adopted (no descriptor, or the plane refused it): the server hears the open failed.
      if (!adopted) this.host.reject(this.channel, ChannelOpenFailureReason.ConnectFailed, `cannot hand ${name} to the data plane`);
      else this.host.log(2, `channel ${this.channel}: connected to ${name} (native data plane)`);
      // The relay holds its own descriptor: Node's goes, the connection stays.
      socket.destroy();
    });
    socket.once('error', (error) => {
      if (this.done) return;
      this.done = true;
      this.host.reject(this.channel, ChannelOpenFailureReason.ConnectFailed, `cannot connect to ${name}: ${error.message}`);
      this.host.failed(this.channel, error);
    });
    if (target.kind === 'unix') socket.connect({ path: target.path });
    else socket.connect({ host: target.host, port: target.port, noDelay: true, ...(target.bindHost ? { localAddress: target.bindHost } : {}) });
  }

  // Once adopted, the relay does all of these itself.
  write(): void {}
  end(): void {}
  resume(): void {}

  /** The channel closed before the connect finished: the attempt is dropped. */
  destroy(): void {
    this.done = true;
    this.socket?.destroy();
  }

  get buffered(): number {
    return 0;
  }
}
