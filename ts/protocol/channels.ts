// The connection protocol (RFC 4254): channels with their flow-control windows (opened by the
// server for a forwarding, or by us: §5.1), and global requests with replies matched to the
// request that asked for them. This layer never sees
// bytes on the wire; it hands payloads to `send` and channel data to `sendChannelData`,
// which frames it straight into a packet buffer without an intermediate copy.

import { copyBytes, writeUint32 } from './wire.js';
import { SshError, Code } from './errors.js';
import {
  MSG,
  ChannelClose,
  ChannelData,
  ChannelEof,
  ChannelExtendedData,
  ChannelFailure,
  ChannelOpen,
  ChannelOpenConfirmation,
  ChannelOpenFailure,
  ChannelOpenFailureReason,
  ChannelRequest,
  ChannelSuccess,
  ChannelWindowAdjust,
  ForwardedTcpipData,
  GlobalRequest,
  RequestSuccess,
} from './messages.js';
import { FORWARDED_STREAMLOCAL, ForwardedStreamLocalData } from './forwarding.js';

export interface ForwardedConnection {
  connectedAddress: string;
  connectedPort: number;
  originAddress: string;
  originPort: number;
}

/** What the connection layer reports about channels (RFC 4254 §5), through SshClientCore.pollEvent. */
export type ChannelEvent =
  | ({ type: 'channelOpenRequest'; channel: number; service: string } & ForwardedConnection)
  | { type: 'channelOpened'; channel: number }
  /** A channel we opened (openChannel) was refused by the server (RFC 4254 §5.1 reason code). */
  | { type: 'channelOpenFailed'; channel: number; reason: number; description: string }
  | { type: 'channelData'; channel: number; data: Uint8Array }
  | { type: 'channelEof'; channel: number }
  /** The payload bytes that crossed the channel each way over its life (a refused open: none). */
  | { type: 'channelClosed'; channel: number; bytesSent: number; bytesReceived: number }
  | { type: 'channelWritable'; channel: number }
  | { type: 'channelRequest'; channel: number; requestType: string; wantReply: boolean; data: Uint8Array };

/** Flow-control and idle limits applied to every channel. */
export interface ChannelSettings {
  /** Our receive window per channel (MaxWindowSize). */
  maxWindow: number;
  /** Largest data packet we accept (MaxPacketSize). */
  maxPacket: number;
  /** Seconds without data either way after which an open channel is closed (0 = never). */
  idleTimeout?: number;
}

/**
 * pendingAccept: the server opened it, the application has not answered; opening: we opened
 * it and await the server's answer; then open, closing (our CLOSE sent or queued), closed.
 */
type ChannelState = 'pendingAccept' | 'opening' | 'open' | 'closing' | 'closed';

/** What the application may read about a channel; only the connection layer changes it. */
export interface ChannelView {
  readonly localId: number;
  readonly service: string;
  readonly connection: Readonly<ForwardedConnection>;
  readonly state: ChannelState;
  readonly bytesSent: number;
  /** Payload bytes the peer has sent on it (counted as they arrive, before the application reads them). */
  readonly bytesReceived: number;
  /** Bytes queued for the peer, waiting for window (or for a key exchange to end). */
  readonly outgoingBytes: number;
  /** The queue is at its high-water mark: wait for a channelWritable event. */
  readonly writeBlocked: boolean;
  readonly closeSent: boolean;
  /** Carried by the native data plane (its counts are refreshed from it when read). */
  readonly adopted: boolean;
}

export class Channel {
  state: ChannelState = 'pendingAccept';
  /** Bytes the peer may still send before we credit more (granted by accept()). */
  localWindow = 0;
  /** Bytes received and not yet consumed by the application (delivered, or taken by its socket). */
  unconsumed = 0;
  remoteWindow: number;
  readonly outgoing: Uint8Array[] = [];
  /** How much of `outgoing[0]` has already been sent. */
  headOffset = 0;
  outgoingBytes = 0;
  closeAfterFlush = false;
  eofSent = false;
  eofReceived = false;
  eofQueued = false;
  closeSent = false;
  closeReceived = false;
  bytesSent = 0;
  bytesReceived = 0;
  /** Set when the application was told to hold off sending; cleared once told it may resume. */
  writeBlocked = false;
  /** Queued outgoing bytes at which the application is told to hold off (see setHighWater). */
  highWater = CHANNEL_HIGH_WATER;
  /** When data last moved either way (ms, the core's clock). */
  lastActivity = 0;
  /** The application closed a channel we opened before the server answered: close it on confirmation. */
  closeWhenOpened = false;
  /**
   * Handed to the native data plane (ConnectionHooks.adopt): its data, windows, EOF and CLOSE
   * are the plane's from then on, which reports its end (finishAdopted). Nothing here is
   * kept current for it but its state.
   */
  adopted = false;

  /** For a channel we open, remoteId, remoteWindow and remoteMaxPacket arrive with the confirmation. */
  constructor(
    readonly localId: number,
    public remoteId: number,
    readonly service: string,
    readonly connection: ForwardedConnection,
    remoteWindow: number,
    public remoteMaxPacket: number,
  ) {
    this.remoteWindow = remoteWindow;
  }
}

/**
 * A global request still awaiting its reply. Replies come in request order (RFC 4254 §4), so
 * one queue serves them all; `sequence` is the packet number it went out with (set once the
 * transport sent it: a request queued during a key exchange has none yet), which is how an
 * UNIMPLEMENTED answer is matched to it.
 */
interface PendingGlobalReply {
  name: string;
  sequence: number | null;
  resolve: (ok: boolean, data: Uint8Array) => void;
}

export interface ConnectionHooks {
  send(payload: Uint8Array): void;
  sendChannelData(recipient: number, data: Uint8Array, offset: number, length: number): void;
  /** False while a key exchange forbids sending channel data. */
  canSendData(): boolean;
  emit(event: ChannelEvent): void;
  /** Decides whether an incoming open is for a forwarding we requested. */
  isForwardingKnown(address: string, port: number): boolean;
  /** The same for a forwarded-streamlocal open (OpenSSH's Unix-socket forwarding). */
  isSocketForwardingKnown(socketPath: string): boolean;
  /** The core's clock (ms). */
  now(): number;
  /** The native data plane takes an accepted channel over, and sends `confirmation` for it. */
  adopt?(channel: Channel, confirmation: Uint8Array): void;
  /** An adopted channel is to close (the plane sends its EOF and CLOSE). */
  closeAdopted?(channel: number): void;
  /** The number of channels changed, and with it windowTarget(). */
  channelsChanged?(): void;
}

/**
 * MaxTransferRate for what the server sends (../net/rate-limit.ts's inbound bucket). The
 * window credit we give is what is paced, not the reading of the socket: the server can send
 * channel data only as fast as it is given credit, and its control messages (keep-alive
 * replies, CHANNEL_CLOSE, DISCONNECT) are read at once rather than waiting behind that data.
 */
export interface InboundCredit {
  /** Bytes of window that may be given now; Infinity: no limit. */
  available(): number;
  /** `bytes` of window were given (more than available() for an initial window: paid off later). */
  take(bytes: number): void;
  /** The smallest grant worth a WINDOW_ADJUST packet, while limited. */
  step(): number;
  /** A channel is owed `bytes` of window: ConnectionLayer.grantWithheld() is to be called once there are tokens. */
  wait(bytes: number): void;
}

/** Opens beyond this many live channels are refused, so a hostile server cannot exhaust us. */
export const MAX_CHANNELS = 4096;

/**
 * Received data all channels together may hold, in windows (MaxWindowSize): with more than this
 * many channels open, each one's window shrinks to its share, so a tunnel with many slow local
 * targets holds at most about 8 windows of data rather than one window per channel.
 */
export const WINDOW_BUDGET = 8;

/** No channel's window shrinks below this (or MaxWindowSize, if that is smaller). */
export const MIN_SHARED_WINDOW = 64 * 1024;

/** Above this many queued outgoing bytes on a channel, the application should pause its source. */
export const CHANNEL_HIGH_WATER = 1024 * 1024;

export class ConnectionLayer {
  private readonly channels = new Map<number, Channel>();
  private readonly freeIds: number[] = [];
  private nextId = 0;
  private readonly pendingGlobalReplies: PendingGlobalReply[] = [];

  private readonly settings: ChannelSettings;
  /** MaxTransferRate's pacing of window credit; null: credit is given as data is consumed. */
  private credit: InboundCredit | null = null;
  /** Open channels whose window is short of its target for want of credit, waiting for tokens. */
  private readonly owed = new Set<Channel>();
  private granting = false;
  /** Channel payload bytes over the connection's life, every channel counted (closed ones too). */
  totalBytesSent = 0;
  totalBytesReceived = 0;

  constructor(
    settings: ChannelSettings,
    private readonly hooks: ConnectionHooks,
  ) {
    this.settings = { ...settings };
  }

  /**
   * A new MaxWindowSize applies from each channel's next refill (a window granted is never
   * taken back); a new idle timeout from now on. The packet size stays: the peer has it.
   */
  updateSettings(settings: { maxWindow: number; idleTimeout: number }): void {
    this.settings.maxWindow = settings.maxWindow;
    this.settings.idleTimeout = settings.idleTimeout;
  }

  /** Paces the window credit from now on (MaxTransferRate); null gives it freely again. */
  setInboundCredit(credit: InboundCredit | null): void {
    this.credit = credit;
  }

  /**
   * Tokens came in (or the limit changed): the channels owed credit get it, each its share
   * of what is available, so that one busy channel cannot starve the others.
   */
  grantWithheld(): void {
    if (this.granting || this.owed.size === 0) return;
    this.granting = true;
    try {
      const owed = [...this.owed];
      this.owed.clear();
      const available = this.credit?.available() ?? Infinity;
      const share = available === Infinity ? Infinity : Math.max(this.credit!.step(), Math.floor(available / owed.length));
      // Those given nothing this time come first the next time.
      const starved: Channel[] = [];
      const fed: Channel[] = [];
      for (const ch of owed) {
        if (ch.state !== 'open' || ch.closeSent) continue;
        const given = this.refill(ch, share);
        if (this.owed.has(ch)) (given > 0 ? fed : starved).push(ch);
      }
      this.owed.clear();
      for (const ch of [...starved, ...fed]) this.owed.add(ch);
    } finally {
      this.granting = false;
    }
    // Those still short wait for the next tokens together: a step each.
    if (this.owed.size > 0 && this.credit) this.credit.wait(this.credit.step() * this.owed.size);
  }

  /** The channel with this id, unless it is closed. */
  view(id: number): ChannelView | undefined {
    const ch = this.channels.get(id);
    return ch && ch.state !== 'closed' ? ch : undefined;
  }

  views(): ChannelView[] {
    return [...this.channels.values()].filter((ch) => ch.state !== 'closed');
  }

  private channel(id: number): Channel {
    const ch = this.channels.get(id);
    if (!ch || ch.state === 'closed') throw new SshError(Code.InvalidChannelId, `no open channel with id ${id}`, 'local');
    return ch;
  }

  globalRequest(name: string, data: Uint8Array, onReply?: (ok: boolean, data: Uint8Array) => void): void {
    if (onReply) this.pendingGlobalReplies.push({ name, sequence: null, resolve: onReply });
    this.hooks.send(GlobalRequest.encode({ name, wantReply: onReply !== undefined, data }));
  }

  /** The transport sent our oldest unsent global request that wants a reply, as packet `sequence`. */
  globalRequestSent(sequence: number): void {
    const pending = this.pendingGlobalReplies.find((p) => p.sequence === null);
    if (pending) pending.sequence = sequence;
  }

  /**
   * The server answered packet `sequence` with UNIMPLEMENTED (RFC 4253 §11.4). If that was our
   * oldest global request, it failed (some servers answer unknown requests this way).
   */
  unimplemented(sequence: number): boolean {
    const oldest = this.pendingGlobalReplies[0];
    if (!oldest || oldest.sequence !== sequence) return false;
    this.pendingGlobalReplies.shift();
    oldest.resolve(false, new Uint8Array(0));
    return true;
  }

  /** Fails every outstanding reply (the connection is going away). */
  failPending(): void {
    for (const pending of this.pendingGlobalReplies.splice(0)) pending.resolve(false, new Uint8Array(0));
  }

  private allocateId(): number {
    return this.freeIds.pop() ?? this.nextId++;
  }

  handle(id: number, payload: Uint8Array): void {
    switch (id) {
      case MSG.GLOBAL_REQUEST: {
        const request = GlobalRequest.decode(payload);
        // We offer no global services to the server (hostkeys-00 etc. are informational).
        if (request.wantReply) this.hooks.send(new Uint8Array([MSG.REQUEST_FAILURE]));
        return;
      }
      case MSG.REQUEST_SUCCESS:
      case MSG.REQUEST_FAILURE: {
        const pending = this.pendingGlobalReplies.shift();
        if (!pending) throw new SshError(Code.ProtocolError, 'global request reply without a request', 'peer');
        pending.resolve(id === MSG.REQUEST_SUCCESS, id === MSG.REQUEST_SUCCESS ? RequestSuccess.decode(payload).data : new Uint8Array(0));
        return;
      }
      case MSG.CHANNEL_OPEN:
        this.handleOpen(payload);
        return;
      case MSG.CHANNEL_OPEN_CONFIRMATION:
        this.handleOpenConfirmation(ChannelOpenConfirmation.decode(payload));
        return;
      case MSG.CHANNEL_OPEN_FAILURE: {
        const msg = ChannelOpenFailure.decode(payload);
        const ch = this.openingChannel(msg.recipientChannel);
        this.channels.delete(ch.localId);
        this.owed.delete(ch);
        this.freeIds.push(ch.localId);
        ch.state = 'closed';
        const description = msg.description.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 256);
        this.hooks.emit({ type: 'channelOpenFailed', channel: ch.localId, reason: msg.reason, description });
        return;
      }
      case MSG.CHANNEL_WINDOW_ADJUST: {
        const msg = ChannelWindowAdjust.decode(payload);
        const ch = this.peerChannel(msg.recipientChannel, 'window adjust');
        if (ch.remoteWindow + msg.bytesToAdd > 0xffffffff) {
          throw new SshError(Code.InvalidChannelMessage, 'window adjust overflows the 32-bit window', 'peer');
        }
        ch.remoteWindow += msg.bytesToAdd;
        this.pump(ch);
        return;
      }
      case MSG.CHANNEL_DATA: {
        const msg = ChannelData.decode(payload);
        this.receiveData(this.peerChannel(msg.recipientChannel, 'data'), msg.data);
        return;
      }
      case MSG.CHANNEL_EXTENDED_DATA: {
        // forwarded-tcpip channels carry no extended data; count it against the window and drop it.
        const msg = ChannelExtendedData.decode(payload);
        const ch = this.peerChannel(msg.recipientChannel, 'extended data');
        this.checkWindow(ch, msg.data.length);
        this.consume(ch.localId, msg.data.length);
        return;
      }
      case MSG.CHANNEL_EOF: {
        const ch = this.peerChannel(ChannelEof.decode(payload).recipientChannel, 'EOF');
        if (!ch.eofReceived) {
          ch.eofReceived = true;
          this.hooks.emit({ type: 'channelEof', channel: ch.localId });
        }
        return;
      }
      case MSG.CHANNEL_CLOSE: {
        const ch = this.peerChannel(ChannelClose.decode(payload).recipientChannel, 'close', true);
        ch.closeReceived = true;
        if (!ch.closeSent) this.sendClose(ch);
        this.finish(ch);
        return;
      }
      case MSG.CHANNEL_REQUEST: {
        const msg = ChannelRequest.decode(payload);
        const ch = this.peerChannel(msg.recipientChannel, 'request');
        this.hooks.emit({ type: 'channelRequest', channel: ch.localId, requestType: msg.type, wantReply: msg.wantReply, data: msg.data });
        return;
      }
      case MSG.CHANNEL_SUCCESS:
      case MSG.CHANNEL_FAILURE: {
        const recipient = id === MSG.CHANNEL_SUCCESS ? ChannelSuccess.decode(payload).recipientChannel : ChannelFailure.decode(payload).recipientChannel;
        this.peerChannel(recipient, 'request reply');
        return; // we send no channel requests that want a reply
      }
      default:
        throw new SshError(Code.Unimplemented, `connection message ${id} is not implemented`, 'peer');
    }
  }

  /** Replies to a channel request the application decided on. */
  replyChannelRequest(channelId: number, success: boolean): void {
    const ch = this.channel(channelId);
    // A request that crossed our CLOSE goes unanswered: nothing may follow our CLOSE (RFC 4254 §5.3).
    if (ch.closeSent) return;
    const reply = success ? ChannelSuccess : ChannelFailure;
    this.hooks.send(reply.encode({ recipientChannel: ch.remoteId }));
  }

  private peerChannel(localId: number, what: string, allowClosing = false): Channel {
    const ch = this.channels.get(localId);
    if (!ch || ch.state === 'pendingAccept' || ch.state === 'opening' || ch.closeReceived || (!allowClosing && ch.state === 'closed')) {
      throw new SshError(Code.InvalidChannelId, `channel ${what} for unknown channel ${localId}`, 'peer');
    }
    return ch;
  }

  private handleOpen(payload: Uint8Array): void {
    const open = ChannelOpen.decode(payload);
    const reject = (reason: number, description: string) => this.hooks.send(ChannelOpenFailure.encode({ recipientChannel: open.senderChannel, reason, description, language: new Uint8Array(0) }));
    const streamLocal = open.type === FORWARDED_STREAMLOCAL;
    if (open.type !== 'forwarded-tcpip' && !streamLocal) {
      reject(ChannelOpenFailureReason.UnknownChannelType, `channel type ${open.type} is not accepted`);
      return;
    }
    const info = streamLocal ? ForwardedStreamLocalData.decode(open.data) : ForwardedTcpipData.decode(open.data);
    const known = streamLocal ? this.hooks.isSocketForwardingKnown(info.connectedAddress) : this.hooks.isForwardingKnown(info.connectedAddress, info.connectedPort);
    if (!known) {
      reject(ChannelOpenFailureReason.AdministrativelyProhibited, 'no such forwarding was requested');
      return;
    }
    if (this.channels.size >= MAX_CHANNELS) {
      reject(ChannelOpenFailureReason.ResourceShortage, `too many open channels (${MAX_CHANNELS})`);
      return;
    }
    if (open.maxPacket < 64) {
      reject(ChannelOpenFailureReason.ResourceShortage, 'maximum packet size too small');
      return;
    }
    const ch = new Channel(this.allocateId(), open.senderChannel, open.type, info, open.initialWindow, Math.min(open.maxPacket, 256 * 1024));
    this.channels.set(ch.localId, ch);
    this.hooks.channelsChanged?.();
    this.hooks.emit({ type: 'channelOpenRequest', channel: ch.localId, service: open.type, ...info });
  }

  /**
   * Opens a channel of our own (RFC 4254 §5.1), e.g. direct-tcpip (§7.2) to reach the next
   * host through this one. Returns its id; a channelOpened or channelOpenFailed event follows.
   */
  open(type: string, data: Uint8Array, connection: ForwardedConnection): number {
    if (this.channels.size >= MAX_CHANNELS) throw new SshError(Code.ChannelOpenFailed, `too many open channels (${MAX_CHANNELS})`, 'local');
    const ch = new Channel(this.allocateId(), 0, type, connection, 0, 0);
    ch.state = 'opening';
    ch.localWindow = this.initialWindow();
    this.channels.set(ch.localId, ch);
    this.hooks.send(ChannelOpen.encode({ type, senderChannel: ch.localId, initialWindow: ch.localWindow, maxPacket: this.settings.maxPacket, data }));
    return ch.localId;
  }

  private openingChannel(localId: number): Channel {
    const ch = this.channels.get(localId);
    if (ch?.state !== 'opening') {
      throw new SshError(Code.InvalidChannelMessage, `channel open reply for channel ${localId}, which we are not opening`, 'peer');
    }
    return ch;
  }

  private handleOpenConfirmation(msg: ReturnType<typeof ChannelOpenConfirmation.decode>): void {
    const ch = this.openingChannel(msg.recipientChannel);
    ch.remoteId = msg.senderChannel;
    ch.remoteWindow = msg.initialWindow;
    // The same bounds as for channels the server opens: a tiny packet limit would make us
    // send a packet per few bytes, a huge one is capped to what we frame at once.
    ch.remoteMaxPacket = Math.min(msg.maxPacket, 256 * 1024);
    if (msg.maxPacket < 64) {
      ch.state = 'closing';
      this.sendClose(ch);
      this.hooks.emit({ type: 'channelOpenFailed', channel: ch.localId, reason: ChannelOpenFailureReason.ResourceShortage, description: "the server's maximum packet size is too small" });
      return;
    }
    ch.state = 'open';
    ch.lastActivity = this.hooks.now();
    if (ch.closeWhenOpened) {
      this.close(ch.localId, true);
      return;
    }
    this.refill(ch);
    this.hooks.emit({ type: 'channelOpened', channel: ch.localId });
    this.hooks.emit({ type: 'channelWritable', channel: ch.localId });
  }

  /**
   * Confirms an open the application accepted. With `adopt` the native data plane takes the
   * channel over first, so that no data for it can arrive before it is the plane's.
   */
  accept(channelId: number, adopt = false): void {
    const ch = this.channels.get(channelId);
    if (ch?.state !== 'pendingAccept') throw new SshError(Code.InvalidChannelId, `channel ${channelId} is not awaiting acceptance`, 'local');
    ch.localWindow = this.initialWindow();
    const confirmation = ChannelOpenConfirmation.encode({
      recipientChannel: ch.remoteId,
      senderChannel: ch.localId,
      initialWindow: ch.localWindow,
      maxPacket: this.settings.maxPacket,
      data: new Uint8Array(0),
    });
    if (adopt) {
      // A plane that refuses leaves the channel awaiting acceptance: the caller refuses it.
      try {
        if (!this.hooks.adopt) throw new SshError(Code.InvalidChannelId, 'no data plane to adopt the channel', 'local');
        this.hooks.adopt(ch, confirmation);
      } catch (error) {
        ch.localWindow = 0;
        throw error;
      }
      ch.adopted = true;
    } else {
      this.hooks.send(confirmation);
    }
    ch.state = 'open';
    ch.lastActivity = this.hooks.now();
    // An adopted channel's window is the plane's to keep from here (a WINDOW_ADJUST sent here
    // would be credit the plane does not know the peer has).
    if (!ch.adopted) this.refill(ch);
    this.hooks.emit({ type: 'channelOpened', channel: ch.localId });
    this.hooks.emit({ type: 'channelWritable', channel: ch.localId });
  }

  /** Refuses an open (RFC 4254 §5.1 reason codes). */
  reject(channelId: number, reason: number, description: string): void {
    const ch = this.channels.get(channelId);
    if (ch?.state !== 'pendingAccept') throw new SshError(Code.InvalidChannelId, `channel ${channelId} is not awaiting acceptance`, 'local');
    this.hooks.send(ChannelOpenFailure.encode({ recipientChannel: ch.remoteId, reason, description, language: new Uint8Array(0) }));
    ch.state = 'closed';
    this.channels.delete(ch.localId);
    this.owed.delete(ch);
    this.freeIds.push(ch.localId);
    this.hooks.channelsChanged?.();
  }

  private checkWindow(ch: Channel, length: number): void {
    if (length > ch.localWindow) {
      throw new SshError(Code.InvalidChannelData, `peer sent ${length} bytes with only ${ch.localWindow} left in the window`, 'peer');
    }
    if (length > this.settings.maxPacket) {
      throw new SshError(Code.InvalidChannelData, `peer sent a ${length}-byte data packet; the limit is ${this.settings.maxPacket}`, 'peer');
    }
    ch.localWindow -= length;
    ch.unconsumed += length;
    ch.bytesReceived += length;
    this.totalBytesReceived += length;
  }

  private receiveData(ch: Channel, data: Uint8Array): void {
    if (ch.eofReceived) throw new SshError(Code.InvalidChannelData, 'channel data after EOF', 'peer');
    this.checkWindow(ch, data.length);
    ch.lastActivity = this.hooks.now();
    if (ch.state === 'closing' || data.length === 0) {
      this.consume(ch.localId, data.length);
      return;
    }
    this.hooks.emit({ type: 'channelData', channel: ch.localId, data });
  }

  /**
   * The window each channel is refilled to: MaxWindowSize, or an even share of
   * WINDOW_BUDGET windows once more than WINDOW_BUDGET channels are open (never below
   * MIN_SHARED_WINDOW). A window granted earlier is not taken back; it shrinks as the peer
   * uses it and is refilled only to the new share.
   */
  windowTarget(): number {
    const { maxWindow } = this.settings;
    const share = Math.floor((WINDOW_BUDGET * maxWindow) / Math.max(1, this.channels.size));
    return Math.min(maxWindow, Math.max(share, MIN_SHARED_WINDOW));
  }

  /**
   * The application has finished with `bytes` of received data (delivered it, or its local
   * socket took them). Refills the peer's window to windowTarget() once at least half of it
   * is missing, so a slow consumer holds the peer to at most one window of buffered data.
   * Never in smaller steps: crediting each drain of a slow consumer made a WINDOW_ADJUST (a
   * packet and a write) per few KiB, which cost a tenth of the tunnel's time in bulk
   * downloads. Half the window cannot stall the peer: until that much is consumed, the other
   * half is still open to it.
   */
  consume(channelId: number, bytes: number): void {
    const ch = this.channels.get(channelId);
    if (!ch || ch.state === 'closed' || ch.closeSent || ch.adopted) return;
    ch.unconsumed = Math.max(0, ch.unconsumed - bytes);
    // Credit for a channel still opening goes with its confirmation's refill.
    if (ch.state === 'opening') return;
    this.refill(ch);
  }

  /**
   * Gives the channel the window it is missing, as consume() describes. Under MaxTransferRate
   * only as much as the inbound tokens allow (at most `limit`), in steps of at least
   * credit.step(); what is still missing is owed, and comes with grantWithheld().
   */
  private refill(ch: Channel, limit = Infinity): number {
    if (ch.adopted) {
      this.owed.delete(ch);
      return 0;
    }
    const target = this.windowTarget();
    const missing = target - ch.localWindow - ch.unconsumed;
    const credit = this.credit;
    const available = credit?.available() ?? Infinity;
    if (!credit || available === Infinity) {
      this.owed.delete(ch);
      if (missing < target / 2) return 0;
      this.giveWindow(ch, missing);
      return missing;
    }
    const step = Math.min(credit.step(), target / 2);
    let given = 0;
    const grant = Math.min(missing, Math.floor(available), limit);
    if (missing >= step && grant >= step) {
      this.giveWindow(ch, grant);
      credit.take(grant);
      given = grant;
    }
    if (missing - given < step) {
      this.owed.delete(ch);
      return given;
    }
    this.owed.add(ch);
    if (!this.granting) credit.wait(missing - given);
    return given;
  }

  private giveWindow(ch: Channel, bytes: number): void {
    ch.localWindow += bytes;
    this.hooks.send(ChannelWindowAdjust.encode({ recipientChannel: ch.remoteId, bytesToAdd: bytes }));
  }

  /**
   * A new channel's window: windowTarget(), or under MaxTransferRate what the inbound tokens
   * allow now (at least one step), the rest following as credit.
   */
  private initialWindow(): number {
    const target = this.windowTarget();
    const credit = this.credit;
    const available = credit?.available() ?? Infinity;
    if (!credit || available === Infinity) return target;
    const window = Math.min(target, Math.max(credit.step(), Math.floor(available)));
    credit.take(window);
    return window;
  }

  /**
   * Sends data, or queues it while the window or the transport is closed; returns the bytes
   * now queued on the channel (compare with CHANNEL_HIGH_WATER). `data` is not referred to
   * after the call: what cannot be framed at once is queued as a copy, so callers may reuse
   * their buffers.
   */
  send(channelId: number, data: Uint8Array): number {
    const ch = this.channel(channelId);
    if (ch.state !== 'open' || ch.eofQueued || ch.eofSent) {
      throw new SshError(Code.InvalidChannelId, `channel ${channelId} is not open for sending`, 'local');
    }
    if (data.length > 0) {
      ch.outgoing.push(data);
      ch.outgoingBytes += data.length;
      this.pump(ch);
      const last = ch.outgoing.length - 1;
      if (last >= 0 && ch.outgoing[last] === data) {
        if (last === 0) {
          ch.outgoing[0] = copyBytes(data.subarray(ch.headOffset));
          ch.headOffset = 0;
        } else {
          ch.outgoing[last] = copyBytes(data);
        }
      }
    }
    if (ch.outgoingBytes >= ch.highWater) ch.writeBlocked = true;
    return ch.outgoingBytes;
  }

  /**
   * How many queued outgoing bytes make send() report the channel full; a channelWritable
   * event follows once under half of it is left. A source that can simply stop reading (a
   * local socket) uses 1: it pauses as soon as the peer's window is used up, and resumes
   * when the queue is empty, so little is ever queued (and copied).
   */
  setHighWater(channelId: number, bytes: number): void {
    const ch = this.channels.get(channelId);
    if (ch) ch.highWater = Math.max(1, bytes);
  }

  /** Sends EOF once everything queued has been sent. */
  sendEof(channelId: number): void {
    const ch = this.channels.get(channelId);
    if (ch?.state !== 'open' || ch.eofQueued || ch.adopted) return;
    ch.eofQueued = true;
    this.pump(ch);
  }

  /** Closes a channel (after flushing queued data when `flush` is set). */
  close(channelId: number, flush = false): void {
    const ch = this.channels.get(channelId);
    if (!ch || ch.state === 'closed') return;
    if (ch.state === 'pendingAccept') {
      // Refused, and ended like any channel: whoever was about to accept it (a forwarder still
      // connecting) hears channelClosed, and the freed id cannot be taken for this one.
      this.reject(channelId, ChannelOpenFailureReason.ConnectFailed, 'closed by the application');
      this.hooks.emit({ type: 'channelClosed', channel: channelId, bytesSent: 0, bytesReceived: 0 });
      return;
    }
    if (ch.state === 'opening') {
      ch.closeWhenOpened = true; // nothing can be sent on it before the server's answer
      return;
    }
    if (ch.adopted) {
      if (ch.state === 'closing') return;
      ch.state = 'closing';
      ch.closeSent = true; // the plane sends it; nothing more may be sent on it from here
      this.hooks.closeAdopted?.(channelId);
      return;
    }
    if (flush && ch.outgoingBytes > 0) {
      ch.eofQueued = true;
      ch.state = 'closing';
      ch.closeAfterFlush = true;
      this.pump(ch);
      return;
    }
    ch.outgoing.length = 0;
    ch.outgoingBytes = 0;
    ch.headOffset = 0;
    ch.state = 'closing';
    if (!ch.closeSent) this.sendClose(ch);
    if (ch.closeReceived) this.finish(ch);
  }

  private sendClose(ch: Channel): void {
    ch.closeSent = true;
    this.hooks.send(ChannelClose.encode({ recipientChannel: ch.remoteId }));
  }

  private finish(ch: Channel): void {
    if (ch.state === 'closed') return;
    ch.state = 'closed';
    this.channels.delete(ch.localId);
    this.owed.delete(ch);
    this.freeIds.push(ch.localId);
    this.hooks.channelsChanged?.();
    this.hooks.emit({ type: 'channelClosed', channel: ch.localId, bytesSent: ch.bytesSent, bytesReceived: ch.bytesReceived });
  }

  /** An adopted channel's counts as the native data plane has them now (its views read them). */
  updateAdopted(channelId: number, bytesSent: number, bytesReceived: number): void {
    const ch = this.channels.get(channelId);
    if (!ch?.adopted) return;
    ch.bytesSent = bytesSent;
    ch.bytesReceived = bytesReceived;
  }

  /** The native data plane finished an adopted channel (CLOSE both ways), with what it carried. */
  finishAdopted(channelId: number, bytesSent: number, bytesReceived: number): void {
    const ch = this.channels.get(channelId);
    if (!ch?.adopted) return;
    ch.bytesSent = bytesSent;
    ch.bytesReceived = bytesReceived;
    this.totalBytesSent += bytesSent;
    this.totalBytesReceived += bytesReceived;
    ch.closeSent = true;
    ch.closeReceived = true;
    this.finish(ch);
  }

  /** Sends as much queued data as the peer's window and packet size allow. */
  pump(ch: Channel): void {
    if (ch.closeSent || ch.adopted) return;
    // Checked before every packet: sending one can start a key exchange (the byte threshold),
    // after which nothing but key exchange messages may go out until our NEWKEYS (RFC 4253 §7.1).
    while (ch.outgoingBytes > 0 && ch.remoteWindow > 0 && this.hooks.canSendData()) {
      const head = ch.outgoing[0]!;
      const offset = ch.headOffset;
      const available = head.length - offset;
      const length = Math.min(available, ch.remoteWindow, ch.remoteMaxPacket);
      this.hooks.sendChannelData(ch.remoteId, head, offset, length);
      ch.lastActivity = this.hooks.now();
      ch.remoteWindow -= length;
      ch.outgoingBytes -= length;
      ch.bytesSent += length;
      this.totalBytesSent += length;
      if (length === available) {
        ch.outgoing.shift();
        ch.headOffset = 0;
      } else {
        ch.headOffset = offset + length;
      }
    }
    if (ch.outgoingBytes === 0) {
      if (ch.eofQueued && !ch.eofSent) {
        ch.eofSent = true;
        this.hooks.send(ChannelEof.encode({ recipientChannel: ch.remoteId }));
      }
      if (ch.closeAfterFlush && !ch.closeSent) {
        this.sendClose(ch);
        if (ch.closeReceived) this.finish(ch);
        return;
      }
    }
    if (ch.writeBlocked && ch.outgoingBytes < ch.highWater / 2) {
      ch.writeBlocked = false;
      this.hooks.emit({ type: 'channelWritable', channel: ch.localId });
    }
  }

  /** The earliest moment an open channel becomes idle (DefaultChannelIdleTimeout), or null. */
  nextIdleDeadline(): number | null {
    const timeout = (this.settings.idleTimeout ?? 0) * 1000;
    if (timeout <= 0) return null;
    let earliest: number | null = null;
    for (const ch of this.channels.values()) {
      if (ch.state !== 'open') continue;
      const deadline = ch.lastActivity + timeout;
      if (earliest === null || deadline < earliest) earliest = deadline;
    }
    return earliest;
  }

  /** Closes every open channel that has been idle for the idle timeout. */
  closeIdleChannels(now: number): void {
    const timeout = (this.settings.idleTimeout ?? 0) * 1000;
    if (timeout <= 0) return;
    for (const ch of [...this.channels.values()]) {
      if (ch.state === 'open' && now >= ch.lastActivity + timeout) this.close(ch.localId, true);
    }
  }

  /** Resumes every channel after a key exchange finished. */
  pumpAll(): void {
    for (const ch of this.channels.values()) if (ch.state === 'open' || ch.state === 'closing') this.pump(ch);
  }

  /** Writes the CHANNEL_DATA header; the caller copies the data right after it. */
  static dataHeaderSize = 9;
  static writeDataHeader(packet: Uint8Array, offset: number, recipient: number, length: number): void {
    packet[offset] = MSG.CHANNEL_DATA;
    writeUint32(packet, offset + 1, recipient);
    writeUint32(packet, offset + 5, length);
  }
}
