// Reverse dynamic forwarding (ssh -R [bind_address:]port, no target): every channel that
// arrives on such a forwarding is accepted at once, since the SOCKS request comes in its
// data; the request is read with SocksHandshake, the named destination is connected to from
// here, and the SOCKS reply tells the client how that went. From then on a LocalForwarder
// carries the channel, so backpressure and half-close are those of any local forwarding.
//
// Where OpenSSH's ssh closes the channel without a reply when the connect fails, the command
// is not CONNECT or "no authentication" is not offered (seen with OpenSSH 9.2: curl reports
// "connection to proxy closed"), revtun sends the reply SOCKS has for it, so a client learns
// "connection refused", "host unreachable" or "command not supported".

import { LocalForwarder, type ChannelJoint, type ForwarderHost } from './local-forward.js';
import { replyForConnectError, SocksHandshake, socksReply, Socks5Reply, type SocksRequest } from './socks-server.js';

export class SocksForwarder implements ChannelJoint {
  private readonly handshake = new SocksHandshake();
  /** The connection to the requested destination, once the request is in. */
  private target: LocalForwarder | null = null;
  /** The handshake failed or the channel ended before it finished: data is dropped. */
  private finished = false;

  constructor(
    readonly channel: number,
    /** ForwardingLocalHost: the address outgoing connections bind to ('' = any). */
    private readonly bindHost: string,
    private readonly host: ForwarderHost,
  ) {}

  start(): void {
    this.host.accept(this.channel);
  }

  write(data: Uint8Array): void {
    if (this.target) return this.target.write(data);
    if (this.finished) {
      this.host.consume(this.channel, data.length);
      return;
    }
    const step = this.handshake.push(data);
    // The handshake keeps copies of what it needs: its bytes are the server's window again.
    const handshakeBytes = step.kind === 'connect' ? data.length - step.rest.length : data.length;
    this.host.consume(this.channel, handshakeBytes);
    if (step.send) this.host.send(this.channel, step.send);
    if (step.kind === 'needMore') return;
    if (step.kind === 'fail') return this.fail(`SOCKS handshake failed: ${step.reason}`);
    this.connect(step.request, step.rest);
  }

  private connect(request: SocksRequest, rest: Uint8Array): void {
    const { version, host, port } = request;
    this.host.log(2, `channel ${this.channel}: SOCKS${version} CONNECT ${host.includes(':') ? `[${host}]` : host}:${port}`);
    const target = new LocalForwarder(this.channel, { kind: 'tcp', host, port, bindHost: this.bindHost }, this.targetHost(version));
    this.target = target;
    target.start();
    // Bytes pipelined behind the request wait in the connecting socket, credited once written.
    if (rest.length > 0) target.write(rest);
  }

  /**
   * The forwarder's host, but the channel is open already: a connect that succeeds sends the
   * SOCKS success reply (before the destination can send anything: sockets read only after
   * their 'connect'), and one that fails sends the failure reply and closes the channel.
   */
  private targetHost(version: 4 | 5): ForwarderHost {
    const host = this.host;
    return {
      ...host,
      accept: (ch) => {
        host.send(ch, socksReply(version, Socks5Reply.Succeeded));
      },
      reject: () => undefined, // failed() follows with the error itself
      failed: (ch, error) => {
        if (this.finished) return; // the channel closed while connecting: nobody to tell
        host.send(ch, socksReply(version, replyForConnectError((error as NodeJS.ErrnoException).code)));
        this.fail(`SOCKS connect failed: ${error.message}`);
      },
    };
  }

  /**
   * Ends this channel only, after the reply has been sent; data still coming is dropped. The
   * SOCKS client has been told, so this is a log line, not a tunnel error event.
   */
  private fail(why: string): void {
    this.finished = true;
    this.host.log(1, `channel ${this.channel}: ${why}; closing the channel`);
    this.host.close(this.channel);
  }

  end(): void {
    if (this.target) return this.target.end();
    if (!this.finished) this.fail('SOCKS client sent EOF before its request was complete');
  }

  resume(): void {
    this.target?.resume();
  }

  destroy(): void {
    this.finished = true;
    this.target?.destroy();
  }

  get buffered(): number {
    return this.target?.buffered ?? 0;
  }
}
