// One SSH connection of a tunnel: its socket, the SocketDriver and sans-IO core on it, the
// local forwarders joined to its channels, and the waiters of the tunnel's methods (a
// writable channel, a reply, the end of a key exchange, the close). A session lives from the
// socket's connect to its close and is never reused; the tunnel starts a fresh one to
// reconnect. Everything here runs inside socket and timer callbacks, so nothing throws: core
// commands fail as values, and a failed command on a dying connection is simply dropped.

import { SshClientCore, type ClientEvent, type ClientOptions, type ForwardOutcome, type Outcome } from '../protocol/client.js';
import { credentialAnswerer, isPromise, noAnswer, type CredentialAnswerer } from '../protocol/auth-answer.js';
import type { CredentialAnswer, CredentialRequest } from '../protocol/auth.js';
import { FORWARDED_STREAMLOCAL, type Grant } from '../protocol/forwarding.js';
import { SshError, Code, DisconnectReason } from '../protocol/errors.js';
import { SocketDriver } from '../net/driver.js';
import { closeSocket, ORDERLY_CLOSE, type ClosePolicy } from '../net/close.js';
import { TransferLimiter } from '../net/rate-limit.js';
import type { OpenedSocket, Transport } from '../net/connect.js';
import { isSocketPath, LocalForwarder, type ChannelJoint, type ForwarderHost, type LocalTarget } from './local-forward.js';
import { SocksForwarder, type SocksOptions } from './socks-forward.js';
import { NativeForwarder } from './native-forward.js';
import { NativePlane, nativePlaneRefusal, type PlaneEnd, type PlaneUpcall } from '../net/data-plane.js';
import { socketDescriptor } from '../net/socket-options.js';
import type { PlanePort } from '../protocol/plane-port.js';
import type { PermitOpenPolicy } from './permit-open.js';
import { realScheduler, withDeadline, type TunnelScheduler } from './timing.js';

/** How a session's method deadlines run: on which clock, and whether bytes moving extends them. */
export interface SessionTiming {
  clock: Pick<TunnelScheduler, 'now' | 'sleep'>;
  /** AbsoluteTimeout: read at each deadline's start, so a change applies to the next method. */
  absolute: () => boolean;
  /** MaxTransferRate at the connect, bytes per second each way (0 or absent: no limit). */
  maxTransferRate?: number;
  /** Linger and LingerTime, read when the connection closes (../net/close.ts). */
  closePolicy?: () => ClosePolicy;
  /** DataPlane: 'native' hands the connection to the addon's relay thread once logged on, where it can. */
  dataPlane?: 'native' | 'js';
}

const DEFAULT_TIMING: SessionTiming = { clock: realScheduler, absolute: () => false };

/** Why a handover cannot happen yet, though it may after the next flush. */
const TRANSIENT_REFUSALS = new Set(['a key exchange is running', 'packets are waiting to be written', 'a packet is half read']);

/** A forwarding as the application asked for it; the tunnel keeps these across sessions. */
export interface RequestedForwarding {
  /** The address the server binds, or a path (it contains '/'): the Unix socket it listens on. */
  address: string;
  /** The port asked for (0: any; always 0 for a socket path). */
  port: number;
  /** Empty in event mode; a path (it contains '/') for a Unix-socket target. */
  forwardingHost: string;
  /** 0 for a Unix-socket target. */
  forwardingPort: number;
  /** Dynamic (SOCKS): each connection names its destination; forwardingHost is empty. */
  dynamic: boolean;
  /** A dynamic forwarding's limits: where its requests may go, and how long a handshake may take (seconds). */
  socks?: { permitOpen: PermitOpenPolicy; handshakeTimeout: number };
  /** The port the server listens on now, or last listened on (0 before the first grant, and for a socket path). */
  boundPort: number;
}

export interface SessionHandlers {
  /** Every core event, after the session has done its own bookkeeping for it. */
  onEvent(event: ClientEvent): void;
  log(level: 1 | 2 | 3, message: string): void;
  /** A local target failed for a channel (other channels carry on). */
  localTargetFailed(channel: number, error: Error): void;
}

export class Session {
  readonly core: SshClientCore;
  private readonly driver: SocketDriver;
  /** MaxTransferRate's buckets on this connection (see ../net/rate-limit.ts). */
  readonly transferLimiter: TransferLimiter;
  readonly socket: Transport;
  /** The requested forwarding each grant of this connection serves. */
  private readonly served = new Map<Grant, RequestedForwarding>();
  /** The local end of each channel joined to a socket here (local and SOCKS forwardings). */
  private readonly forwarders = new Map<number, ChannelJoint>();
  /** The forwarding each accepted channel came in on. */
  private readonly channelForwardings = new Map<number, RequestedForwarding>();
  /** Local forwarders holding corked writes until the current flush ends. */
  private readonly corked: LocalForwarder[] = [];
  private readonly writableWaiters = new Map<number, (() => void)[]>();
  private readonly closeWaiters: (() => void)[] = [];
  private readonly rekeyWaiters: (() => void)[] = [];
  private readonly progressCheckers = new Set<() => void>();
  private authenticatedWaiter: ((error: SshError | null) => void) | null = null;
  private ended = false;
  /** Answers the core's credential requests from the options' sources, now or later. */
  private readonly answerer: CredentialAnswerer;
  /** When bytes last moved on the socket (clock time), and the count that moved by then. */
  private lastActivity: number;
  private bytesSeen = 0;
  private relayedSeen = 0;
  /** The native data plane carrying the connection (null: the JavaScript path). */
  private plane: NativePlane | null = null;
  /** Logged on with DataPlane=native: the handover happens once the socket has written everything. */
  private handoverWanted = false;
  /** The descriptor of the local socket whose channel is being adopted (see planePort). */
  private adoptingFd: number | null = null;

  constructor(
    options: ClientOptions,
    opened: OpenedSocket,
    private readonly handlers: SessionHandlers,
    private readonly timing: SessionTiming = DEFAULT_TIMING,
  ) {
    this.lastActivity = timing.clock.now();
    this.core = new SshClientCore(options);
    this.answerer = credentialAnswerer(options.auth);
    this.socket = opened.socket;
    // A limiter callback that throws is revtun's own failure: the connection ends with 1036.
    this.transferLimiter = new TransferLimiter(timing.clock, timing.maxTransferRate ?? 0, (error) => this.limiterFailure(error));
    this.driver = new SocketDriver(
      this.core,
      opened.socket,
      {
        onEvent: (event) => this.handle(event),
        onEventFailed: (event, error) => this.internalFailure(event, error),
        beforeIdle: () => this.uncorkForwarders(),
        afterFlush: () => {
          this.noteActivity();
          this.onProgress();
          if (this.handoverWanted) this.tryHandover();
        },
        closePolicy: () => this.timing.closePolicy?.() ?? ORDERLY_CLOSE,
      },
      opened.reader,
      this.transferLimiter,
    );
  }

  /**
   * Hands an event on. Application listeners cannot throw here (the tunnel's emitter catches
   * them); an exception is revtun's own failure, and must not skip the bookkeeping after it.
   */
  private deliver(event: ClientEvent): void {
    try {
      this.handlers.onEvent(event);
    } catch (error) {
      this.internalFailure(event, error);
    }
  }

  /**
   * Handling an event failed inside revtun: the connection's state is no longer known to be
   * sound, so it ends with 1036 (DISCONNECT sent; the tunnel reconnects as for any loss).
   */
  private internalFailure(event: ClientEvent, error: unknown): void {
    const failure = new SshError(Code.ConnectionFailed, `internal error while handling ${event.type}: ${(error as Error)?.message ?? String(error)}`, 'local', { cause: error });
    this.handlers.log(1, failure.message);
    if (event.type !== 'closed') this.core.fail(failure);
  }

  private limiterFailure(error: unknown): void {
    const failure = new SshError(Code.ConnectionFailed, `internal error in MaxTransferRate's pacing: ${(error as Error)?.message ?? String(error)}`, 'local', { cause: error });
    this.handlers.log(1, failure.message);
    if (!this.isOpen) return;
    this.core.fail(failure);
    this.driver.flush();
  }

  /** MaxTransferRate changed while connected: applies at once, and held-back bytes move on. */
  setMaxTransferRate(bytesPerSecond: number): void {
    this.transferLimiter.setRate(bytesPerSecond);
    this.setPlaneRate(bytesPerSecond);
    if (this.isOpen) this.driver.flush();
  }

  /** The relay applies MaxTransferRate to what it moves; a plane that refuses it has failed. */
  private setPlaneRate(bytesPerSecond: number): void {
    if (!this.plane || !this.isOpen) return;
    try {
      this.plane.setRate(bytesPerSecond);
    } catch (error) {
      this.core.fail(error instanceof SshError ? error : new SshError(Code.ConnectionFailed, `data plane: ${(error as Error).message}`, 'local'));
      this.driver.flush();
    }
  }

  /** Bytes moved through the driver since the last look make now the last activity. */
  private noteActivity(): void {
    if (this.driver.bytesMoved === this.bytesSeen) return;
    this.bytesSeen = this.driver.bytesMoved;
    this.lastActivity = this.timing.clock.now();
  }

  /**
   * On the native data plane, channel bytes the relay moved since the last look count too:
   * they never pass through the driver. Read only when a deadline comes (a call into the
   * addon, too dear for every flush); the bytes the core sends and receives through the
   * plane are the driver's, counted as they pass.
   */
  private noteRelayActivity(): void {
    if (!this.plane) return;
    const relayed = this.plane.channelBytes;
    if (relayed === this.relayedSeen) return;
    this.relayedSeen = relayed;
    this.lastActivity = this.timing.clock.now();
  }

  /** A method's deadline: `seconds` of inactivity on this connection (or absolute, as AbsoluteTimeout says). */
  deadline<T>(seconds: number, what: string, work: () => Promise<T>): Promise<T> {
    return withDeadline(
      {
        seconds,
        clock: this.timing.clock,
        absolute: this.timing.absolute(),
        lastActivity: () => {
          this.noteActivity();
          this.noteRelayActivity();
          return this.lastActivity;
        },
      },
      what,
      work,
    );
  }

  /** Runs the handshake; resolves once authenticated, rejects with why it failed. */
  logon(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => {
      this.authenticatedWaiter = (error) => (error ? reject(error) : resolve());
    });
    this.driver.start();
    return done;
  }

  get isOpen(): boolean {
    return !this.ended && !this.core.isClosed;
  }

  get isLoggedOn(): boolean {
    return this.isOpen && this.core.isAuthenticated;
  }

  /** Runs a core command and puts what it produced on the wire. */
  run<T>(command: (core: SshClientCore) => Outcome<T>): Outcome<T> {
    const outcome = command(this.core);
    this.driver.flush();
    return outcome;
  }

  /** Like run(), for commands issued from I/O callbacks: a failure is logged, not raised. */
  private runQuietly(what: string, command: (core: SshClientCore) => Outcome<unknown>): boolean {
    if (!this.isOpen) return false;
    const outcome = this.run(command);
    if (!outcome.ok && this.isOpen) this.handlers.log(2, `${what}: ${outcome.error.message}`);
    return outcome.ok;
  }

  // ---- forwardings ----

  /**
   * Asks the server for a forwarding and records which request it serves. The grant is in
   * the table before the reply's later messages are processed (see SshClientCore).
   */
  requestForwarding(requested: RequestedForwarding, port: number, timeout: number): Promise<Grant> {
    return this.deadline(
      timeout,
      isSocketPath(requested.address) ? 'streamlocal-forward' : 'tcpip-forward',
      () =>
        new Promise<Grant>((resolve, reject) => {
          const onReply = (outcome: ForwardOutcome) => {
            if (!outcome.ok) return reject(outcome.error);
            this.served.set(outcome.grant, requested);
            resolve(outcome.grant);
          };
          // An address that is a path is a Unix socket on the server (OpenSSH's streamlocal).
          const sent = this.run((core) => (isSocketPath(requested.address) ? core.requestStreamLocalForwarding(requested.address, onReply) : core.requestForwarding(requested.address, port, onReply)));
          if (!sent.ok) reject(sent.error);
        }),
    );
  }

  cancelForwarding(grant: Grant, timeout: number): Promise<boolean> {
    this.served.delete(grant);
    return this.deadline(
      timeout,
      grant.streamLocal ? 'cancel-streamlocal-forward' : 'cancel-tcpip-forward',
      () =>
        new Promise<boolean>((resolve, reject) => {
          const sent = this.run((core) => core.cancelForwarding(grant, resolve));
          if (!sent.ok) reject(sent.error);
        }),
    );
  }

  /** The grant of this session that serves a requested forwarding. */
  grantOf(requested: RequestedForwarding): Grant | undefined {
    for (const [grant, r] of this.served) if (r === requested) return grant;
    return undefined;
  }

  /** The requested forwarding a forwarded-tcpip (or forwarded-streamlocal) open belongs to. */
  forwardingFor(service: string, connectedAddress: string, connectedPort: number): RequestedForwarding | undefined {
    const grant = service === FORWARDED_STREAMLOCAL ? this.core.grantForSocket(connectedAddress) : this.core.grantFor(connectedAddress, connectedPort);
    return grant ? this.served.get(grant) : undefined;
  }

  // ---- channels ----

  /** Records the forwarding an accepted channel came in on (sshChannels reports it). */
  noteChannel(channel: number, forwarding: RequestedForwarding): void {
    this.channelForwardings.set(channel, forwarding);
  }

  forwardingOfChannel(channel: number): RequestedForwarding | undefined {
    return this.channelForwardings.get(channel);
  }

  /** Joins an accepted forwarded channel to its local target (local forwarding mode). */
  attachForwarder(channel: number, target: LocalTarget): void {
    if (this.plane) {
      const native = new NativeForwarder(channel, target, {
        adopt: (ch, fd) => {
          this.adoptingFd = fd;
          try {
            return this.runQuietly(`channel ${ch}: accept`, (core) => core.acceptAdoptedChannel(ch));
          } finally {
            this.adoptingFd = null;
          }
        },
        reject: (ch, reason, description) => this.runQuietly(`channel ${ch}: reject`, (core) => core.rejectChannel(ch, reason, description)),
        log: (level, message) => this.handlers.log(level, message),
        failed: (ch, error) => {
          this.forwarders.delete(ch);
          this.handlers.localTargetFailed(ch, error);
        },
      });
      this.forwarders.set(channel, native);
      native.start();
      return;
    }
    const forwarder = new LocalForwarder(channel, target, this.forwarderHost());
    this.forwarders.set(channel, forwarder);
    forwarder.start();
  }

  /** Answers SOCKS on an accepted channel of a dynamic forwarding, then joins it to what it asks for. */
  attachSocksForwarder(channel: number, options: SocksOptions): void {
    const forwarder = new SocksForwarder(channel, options, this.forwarderHost());
    this.forwarders.set(channel, forwarder);
    forwarder.start();
  }

  forwarder(channel: number): ChannelJoint | undefined {
    return this.forwarders.get(channel);
  }

  /** Bytes from the server waiting in a channel's local socket. */
  localBuffered(channel: number): number {
    if (this.plane && this.core.channel(channel)?.adopted) return this.plane.channelStats(channel)?.buffered ?? 0;
    return this.forwarders.get(channel)?.buffered ?? 0;
  }

  /** The application has finished with `bytes` received on a channel: window credit, sent now. */
  credit(channel: number, bytes: number): void {
    if (!this.isOpen) return;
    this.core.consume(channel, bytes);
    this.driver.flush();
  }

  /** Lets data handed to the application keep its memory (see SocketDriver.keepInput). */
  keepInput(): void {
    this.driver.keepInput();
  }

  waitWritable(channel: number, timeout: number): Promise<void> {
    return this.deadline(
      timeout,
      `sending on channel ${channel}`,
      () =>
        new Promise<void>((resolve) => {
          const list = this.writableWaiters.get(channel) ?? [];
          list.push(resolve);
          this.writableWaiters.set(channel, list);
        }),
    );
  }

  exchangeKeys(timeout: number): Promise<void> {
    const finished = new Promise<void>((resolve) => this.rekeyWaiters.push(resolve));
    const started = this.run((core) => core.rekey());
    if (!started.ok) return Promise.reject(started.error);
    return this.deadline(timeout, 'key re-exchange', () => finished);
  }

  /** Resolves once the connection has closed. */
  closed(): Promise<void> {
    if (!this.isOpen) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Resolves once `condition` holds; re-checked whenever the connection makes progress. */
  waitUntil(condition: () => boolean, seconds: number, what: string): Promise<void> {
    if (condition()) return Promise.resolve();
    let check: () => void = () => undefined;
    return this.deadline(
      seconds,
      what,
      () =>
        new Promise<void>((resolve) => {
          check = () => {
            if (condition() || !this.isOpen) resolve();
          };
          this.progressCheckers.add(check);
        }),
    ).finally(() => this.progressCheckers.delete(check));
  }

  /**
   * Logs off: closes every channel once its queued data is sent (waiting up to `drainSeconds`,
   * for the server's CLOSE too with `waitForChannelClose`), then sends DISCONNECT.
   */
  async logoff(options: { drainSeconds: number; waitForChannelClose: boolean; waitForServerDisconnect: boolean }): Promise<boolean> {
    if (!this.isOpen) {
      this.destroy();
      return true;
    }
    const channels = this.core.channelViews();
    let drained = true;
    if (channels.length > 0) {
      this.run((core) => {
        for (const ch of channels) core.closeChannel(ch.localId, true);
        return { ok: true, value: undefined };
      });
      const done = () => channels.every((ch) => (options.waitForChannelClose ? ch.state === 'closed' : ch.closeSent));
      await this.waitUntil(done, options.drainSeconds, 'closing channels').catch(() => undefined);
      drained = done();
    }
    if (this.isOpen) {
      const closed = this.closed();
      this.core.disconnect(DisconnectReason.ByApplication, 'logged off', options.waitForServerDisconnect);
      this.driver.flush();
      if (options.waitForServerDisconnect && options.drainSeconds > 0) {
        await this.deadline(options.drainSeconds, 'waiting for the server to disconnect', () => closed).catch(() => undefined);
      } else {
        await closed;
      }
    }
    this.destroy();
    return drained;
  }

  /** Drops the connection at once, telling the server why if it can. */
  abort(reason: string): void {
    if (this.isOpen) {
      this.core.disconnect(DisconnectReason.ByApplication, reason);
      this.driver.flush();
    }
    this.destroy();
  }

  private destroy(): void {
    for (const forwarder of this.forwarders.values()) forwarder.destroy();
    this.forwarders.clear();
    this.plane?.close();
    // With no LingerTime the socket goes at once (what is still queued is dropped); with one,
    // queued bytes get that long to leave, and a close the driver already began goes on.
    closeSocket(this.socket, this.timing.closePolicy?.() ?? ORDERLY_CLOSE, null);
  }

  // ---- the native data plane ----

  /** The relay thread's id while the connection is on the native data plane (for tests), else null. */
  get planeThreadId(): number | null {
    return this.plane?.threadId ?? null;
  }

  /**
   * Hands the connection to the native data plane once nothing is waiting to be written (the
   * socket's queue and the core's), or logs once why it stays on the JavaScript path.
   */
  private tryHandover(): void {
    if (!this.isOpen) {
      this.handoverWanted = false;
      return;
    }
    const fd = socketDescriptor(this.socket);
    const handle = (this.socket as { _handle?: { readStop?: () => number; readStart?: () => number } })._handle;
    const refusal = nativePlaneRefusal({
      setting: 'native',
      fd,
      canStopReading: typeof handle?.readStop === 'function',
      provider: this.core.providerName,
      compression: false, // the core refuses the handover itself (handoverState)
      channelIdleTimeout: this.core.channelIdleTimeout,
    });
    if (refusal || fd === null) {
      this.giveUpHandover(refusal ?? 'no socket descriptor');
      return;
    }
    if (this.socket.writableLength > 0) return; // tried again after the drain's flush
    const state = this.core.handoverState();
    if ('refused' in state) {
      // A key exchange or unwritten packets pass; anything else keeps the JavaScript path.
      if (TRANSIENT_REFUSALS.has(state.refused)) return;
      this.giveUpHandover(state.refused);
      return;
    }
    this.handoverWanted = false;
    // Node reads nothing more: what the server sends from here waits in the kernel for the relay.
    handle?.readStop?.();
    let plane: NativePlane;
    try {
      plane = new NativePlane(
        fd,
        state,
        state.input,
        (upcalls) => this.planeUpcalls(upcalls),
        (end) => this.planeEnded(end),
      );
    } catch (error) {
      handle?.readStart?.();
      this.giveUpHandover((error as Error).message);
      return;
    }
    this.plane = plane;
    // Node's socket stays, inert (not read, never written): socket options and addresses are
    // still read and set through it, and it is closed with the connection, after the relay,
    // by the close policy (Linger, LingerTime) as on the JavaScript plane.
    this.driver.handOver(() => {
      plane.close();
      closeSocket(this.socket, this.timing.closePolicy?.() ?? ORDERLY_CLOSE, 2000);
    });
    this.core.attachPlane(this.planePort(plane));
    // Its errors are the relay's to see now; one here must not become an uncaught exception.
    this.socket.on('error', () => undefined);
    // MaxTransferRate, before any channel is adopted: no channel byte leaves the relay unpaced.
    if (this.transferLimiter.limited) this.setPlaneRate(this.transferLimiter.rate);
  }

  /** The connection stays on the JavaScript plane: the log says why, and the keys kept for the handover go. */
  private giveUpHandover(why: string): void {
    this.handoverWanted = false;
    this.core.forgoHandover();
    this.handlers.log(1, `data plane: JavaScript (${why})`);
  }

  private planePort(plane: NativePlane): PlanePort {
    return {
      send: (payload) => {
        this.driver.countPlaneBytes(payload.length);
        return plane.send(payload);
      },
      sendNewKeys: (keys, reset) => plane.sendNewKeys(keys, reset),
      setIncomingKeys: (keys, reset) => plane.setIncomingKeys(keys, reset),
      setLimits: (maxPacket, windowTarget) => plane.setLimits(maxPacket, windowTarget),
      adopt: (channel, remoteId, localWindow, remoteWindow, remoteMaxPacket, confirmation) => {
        const fd = this.adoptingFd;
        if (fd === null) throw new SshError(Code.ChannelOpenFailed, `channel ${channel}: no local socket to hand over`, 'local');
        plane.adopt(channel, remoteId, localWindow, remoteWindow, remoteMaxPacket, confirmation, fd);
      },
      closeChannel: (channel) => plane.closeChannel(channel),
      channelStats: (channel) => plane.channelStats(channel),
    };
  }

  /** A batch from the relay: messages for the core, channels it finished, a re-key due. */
  private planeUpcalls(upcalls: PlaneUpcall[]): void {
    if (this.core.isClosed) return;
    const now = Date.now();
    for (const upcall of upcalls) {
      if (upcall.type === 'message') {
        this.driver.countPlaneBytes(upcall.payload.length);
        this.core.receivePayload(upcall.payload, upcall.sequence, now);
      } else if (upcall.type === 'channelClosed') {
        this.core.adoptedChannelClosed(upcall.channel, upcall.bytesSent, upcall.bytesReceived);
      } else {
        this.core.planeRekeyDue();
      }
    }
    this.driver.flush();
  }

  /** The relay ended on its own (the server closed, a bad packet): the connection is gone. */
  private planeEnded(end: PlaneEnd): void {
    if (end === null || this.core.isClosed) return;
    this.core.transportClosed(end);
    this.driver.flush();
  }

  // ---- core events: the session's own bookkeeping ----

  private handle(event: ClientEvent): void {
    switch (event.type) {
      case 'keysExchanged':
        for (const resolve of this.rekeyWaiters.splice(0)) resolve();
        break;
      case 'authenticated':
        this.authenticatedWaiter?.(null);
        this.authenticatedWaiter = null;
        this.handoverWanted = this.timing.dataPlane === 'native';
        if (this.timing.dataPlane !== 'native') this.handlers.log(2, 'data plane: JavaScript (DataPlane=js)');
        break;
      case 'credentialRequest':
        this.answerCredential(event.request);
        return;
      case 'closed':
        this.ended = true;
        this.answerer.dispose?.(); // GSSAPI contexts end with the connection
        this.authenticatedWaiter?.(event.error ?? new SshError(Code.ConnectionDropped, 'connection closed during logon', 'peer'));
        this.authenticatedWaiter = null;
        break;
      case 'channelEof':
        // Delivered to the application first (records), then half-closes the local socket.
        this.deliver(event);
        this.forwarders.get(event.channel)?.end();
        return;
      case 'channelClosed':
        this.channelForwardings.delete(event.channel);
        this.forwarders.get(event.channel)?.destroy();
        this.forwarders.delete(event.channel);
        this.resolveWritable(event.channel);
        break;
      case 'channelWritable':
        this.forwarders.get(event.channel)?.resume();
        this.resolveWritable(event.channel);
        break;
    }
    this.deliver(event);
    if (event.type === 'closed') {
      for (const forwarder of this.forwarders.values()) forwarder.destroy();
      this.forwarders.clear();
      for (const waiters of this.writableWaiters.values()) for (const w of waiters) w();
      this.writableWaiters.clear();
      for (const resolve of this.rekeyWaiters.splice(0)) resolve();
      for (const resolve of this.closeWaiters.splice(0)) resolve();
    }
  }

  /**
   * Answers a credential request: at once when its source is synchronous, else when it
   * settles (a connection that closed meanwhile drops the answer).
   */
  private answerCredential(request: CredentialRequest): void {
    const give = (value: CredentialAnswer) => {
      if (this.isOpen) this.run((core) => core.answerCredential(request.id, value));
    };
    // A source that fails in a way the answerer did not foresee (it throws, it rejects) gives
    // nothing: authentication moves on instead of waiting, and nothing throws out of here.
    const failed = (error: unknown) => give(noAnswer(request, (error as Error)?.message ?? String(error)));
    let answer: ReturnType<CredentialAnswerer>;
    try {
      answer = this.answerer(request);
    } catch (error) {
      failed(error);
      return;
    }
    if (isPromise(answer)) answer.then(give, failed);
    else give(answer);
  }

  private resolveWritable(channel: number): void {
    const waiters = this.writableWaiters.get(channel);
    if (!waiters) return;
    this.writableWaiters.delete(channel);
    for (const w of waiters) w();
  }

  private onProgress(): void {
    for (const check of [...this.progressCheckers]) check();
  }

  /**
   * Local sockets write what the packets just handled gave them, one writev each; what the
   * kernel took at once goes back to the server as window. Returns true if any credit was given.
   */
  private uncorkForwarders(): boolean {
    if (this.corked.length === 0) return false;
    let credited = false;
    for (const forwarder of this.corked.splice(0)) {
      const written = forwarder.uncork();
      if (written > 0 && this.isOpen) {
        this.core.consume(forwarder.channel, written);
        credited = true;
      }
    }
    return credited;
  }

  private forwarderHost(): ForwarderHost {
    return {
      accept: (ch) => this.runQuietly(`channel ${ch}: accept`, (core) => core.acceptChannel(ch, 1)), // the socket pauses once the window is full
      reject: (ch, reason, description) => this.runQuietly(`channel ${ch}: reject`, (core) => core.rejectChannel(ch, reason, description)),
      send: (ch, data) => {
        if (!this.isOpen) return false;
        const outcome = this.run((core) => core.sendData(ch, data));
        return outcome.ok && outcome.value === 0;
      },
      uncorkLater: (forwarder) => this.corked.push(forwarder),
      holdInput: () => this.driver.holdInput(),
      sendEof: (ch) => this.runQuietly(`channel ${ch}: EOF`, (core) => core.sendEof(ch)),
      close: (ch) => this.runQuietly(`channel ${ch}: close`, (core) => core.closeChannel(ch, true)),
      consume: (ch, n) => {
        if (!this.isOpen) return;
        this.core.consume(ch, n);
        this.driver.flush();
      },
      log: (level, message) => this.handlers.log(level, message),
      failed: (ch, error) => {
        this.forwarders.delete(ch);
        this.handlers.localTargetFailed(ch, error);
      },
    };
  }
}
