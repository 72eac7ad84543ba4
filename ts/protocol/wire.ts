// SSH wire encoding (RFC 4251 §5): byte, boolean, uint32, uint64, string, mpint, name-list.
// The reader never reads past its end and can insist that nothing is left over, so a
// malformed or padded message from the peer is rejected instead of half-parsed.

import { SshError, Code } from './errors.js';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

export function fromUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    throw new SshError(Code.ProtocolError, 'invalid UTF-8 in a string field', 'peer');
  }
}

export class Reader {
  private offset: number;
  private readonly end: number;

  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    end = bytes.length,
  ) {
    this.offset = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.end) {
      throw new SshError(Code.ProtocolError, `message truncated while reading ${what}`, 'peer');
    }
  }

  byte(): number {
    this.need(1, 'byte');
    return this.bytes[this.offset++]!;
  }

  boolean(): boolean {
    return this.byte() !== 0;
  }

  uint32(): number {
    this.need(4, 'uint32');
    const value = readUint32(this.bytes, this.offset);
    this.offset += 4;
    return value;
  }

  uint64(): bigint {
    const hi = BigInt(this.uint32());
    const lo = BigInt(this.uint32());
    return (hi << 32n) | lo;
  }

  /** A length-prefixed byte string, as a view into the packet (no copy). */
  string(): Uint8Array {
    const length = this.uint32();
    this.need(length, 'string body');
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  utf8(): string {
    return fromUtf8(this.string());
  }

  /** A multiple-precision integer as unsigned big-endian bytes without leading zeros. */
  mpint(): Uint8Array {
    const raw = this.string();
    if (raw.length > 0 && raw[0]! & 0x80) {
      throw new SshError(Code.ProtocolError, 'negative mpint where a positive one was expected', 'peer');
    }
    let i = 0;
    while (i < raw.length && raw[i] === 0) i++;
    return raw.subarray(i);
  }

  nameList(): string[] {
    const text = this.utf8();
    if (text === '') return [];
    const names = text.split(',');
    if (names.some((n) => n === '' || n.length > 64)) {
      throw new SshError(Code.ProtocolError, 'malformed name-list', 'peer');
    }
    return names;
  }

  /** All bytes left, as a view. */
  rest(): Uint8Array {
    const out = this.bytes.subarray(this.offset, this.end);
    this.offset = this.end;
    return out;
  }

  /** Rejects trailing bytes: every field of a message must be accounted for. */
  done(what: string): void {
    if (this.offset !== this.end) {
      throw new SshError(Code.ProtocolError, `${this.end - this.offset} trailing bytes after ${what}`, 'peer');
    }
  }
}

/** Growable writer; `finish()` returns a view of exactly the bytes written. */
export class Writer {
  private buf: Uint8Array;
  private length: number;

  constructor(capacity = 256, reserve = 0) {
    this.buf = new Uint8Array(Math.max(capacity, reserve + 16));
    this.length = reserve;
  }

  get size(): number {
    return this.length;
  }

  private ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buf.length) return;
    let next = this.buf.length * 2;
    while (next < needed) next *= 2;
    const grown = new Uint8Array(next);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.length++] = v & 0xff;
    return this;
  }

  boolean(v: boolean): this {
    return this.byte(v ? 1 : 0);
  }

  uint32(v: number): this {
    this.ensure(4);
    const b = this.buf;
    const o = this.length;
    b[o] = (v >>> 24) & 0xff;
    b[o + 1] = (v >>> 16) & 0xff;
    b[o + 2] = (v >>> 8) & 0xff;
    b[o + 3] = v & 0xff;
    this.length += 4;
    return this;
  }

  uint64(v: bigint): this {
    this.uint32(Number((v >> 32n) & 0xffffffffn));
    return this.uint32(Number(v & 0xffffffffn));
  }

  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  string(bytes: Uint8Array | string): this {
    const b = typeof bytes === 'string' ? utf8(bytes) : bytes;
    this.uint32(b.length);
    return this.raw(b);
  }

  /** Writes unsigned big-endian magnitude bytes as an mpint (adds a 0 byte if the top bit is set). */
  mpint(magnitude: Uint8Array): this {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i++;
    const m = magnitude.subarray(i);
    const pad = m.length > 0 && m[0]! & 0x80 ? 1 : 0;
    this.uint32(m.length + pad);
    if (pad) this.byte(0);
    return this.raw(m);
  }

  nameList(names: readonly string[]): this {
    return this.string(names.join(','));
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * A copy of `bytes` in memory of its own. (Buffer#slice returns a view, not a copy, and
 * received bytes are often Buffers, so `.slice()` must not be used to copy them.)
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function toHex(bytes: Uint8Array, separator = ''): string {
  const parts: string[] = [];
  for (const b of bytes) parts.push(b.toString(16).padStart(2, '0'));
  return parts.join(separator);
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[^0-9a-fA-F]/g, '');
  if (clean.length % 2) throw new SshError(Code.BadArgument, 'odd number of hex digits', 'local');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** The big-endian uint32 at `offset`. */
export function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

export function writeUint32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value >>> 24;
  target[offset + 1] = (value >>> 16) & 0xff;
  target[offset + 2] = (value >>> 8) & 0xff;
  target[offset + 3] = value & 0xff;
}
