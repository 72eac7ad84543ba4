// Payload compression (RFC 4253 §6.2): "zlib", which starts with the NEWKEYS that negotiated it,
// and OpenSSH's "zlib@openssh.com", which waits for SSH_MSG_USERAUTH_SUCCESS (OpenSSH's PROTOCOL
// file) so that nothing an unauthenticated peer sends reaches an inflater. One zlib stream per
// direction, a partial flush (Z_PARTIAL_FLUSH) at the end of every packet, each packet inflated
// whole before the next is read, so the sans-IO core keeps its packet order.
//
// Engine: pako's zlib port, driven through its low-level z_stream API. It runs synchronously
// in the caller's stack for every crypto provider (native, wasm and node alike), writes into
// buffers we own (so the inflater can be stopped at the size bound instead of checked after)
// and has zlib's own Z_PARTIAL_FLUSH. node:zlib has no documented synchronous streaming call,
// and fflate's streaming inflater hands out fresh buffers of any size. Measured on this machine
// (2 cores, Node 20, 32 KiB packets, level 6, one partial flush per packet, 64 MiB):
//   text    pako 27 MB/s deflate, 23 MB/s deflate+inflate; fflate 27 / 16; node:zlib (async) 57
//   random  pako  9 MB/s deflate,  9 MB/s deflate+inflate; fflate  3 /  3; node:zlib (async) 20
// A Rust engine in the crypto core would need a second one for the node provider anyway.
//
// Re-keying: OpenSSH ends and restarts both streams at every NEWKEYS that keeps compression on
// (its comp state belongs to the keys being replaced), as RFC 4253 §6.2 says ("initialized after
// each key exchange"); a stream kept across NEWKEYS would refer back to bytes the peer's fresh
// inflater never saw (the sshd tests re-key every 256 KiB to hold us to this). So each NEWKEYS makes new streams here too, and a re-exchange that negotiates another
// algorithm (or "none") simply takes effect at that NEWKEYS.

import { ZStream, zlibDeflateInit, zlibDeflate, zlibInflateInit, zlibInflate, Z_PARTIAL_FLUSH, Z_NO_FLUSH, Z_OK, Z_BUF_ERROR, Z_STREAM_END } from 'pako';
import { SshError, Code } from './errors.js';

/** The names we implement, in the documented default order of ssh_compression_algorithms. */
export const COMPRESSION_ALGORITHMS: readonly string[] = ['none', 'zlib', 'zlib@openssh.com'];

export function isCompressionAlgorithm(name: string): boolean {
  return COMPRESSION_ALGORITHMS.includes(name);
}

/** True if `name` compresses only once the user is authenticated. */
export function isDelayedCompression(name: string): boolean {
  return name === 'zlib@openssh.com';
}

/** Deflate level: OpenSSH's (start_compression_out(ssh, 6)), zlib's default. */
const LEVEL = 6;

/**
 * Compresses the payloads of one direction. `input(size)` lends a buffer the caller writes the
 * plain payload into; `compress(size)` deflates it and returns a view of the compressed bytes,
 * valid until the next call. Both buffers are kept and grow only for a larger payload.
 */
export class PayloadDeflater {
  private readonly stream = new ZStream();
  private plain = new Uint8Array(0);
  private packed: Uint8Array<ArrayBuffer> = new Uint8Array(0);

  constructor() {
    if (zlibDeflateInit(this.stream, LEVEL) !== Z_OK) throw new SshError(Code.CannotDecompress, 'cannot start the zlib compressor', 'local');
  }

  input(size: number): Uint8Array {
    if (this.plain.length < size) this.plain = new Uint8Array(Math.max(size, 2 * this.plain.length));
    return this.plain;
  }

  compress(size: number): Uint8Array {
    const s = this.stream;
    // Deflate's worst case is the input in stored blocks (5 bytes per block) plus the flush
    // marker; this usually fits in one go, and grows if it does not.
    const room = size + (size >>> 8) + 64;
    if (this.packed.length < room) this.packed = new Uint8Array(room);
    s.input = this.plain;
    s.next_in = 0;
    s.avail_in = size;
    s.output = this.packed;
    s.next_out = 0;
    s.avail_out = this.packed.length;
    for (;;) {
      const status = zlibDeflate(s, Z_PARTIAL_FLUSH);
      if (status !== Z_OK && status !== Z_BUF_ERROR) throw new SshError(Code.CannotDecompress, `zlib compressor failed (${status})`, 'local');
      if (s.avail_out > 0) break; // all input taken and the flush written
      const grown = new Uint8Array(this.packed.length * 2);
      grown.set(this.packed);
      this.packed = grown;
      s.output = grown;
      s.avail_out = grown.length - s.next_out;
    }
    return this.packed.subarray(0, s.next_out);
  }
}

/** Inflated payloads are laid out back to back in buffers of this size. */
const ARENA_SIZE = 1024 * 1024;

/**
 * Inflates the payloads of one direction, each to at most `limit` bytes. The payloads returned
 * stay valid after the next call (decoded messages and channel data events keep views into
 * them): they are laid out one after another in a shared buffer, and a new buffer is taken
 * only when the current one has less than `limit` + 1 bytes left, not once per packet.
 */
export class PayloadInflater {
  private readonly stream = new ZStream();
  private arena: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  private used = 0;

  constructor(private readonly limit: number) {
    if (zlibInflateInit(this.stream) !== Z_OK) throw new SshError(Code.CannotDecompress, 'cannot start the zlib decompressor', 'local');
  }

  /** Bytes inflated over the stream's life (a bomb stops this at its packet's limit + 1). */
  get inflatedBytes(): number {
    return this.stream.total_out;
  }

  inflate(compressed: Uint8Array): Uint8Array {
    // One byte of room past the limit tells a payload of exactly `limit` bytes from a larger one
    // without ever holding more than that.
    const room = this.limit + 1;
    if (this.arena.length - this.used < room) {
      this.arena = new Uint8Array(Math.max(ARENA_SIZE, room));
      this.used = 0;
    }
    const s = this.stream;
    const start = this.used;
    s.input = compressed;
    s.next_in = 0;
    s.avail_in = compressed.length;
    s.output = this.arena;
    s.next_out = start;
    s.avail_out = room;
    const status = zlibInflate(s, Z_NO_FLUSH);
    const produced = s.next_out - start;
    // Whatever the outcome, the input must not keep a reference into the peer's packet.
    s.input = EMPTY;
    if (produced > this.limit) {
      throw new SshError(Code.CannotDecompress, `cannot decompress packet: it inflates past ${this.limit} bytes`, 'peer');
    }
    // Z_BUF_ERROR: no progress was possible, which after a partial flush means all was taken.
    if ((status !== Z_OK && status !== Z_BUF_ERROR) || s.avail_in !== 0) {
      const what = status === Z_STREAM_END ? 'the zlib stream ended' : status === Z_OK || status === Z_BUF_ERROR ? 'input left over' : `zlib: ${s.msg || status}`;
      throw new SshError(Code.CannotDecompress, `cannot decompress packet: ${what}`, 'peer');
    }
    this.used += produced;
    return this.arena.subarray(start, start + produced);
  }
}

const EMPTY = new Uint8Array(0);

/** The part of the packet transport that compression switches. */
export interface CompressedTransport {
  setDeflater(deflater: PayloadDeflater | null): void;
  setInflater(inflater: PayloadInflater | null): void;
}

/**
 * When each direction compresses. The keys of a direction change at a NEWKEYS (ours for what we
 * send, the peer's for what we read); the algorithm negotiated with them starts then with fresh
 * streams, or, for zlib@openssh.com before authentication, at USERAUTH_SUCCESS: the client
 * compresses from the first packet it sends after reading it, and inflates the server's packets
 * that follow it.
 */
export class CompressionSchedule {
  private outgoing = 'none';
  private incoming = 'none';
  private authenticated = false;

  constructor(
    private readonly transport: CompressedTransport,
    /** The largest payload accepted after inflating (the bomb bound). */
    private readonly inflateLimit: number,
    private readonly log: (message: string) => void,
  ) {}

  /** Our NEWKEYS has gone out: packets queued from now on use `algorithm`. */
  outgoingKeysChanged(algorithm: string): void {
    this.outgoing = algorithm;
    this.transport.setDeflater(this.startsNow(algorithm) ? this.deflater(algorithm) : null);
  }

  /** The peer's NEWKEYS has been read: packets read from now on use `algorithm`. */
  incomingKeysChanged(algorithm: string): void {
    this.incoming = algorithm;
    this.transport.setInflater(this.startsNow(algorithm) ? this.inflater(algorithm) : null);
  }

  /** USERAUTH_SUCCESS has been read: a delayed algorithm starts in both directions. */
  userAuthenticated(): void {
    this.authenticated = true;
    if (isDelayedCompression(this.outgoing)) this.transport.setDeflater(this.deflater(this.outgoing));
    if (isDelayedCompression(this.incoming)) this.transport.setInflater(this.inflater(this.incoming));
  }

  private startsNow(algorithm: string): boolean {
    if (!isCompressionAlgorithm(algorithm)) throw new SshError(Code.UnsupportedAlgorithm, `compression ${algorithm} is not implemented`, 'local');
    return algorithm !== 'none' && (!isDelayedCompression(algorithm) || this.authenticated);
  }

  private deflater(algorithm: string): PayloadDeflater {
    this.log(`compression ${algorithm} on for packets sent`);
    return new PayloadDeflater();
  }

  private inflater(algorithm: string): PayloadInflater {
    this.log(`compression ${algorithm} on for packets received`);
    return new PayloadInflater(this.inflateLimit);
  }
}

/** The lines ssh -v prints at the end of a compressed connection, from the transport's counters. */
export function compressionSummary(c: { plainSent: number; packedSent: number; plainReceived: number; packedReceived: number }): string[] {
  if (c.plainSent === 0 && c.plainReceived === 0) return [];
  const factor = (packed: number, plain: number) => (plain === 0 ? 0 : packed / plain).toFixed(2);
  return [
    `compress outgoing: raw data ${c.plainSent}, compressed ${c.packedSent}, factor ${factor(c.packedSent, c.plainSent)}`,
    `compress incoming: raw data ${c.plainReceived}, compressed ${c.packedReceived}, factor ${factor(c.packedReceived, c.plainReceived)}`,
  ];
}
