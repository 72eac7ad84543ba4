// The native data plane's JavaScript side (issue 15): loads the addon's DataPlane class
// (crates/revtun-napi/src/data_plane.rs, driving crates/revtun-io's relay thread), decodes its
// upcall batches, and turns its failures into SshErrors. Which connections may use it is
// decided here too (nativePlaneRefusal), so the log can say why one did not.

import { createRequire } from 'node:module';
import { SshError, Code } from '../protocol/errors.js';
import type { DirectionKeys } from '../crypto/provider.js';
import type { CoreHandover } from '../protocol/plane-port.js';

/** The keys as the addon takes them. */
interface AddonKeys {
  cipher: string;
  /** Absent for AEAD ciphers (napi's Option takes undefined, not null). */
  mac?: string;
  key: Uint8Array;
  iv: Uint8Array;
  macKey: Uint8Array;
}

interface AddonHandover {
  outgoing: AddonKeys;
  incoming: AddonKeys;
  sendSequence: number;
  receiveSequence: number;
  maxPacket: number;
  windowTarget: number;
  rekeyBytes: number;
}

type AddonEnded = { reason: 'stopped' | 'peerClosed' | 'io' | 'protocol' | 'panicked'; code: number; message: string };

interface AddonDataPlane {
  readonly threadId: number;
  readonly threadExited: boolean;
  send(payload: Uint8Array): number;
  sendNewKeys(keys: AddonKeys, resetSequence: boolean): void;
  setIncomingKeys(keys: AddonKeys, resetSequence: boolean): void;
  setLimits(maxPacket: number, windowTarget: number): void;
  adopt(localId: number, remoteId: number, localWindow: number, remoteWindow: number, remoteMaxPacket: number, confirmation: Uint8Array, fd: number): void;
  closeChannel(localId: number): void;
  channelStats(localId: number): [number, number, number] | null;
  channelBytes(): number | null;
  setRate(bytesPerSecond: number): void;
  upcallsTaken(bytes: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

type AddonDataPlaneClass = new (fd: number, handover: AddonHandover, input: Uint8Array, onUpcalls: (payloads: Buffer, items: Buffer, ended?: AddonEnded) => void) => AddonDataPlane;

let loaded: AddonDataPlaneClass | Error | null = null;

/** The addon's DataPlane class, or why there is none. */
function dataPlaneClass(): AddonDataPlaneClass | Error {
  if (loaded) return loaded;
  try {
    const require = createRequire(import.meta.url);
    const binding = require('../../bindings/native.cjs') as { DataPlane?: AddonDataPlaneClass };
    loaded = typeof binding.DataPlane === 'function' ? binding.DataPlane : new Error('the native addon was built without the data plane');
  } catch (error) {
    loaded = new Error(`the native addon did not load (${(error as Error).message.split('\n')[0]})`);
  }
  return loaded;
}

/** Something the relay tells the TypeScript core. */
export type PlaneUpcall = { type: 'message'; sequence: number; payload: Uint8Array } | { type: 'channelClosed'; channel: number; bytesSent: number; bytesReceived: number } | { type: 'rekeyDue' };

/** How the relay ended: null for a stop the core asked for, else the connection's error. */
export type PlaneEnd = SshError | null;

/** The handover: the keys and sequence numbers in force, and our channel limits (the core's, less its unparsed input). */
export type PlaneHandover = Omit<CoreHandover, 'input'>;

const ITEM_MESSAGE = 1;
const ITEM_CHANNEL_CLOSED = 2;
const ITEM_REKEY_DUE = 3;
const ITEM_FIELDS = 6;

/** The addon's command failures read "<code>: <text>". */
function planeError(error: unknown): SshError {
  const message = (error as Error)?.message ?? String(error);
  const match = /^(\d+): (.*)$/s.exec(message);
  const code = match ? Number(match[1]) : Code.ConnectionFailed;
  return new SshError(code, `data plane: ${match ? match[2] : message}`, 'local', { cause: error });
}

function endError(ended: AddonEnded): PlaneEnd {
  switch (ended.reason) {
    case 'stopped':
      return null;
    case 'peerClosed':
      return new SshError(Code.ConnectionDropped, 'the connection was dropped by the server', 'peer');
    case 'io':
      return new SshError(Code.ConnectionDropped, `socket error: ${ended.message}`, 'peer');
    case 'protocol':
      return new SshError(ended.code, ended.message, 'peer');
    default:
      return new SshError(Code.ConnectionFailed, 'internal error in the native data plane; the connection was dropped', 'local');
  }
}

function addonKeys(keys: DirectionKeys): AddonKeys {
  return { cipher: keys.cipher, ...(keys.mac ? { mac: keys.mac } : {}), key: keys.key, iv: keys.iv, macKey: keys.macKey };
}

/**
 * One connection on the native data plane. Commands are synchronous and throw SshError when
 * the plane refuses them (a closed plane, keys that do not install); upcalls arrive on the
 * event loop, a batch at a time.
 */
export class NativePlane {
  private readonly plane: AddonDataPlane;
  private closed = false;
  private lastChannelBytes = 0;

  constructor(fd: number, handover: PlaneHandover, input: Uint8Array, onUpcalls: (upcalls: PlaneUpcall[]) => void, onEnd: (end: PlaneEnd) => void) {
    const DataPlane = dataPlaneClass();
    if (DataPlane instanceof Error) throw new SshError(Code.ConnectionFailed, `data plane: ${DataPlane.message}`, 'local');
    try {
      this.plane = new DataPlane(fd, { ...handover, outgoing: addonKeys(handover.outgoing), incoming: addonKeys(handover.incoming) }, input, (payloads, items, ended) => {
        // This runs from the addon's thread-safe function: nothing may escape it, or the
        // process would die of a connection's failure. What gets here is revtun's own.
        try {
          if (payloads.length > 0 || items.length > 0) {
            onUpcalls(decodeUpcalls(payloads, items));
            if (!this.closed) this.plane.upcallsTaken(payloads.length);
          }
          if (ended) onEnd(endError(ended));
        } catch (error) {
          try {
            onEnd(new SshError(Code.ConnectionFailed, `internal error in the data plane's upcall: ${(error as Error)?.message ?? String(error)}`, 'local', { cause: error }));
          } catch {
            // Reporting failed as well: nothing more can be done from this callback.
          }
        }
      });
    } catch (error) {
      throw planeError(error);
    }
  }

  /** The relay thread's id, for the tests that check it has gone. */
  get threadId(): number {
    return this.plane.threadId;
  }

  /** Whether the relay thread has ended: true once close() returned, which joins it. */
  get threadExited(): boolean {
    return this.plane.threadExited;
  }

  private command<T>(act: () => T): T {
    try {
      return act();
    } catch (error) {
      throw planeError(error);
    }
  }

  /** Frames a control payload; returns its sequence number (-1: deferred by a key exchange). */
  send(payload: Uint8Array): number {
    return this.command(() => this.plane.send(payload));
  }

  sendNewKeys(keys: DirectionKeys, resetSequence: boolean): void {
    this.command(() => this.plane.sendNewKeys(addonKeys(keys), resetSequence));
  }

  setIncomingKeys(keys: DirectionKeys, resetSequence: boolean): void {
    this.command(() => this.plane.setIncomingKeys(addonKeys(keys), resetSequence));
  }

  setLimits(maxPacket: number, windowTarget: number): void {
    this.command(() => this.plane.setLimits(maxPacket, windowTarget));
  }

  /** Takes a channel over with its local socket `fd`; `confirmation` is framed in the same step, before any of its data. */
  adopt(channel: number, remoteId: number, localWindow: number, remoteWindow: number, remoteMaxPacket: number, confirmation: Uint8Array, fd: number): void {
    this.command(() => this.plane.adopt(channel, remoteId, localWindow, remoteWindow, remoteMaxPacket, confirmation, fd));
  }

  closeChannel(channel: number): void {
    this.command(() => this.plane.closeChannel(channel));
  }

  /** MaxTransferRate (bytes per second each way, 0: none), applied by the relay at once. */
  setRate(bytesPerSecond: number): void {
    if (!this.closed) this.command(() => this.plane.setRate(bytesPerSecond));
  }

  /** An adopted channel's payload bytes each way so far and the bytes waiting for its local socket; null once it is not the plane's. */
  channelStats(channel: number): { bytesSent: number; bytesReceived: number; buffered: number } | null {
    if (this.closed) return null;
    const stats = this.plane.channelStats(channel);
    return stats ? { bytesSent: stats[0], bytesReceived: stats[1], buffered: stats[2] } : null;
  }

  /**
   * Channel data bytes the relay has moved natively, both ways, over all adopted channels; it
   * keeps its last value once the plane is closed.
   */
  get channelBytes(): number {
    if (!this.closed) this.lastChannelBytes = this.plane.channelBytes() ?? this.lastChannelBytes;
    return this.lastChannelBytes;
  }

  ref(): void {
    if (!this.closed) this.plane.ref();
  }

  unref(): void {
    if (!this.closed) this.plane.unref();
  }

  /** Stops the relay: what it framed goes out as far as the socket takes it, then every socket closes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.plane.close();
  }
}

function decodeUpcalls(payloads: Buffer, items: Buffer): PlaneUpcall[] {
  const out: PlaneUpcall[] = [];
  const field = (record: number, index: number) => items.readUInt32LE((record * ITEM_FIELDS + index) * 4);
  const records = items.length / (ITEM_FIELDS * 4);
  for (let r = 0; r < records; r++) {
    switch (field(r, 0)) {
      case ITEM_MESSAGE:
        out.push({ type: 'message', sequence: field(r, 1), payload: payloads.subarray(field(r, 2), field(r, 3)) });
        break;
      case ITEM_CHANNEL_CLOSED:
        out.push({ type: 'channelClosed', channel: field(r, 1), bytesSent: field(r, 2) + field(r, 3) * 2 ** 32, bytesReceived: field(r, 4) + field(r, 5) * 2 ** 32 });
        break;
      case ITEM_REKEY_DUE:
        out.push({ type: 'rekeyDue' });
        break;
    }
  }
  return out;
}

/** What the connection would need for the native plane. */
export interface PlaneConditions {
  /** DataPlane: 'js' forces the JavaScript path. */
  setting: 'native' | 'js';
  /** The SSH socket's descriptor (null: a ProxyCommand's pipes, a jump host's channel). */
  fd: number | null;
  /** The socket's handle can stop Node's reads (readStop): without it both would read the socket. */
  canStopReading: boolean;
  /** The crypto provider's name (the plane seals with the native core: a forced other one keeps JS). */
  provider: string;
  compression: boolean;
  channelIdleTimeout: number;
}

/** The runtime's name when it is not Node (Bun, Deno), else null. */
function otherRuntime(): string | null {
  if (typeof (process.versions as Record<string, string | undefined>)['bun'] === 'string') return 'Bun';
  if ('Deno' in globalThis) return 'Deno';
  return null;
}

/**
 * Why this connection stays on the JavaScript path (for the log), or null when the native
 * plane can carry it.
 */
export function nativePlaneRefusal(conditions: PlaneConditions): string | null {
  if (conditions.setting === 'js') return 'DataPlane=js';
  const addon = dataPlaneClass();
  if (addon instanceof Error) return addon.message;
  // Deno's sockets show no descriptor, Bun's cannot stop their reads: both keep the JavaScript path.
  const runtime = otherRuntime();
  if (runtime && (conditions.fd === null || !conditions.canStopReading)) return `${runtime}'s sockets cannot be handed to the relay thread`;
  if (conditions.fd === null) return 'the transport is not a socket of its own (ProxyCommand, a jump host)';
  if (!conditions.canStopReading) return "the socket's reads cannot be stopped";
  if (conditions.provider !== 'native' && !conditions.provider.startsWith('auto')) return `the ${conditions.provider} crypto provider was chosen`;
  if (conditions.compression) return 'compression is not implemented on the native plane yet';
  if (conditions.channelIdleTimeout > 0) return 'channel idle timeouts are not implemented on the native plane yet';
  return null;
}
