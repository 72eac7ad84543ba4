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
//
// PermitRemoteOpen (./permit-open.ts) is checked once the request is in, as ssh checks it: a
// destination it does not list gets SOCKS's "not allowed" reply (SOCKS5 code 2, SOCKS4 91)
// and no connection is attempted. ssh 9.2 closes such a channel without a reply.
//
// A client that opens the channel and never completes its request would hold the channel and
// its buffered bytes for as long as the connection lives (ssh has no limit here); the
// handshake gets a deadline instead, 30 s by default: Dante's default timeout.negotiate, long
// enough for any SOCKS client on a slow link, short enough that idle openers do not pile up.

import type { TunnelScheduler } from './timing.js';
import { LocalForwarder, type ChannelJoint, type ForwarderHost } from './local-forward.js';
import { SshError, Code } from '../protocol/errors.js';
import { describePermitOpen, parsePermitRemoteOpen, permitsOpen, PERMIT_ANY, type PermitOpenPolicy } from './permit-open.js';
import { replyForConnectError, SocksHandshake, socksReply, Socks5Reply, type SocksRequest } from './socks-server.js';

/** Seconds a SOCKS client has, from the channel's open, to send a complete request. */
export const DEFAULT_SOCKS_HANDSHAKE_TIMEOUT = 30;

/** A revtun extension: the options of requestDynamicForwarding. */
export interface DynamicForwardingOptions {
  /**
   * ssh's PermitRemoteOpen: the destinations SOCKS requests may connect to, as `host:port`
   * entries (`[IPv6]:port`; `*` for any host or any port), in ssh's text form ("a:80 b:*")
   * or as a list; "any" (the default) or "none" alone. A request for anything else gets
   * SOCKS's "not allowed" reply and a log line (LogLevel 1); nothing is connected to.
   * Names are compared as written, without lookups: "localhost:80" does not permit 127.0.0.1.
   */
  permitRemoteOpen?: string | readonly string[];
  /**
   * Seconds a SOCKS client has, from the channel's open, to send its complete request; then
   * the channel is closed (a log line). Default 30.
   */
  handshakeTimeout?: number;
}

/** Checks requestDynamicForwarding's options (10022 for a bad one) and gives the forwarding's limits. */
export function socksLimits(options: DynamicForwardingOptions): { permitOpen: PermitOpenPolicy; handshakeTimeout: number } {
  const handshakeTimeout = options.handshakeTimeout ?? DEFAULT_SOCKS_HANDSHAKE_TIMEOUT;
  if (typeof handshakeTimeout !== 'number' || !Number.isFinite(handshakeTimeout) || handshakeTimeout <= 0) {
    throw new SshError(Code.BadArgument, `handshakeTimeout ${String(handshakeTimeout)} is not a number of seconds above 0`, 'local');
  }
  const permit = options.permitRemoteOpen;
  if (permit !== undefined && typeof permit !== 'string' && !(Array.isArray(permit) && permit.every((e) => typeof e === 'string'))) {
    throw new SshError(Code.BadArgument, "permitRemoteOpen must be a string in ssh's form or a list of host:port entries", 'local');
  }
  const permitOpen = permit === undefined ? PERMIT_ANY : parsePermitRemoteOpen(permit);
  return { permitOpen, handshakeTimeout };
}

export interface SocksOptions {
  /** ForwardingLocalHost: the address outgoing connections bind to ('' = any). */
  bindHost: string;
  /** Where requests may connect (PermitRemoteOpen). */
  permitOpen: PermitOpenPolicy;
  /** Seconds for the handshake (see DEFAULT_SOCKS_HANDSHAKE_TIMEOUT). */
  handshakeTimeout: number;
  /** The tunnel's clock: the deadline is one of its sleeps, so tests can pass it. */
  scheduler: TunnelScheduler;
}

export class SocksForwarder implements ChannelJoint {
  private readonly handshake = new SocksHandshake();
  /** The connection to the requested destination, once the request is in. */
  private target: LocalForwarder | null = null;
  /** The handshake failed or the channel ended before it finished: data is dropped. */
  private finished = false;
  /** Ends the handshake deadline's wait (the request came in, or the channel ended). */
  private readonly deadline = new AbortController();

  constructor(
    readonly channel: number,
    private readonly options: SocksOptions,
    private readonly host: ForwarderHost,
  ) {}

  start(): void {
    this.host.accept(this.channel);
    const seconds = this.options.handshakeTimeout;
    this.options.scheduler.sleep(seconds * 1000, this.deadline.signal, 'deadline').then(
      () => {
        if (this.target || this.finished) return;
        this.fail(`no complete SOCKS request within ${seconds} s`);
      },
      () => undefined, // aborted: the handshake ended first
    );
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
    this.deadline.abort();
    const { version, host, port } = request;
    const destination = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    if (!permitsOpen(this.options.permitOpen, host, port)) {
      this.host.send(this.channel, socksReply(version, Socks5Reply.NotAllowed));
      return this.fail(`SOCKS${version} CONNECT ${destination} refused: not permitted by PermitRemoteOpen ${describePermitOpen(this.options.permitOpen)}`);
    }
    this.host.log(2, `channel ${this.channel}: SOCKS${version} CONNECT ${destination}`);
    const target = new LocalForwarder(this.channel, { kind: 'tcp', host, port, bindHost: this.options.bindHost }, this.targetHost(version));
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
    this.deadline.abort();
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
    this.deadline.abort();
    this.target?.destroy();
  }

  get buffered(): number {
    return this.target?.buffered ?? 0;
  }
}
