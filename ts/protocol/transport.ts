// The binary packet protocol (RFC 4253 §4.2, §6): the version exchange, framing of packets
// in both directions through the current sealer/opener, sequence numbers, and the checks
// that make a hostile peer fail fast (length and padding bounds, line and banner limits).

import { SshError, Code } from './errors.js';
import { fromUtf8, readUint32 } from './wire.js';
import type { PacketOpener, PacketSealer } from '../crypto/provider.js';
import type { PayloadDeflater, PayloadInflater } from './compression.js';

/** RFC 4253 §6.1 asks for at least 35000; OpenSSH accepts 256 KiB. */
export const MAX_PACKET_LENGTH = 256 * 1024;
const MAX_VERSION_LINE = 255;
const MAX_PRE_VERSION_BYTES = 64 * 1024;
const MAX_PRE_VERSION_LINES = 1024;

/** Unencrypted framing used until the first NEWKEYS. */
export const PLAIN_SEALER: PacketSealer = { blockSize: 8, macLength: 0, lengthOutsidePadding: false, seal() {} };
export const PLAIN_OPENER: PacketOpener = {
  blockSize: 8,
  macLength: 0,
  lengthFieldBytes: 4,
  decryptLength: (_seq, head) => readUint32(head, 0),
  open() {},
};

/** Outgoing packets share buffers of this size (a larger packet gets one of its own). */
const ARENA_SIZE = 512 * 1024;

/** A FIFO of received chunks that hands out exact byte counts without joining everything. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.length += chunk.length;
    const last = this.chunks[this.chunks.length - 1];
    if (last && last.buffer === chunk.buffer && last.byteOffset + last.length === chunk.byteOffset) {
      // The next read landed right after the previous one: keep them one chunk, so a packet
      // that straddles the two reads can still be opened where it lies.
      this.chunks[this.chunks.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + chunk.length);
      return;
    }
    this.chunks.push(chunk);
  }

  /** Copies everything queued to the start of `target` and queues that copy instead. */
  moveTo(target: Uint8Array): void {
    const n = this.length;
    if (n === 0) return;
    if (this.chunks.length === 1) {
      target.set(this.chunks[0]!.subarray(this.head, this.head + n)); // set() copes with overlap
    } else {
      const joined = new Uint8Array(n); // a chunk may overlap target: gather first (rare path)
      this.peek(n, joined);
      target.set(joined);
    }
    this.chunks = [target.subarray(0, n)];
    this.head = 0;
  }

  /** Copies the first `n` bytes into `target` at `offset` without dropping them. */
  peek(n: number, target: Uint8Array, offset = 0): void {
    for (let c = 0, copied = 0; copied < n; c++) {
      const chunk = this.chunks[c]!;
      const start = c === 0 ? this.head : 0;
      const count = Math.min(chunk.length - start, n - copied);
      target.set(chunk.subarray(start, start + count), offset + copied);
      copied += count;
    }
  }

  /** The first `n` bytes as a view into the first chunk, if that chunk holds them all. */
  contiguous(n: number): Uint8Array | null {
    const chunk = this.chunks[0];
    return chunk && chunk.length - this.head >= n ? chunk.subarray(this.head, this.head + n) : null;
  }

  /** Drops the first `n` bytes. */
  skip(n: number): void {
    while (n > 0) {
      const available = this.chunks[0]!.length - this.head;
      const count = Math.min(available, n);
      n -= count;
      this.length -= count;
      if (count === available) {
        this.chunks.shift();
        this.head = 0;
      } else {
        this.head += count;
      }
    }
  }

  /** Copies `n` bytes into `target` at `offset` and drops them from the queue. */
  take(n: number, target: Uint8Array, offset: number): void {
    this.peek(n, target, offset);
    this.skip(n);
  }

  /** Returns the index of the first LF, or -1. */
  indexOfLineFeed(limit: number): number {
    let seen = 0;
    for (let c = 0; c < this.chunks.length && seen < limit; c++) {
      const chunk = this.chunks[c]!;
      const start = c === 0 ? this.head : 0;
      for (let i = start; i < chunk.length && seen < limit; i++, seen++) {
        if (chunk[i] === 0x0a) return seen;
      }
    }
    return -1;
  }
}

export interface VersionResult {
  serverVersion: string;
  preVersionLines: string[];
}

/** Reads pre-version lines and the server's identification string (RFC 4253 §4.2). */
export class PacketTransport {
  private readonly input = new ByteQueue();
  private versionDone = false;
  private preVersionBytes = 0;
  private readonly preVersionLines: string[] = [];

  private sealer: PacketSealer = PLAIN_SEALER;
  private opener: PacketOpener = PLAIN_OPENER;
  sendSequence = 0;
  receiveSequence = 0;
  /** Payload bytes sent / received since the last key change, for rekey thresholds. */
  bytesSentSinceKex = 0;
  bytesReceivedSinceKex = 0;
  packetsReceivedSinceKex = 0;
  /**
   * Packets sealed, and bytes that went through each direction's cipher, since the last key
   * change: where a counter-mode cipher's state stands (AES-GCM's invocation counter, CTR's
   * block counter), for a handover to the native data plane.
   */
  packetsSentSinceKex = 0;
  cipherBytesSent = 0;
  cipherBytesReceived = 0;

  /** Size of the packet whose length field has been read (0: none yet); its bytes stay queued. */
  private pendingTotal = 0;
  /** The decrypted length field of that packet (decryptLength may advance the cipher, so it runs once). */
  private headScratch = new Uint8Array(4);
  /** Outgoing packets are framed back to back here; `burstStart` is where the unsealed ones begin. */
  private arena: Uint8Array = new Uint8Array(0);
  private arenaUsed = 0;
  private burstStart = 0;
  /** End offsets (from `burstStart`) of the queued, unsealed packets. */
  private pendingEnds = new Uint32Array(64);
  private pendingCount = 0;
  private pendingFirstSequence = 0;
  /** Sealed bursts and raw bytes waiting for `drain`. */
  private readonly ready: Uint8Array[] = [];
  private readonly randomPool: Uint8Array;
  private randomOffset = 0;
  /** Compression of payloads sent / received (RFC 4253 §6.2); null: none. */
  private deflater: PayloadDeflater | null = null;
  private inflater: PayloadInflater | null = null;
  private packed: Uint8Array = new Uint8Array(0);
  private readonly copyPacked = (packet: Uint8Array, offset: number) => packet.set(this.packed, offset);
  /** Payload bytes before and after compression, both directions, for the whole connection. */
  readonly compressionCounters = { plainSent: 0, packedSent: 0, plainReceived: 0, packedReceived: 0 };

  constructor(
    private readonly randomBytes: (n: number) => Uint8Array,
    private readonly acceptVersion: (version: string) => boolean,
    /** Packet buffers; need not be zeroed, since every byte is written before it is read. */
    private readonly allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
    /**
     * The caller hands received chunks over for good, so a packet that lies whole inside one
     * is decrypted where it is instead of being copied out first.
     */
    private readonly ownsInput = false,
  ) {
    this.randomPool = randomBytes(4096);
  }

  receive(bytes: Uint8Array): void {
    this.input.push(bytes);
  }

  /** Returns the version result once the identification line has arrived; null while waiting. */
  readVersion(): VersionResult | null {
    while (!this.versionDone) {
      const lf = this.input.indexOfLineFeed(MAX_VERSION_LINE + 2);
      if (lf < 0) {
        if (this.input.length > MAX_VERSION_LINE + 1) {
          throw new SshError(Code.BadVersion, 'server sent a line longer than 255 bytes before its version', 'peer');
        }
        return null;
      }
      const raw = new Uint8Array(lf + 1);
      this.input.take(lf + 1, raw, 0);
      let end = lf;
      if (end > 0 && raw[end - 1] === 0x0d) end--;
      let line: string;
      try {
        line = fromUtf8(raw.subarray(0, end));
      } catch {
        line = '';
      }
      if (line.startsWith('SSH-')) {
        if (!this.acceptVersion(line)) {
          throw new SshError(Code.BadVersion, `unsupported protocol version: ${line}`, 'peer');
        }
        this.versionDone = true;
        return { serverVersion: line, preVersionLines: this.preVersionLines };
      }
      this.preVersionBytes += raw.length;
      this.preVersionLines.push(line);
      if (this.preVersionBytes > MAX_PRE_VERSION_BYTES || this.preVersionLines.length > MAX_PRE_VERSION_LINES) {
        throw new SshError(Code.BadVersion, 'server sent too much text before its version line', 'peer');
      }
    }
    return null;
  }

  setOpener(opener: PacketOpener): void {
    this.opener = opener;
    this.bytesReceivedSinceKex = 0;
    this.packetsReceivedSinceKex = 0;
    this.cipherBytesReceived = 0;
  }

  setSealer(sealer: PacketSealer): void {
    this.sealPending(); // packets queued before the switch go out under the old keys
    this.sealer = sealer;
    this.bytesSentSinceKex = 0;
    this.packetsSentSinceKex = 0;
    this.cipherBytesSent = 0;
  }

  /** A packet's length field has been decrypted and the rest of it has not arrived. */
  get midPacket(): boolean {
    return this.pendingTotal !== 0;
  }

  /**
   * Compresses the payloads queued from now on (null: sends them as they are). Packets already
   * queued keep the form they were framed in, so the switch lands between two packets.
   */
  setDeflater(deflater: PayloadDeflater | null): void {
    this.deflater = deflater;
  }

  /** Inflates the payloads read from now on (null: takes them as they are). */
  setInflater(inflater: PayloadInflater | null): void {
    this.inflater = inflater;
  }

  get encrypted(): boolean {
    return this.sealer !== PLAIN_SEALER;
  }

  /**
   * Returns the next decrypted payload (a view into a fresh buffer, or into the received
   * chunk when the input is owned), or null if more bytes are needed.
   */
  readPacket(): Uint8Array | null {
    const opener = this.opener;
    if (this.pendingTotal === 0) {
      if (this.input.length < opener.lengthFieldBytes) return null;
      if (this.headScratch.length !== opener.lengthFieldBytes) this.headScratch = new Uint8Array(opener.lengthFieldBytes);
      const head = this.headScratch;
      this.input.peek(head.length, head);
      const length = opener.lengthInClear ? readUint32(head, 0) : opener.decryptLength(this.receiveSequence, head);
      if (length < 5 || length > MAX_PACKET_LENGTH) {
        throw new SshError(Code.CannotDecrypt, `bad packet length ${length}`, 'peer');
      }
      const total = 4 + length + opener.macLength;
      if (total < head.length) throw new SshError(Code.CannotDecrypt, `bad packet length ${length}`, 'peer');
      this.pendingTotal = total;
    }
    // The packet's bytes wait in the queue until all have arrived, so a packet that reaches
    // across reads into one lent buffer is still opened in place.
    const total = this.pendingTotal;
    if (this.input.length < total) return null;
    this.pendingTotal = 0;
    let packet = this.ownsInput ? this.input.contiguous(total) : null;
    if (packet) {
      this.input.skip(total);
    } else {
      packet = this.allocate(total);
      this.input.take(total, packet, 0);
    }
    // decryptLength may have decrypted the head (CBC/CTR with MAC-then-encrypt).
    if (!opener.lengthInClear) packet.set(this.headScratch, 0);
    return this.openPacket(packet);
  }

  /** Received bytes not yet taken as packets (the start of the next packet). */
  get inputBacklog(): number {
    return this.input.length;
  }

  /**
   * Moves the received bytes not yet taken to the start of `target`, so the caller can reuse
   * the memory they were in. Chunks received next that continue `target` right after them
   * join them in place.
   */
  moveInput(target: Uint8Array): void {
    if (target.length < this.input.length) throw new RangeError('moveInput: target too small');
    this.input.moveTo(target);
  }

  /** Verifies and decrypts a whole packet in place; returns its payload. */
  private openPacket(packet: Uint8Array): Uint8Array {
    const opener = this.opener;
    const sequence = this.receiveSequence;
    this.receiveSequence = (this.receiveSequence + 1) >>> 0;
    opener.open(sequence, packet);
    const length = packet.length - 4 - opener.macLength;
    const padding = packet[4]!;
    const aligned = opener.lengthFieldBytes === 4 && opener !== PLAIN_OPENER ? length : length + 4;
    if (padding < 4 || padding > length - 1 || aligned % Math.max(opener.blockSize, 8) !== 0) {
      throw new SshError(Code.CannotDecrypt, `bad padding (${padding} bytes in a ${length}-byte packet)`, 'peer');
    }
    this.bytesReceivedSinceKex += length;
    this.packetsReceivedSinceKex++;
    this.cipherBytesReceived += opener.lengthFieldBytes === 4 ? length : length + 4;
    const payload = packet.subarray(5, 4 + length - padding);
    if (!this.inflater) return payload;
    const plain = this.inflater.inflate(payload);
    this.compressionCounters.packedReceived += payload.length;
    this.compressionCounters.plainReceived += plain.length;
    return plain;
  }

  private fillPadding(target: Uint8Array, offset: number, count: number): void {
    if (this.randomOffset + count > this.randomPool.length) {
      this.randomPool.set(this.randomBytes(this.randomPool.length));
      this.randomOffset = 0;
    }
    target.set(this.randomPool.subarray(this.randomOffset, this.randomOffset + count), offset);
    this.randomOffset += count;
  }

  /**
   * Frames one payload of `size` bytes, written by `fill` straight into the packet, and queues
   * it for sealing. Packets are framed back to back into a shared buffer and sealed a burst at
   * a time (one call to the sealer, one write for the socket) when `drain` collects them.
   */
  queue(size: number, fill: (packet: Uint8Array, offset: number) => void): void {
    const deflater = this.deflater;
    if (deflater) {
      // The plain payload is written into the deflater's own buffer, then framed compressed.
      fill(deflater.input(size), 0);
      this.packed = deflater.compress(size);
      this.compressionCounters.plainSent += size;
      this.compressionCounters.packedSent += this.packed.length;
      size = this.packed.length;
      fill = this.copyPacked;
    }
    const sealer = this.sealer;
    const block = Math.max(sealer.blockSize, 8);
    const unpadded = sealer.lengthOutsidePadding ? 1 + size : 5 + size;
    let padding = block - (unpadded % block);
    if (padding < 4) padding += block;
    const length = 1 + size + padding;
    const total = 4 + length + sealer.macLength;
    if (this.arenaUsed + total > this.arena.length) {
      this.sealPending();
      this.arena = this.allocate(Math.max(ARENA_SIZE, total));
      this.arenaUsed = 0;
      this.burstStart = 0;
    }
    const at = this.arenaUsed;
    const packet = this.arena;
    packet[at] = length >>> 24;
    packet[at + 1] = (length >>> 16) & 0xff;
    packet[at + 2] = (length >>> 8) & 0xff;
    packet[at + 3] = length & 0xff;
    packet[at + 4] = padding;
    fill(packet, at + 5);
    this.fillPadding(packet, at + 5 + size, padding);
    if (this.pendingCount === 0) this.pendingFirstSequence = this.sendSequence;
    if (this.pendingCount === this.pendingEnds.length) {
      const grown = new Uint32Array(this.pendingEnds.length * 2);
      grown.set(this.pendingEnds);
      this.pendingEnds = grown;
    }
    this.arenaUsed = at + total;
    this.pendingEnds[this.pendingCount++] = this.arenaUsed - this.burstStart;
    this.sendSequence = (this.sendSequence + 1) >>> 0;
    this.bytesSentSinceKex += size;
  }

  queuePayload(payload: Uint8Array): void {
    this.queue(payload.length, (packet, offset) => packet.set(payload, offset));
  }

  /** Queues bytes that go out as they are (the identification line), after what is queued. */
  queueRaw(bytes: Uint8Array): void {
    this.sealPending();
    this.ready.push(bytes);
  }

  /** Seals what is queued and returns everything ready for the wire, in order; null if nothing. */
  drain(): Uint8Array[] | null {
    this.sealPending();
    return this.ready.length === 0 ? null : this.ready.splice(0);
  }

  /**
   * Everything drain() returned has left (the socket took it at once), so the shared buffer
   * it was framed in takes the next packets from its start instead of a new buffer.
   */
  releaseOutput(): void {
    if (this.pendingCount === 0 && this.ready.length === 0) {
      this.arenaUsed = 0;
      this.burstStart = 0;
    }
  }

  get hasOutput(): boolean {
    return this.pendingCount > 0 || this.ready.length > 0;
  }

  /** Seals the queued burst with the current keys (before they change, or when drained). */
  private sealPending(): void {
    const count = this.pendingCount;
    if (count === 0) return;
    const burst = this.arena.subarray(this.burstStart, this.arenaUsed);
    const ends = this.pendingEnds.subarray(0, count);
    const sealer = this.sealer;
    // Counted before sealing: the cipher's state after this burst, whatever the sealer does.
    let previous = 0;
    for (let i = 0; i < count; i++) {
      const length = ends[i]! - previous - 4 - sealer.macLength;
      this.cipherBytesSent += sealer.lengthOutsidePadding ? length : length + 4;
      previous = ends[i]!;
    }
    this.packetsSentSinceKex += count;
    if (sealer.sealBatch) {
      sealer.sealBatch(this.pendingFirstSequence, burst, ends);
    } else {
      let start = 0;
      for (let i = 0; i < count; i++) {
        sealer.seal((this.pendingFirstSequence + i) >>> 0, burst.subarray(start, ends[i]));
        start = ends[i]!;
      }
    }
    this.ready.push(burst);
    this.burstStart = this.arenaUsed;
    this.pendingCount = 0;
  }

  /** Frames, seals and returns one packet at once (nothing else may be queued). */
  frame(size: number, fill: (packet: Uint8Array, offset: number) => void): Uint8Array {
    if (this.hasOutput) throw new Error('frame() with packets still queued');
    this.queue(size, fill);
    return this.drain()![0]!;
  }

  framePayload(payload: Uint8Array): Uint8Array {
    return this.frame(payload.length, (packet, offset) => packet.set(payload, offset));
  }
}
