// The sans-IO SSH client: bytes in (`receive`), bytes out (`pollTransmit`), events out
// (`pollEvent`), time in (`handleTimeout`). It owns the order of the protocol: version
// exchange, key exchange (initial and any later one, from either side, with channel data in
// flight), user authentication, then the connection layer. Message numbers are dispatched by
// range (RFC 4250 §4.1.2) and a message outside the range its state allows is a protocol error.

import { SshError, Code, disconnectReasonFor, DisconnectReason } from './errors.js';
import { copyBytes, fromUtf8, readUint32, toHex, writeUint32 } from './wire.js';
import { MSG, Debug, DirectTcpipData, Disconnect, ExtInfo, Ignore, KexInit, NewKeys, Unimplemented, messageName, type KexInitMessage } from './messages.js';
import { MAX_PACKET_LENGTH, PacketTransport } from './transport.js';
import { CompressionSchedule, compressionSummary } from './compression.js';
import { createKexMethod, deriveKey, EXT_INFO_CLIENT, negotiate, parseExtensions, STRICT_KEX_CLIENT, STRICT_KEX_SERVER, type KexMethod, type Negotiated, type SharedSecretEncoding } from './kex.js';
import { UserAuth, type AuthOptions, type CredentialAnswer, type CredentialRequest } from './auth.js';
import { GssKexMethod, isGssKex, NULL_HOST_KEY, type GssKexStep } from './kex-gss.js';
import { ConnectionLayer, type ChannelEvent, type ChannelSettings, type ChannelView, type InboundCredit } from './channels.js';
import {
  CANCEL_STREAMLOCAL_FORWARD,
  CANCEL_TCPIP_FORWARD,
  ForwardRequest,
  ForwardingGrants,
  grantedPort,
  STREAMLOCAL_FORWARD,
  StreamLocalForwardRequest,
  TCPIP_FORWARD,
  type Grant,
} from './forwarding.js';
import { keyTypeForAlgorithm, parsePublicKey, publicKeyTypeName } from './publickey.js';
import { CERTIFICATE_ALGORITHMS, checkHostCertificate, describeHostCertificate, readVerifiedCertificate, type HostCertificateInfo } from './certificates.js';
import { x509AlgorithmSpec } from './x509-chain.js';
import { readX509HostKey, type X509HostKeyInfo } from './x509-trust.js';
import type { CryptoProvider, DirectionKeys, HashName } from '../crypto/provider.js';
import type { CoreHandover, PlanePort } from './plane-port.js';

/** The algorithms offered in KEXINIT, most preferred first, per kind (RFC 4253 §7.1). */
export interface AlgorithmLists {
  kex: string[];
  hostKey: string[];
  cipher: string[];
  mac: string[];
  compression: string[];
}

/** The server's host key as the host key check sees it. */
export interface HostKeyInfo {
  /**
   * The SSH public key blob. For a certificate, the certified key in plain form, as OpenSSH
   * fingerprints and compares it: a key pinned or listed in known_hosts still matches.
   */
  hostKey: Uint8Array;
  /** The negotiated host key algorithm (e.g. rsa-sha2-512, ssh-ed25519-cert-v01@openssh.com). */
  algorithm: string;
  /** The key's own type (e.g. ssh-rsa). */
  keyType: string;
  fingerprints: { md5: string; sha1: string; sha256: string };
  /** Set when the server proved its identity with an OpenSSH host certificate. */
  certificate?: HostCertificateInfo;
  /** Set for an X.509 host key (RFC 6187): the chain, its leaf's DNs, and what is wrong with the leaf. */
  x509?: X509HostKeyInfo;
}

export type { HostCertificateInfo, X509HostKeyInfo };

/**
 * What verifyHostKey answers: trust or not, or a refusal with the reason, which becomes the
 * message of the 1030 error.
 */
export type HostKeyVerdict = boolean | { refused: string };

/** How an SshClientCore connects: its crypto provider, algorithm lists, authentication and host key check. */
export interface ClientOptions {
  provider: CryptoProvider;
  clientVersion: string;
  /** Accepts or refuses the server's identification line (SSHVersionPattern). */
  acceptServerVersion: (version: string) => boolean;
  algorithms: AlgorithmLists;
  /** UseStrictKeyExchange: 0 off, 1 on, 2 reject affected algorithms without it, 3 required. */
  strictKex: 0 | 1 | 2 | 3;
  dhGroupBits: number;
  /** Rekey after this many bytes in either direction (KeyRenegotiationThreshold). */
  rekeyBytes: number;
  auth: AuthOptions;
  /** Called once per key exchange; must return true to continue. Runs before any credential is sent. */
  verifyHostKey: (info: HostKeyInfo) => HostKeyVerdict;
  /**
   * The name a host certificate must list among its principals: the host as the user named it
   * (or its HostKeyAlias). Without it, a certificate that lists principals has a problem.
   */
  hostCertificateName?: string;
  channels: ChannelSettings;
  /** Keep-alive: seconds between probes (0 = off) and how many may go unanswered. */
  keepAliveInterval: number;
  keepAliveCountMax: number;
  /** Highest log level wanted (LogLevel); per-packet messages (level 3) are built only when asked for. */
  logLevel?: number;
  /**
   * Allocates packet buffers (default: zeroed Uint8Arrays). The socket layer passes Node's
   * unzeroed Buffer.allocUnsafe: the transport writes every byte before anything reads it.
   */
  allocate?: (size: number) => Uint8Array;
  /**
   * receive() may decrypt packets inside the chunks it is given instead of copying them out.
   * Leave unset when a chunk is read again later. A caller that reuses its chunks' memory
   * asks `inputBacklog`/`moveInput` for the bytes still queued and `takeInputPinned` for
   * whether anything else still refers to what was received.
   */
  ownsInput?: boolean;
  /**
   * Keep the keys in force each way, so that the connection can be handed over to the native
   * data plane (handoverState). Off, key material lives only inside the sealer and opener.
   */
  keepKeysForHandover?: boolean;
}

/** What SshClientCore reports to its driver through `pollEvent`. */
export type ClientEvent =
  | { type: 'log'; level: 1 | 2 | 3; message: string }
  | { type: 'status'; message: string }
  | { type: 'serverVersion'; version: string }
  | { type: 'banner'; text: string }
  /**
   * New keys are in use in both directions. `startedBy` is the side whose KEXINIT opened the
   * exchange (RFC 4253 §9): ours at a byte threshold or rekey(), the server's at its own limit;
   * the first exchange is ours unless UseStrictKeyExchange=2 waited for the server's.
   */
  | { type: 'keysExchanged'; negotiated: Negotiated; initial: boolean; startedBy: KexInitiator }
  /** The server answered a keepalive@openssh.com request (success or failure both prove it alive) after roundTripMs. */
  | { type: 'keepAliveAnswered'; roundTripMs: number }
  | { type: 'authenticated' }
  /**
   * Authentication needs a password, answers, a key or a signature, or a GSSAPI call (also
   * during a GSSAPI key exchange, which reads no input until it is answered): reply with answerCredential.
   */
  | { type: 'credentialRequest'; request: CredentialRequest }
  | { type: 'closed'; error: SshError | null; byPeer: boolean }
  | ChannelEvent;

/**
 * What a command returns. A command on a closed connection, or one the current state does not
 * allow, fails as a value, never by throwing: commands are issued from socket and timer
 * callbacks, where a throw would take the embedding process down.
 */
export type Outcome<T = void> = { ok: true; value: T } | { ok: false; error: SshError };

/** The result of a tcpip-forward request: the grant, or why there is none. */
export type ForwardOutcome = { ok: true; grant: Grant } | { ok: false; error: SshError };

/** Which side's KEXINIT opened a key exchange. */
export type KexInitiator = 'us' | 'server';

/** Completed re-exchanges (the first exchange not counted), by the side that started each. */
export interface RekeyCounts {
  byUs: number;
  byServer: number;
}

type KexState =
  | { kind: 'idle' }
  | { kind: 'expectKexInit'; ours: Uint8Array; oursDecoded: KexInitMessage }
  /** `pending`: a GSSAPI call the method waits on (a GSSAPI key exchange, ./kex-gss.ts). */
  | { kind: 'expectKexReply'; method: KexMethod | GssKexMethod; negotiated: Negotiated; ignoreNext: boolean; pending: { id: number; kind: string } | null }
  | { kind: 'expectNewKeys'; negotiated: Negotiated; keys: PendingKeys };

interface PendingKeys {
  hash: HashName;
  sharedSecret: Uint8Array;
  sharedSecretEncoding?: SharedSecretEncoding;
  exchangeHash: Uint8Array;
}

/**
 * The sans-IO SSH client: bytes in (`receive`), bytes out, events out (`pollEvent`) and time in
 * (`handleTimeout`). It does no I/O of its own; SSHReverseTunnel drives it over a socket.
 */
export class SshClientCore {
  private readonly transport: PacketTransport;
  private readonly connection: ConnectionLayer;
  private auth: UserAuth | null = null;
  private kex: KexState = { kind: 'idle' };
  /** Between our KEXINIT and our NEWKEYS, only key exchange messages may be sent. */
  private kexSending = false;
  /** UseStrictKeyExchange=2: our first KEXINIT waits for the server's (see start). */
  private firstKexInitDeferred = false;
  private readonly deferred: Uint8Array[] = [];
  private readonly events: ClientEvent[] = [];
  private serverVersion: string | null = null;
  private sessionId: Uint8Array | null = null;
  /**
   * The key that signed the first exchange hash (for a certificate or an X.509 chain, the
   * certified key): a re-exchange must be signed by it again. The certificate around it may
   * change meanwhile (renewed, a fresh OCSP response stapled) without the identity changing.
   */
  private hostKey: Uint8Array | null = null;
  private firstKexDone = false;
  /** Who opened the exchange running now (meaningful while `kex` is not idle). */
  private kexStartedBy: KexInitiator = 'us';
  private readonly completedRekeys: RekeyCounts = { byUs: 0, byServer: 0 };
  private strict = false;
  private authenticated = false;
  private closed = false;
  /** A received payload may still be referred to (see takeInputPinned). */
  private inputPinned = false;
  /**
   * On the native data plane, messages the relay passed up while the key exchange waits on a
   * GSSAPI call: they are dispatched once it is answered, as the JavaScript path leaves them
   * unread (the server's NEWKEYS may be among them).
   */
  private readonly heldFromPlane: { payload: Uint8Array; sequence: number }[] = [];
  private serverSigAlgs: string[] | undefined;
  private negotiated: Negotiated | null = null;
  private now = 0;
  private lastKeepAlive = 0;
  private keepAliveInterval: number;
  private keepAliveCountMax: number;
  private missedKeepAlives = 0;
  private lastReceive = 0;
  private transmitBlocked = false;
  private disconnectSent = false;
  /** Why the connection closed (null: a clean close). */
  private closeError: SshError | null = null;
  private readonly logPackets: boolean;
  /** When each direction starts compressing (RFC 4253 §6.2, zlib@openssh.com after USERAUTH_SUCCESS). */
  private readonly compression: CompressionSchedule;
  /** The forwardings the server granted on this connection. */
  private readonly grants = new ForwardingGrants();
  private nextCredentialRequest = 1;
  /**
   * The native data plane the connection was handed over to (null: the JavaScript path).
   * From then on it frames, seals and opens every packet; the transport is not used again.
   */
  private plane: PlanePort | null = null;
  /** The keys in force each way, kept for a handover to the native data plane. */
  private keysInForce: { outgoing: DirectionKeys | null; incoming: DirectionKeys | null } = { outgoing: null, incoming: null };
  /** keepKeysForHandover until the handover is done or given up (forgoHandover). */
  private keepKeys: boolean;

  constructor(private readonly options: ClientOptions) {
    this.keepKeys = options.keepKeysForHandover ?? false;
    this.logPackets = (options.logLevel ?? 1) >= 3;
    this.keepAliveInterval = options.keepAliveInterval;
    this.keepAliveCountMax = options.keepAliveCountMax;
    this.transport = new PacketTransport((n) => options.provider.randomBytes(n), options.acceptServerVersion, options.allocate, options.ownsInput);
    this.compression = new CompressionSchedule(this.transport, MAX_PACKET_LENGTH, (message) => this.log(1, message));
    this.connection = new ConnectionLayer(options.channels, {
      send: (payload) => this.send(payload),
      sendChannelData: (recipient, data, offset, length) => this.sendChannelData(recipient, data, offset, length),
      canSendData: () => !this.kexSending && !this.closed && !this.transmitBlocked,
      emit: (event) => this.events.push(event),
      isForwardingKnown: (address, port) => this.grants.match(address, port) !== undefined,
      isSocketForwardingKnown: (socketPath) => this.grants.matchSocket(socketPath) !== undefined,
      now: () => this.now,
      adopt: (ch, confirmation) => this.plane?.adopt(ch.localId, ch.remoteId, ch.localWindow, ch.remoteWindow, ch.remoteMaxPacket, confirmation),
      closeAdopted: (id) => this.plane?.closeChannel(id),
      channelsChanged: () => this.plane?.setLimits(this.options.channels.maxPacket, this.connection.windowTarget()),
    });
  }

  // ---- driver interface -------------------------------------------------------------

  /** Starts the connection: queues our identification line and first KEXINIT. */
  start(now: number): void {
    this.now = now;
    this.lastReceive = now;
    this.transport.queueRaw(new TextEncoder().encode(`${this.options.clientVersion}\r\n`));
    // UseStrictKeyExchange=2 answers the server's KEXINIT rather than sending ours at once: the
    // offer can then leave out the algorithms Terrapin affects when the server has no strict
    // kex. RFC 4253 §7.1 has each side send its KEXINIT without waiting, so the server's comes.
    if (this.options.strictKex === 2) this.firstKexInitDeferred = true;
    else this.guard(() => this.sendKexInit('us'));
  }

  /** Feeds bytes read from the server, with the current time in milliseconds. */
  receive(bytes: Uint8Array, now: number): void {
    if (this.closed || this.disconnectSent) return;
    this.now = now;
    this.lastReceive = now;
    this.transport.receive(bytes);
    this.guard(() => this.process());
  }

  /** Returns everything waiting to go on the wire, or null. */
  pollTransmit(): Uint8Array[] | null {
    return this.transport.drain();
  }

  /** Everything pollTransmit returned has been written: its memory may be reused. */
  transmitted(): void {
    this.transport.releaseOutput();
  }

  /** Received bytes still queued (the start of a packet): they lie at the end of the last chunk. */
  get inputBacklog(): number {
    return this.transport.inputBacklog;
  }

  /** Moves the queued received bytes to the start of `target` (see ownsInput). */
  moveInput(target: Uint8Array): void {
    this.transport.moveInput(target);
  }

  /**
   * True when, since the last call, a received payload went anywhere but a channelData event
   * (decoded messages may keep views into it), so the chunks received must not be reused.
   * Whoever handles channelData events answers for those views.
   */
  takeInputPinned(): boolean {
    const pinned = this.inputPinned;
    this.inputPinned = false;
    return pinned;
  }

  /** True when bytes are waiting for `pollTransmit`. */
  pollTransmitPending(): boolean {
    return this.transport.hasOutput;
  }

  /** The next event the core has for its driver, or undefined when there is none. */
  pollEvent(): ClientEvent | undefined {
    return this.events.shift();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get isAuthenticated(): boolean {
    return this.authenticated;
  }

  get negotiatedAlgorithms(): Negotiated | null {
    return this.negotiated;
  }

  /** Payload bytes before and after compression since the connection began (all zero without it). */
  get compressionCounters(): Readonly<{ plainSent: number; packedSent: number; plainReceived: number; packedReceived: number }> {
    return this.transport.compressionCounters;
  }

  /** Channel payload bytes since the connection began, every channel counted (closed ones too). */
  get channelBytes(): Readonly<{ sent: number; received: number }> {
    return { sent: this.connection.totalBytesSent, received: this.connection.totalBytesReceived };
  }

  /** Re-exchanges completed on this connection, by who started them (a copy). */
  get rekeys(): RekeyCounts {
    return { ...this.completedRekeys };
  }

  get strictKexNegotiated(): boolean {
    return this.strict;
  }

  get remoteVersion(): string | null {
    return this.serverVersion;
  }

  /** A read-only view of an open channel, or undefined. */
  channel(id: number): ChannelView | undefined {
    const view = this.connection.view(id);
    if (view) this.refreshAdopted(view);
    return view;
  }

  /** Read-only views of every channel not yet closed. */
  channelViews(): ChannelView[] {
    const views = this.connection.views();
    for (const view of views) this.refreshAdopted(view);
    return views;
  }

  /** A channel the native data plane carries: its counts are the plane's. */
  private refreshAdopted(view: ChannelView): void {
    if (!this.plane || !view.adopted) return;
    const stats = this.plane.channelStats(view.localId);
    if (stats) this.connection.updateAdopted(view.localId, stats.bytesSent, stats.bytesReceived);
  }

  /** The forwardings the server has granted on this connection. */
  get forwardingGrants(): readonly Grant[] {
    return this.grants.list;
  }

  /** The grant a forwarded-tcpip open for this address and port belongs to. */
  grantFor(connectedAddress: string, connectedPort: number): Grant | undefined {
    return this.grants.match(connectedAddress, connectedPort);
  }

  /** The grant a forwarded-streamlocal open for this socket path belongs to. */
  grantForSocket(socketPath: string): Grant | undefined {
    return this.grants.matchSocket(socketPath);
  }

  /** Milliseconds (absolute) when `handleTimeout` next needs to run, or null. */
  nextTimeout(): number | null {
    if (!this.authenticated || this.closed) return null;
    const keepAlive = this.keepAliveDue();
    const idle = this.connection.nextIdleDeadline();
    if (keepAlive === null) return idle;
    return idle === null ? keepAlive : Math.min(keepAlive, idle);
  }

  private keepAliveDue(): number | null {
    if (this.keepAliveInterval <= 0) return null;
    return Math.max(this.lastReceive, this.lastKeepAlive) + this.keepAliveInterval * 1000;
  }

  /** Tells the core the time (milliseconds): keepalives and idle-channel deadlines that are due run now. */
  handleTimeout(now: number): void {
    if (this.closed) return;
    this.now = now;
    this.guard(() => this.connection.closeIdleChannels(now));
    const due = this.keepAliveDue();
    if (!this.authenticated || due === null || now < due) return;
    this.guard(() => {
      if (this.missedKeepAlives >= this.keepAliveCountMax) {
        throw new SshError(Code.KeepAliveLimit, `no answer to ${this.missedKeepAlives} keep-alive requests`, 'peer');
      }
      this.missedKeepAlives++;
      this.lastKeepAlive = now;
      this.log(2, 'sending keepalive@openssh.com');
      this.connection.globalRequest('keepalive@openssh.com', new Uint8Array(0), () => {
        // close() fails every outstanding request through this callback: that is no answer.
        // A REQUEST_FAILURE (ok=false) is, so the reply's ok flag is not consulted.
        if (this.closed) return;
        this.missedKeepAlives = 0;
        // this.now is the time of the receive() that carried the reply.
        this.events.push({ type: 'keepAliveAnswered', roundTripMs: Math.max(0, this.now - now) });
      });
    });
  }

  /**
   * Backpressure from the socket: while blocked, channel data stays queued in its channel
   * (control messages still go out). Unblocking resumes every channel.
   */
  setTransmitBlocked(blocked: boolean): void {
    if (this.transmitBlocked === blocked) return;
    this.transmitBlocked = blocked;
    if (!blocked && !this.closed) this.guard(() => this.connection.pumpAll());
  }

  /**
   * MaxTransferRate for what the server sends: the window credit given to it is paced by
   * `credit` from now on (see InboundCredit); null gives it freely again.
   */
  setInboundCredit(credit: InboundCredit | null): void {
    this.connection.setInboundCredit(credit);
  }

  /** The inbound tokens came in: the channels owed window credit get it. */
  grantWithheldCredit(): void {
    if (this.closed || this.disconnectSent) return;
    this.guard(() => this.connection.grantWithheld());
  }

  // ---- commands ---------------------------------------------------------------------

  /** Confirms a forwarded channel the application accepted; `highWater` as in setHighWater. */
  acceptChannel(id: number, highWater?: number): Outcome {
    return this.command(() => {
      this.connection.accept(id);
      if (highWater !== undefined) this.connection.setHighWater(id, highWater);
    });
  }

  /** Accepts a forwarded channel and hands it to the native data plane (see handOver). */
  acceptAdoptedChannel(id: number): Outcome {
    if (!this.plane) return { ok: false, error: new SshError(Code.InvalidChannelId, 'the connection is not on the native data plane', 'local') };
    return this.command(() => this.connection.accept(id, true));
  }

  // ---- the native data plane ---------------------------------------------------------

  /** The crypto provider's name (the native data plane keeps to the native core). */
  get providerName(): string {
    return this.options.provider.name;
  }

  /** DefaultChannelIdleTimeout in seconds (0: none), which the native data plane does not keep yet. */
  get channelIdleTimeout(): number {
    return this.options.channels.idleTimeout ?? 0;
  }

  /** True once the connection was handed over to the native data plane. */
  get onNativePlane(): boolean {
    return this.plane !== null;
  }

  /**
   * What a handover to the native data plane needs, or why the connection cannot be handed
   * over now (a key exchange running, output not yet written, compression on). The caller
   * checks that the socket has written everything first.
   */
  handoverState(): CoreHandover | { refused: string } {
    if (this.plane) return { refused: 'already handed over' };
    if (this.closed || this.disconnectSent) return { refused: 'the connection is closing' };
    if (!this.authenticated || !this.firstKexDone) return { refused: 'not logged on yet' };
    if (this.kex.kind !== 'idle' || this.kexSending || this.deferred.length > 0) return { refused: 'a key exchange is running' };
    if (this.transport.hasOutput) return { refused: 'packets are waiting to be written' };
    const n = this.negotiated;
    if (n?.compressionClientToServer !== 'none' || n.compressionServerToClient !== 'none') return { refused: 'compression is not implemented on the native plane yet' };
    if (this.transport.midPacket) return { refused: 'a packet is half read' };
    const { outgoing, incoming } = this.keysInForce;
    if (!outgoing || !incoming) return { refused: 'the keys in force are not known' };
    const t = this.transport;
    const outgoingNow = keysAt(outgoing, t.packetsSentSinceKex, t.cipherBytesSent);
    const incomingNow = keysAt(incoming, t.packetsReceivedSinceKex, t.cipherBytesReceived);
    if (!outgoingNow || !incomingNow) return { refused: `the cipher ${outgoingNow ? incoming.cipher : outgoing.cipher} is not implemented on the native plane yet` };
    const input = new Uint8Array(this.transport.inputBacklog);
    this.transport.moveInput(input);
    return {
      outgoing: outgoingNow,
      incoming: incomingNow,
      sendSequence: this.transport.sendSequence,
      receiveSequence: this.transport.receiveSequence,
      maxPacket: this.options.channels.maxPacket,
      windowTarget: this.connection.windowTarget(),
      rekeyBytes: this.options.rekeyBytes,
      input,
    };
  }

  /**
   * The connection stays on the JavaScript plane for good: the keys kept for a handover are
   * let go, and none are kept from here on (key material lives only in the sealer and opener).
   */
  forgoHandover(): void {
    this.keepKeys = false;
    this.keysInForce = { outgoing: null, incoming: null };
  }

  /** From now on the native data plane behind `port` carries the connection (after handoverState). */
  attachPlane(port: PlanePort): void {
    this.plane = port;
    this.keepKeys = false; // new keys go to the plane from here (sendNewKeys, setIncomingKeys)
    this.keysInForce = { outgoing: null, incoming: null }; // the plane holds them now
    this.log(1, 'data plane: native (the connection was handed over to the relay thread)');
  }

  /** A message the native data plane passed up, with its packet sequence number. */
  receivePayload(payload: Uint8Array, sequence: number, now: number): void {
    if (this.closed || this.disconnectSent) return;
    this.now = now;
    this.lastReceive = now;
    this.guard(() => {
      if (payload.length === 0) throw new SshError(Code.ProtocolError, 'empty packet payload', 'peer');
      this.inputPinned = true;
      if (this.gssCallPending() || this.heldFromPlane.length > 0) {
        this.heldFromPlane.push({ payload: payload.slice(), sequence });
        return;
      }
      this.dispatch(payload[0]!, payload, sequence);
    });
  }

  private gssCallPending(): boolean {
    return this.kex.kind === 'expectKexReply' && this.kex.pending !== null;
  }

  /** Dispatches what the native plane passed up while a GSSAPI call was awaited, until another one is. */
  private dispatchHeld(): void {
    while (this.heldFromPlane.length > 0 && !this.closed && !this.gssCallPending()) {
      const { payload, sequence } = this.heldFromPlane.shift()!;
      this.dispatch(payload[0]!, payload, sequence);
    }
  }

  /** The native data plane counted RekeyBytes since the last key change: a re-exchange starts. */
  planeRekeyDue(): void {
    if (this.closed || !this.firstKexDone || this.kex.kind !== 'idle') return;
    this.log(1, 'key renegotiation threshold reached');
    this.guard(() => this.sendKexInit('us'));
  }

  /** The native data plane finished an adopted channel. */
  adoptedChannelClosed(id: number, bytesSent: number, bytesReceived: number): void {
    if (this.closed) return;
    this.guard(() => this.connection.finishAdopted(id, bytesSent, bytesReceived));
  }

  /** Refuses a forwarded channel (RFC 4254 §5.1 reason codes). */
  rejectChannel(id: number, reason: number, description: string): Outcome {
    return this.command(() => this.connection.reject(id, reason, description));
  }

  /**
   * Sends channel data, queueing a copy of what the window cannot take yet. The value is the
   * number of bytes now queued on the channel (compare with the channel's high-water mark).
   */
  sendData(id: number, data: Uint8Array): Outcome<number> {
    return this.command(() => this.connection.send(id, data));
  }

  /**
   * Asks the server to connect to host:port and carry the connection in a new channel
   * (direct-tcpip, RFC 4254 §7.2): how a jump host reaches the next hop. The value is the
   * channel's id; a channelOpened or a channelOpenFailed event for it follows. `origin` is
   * where the connection comes from, as the server will log it.
   */
  openDirectTcpip(host: string, port: number, origin: { address: string; port: number }): Outcome<number> {
    return this.command(() => {
      const connection = { connectedAddress: host, connectedPort: port, originAddress: origin.address, originPort: origin.port };
      return this.connection.open('direct-tcpip', DirectTcpipData.encode({ host, port, originAddress: origin.address, originPort: origin.port }), connection);
    });
  }

  /** Sends EOF once the data queued on the channel has been sent. */
  sendEof(id: number): Outcome {
    return this.command(() => this.connection.sendEof(id));
  }

  /** Closes a channel; with `flush`, after the data queued on it has been sent. */
  closeChannel(id: number, flush: boolean): Outcome {
    return this.command(() => this.connection.close(id, flush));
  }

  /** The application has finished with `bytes` received on the channel: window credit. */
  consume(id: number, bytes: number): void {
    this.command(() => this.connection.consume(id, bytes));
  }

  /** Answers a channel request the application decided on. */
  replyChannelRequest(id: number, success: boolean): Outcome {
    return this.command(() => this.connection.replyChannelRequest(id, success));
  }

  /** Sends a global request; `onReply` (if given) runs as the reply is processed. */
  globalRequest(name: string, data: Uint8Array, onReply?: (ok: boolean, data: Uint8Array) => void): Outcome {
    return this.command(() => this.connection.globalRequest(name, data, onReply));
  }

  /**
   * Asks the server to listen on address:port (RFC 4254 §7.1). `onReply` runs while the reply
   * is processed, so the grant is in the table before any later message (a CHANNEL_OPEN for
   * it may follow in the same read); it also runs, failed, if the connection closes first.
   */
  requestForwarding(address: string, port: number, onReply: (outcome: ForwardOutcome) => void): Outcome {
    return this.command(() =>
      this.connection.globalRequest(TCPIP_FORWARD, ForwardRequest.encode(address, port), (ok, data) => {
        if (this.closed) return onReply({ ok: false, error: closedError() });
        if (!ok) return onReply({ ok: false, error: new SshError(Code.RequestFailure, `the server refused to listen on ${address || '*'}:${port}`, 'peer') });
        const boundPort = grantedPort(port, data);
        if (boundPort === null) return onReply({ ok: false, error: new SshError(Code.ProtocolError, 'server allocated an invalid port', 'peer') });
        const grant: Grant = { address, requestedPort: port, boundPort };
        this.grants.add(grant);
        onReply({ ok: true, grant });
      }),
    );
  }

  /**
   * Cancels a granted forwarding (RFC 4254 §7.1). The grant leaves the table at once: opens
   * for it that cross the cancel are refused.
   */
  cancelForwarding(grant: Grant, onReply: (ok: boolean) => void): Outcome {
    return this.command(() => {
      this.grants.remove(grant);
      // OpenSSH's own client sends the streamlocal cancel without want-reply; sshd answers it when asked.
      const [name, data] = grant.streamLocal
        ? [CANCEL_STREAMLOCAL_FORWARD, StreamLocalForwardRequest.encode(grant.address)]
        : [CANCEL_TCPIP_FORWARD, ForwardRequest.encode(grant.address, grant.boundPort)];
      this.connection.globalRequest(name, data, (ok) => onReply(ok && !this.closed));
    });
  }

  /**
   * Asks the server to listen on a Unix socket (OpenSSH's streamlocal-forward@openssh.com,
   * PROTOCOL §2.4); the grant is in the table before later messages, as with requestForwarding.
   */
  requestStreamLocalForwarding(socketPath: string, onReply: (outcome: ForwardOutcome) => void): Outcome {
    return this.command(() =>
      this.connection.globalRequest(STREAMLOCAL_FORWARD, StreamLocalForwardRequest.encode(socketPath), (ok) => {
        if (this.closed) return onReply({ ok: false, error: closedError() });
        if (!ok) return onReply({ ok: false, error: new SshError(Code.RequestFailure, `the server refused to listen on ${socketPath}`, 'peer') });
        const grant: Grant = { address: socketPath, requestedPort: 0, boundPort: 0, streamLocal: true };
        this.grants.add(grant);
        onReply({ ok: true, grant });
      }),
    );
  }

  /**
   * Answers a credentialRequest event, at once or later (a prompt, an agent). An answer for
   * no waiting request fails as a value; one that leaves no way to authenticate ends the
   * connection with 1032, as the server's refusals do.
   */
  answerCredential(id: number, answer: CredentialAnswer): Outcome {
    if (this.closed || this.disconnectSent) return { ok: false, error: closedError() };
    const kex = this.kex;
    if (kex.kind === 'expectKexReply' && kex.pending?.id === id && kex.method instanceof GssKexMethod) {
      if (answer.kind !== kex.pending.kind) return { ok: false, error: new SshError(Code.BadState, `credential request ${id} wants a ${kex.pending.kind} answer, not ${answer.kind}`, 'local') };
      const method = kex.method;
      kex.pending = null;
      if (answer.kind === 'gssapiToken' || answer.kind === 'gssapiVerifyMic') {
        this.guard(() => {
          this.afterKexStep(kex, method.answer(answer));
          // What arrived meanwhile.
          this.dispatchHeld();
          this.process();
        });
      }
      return this.closed ? { ok: false, error: this.closeError ?? closedError() } : { ok: true, value: undefined };
    }
    const problem = !this.auth || this.authenticated ? 'authentication is not under way' : this.auth.answerProblem(id, answer);
    if (problem) return { ok: false, error: new SshError(Code.BadState, problem, 'local') };
    this.guard(() => this.auth!.answer(answer));
    return this.closed ? { ok: false, error: this.closeError ?? closedError() } : { ok: true, value: undefined };
  }

  /** Settings the application may change while connected; the timer follows at the next flush. */
  updateSettings(settings: { keepAliveInterval: number; keepAliveCountMax: number; maxWindow: number; idleTimeout: number }): Outcome {
    this.keepAliveInterval = settings.keepAliveInterval;
    this.keepAliveCountMax = settings.keepAliveCountMax;
    this.connection.updateSettings({ maxWindow: settings.maxWindow, idleTimeout: settings.idleTimeout });
    return { ok: true, value: undefined };
  }

  /** Runs a command: local misuse fails as a value, a protocol error closes the connection. */
  private command<T>(work: () => T): Outcome<T> {
    if (this.closed || this.disconnectSent) return { ok: false, error: closedError() };
    if (!this.authenticated) return { ok: false, error: new SshError(Code.NotConnected, 'not logged on yet', 'local') };
    let result: Outcome<T> | null = null;
    this.guard(() => {
      try {
        result = { ok: true, value: work() };
      } catch (error) {
        if (error instanceof SshError && error.origin === 'local') {
          result = { ok: false, error };
          return;
        }
        throw error;
      }
    });
    return result ?? { ok: false, error: this.closeError ?? closedError() };
  }

  /** Starts a key exchange now (exchangeKeys / SSHKeyRenegotiate). No-op if one is running. */
  rekey(): Outcome {
    if (this.closed || this.disconnectSent) return { ok: false, error: closedError() };
    if (this.firstKexDone && this.kex.kind === 'idle') this.guard(() => this.sendKexInit('us'));
    return { ok: true, value: undefined };
  }

  /**
   * Sends DISCONNECT. Normally the connection counts as closed at once; with
   * `waitForServer` it stays open (input is ignored) until the server closes the socket.
   */
  disconnect(reason: number = DisconnectReason.ByApplication, description = 'closed by the application', waitForServer = false): void {
    if (this.closed || this.disconnectSent) return;
    this.sendNow(Disconnect.encode({ reason, description: new TextEncoder().encode(description), language: new Uint8Array(0) }));
    this.disconnectSent = true;
    if (waitForServer) this.log(2, 'sent DISCONNECT; waiting for the server to close the connection');
    else this.close(null, false);
  }

  /**
   * Ends the connection because of a failure on our side that no protocol rule names (an
   * internal error): DISCONNECT with the reason, then closed with `error`.
   */
  fail(error: SshError): void {
    this.guard(() => {
      throw error;
    });
  }

  /** Marks the connection gone (the socket closed under us). */
  transportClosed(error: SshError | null): void {
    if (this.closed) return;
    if (this.disconnectSent) {
      this.log(2, 'the server closed the connection');
      this.close(null, true);
      return;
    }
    this.close(error ?? new SshError(Code.ConnectionDropped, 'the server closed the connection', 'peer'), true);
  }

  // ---- internals ---------------------------------------------------------------------

  private guard(work: () => void): void {
    try {
      work();
    } catch (cause) {
      const error = cause instanceof SshError ? cause : new SshError(Code.ConnectionFailed, String((cause as Error)?.message ?? cause), 'local', { cause });
      if (this.closed) return;
      if (this.transport.encrypted || this.kex.kind !== 'idle' || this.serverVersion) {
        try {
          this.sendNow(
            Disconnect.encode({
              reason: disconnectReasonFor(error),
              // An authentication failure's message names local key files: the server is told only the reason.
              description: new TextEncoder().encode(error.code === Code.AuthFailed ? 'no more authentication methods' : error.message),
              language: new Uint8Array(0),
            }),
          );
        } catch {
          /* nothing more to do */
        }
      }
      this.close(error, false);
    }
  }

  private close(error: SshError | null, byPeer: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.closeError = error;
    this.connection.failPending();
    for (const line of compressionSummary(this.transport.compressionCounters)) this.log(1, line);
    this.events.push({ type: 'closed', error, byPeer });
  }

  /** With a provider that picks a backend per algorithm (the automatic one), which one carries each direction. */
  private logPacketBackends(negotiated: Negotiated): void {
    const provider = this.options.provider;
    if (!provider.backendFor) return;
    const describe = (cipher: string, mac: string | null) => `${cipher}${mac ? ` with ${mac}` : ''} on ${provider.backendFor!(cipher, mac)}`;
    this.log(
      2,
      `packet crypto: to the server ${describe(negotiated.cipherClientToServer, negotiated.macClientToServer)}, from it ${describe(negotiated.cipherServerToClient, negotiated.macServerToClient)}`,
    );
  }

  private log(level: 1 | 2 | 3, message: string): void {
    this.events.push({ type: 'log', level, message });
  }

  private status(message: string): void {
    this.events.push({ type: 'status', message });
    this.log(1, message);
  }

  /** Queues a payload, deferring it while a key exchange forbids non-kex messages. */
  private send(payload: Uint8Array): void {
    if (this.closed) return;
    if (this.kexSending && !isKexMessage(payload[0]!)) {
      this.deferred.push(payload);
      return;
    }
    this.sendNow(payload);
  }

  private sendNow(payload: Uint8Array): void {
    if (this.plane) {
      const sequence = this.plane.send(payload);
      if (payload[0] === MSG.GLOBAL_REQUEST && wantsReply(payload) && sequence >= 0) this.connection.globalRequestSent(sequence);
      if (this.logPackets) this.log(3, `sent ${messageName(payload[0]!)} (${payload.length} bytes)`);
      return;
    }
    if (payload[0] === MSG.GLOBAL_REQUEST && wantsReply(payload)) this.connection.globalRequestSent(this.transport.sendSequence);
    this.transport.queuePayload(payload);
    if (this.logPackets) this.log(3, `sent ${messageName(payload[0]!)} (${payload.length} bytes)`);
    this.maybeRekey();
  }

  private sendChannelData(recipient: number, data: Uint8Array, offset: number, length: number): void {
    if (this.plane) {
      // A channel the plane did not adopt (event mode, SOCKS): its data goes as a control payload.
      const payload = new Uint8Array(ConnectionLayer.dataHeaderSize + length);
      ConnectionLayer.writeDataHeader(payload, 0, recipient, length);
      payload.set(data.subarray(offset, offset + length), ConnectionLayer.dataHeaderSize);
      this.plane.send(payload);
      return;
    }
    this.transport.queue(ConnectionLayer.dataHeaderSize + length, (packet, at) => {
      ConnectionLayer.writeDataHeader(packet, at, recipient, length);
      packet.set(data.subarray(offset, offset + length), at + ConnectionLayer.dataHeaderSize);
    });
    this.maybeRekey();
  }

  private maybeRekey(): void {
    // On the native data plane the plane counts the bytes and says when (planeRekeyDue).
    if (this.plane || !this.firstKexDone || this.kex.kind !== 'idle' || this.closed) return;
    const t = this.transport;
    if (t.bytesSentSinceKex >= this.options.rekeyBytes || t.bytesReceivedSinceKex >= this.options.rekeyBytes) {
      this.log(1, 'key renegotiation threshold reached');
      this.sendKexInit('us');
    }
  }

  private buildKexInit(server?: KexInitMessage): KexInitMessage {
    const a = server ? this.terrapinSafeOffer(server) : this.options.algorithms;
    const kex = [...a.kex];
    if (!this.firstKexDone) {
      kex.push(EXT_INFO_CLIENT);
      if (this.options.strictKex > 0) kex.push(STRICT_KEX_CLIENT);
    }
    return {
      cookie: this.options.provider.randomBytes(16),
      kexAlgorithms: kex,
      hostKeyAlgorithms: a.hostKey,
      ciphersClientToServer: a.cipher,
      ciphersServerToClient: a.cipher,
      macsClientToServer: a.mac,
      macsServerToClient: a.mac,
      compressionClientToServer: a.compression,
      compressionServerToClient: a.compression,
      languagesClientToServer: [],
      languagesServerToClient: [],
      firstKexPacketFollows: false,
      reserved: 0,
    };
  }

  /**
   * Our algorithm lists for a server that has no strict kex (UseStrictKeyExchange=2): without
   * chacha20-poly1305, and without the EtM MACs if a CBC cipher would be chosen, so that the
   * connection goes on with algorithms prefix truncation cannot touch (CVE-2023-48795).
   */
  private terrapinSafeOffer(server: KexInitMessage): ClientOptions['algorithms'] {
    const a = this.options.algorithms;
    if (server.kexAlgorithms.includes(STRICT_KEX_SERVER)) return a;
    const cipher = a.cipher.filter((c) => !c.startsWith('chacha20-poly1305'));
    const isAead = (c: string) => this.options.provider.ciphers.get(c)?.aead ?? false;
    const firstCommon = (ours: readonly string[], theirs: readonly string[]) => ours.find((c) => theirs.includes(c));
    const choices = [firstCommon(cipher, server.ciphersClientToServer), firstCommon(cipher, server.ciphersServerToClient)];
    const cbcWithMac = choices.some((c) => c?.endsWith('-cbc') && !isAead(c));
    const mac = cbcWithMac ? a.mac.filter((m) => !m.includes('-etm@')) : a.mac;
    if (cipher.length !== a.cipher.length || mac.length !== a.mac.length) {
      this.log(1, 'the server has no strict key exchange: leaving chacha20-poly1305 and EtM MACs with CBC out of the offer (UseStrictKeyExchange=2)');
    }
    return { ...a, cipher, mac };
  }

  /** Sends our KEXINIT, `server` the server's when ours had to wait for it (UseStrictKeyExchange=2). */
  private sendKexInit(startedBy: KexInitiator, server?: KexInitMessage): void {
    this.kexStartedBy = startedBy;
    const decoded = this.buildKexInit(server);
    const ours = KexInit.encode(decoded);
    this.kexSending = true;
    this.kex = { kind: 'expectKexInit', ours, oursDecoded: decoded };
    this.status(this.firstKexDone ? 'starting key re-exchange' : 'starting key exchange');
    this.sendNow(ours);
  }

  private process(): void {
    if (!this.serverVersion) {
      const version = this.transport.readVersion();
      if (!version) return;
      this.serverVersion = version.serverVersion;
      for (const line of version.preVersionLines) this.log(2, `server banner line: ${line}`);
      this.events.push({ type: 'serverVersion', version: version.serverVersion });
      this.status(`server version: ${version.serverVersion}`);
    }
    for (;;) {
      if (this.closed) return;
      // While the key exchange waits on a GSSAPI call, what follows stays unread: it may be the
      // server's NEWKEYS and packets under the new keys, which can be opened only afterwards.
      if (this.kex.kind === 'expectKexReply' && this.kex.pending) return;
      const sequence = this.transport.receiveSequence;
      const payload = this.transport.readPacket();
      if (!payload) return;
      if (payload.length === 0) throw new SshError(Code.ProtocolError, 'empty packet payload', 'peer');
      const id = payload[0]!;
      if (id !== MSG.CHANNEL_DATA && id !== MSG.CHANNEL_WINDOW_ADJUST) this.inputPinned = true;
      this.dispatch(id, payload, sequence);
    }
  }

  private dispatch(id: number, payload: Uint8Array, sequence: number): void {
    if (this.logPackets) this.log(3, `received ${messageName(id)} (${payload.length} bytes)`);
    // Strict kex (OpenSSH PROTOCOL, "kex-strict"): during the first exchange only kex messages may arrive.
    if (!this.firstKexDone && this.strict && !isKexMessage(id)) {
      throw new SshError(Code.ProtocolError, `${messageName(id)} during the initial strict key exchange`, 'peer');
    }
    if (id === MSG.DISCONNECT) {
      const d = Disconnect.decode(payload);
      const text = safeText(d.description);
      // The server's limit on authentication attempts is an authentication failure (1032).
      const authFailure = this.authenticated ? null : this.auth?.disconnectError(d.reason, text);
      const normalClose = d.reason === DisconnectReason.ByApplication;
      this.close(authFailure ?? new SshError(Code.ServerDisconnected, `server disconnected (reason ${d.reason}): ${text}`, 'peer', { normalClose }), true);
      return;
    }
    if (id === MSG.IGNORE) {
      Ignore.decode(payload);
      return;
    }
    if (id === MSG.DEBUG) {
      const d = Debug.decode(payload);
      this.log(d.alwaysDisplay ? 1 : 2, `server debug: ${safeText(d.text)}`);
      return;
    }
    if (id === MSG.UNIMPLEMENTED) {
      // As OpenSSH does: note it and carry on. If it answers our oldest global request, that
      // request has failed (some servers answer unknown requests this way).
      const u = Unimplemented.decode(payload);
      this.log(1, `server did not implement our packet ${u.sequence}`);
      this.connection.unimplemented(u.sequence);
      return;
    }
    if (id === MSG.KEXINIT) return this.onKexInit(payload, sequence);
    if (id === MSG.NEWKEYS) return this.onNewKeys(payload);
    if (id >= 30 && id <= 49) return this.onKexMethodMessage(payload);
    if (id === MSG.EXT_INFO) return this.onExtInfo(payload);
    if (id === MSG.SERVICE_ACCEPT || (id >= 50 && id <= 79)) {
      if (!this.auth || this.authenticated) throw new SshError(Code.ProtocolError, `${messageName(id)} outside user authentication`, 'peer');
      if (this.auth.handle(id, payload)) {
        this.authenticated = true;
        this.compression.userAuthenticated();
        this.status('authentication succeeded');
        this.events.push({ type: 'authenticated' });
      }
      return;
    }
    if (id >= 80 && id <= 127) {
      if (!this.authenticated) throw new SshError(Code.ProtocolError, `${messageName(id)} before authentication`, 'peer');
      this.connection.handle(id, payload);
      return;
    }
    // RFC 4253 §11.4: answer unknown message numbers with UNIMPLEMENTED.
    const reply = new Uint8Array(5);
    reply[0] = MSG.UNIMPLEMENTED;
    writeUint32(reply, 1, sequence);
    this.send(reply);
  }

  private onKexInit(payload: Uint8Array, sequence: number): void {
    if (this.firstKexInitDeferred) {
      this.firstKexInitDeferred = false;
      this.sendKexInit('server', KexInit.decode(payload));
    } else if (this.kex.kind === 'idle') {
      if (!this.firstKexDone) throw new SshError(Code.ProtocolError, 'KEXINIT out of order', 'peer');
      this.sendKexInit('server'); // server-initiated re-exchange
    }
    const state = this.kex;
    if (state.kind !== 'expectKexInit') {
      throw new SshError(Code.ProtocolError, `KEXINIT while a key exchange is already running (${state.kind})`, 'peer');
    }
    const server = KexInit.decode(payload);
    const provider = this.options.provider;
    const negotiated = negotiate(state.oursDecoded, server, (c) => provider.ciphers.get(c)?.aead ?? false);
    if (!this.firstKexDone) {
      this.strict = negotiated.strictKex;
      if (this.strict && sequence !== 0) {
        throw new SshError(Code.ProtocolError, 'strict key exchange: KEXINIT was not the first packet', 'peer');
      }
      if (!this.strict && this.options.strictKex === 3) {
        throw new SshError(Code.NegotiationFailed, 'the server does not support strict key exchange (UseStrictKeyExchange=3)', 'peer');
      }
      if (!this.strict && this.options.strictKex === 2 && isTerrapinAffected(negotiated)) {
        throw new SshError(Code.NegotiationFailed, 'the server does not support strict key exchange and the negotiated algorithms are open to prefix truncation (UseStrictKeyExchange=2)', 'peer');
      }
    }
    this.log(
      1,
      `negotiated kex=${negotiated.kex} hostkey=${negotiated.hostKey} cipher=${negotiated.cipherClientToServer}/${negotiated.cipherServerToClient} mac=${negotiated.macClientToServer ?? 'aead'}/${negotiated.macServerToClient ?? 'aead'} compression=${negotiated.compressionClientToServer}/${negotiated.compressionServerToClient}`,
    );
    const kexContext = {
      provider,
      clientVersion: this.options.clientVersion,
      serverVersion: this.serverVersion!,
      clientKexInit: state.ours,
      serverKexInit: copyBytes(payload),
      groupBits: { min: 2048, preferred: Math.max(2048, this.options.dhGroupBits), max: 8192 },
    };
    if (negotiated.hostKey === NULL_HOST_KEY && !isGssKex(negotiated.kex)) {
      throw new SshError(Code.NegotiationFailed, `host key algorithm "null" with key exchange ${negotiated.kex}, which needs a host key (RFC 4462 §5)`, 'peer');
    }
    const method = isGssKex(negotiated.kex) ? new GssKexMethod(negotiated.kex, kexContext) : createKexMethod(negotiated.kex, kexContext);
    // RFC 4253 §7: a wrong guess by the server means its first kex packet must be ignored.
    const guessedRight = server.kexAlgorithms[0] === negotiated.kex && server.hostKeyAlgorithms[0] === negotiated.hostKey;
    const kexState = { kind: 'expectKexReply' as const, method, negotiated, ignoreNext: server.firstKexPacketFollows && !guessedRight, pending: null };
    this.kex = kexState;
    this.afterKexStep(kexState, method.start());
  }

  private onKexMethodMessage(payload: Uint8Array): void {
    const state = this.kex;
    if (state.kind !== 'expectKexReply') {
      throw new SshError(Code.ProtocolError, `key exchange message ${payload[0]} outside a key exchange`, 'peer');
    }
    if (state.ignoreNext) {
      state.ignoreNext = false;
      return;
    }
    this.afterKexStep(state, state.method.handle(payload));
  }

  /**
   * Sends what a key exchange step produced, asks for the GSSAPI call it waits on, and once
   * the server is proven (its signature, or its GSSAPI MIC over H) sends NEWKEYS.
   */
  private afterKexStep(state: Extract<KexState, { kind: 'expectKexReply' }>, step: GssKexStep): void {
    for (const p of step.send) this.sendNow(p);
    if (step.request) {
      const request = { ...step.request, id: this.nextCredentialRequest++ } as CredentialRequest;
      state.pending = { id: request.id, kind: request.kind };
      this.events.push({ type: 'credentialRequest', request });
      return;
    }
    let hostKey: Uint8Array | null;
    let signature: Uint8Array | null = null;
    let sharedSecret: Uint8Array;
    let sharedSecretEncoding: SharedSecretEncoding | undefined;
    let exchangeHash: Uint8Array;
    if (state.method instanceof GssKexMethod) {
      const outcome = state.method.gssOutcome;
      if (!outcome) return;
      ({ hostKey, sharedSecret, exchangeHash } = outcome);
      this.status(`GSSAPI key exchange ${state.negotiated.kex}: the server's MIC over the exchange hash verifies`);
    } else {
      if (!step.outcome) return;
      ({ hostKey, signature, sharedSecret, sharedSecretEncoding, exchangeHash } = step.outcome);
    }
    // A GSSAPI key exchange may leave the host key out (OpenSSH's sshd does, whatever host key
    // algorithm was negotiated): the GSSAPI context has authenticated the server instead. One
    // that is sent is judged as any host key is (it cannot be with "null").
    if (hostKey && state.negotiated.hostKey !== NULL_HOST_KEY) this.checkHostKey(hostKey, signature, exchangeHash, state.negotiated);
    // The native data plane frames NEWKEYS itself, at the switch of keys (installSealer).
    if (!this.plane) this.sendNow(NewKeys.encode({}));
    const keys: PendingKeys = { hash: state.method.hash, sharedSecret, sharedSecretEncoding, exchangeHash };
    if (!this.sessionId) this.sessionId = exchangeHash;
    this.installSealer(state.negotiated, keys);
    this.kex = { kind: 'expectNewKeys', negotiated: state.negotiated, keys };
  }

  /** `signature` null: the exchange hash is proven otherwise (a GSSAPI MIC, RFC 4462 §2). */
  private checkHostKey(hostKey: Uint8Array, signature: Uint8Array | null, exchangeHash: Uint8Array, negotiated: Negotiated): void {
    const provider = this.options.provider;
    const certificateAlgorithm = CERTIFICATE_ALGORITHMS[negotiated.hostKey];
    const x509Algorithm = x509AlgorithmSpec(negotiated.hostKey);
    // For a certificate, the certified key signs the exchange hash, with the plain algorithm;
    // for an X.509 chain, the leaf's key, with the signature named as RFC 6187 §3 names it.
    const certificate = certificateAlgorithm ? readVerifiedCertificate(provider, hostKey, certificateAlgorithm.blobType) : undefined;
    const x509 = x509Algorithm ? readX509HostKey(hostKey, signature, x509Algorithm, this.options.hostCertificateName, this.now) : undefined;
    const plainKey = certificate ? certificate.publicKeyBlob : x509 ? x509.keyBlob : hostKey;
    const keyType = x509 ? x509.keyType : publicKeyTypeName(certificate ? certificate.publicKey : parsePublicKey(hostKey));
    const signatureAlgorithm = certificateAlgorithm ? certificateAlgorithm.signature : x509 ? x509.signatureAlgorithm : negotiated.hostKey;
    if (keyType !== keyTypeForAlgorithm(signatureAlgorithm)) {
      throw new SshError(Code.HostKeyVerifyFailed, `server sent a ${keyType} host key for algorithm ${negotiated.hostKey}`, 'peer');
    }
    const signed = x509 ? x509.signature : signature;
    if (signed && !provider.verify(plainKey, signatureAlgorithm, signed, exchangeHash)) {
      throw new SshError(Code.HostKeyVerifyFailed, 'the server host key signature over the exchange hash is invalid', 'peer');
    }
    if (this.hostKey) {
      // Re-exchange: the server must keep proving the same identity.
      if (toHex(this.hostKey) !== toHex(plainKey)) {
        throw new SshError(Code.HostKeyRejected, 'the server presented a different host key during key re-exchange', 'peer');
      }
      return;
    }
    const info: HostKeyInfo = {
      hostKey: plainKey,
      algorithm: negotiated.hostKey,
      keyType,
      fingerprints: fingerprints(provider, plainKey),
    };
    if (certificate) {
      const name = this.options.hostCertificateName;
      const problem =
        name === undefined && certificate.principals.length > 0
          ? 'the host certificate lists principals and no host name was given to check them against'
          : checkHostCertificate(certificate, name ?? '', BigInt(Math.floor(this.now / 1000)));
      info.certificate = describeHostCertificate(certificate, hostKey, (blob) => fingerprints(provider, blob), problem);
      this.status(
        `server host certificate ${negotiated.hostKey} SHA256:${info.fingerprints.sha256}, serial ${certificate.serial} ID ${JSON.stringify(printable(certificate.keyId))} ` +
          `CA ${info.certificate.caKeyType} SHA256:${info.certificate.caFingerprints.sha256} valid ${info.certificate.validity}`,
      );
      if (problem) this.log(1, problem);
    } else if (x509) {
      info.x509 = x509.info;
      this.status(`server X.509 host certificate ${negotiated.hostKey} SHA256:${info.fingerprints.sha256}, subject ${JSON.stringify(x509.info.subject)} issuer ${JSON.stringify(x509.info.issuer)}`);
      if (x509.info.problem) this.log(1, x509.info.problem);
    } else {
      this.status(`server host key ${keyType} SHA256:${info.fingerprints.sha256}`);
    }
    const verdict = this.options.verifyHostKey(info);
    if (verdict !== true) {
      const shown = `${keyType} SHA256:${info.fingerprints.sha256}`;
      const reason =
        typeof verdict === 'object'
          ? verdict.refused
          : info.certificate?.problem
            ? `the server host certificate (${shown}) was not accepted: ${info.certificate.problem}`
            : info.x509?.problem
              ? `the server's X.509 host certificate (${shown}) was not accepted: ${info.x509.problem}`
              : `the server host key (${shown}) was not accepted`;
      throw new SshError(Code.HostKeyRejected, reason, 'local');
    }
    this.hostKey = plainKey;
  }

  private directionKeys(negotiated: Negotiated, keys: PendingKeys, clientToServer: boolean) {
    const provider = this.options.provider;
    const cipher = clientToServer ? negotiated.cipherClientToServer : negotiated.cipherServerToClient;
    const mac = clientToServer ? negotiated.macClientToServer : negotiated.macServerToClient;
    const info = provider.ciphers.get(cipher);
    if (!info) throw new SshError(Code.UnsupportedAlgorithm, `cipher ${cipher} is not available`, 'local');
    const macInfo = mac ? provider.macs.get(mac) : undefined;
    if (mac && !macInfo) throw new SshError(Code.UnsupportedAlgorithm, `MAC ${mac} is not available`, 'local');
    const derive = (letter: string, length: number) => deriveKey(provider, keys.hash, keys.sharedSecret, keys.exchangeHash, letter, this.sessionId!, length, keys.sharedSecretEncoding);
    return {
      cipher,
      mac,
      iv: derive(clientToServer ? 'A' : 'B', info.ivLength),
      key: derive(clientToServer ? 'C' : 'D', info.keyLength),
      macKey: macInfo ? derive(clientToServer ? 'E' : 'F', macInfo.keyLength) : new Uint8Array(0),
    };
  }

  private installSealer(negotiated: Negotiated, keys: PendingKeys): void {
    const outgoing = this.directionKeys(negotiated, keys, true);
    if (this.plane) {
      this.plane.sendNewKeys(outgoing, this.strict);
    } else {
      try {
        this.transport.setSealer(this.options.provider.createSealer(outgoing));
      } catch (cause) {
        if (cause instanceof SshError) throw cause;
        throw new SshError(Code.CannotSetKeys, `cannot set outgoing keys: ${(cause as Error).message}`, 'local', { cause });
      }
      if (this.keepKeys) this.keysInForce.outgoing = outgoing;
      if (this.strict) this.transport.sendSequence = 0;
    }
    this.compression.outgoingKeysChanged(negotiated.compressionClientToServer);
    this.kexSending = false;
    for (const p of this.deferred.splice(0)) this.sendNow(p);
    this.connection.pumpAll();
  }

  private onNewKeys(payload: Uint8Array): void {
    const state = this.kex;
    if (state.kind !== 'expectNewKeys') throw new SshError(Code.ProtocolError, 'NEWKEYS outside a key exchange', 'peer');
    NewKeys.decode(payload);
    const incoming = this.directionKeys(state.negotiated, state.keys, false);
    if (this.plane) {
      this.plane.setIncomingKeys(incoming, this.strict);
    } else {
      try {
        this.transport.setOpener(this.options.provider.createOpener(incoming));
      } catch (cause) {
        if (cause instanceof SshError) throw cause;
        throw new SshError(Code.CannotSetKeys, `cannot set incoming keys: ${(cause as Error).message}`, 'local', { cause });
      }
      if (this.keepKeys) this.keysInForce.incoming = incoming;
      if (this.strict) this.transport.receiveSequence = 0;
    }
    this.compression.incomingKeysChanged(state.negotiated.compressionServerToClient);
    const initial = !this.firstKexDone;
    this.firstKexDone = true;
    this.negotiated = state.negotiated;
    this.kex = { kind: 'idle' };
    this.status(initial ? 'key exchange complete' : 'key re-exchange complete');
    this.logPacketBackends(state.negotiated);
    if (!initial) this.completedRekeys[this.kexStartedBy === 'us' ? 'byUs' : 'byServer']++;
    this.events.push({ type: 'keysExchanged', negotiated: state.negotiated, initial, startedBy: this.kexStartedBy });
    if (initial) {
      this.auth = new UserAuth(this.options.auth, {
        sessionId: this.sessionId!,
        serverSignatureAlgorithms: () => this.serverSigAlgs,
        send: (p) => this.send(p),
        banner: (text) => this.events.push({ type: 'banner', text }),
        status: (m) => this.status(m),
        request: (body) => {
          const request = { ...body, id: this.nextCredentialRequest++ } as CredentialRequest;
          this.events.push({ type: 'credentialRequest', request });
          return request.id;
        },
        gssapiKeyExchanged: () => isGssKex(state.negotiated.kex),
      });
      this.auth.start();
    }
    this.connection.pumpAll();
  }

  private onExtInfo(payload: Uint8Array): void {
    if (!this.firstKexDone) throw new SshError(Code.ProtocolError, 'EXT_INFO before the first NEWKEYS', 'peer');
    const extensions = parseExtensions(ExtInfo.decode(payload).extensions);
    const sigAlgs = extensions.get('server-sig-algs');
    if (sigAlgs) {
      this.serverSigAlgs = fromUtf8(sigAlgs).split(',');
      this.log(2, `server-sig-algs: ${this.serverSigAlgs.join(',')}`);
    }
  }
}

/** GLOBAL_REQUEST layout: byte 80, string name, boolean want_reply. */
function wantsReply(payload: Uint8Array): boolean {
  const nameLength = readUint32(payload, 1);
  return payload[5 + nameLength] === 1;
}

function closedError(): SshError {
  return new SshError(Code.NotConnected, 'the SSH connection is closed', 'local');
}

/**
 * The keys of one direction as its cipher stands after `packets` packets and `cipherBytes`
 * bytes through it since they were installed, for a handover to the native data plane:
 * AES-GCM's invocation counter (RFC 5647 §7.1) and CTR's block counter (RFC 4344 §4) move on
 * with the traffic, ChaCha20-Poly1305's nonce is the sequence number. Null for the ciphers
 * whose state is not a counter (CBC's last block, RC4's stream): those stay on the
 * JavaScript path.
 */
function keysAt(keys: DirectionKeys, packets: number, cipherBytes: number): DirectionKeys | null {
  const { cipher } = keys;
  if (cipher.startsWith('chacha20-poly1305')) return keys;
  const iv = keys.iv.slice();
  if (cipher.includes('-gcm')) {
    addBigEndian(iv.subarray(4), BigInt(packets));
    return { ...keys, iv };
  }
  if (cipher.endsWith('-ctr')) {
    // The counter is the IV, one step per cipher block (as wide as the IV: 16 bytes for AES, 8 for 3DES).
    addBigEndian(iv, BigInt(Math.floor(cipherBytes / iv.length)));
    return { ...keys, iv };
  }
  return null;
}

/** Adds `amount` to the unsigned big-endian integer in `bytes`, wrapping at its width. */
function addBigEndian(bytes: Uint8Array, amount: bigint): void {
  let carry = amount;
  for (let i = bytes.length - 1; i >= 0 && carry > 0n; i--) {
    const sum = BigInt(bytes[i]!) + (carry & 0xffn);
    bytes[i] = Number(sum & 0xffn);
    carry = (carry >> 8n) + (sum >> 8n);
  }
}

function isKexMessage(id: number): boolean {
  return (id >= 20 && id <= 49) || id === MSG.DISCONNECT;
}

/** Terrapin (CVE-2023-48795): ChaCha20-Poly1305, and any EtM MAC with a CBC cipher. */
function isTerrapinAffected(n: Negotiated): boolean {
  const affected = (cipher: string, mac: string | null): boolean => cipher.startsWith('chacha20-poly1305') || (mac?.includes('-etm@') === true && cipher.endsWith('-cbc'));
  return affected(n.cipherClientToServer, n.macClientToServer) || affected(n.cipherServerToClient, n.macServerToClient);
}

function safeText(bytes: Uint8Array): string {
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    text = '(not UTF-8)';
  }
  return printable(text);
}

/** Strips control characters a hostile server could use to forge log or terminal output. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 1024);
}

export function fingerprints(provider: CryptoProvider, blob: Uint8Array): HostKeyInfo['fingerprints'] {
  return {
    md5: toHex(provider.hash('md5', blob), ':'),
    sha1: toHex(provider.hash('sha1', blob), ':'),
    sha256: base64NoPad(provider.hash('sha256', blob)),
  };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
export function base64NoPad(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
    if (i + 1 < bytes.length) out += B64[(n >> 6) & 63]!;
    if (i + 2 < bytes.length) out += B64[n & 63]!;
  }
  return out;
}
