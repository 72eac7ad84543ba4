// Jump hosts (ssh's ProxyJump): the tunnel's server is reached through a chain of SSH
// connections, each carried inside a direct-tcpip channel (RFC 4254 §7.2) of the one before.
// Every hop is a Session of its own, with its own host key check and credentials; what the
// tunnel's own Session sees is a Duplex over the last hop's channel, so everything above the
// socket (the driver, reconnection, logoff) works unchanged. Closing that Duplex takes the
// whole chain down, and a hop that dies ends every connection carried through it.

import { Duplex } from 'node:stream';
import type { ClientEvent, ClientOptions, HostKeyInfo, HostKeyVerdict } from '../protocol/client.js';
import { SshError, Code, asSshError } from '../protocol/errors.js';
import { CHANNEL_HIGH_WATER } from '../protocol/channels.js';
import type { OpenedSocket } from '../net/connect.js';
import { Session } from './session.js';
import type { SshIdentity } from './identities.js';
import { judgeHostCertificate, parseCaKeys, type CertificateJudgement } from './hostkeys.js';

/** One jump host, as the application names it (a revtun extension: the documented component has none). */
export interface JumpHost {
  host: string;
  /** Default 22. */
  port?: number;
  /** Default: the tunnel's sshUser. */
  user?: string;
  /**
   * The host key to trust for this hop: an OpenSSH public key line or a fingerprint
   * ("SHA256:..."), as SSHAcceptServerHostKey takes. Without it or verifyHostKey the hop's
   * key is refused (error 1030) before any credential is sent to it.
   */
  hostKey?: string;
  /** Decides on the hop's host key (true: trust it); consulted when hostKey does not match. */
  verifyHostKey?: (info: JumpHostKeyInfo) => boolean;
  /**
   * The CA keys this hop's OpenSSH host certificate may be signed by, in the forms
   * SSHAcceptServerCAKey takes (public key lines or base64 blobs, one per line or
   * comma-separated; 10022 for one that does not decode). The tunnel's SSHAcceptServerCAKey is
   * the server's alone: a fleet whose bastions have host certificates names its CA here. With
   * it the hop is asked for its certificate first, and one signed by a listed CA, valid now
   * and for `host`, is trusted without its key being pinned: it is judged again at every
   * connection, so a bastion may rotate its key. A certificate that fails (another CA, expired,
   * another principal) or a plain key is refused with 1030 saying why, unless hostKey or
   * verifyHostKey accepts the key.
   */
  caKeys?: string;
  /**
   * This hop's host key algorithms, in SSHPublicKeyAlgorithms's form; by default the tunnel's
   * (with the certificate forms first when caKeys is set). For an application that decides on
   * certificates itself in verifyHostKey, as the revtun command does from known_hosts.
   */
  hostKeyAlgorithms?: string;
  /**
   * Credentials for this hop. With none of these the hop borrows the tunnel's keys and agent
   * (as ssh offers a jump host the same identities), under this hop's user; it is never given
   * the tunnel's password or keyboard-interactive answers.
   */
  password?: string;
  /** Asked for this hop's password when the server wants one and `password` is empty. */
  passwordProvider?: () => string | undefined | Promise<string | undefined>;
  /** Private key text (OpenSSH or PEM) or a path to it. */
  privateKey?: string;
  privateKeyPassphrase?: string;
  /** Keys offered in turn after privateKey, as SSHReverseTunnel.identities. */
  identities?: SshIdentity[];
}

/** A jump host's host key, as its `verifyHostKey` callback receives it: which hop, and where it is. */
export interface JumpHostKeyInfo extends HostKeyInfo {
  host: string;
  port: number;
  /** 0 for the first jump host. */
  hop: number;
}

/** A hop ready to connect: where it is and the core options (credentials, host key check) for it. */
export interface PreparedHop {
  host: string;
  port: number;
  options: ClientOptions;
}

/** The originator ssh -W reports for a connection it carries (it has no socket of its own). */
const ORIGIN = { address: '127.0.0.1', port: 65535 };

export function describeHop(hop: { host: string; port: number }): string {
  return hop.port === 22 ? hop.host : `${hop.host}:${hop.port}`;
}

/** A hop's caKeys, decoded; 10022 naming the hop for one that does not decode. */
export function hopCaKeys(hop: JumpHost, port: number): Uint8Array[] {
  if (hop.caKeys !== undefined && typeof hop.caKeys !== 'string') {
    throw new SshError(Code.BadArgument, `jump host ${describeHop({ host: hop.host, port })}: caKeys must be text (public key lines)`, 'local');
  }
  try {
    return parseCaKeys(hop.caKeys ?? '', 'caKeys');
  } catch (error) {
    throw new SshError(Code.BadArgument, `jump host ${describeHop({ host: hop.host, port })}: ${(error as Error).message}`, 'local', { cause: error });
  }
}

/**
 * How a hop's host certificate stands against its CA keys; null when it presented a plain key
 * or has no CA keys. The core has already checked validity and principals against `host`.
 */
export function judgeHopCertificate(caKeys: readonly Uint8Array[], info: HostKeyInfo): CertificateJudgement | null {
  return info.certificate && caKeys.length > 0 ? judgeHostCertificate(info.certificate, info.hostKey, caKeys) : null;
}

/** The 1030 refusal of a hop's key that nothing accepted: what was wrong with its certificate, if that is why. */
export function hopKeyRefusal(caKeys: readonly Uint8Array[], info: HostKeyInfo, judgement: CertificateJudgement | null): HostKeyVerdict {
  const shown = `${info.keyType} SHA256:${info.fingerprints.sha256}`;
  if (judgement && !judgement.trusted) return { refused: `the host certificate (${shown}) was not accepted: ${judgement.reason}` };
  if (caKeys.length > 0 && !info.certificate) return { refused: `the host key (${shown}) was not accepted: it is a plain key, not a certificate from a CA of caKeys` };
  return false;
}

/**
 * Connects through every hop in turn and returns the transport to `target`. `connectFirst`
 * opens the socket to the first hop (directly, or through a proxy or ProxyCommand). Fails
 * with the hop's own error code and a message naming the hop; aborting closes what is open.
 */
export async function openJumpChain(
  hops: PreparedHop[],
  target: { host: string; port: number },
  connectFirst: (hop: PreparedHop) => Promise<OpenedSocket>,
  log: (level: 1 | 2 | 3, message: string) => void,
  signal?: AbortSignal,
): Promise<OpenedSocket> {
  const chain = new JumpChain(log);
  const onAbort = () => chain.close('connecting was abandoned');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let opened = await connectFirst(hops[0]!);
    for (let i = 0; i < hops.length; i++) {
      const hop = hops[i]!;
      if (signal?.aborted) {
        opened.socket.destroy();
        throw new SshError(Code.BadState, 'connecting was abandoned', 'local');
      }
      const session = chain.add(hop, opened);
      await session.logon().catch((error: unknown) => {
        throw hopError(hop, error);
      });
      log(1, `authenticated to jump host ${describeHop(hop)}`);
      const next = hops[i + 1] ?? target;
      const stream = await ChannelTransport.open(chain, session, next).catch((error: unknown) => {
        throw hopError(hop, error);
      });
      // Its EOF and CLOSE may have come in the same read as the confirmation: a transport that
      // is already gone would never tell the session built on it (its 'close' is past).
      if (stream.destroyed) throw hopError(hop, new SshError(Code.ConnectionDropped, `the connection to ${describeHop(next)} closed as soon as it opened`, 'peer'));
      opened = { socket: stream, address: next.host };
    }
    const last = opened.socket as ChannelTransport;
    last.onDestroyed = () => chain.close('the connection through the jump hosts closed');
    return opened;
  } catch (error) {
    chain.close('logon failed');
    throw asSshError(error);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function hopError(hop: { host: string; port: number }, error: unknown): SshError {
  const e = asSshError(error);
  if (e.message.startsWith('jump host ')) return e;
  return new SshError(e.code, `jump host ${describeHop(hop)}: ${e.message}`, e.origin, { cause: e });
}

/** The sessions of one chain, first hop first, and the channel transports each one carries. */
class JumpChain {
  private readonly sessions: Session[] = [];
  private readonly transports = new Map<Session, Map<number, ChannelTransport>>();
  private closed = false;

  constructor(private readonly log: (level: 1 | 2 | 3, message: string) => void) {}

  add(hop: PreparedHop, opened: OpenedSocket): Session {
    const label = `jump host ${describeHop(hop)}`;
    const transports = new Map<number, ChannelTransport>();
    const session: Session = new Session(hop.options, opened, {
      onEvent: (event) => this.route(transports, label, event),
      log: (level, message) => this.log(level, `${label}: ${message}`),
      localTargetFailed: () => undefined, // a hop has no forwardings
    });
    this.sessions.push(session);
    this.transports.set(session, transports);
    return session;
  }

  register(session: Session, channel: number, transport: ChannelTransport): void {
    this.transports.get(session)?.set(channel, transport);
  }

  private route(transports: Map<number, ChannelTransport>, label: string, event: ClientEvent): void {
    switch (event.type) {
      case 'log':
        this.log(event.level, `${label}: ${event.message}`);
        return;
      case 'closed': {
        const why = event.error
          ? new SshError(event.error.code, `${label}: ${event.error.message}`, event.error.origin, { cause: event.error })
          : new SshError(Code.ConnectionDropped, `${label} closed the connection`, 'peer');
        for (const transport of transports.values()) transport.destroy(why);
        transports.clear();
        return;
      }
      case 'channelOpened':
      case 'channelOpenFailed':
      case 'channelData':
      case 'channelEof':
      case 'channelClosed':
      case 'channelWritable': {
        const transport = transports.get(event.channel);
        if (!transport) return;
        if (event.type === 'channelClosed') transports.delete(event.channel);
        transport.handle(event);
        return;
      }
    }
  }

  /** Aborts every hop, last first (each abort tells its server why). */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const session of [...this.sessions].reverse()) session.abort(reason);
  }
}

type ChannelEventOf<T extends ClientEvent['type']> = Extract<ClientEvent, { type: T }>;

/**
 * A Duplex over one direct-tcpip channel. Writes go into the channel (a copy is queued while
 * the server's window is closed) and complete at once until CHANNEL_HIGH_WATER bytes wait,
 * then only once the channel is writable again. Received data is pushed as a copy (the
 * hop's read buffer is reused) and credited back to the server only while the reader keeps
 * up, so a slow reader holds the hop to one window of data.
 */
export class ChannelTransport extends Duplex {
  private pendingWrite: (() => void) | null = null;
  /** Bytes pushed while the readable side was full: credited when it is read from again. */
  private owedCredit = 0;
  private opened: ((error: SshError | null) => void) | null = null;
  /** Called once when this transport is destroyed (the last hop's tears the chain down). */
  onDestroyed: (() => void) | null = null;

  private constructor(
    private readonly session: Session,
    private readonly channel: number,
  ) {
    // Not half-open: an SSH connection has no use for one direction alone, and a TCP socket
    // to the server ends both ways at the server's FIN; so does this at the channel's EOF.
    super({ allowHalfOpen: false, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    // Until a driver takes this transport over (and adds its own listener), a hop that dies
    // would emit 'error' with nobody listening, which throws; the opener hears of it instead.
    this.on('error', () => undefined);
  }

  /** Opens a channel to `next` on `session`; resolves once the server confirmed it. */
  static open(chain: JumpChain, session: Session, next: { host: string; port: number }): Promise<ChannelTransport> {
    return new Promise((resolve, reject) => {
      const outcome = session.run((core) => core.openDirectTcpip(next.host, next.port, ORIGIN));
      if (!outcome.ok) return reject(outcome.error);
      const transport = new ChannelTransport(session, outcome.value);
      chain.register(session, outcome.value, transport);
      transport.opened = (error) => (error ? reject(error) : resolve(transport));
    });
  }

  handle(event: ChannelEventOf<'channelOpened' | 'channelOpenFailed' | 'channelData' | 'channelEof' | 'channelClosed' | 'channelWritable'>): void {
    switch (event.type) {
      case 'channelOpened':
        this.opened?.(null);
        this.opened = null;
        return;
      case 'channelOpenFailed': {
        const error = new SshError(Code.ChannelOpenFailed, `cannot reach the next host through it: ${event.description || 'refused'} (reason ${event.reason})`, 'peer');
        this.opened?.(error);
        this.opened = null;
        this.destroy();
        return;
      }
      case 'channelData':
        // The hop's input buffer is reused once this event returns: push a copy.
        if (this.push(Buffer.from(event.data))) this.session.core.consume(this.channel, event.data.length);
        else this.owedCredit += event.data.length;
        return;
      case 'channelEof':
        this.push(null);
        return;
      case 'channelClosed':
        this.push(null);
        this.destroy();
        return;
      case 'channelWritable': {
        const pending = this.pendingWrite;
        this.pendingWrite = null;
        pending?.();
        return;
      }
    }
  }

  override _read(): void {
    if (this.owedCredit === 0) return;
    const credit = this.owedCredit;
    this.owedCredit = 0;
    this.session.credit(this.channel, credit);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const outcome = this.session.run((core) => core.sendData(this.channel, chunk));
    if (!outcome.ok) return callback(outcome.error);
    if (outcome.value < CHANNEL_HIGH_WATER) return callback();
    this.pendingWrite = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.session.run((core) => core.sendEof(this.channel));
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.opened?.(error instanceof SshError ? error : new SshError(Code.ChannelOpenFailed, 'the channel closed before it opened', 'peer'));
    this.opened = null;
    if (this.session.isOpen) this.session.run((core) => core.closeChannel(this.channel, false));
    const pending = this.pendingWrite;
    this.pendingWrite = null;
    pending?.();
    const done = this.onDestroyed;
    this.onDestroyed = null;
    done?.();
    callback(error);
  }
}
