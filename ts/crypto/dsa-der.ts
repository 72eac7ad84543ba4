// DSA keys as node:crypto takes and gives them: DER SubjectPublicKeyInfo and PKCS#8
// PrivateKeyInfo with the id-dsa algorithm and its Dss-Parms (RFC 3279 §2.3.2, RFC 5958).
// SSH stores a DSA key as its numbers p, q, g, y (and x), and node:crypto has no JWK form for
// DSA, so the numbers go in and out through these two DER structures. The few DER rules they
// need (INTEGER, SEQUENCE, OCTET/BIT STRING, one OID) are written out here rather than loading
// node-forge, which revtun loads only for PFX files.

import { SshError, Code } from '../protocol/errors.js';

/** 1.2.840.10040.4.1, id-dsa. */
const ID_DSA = Uint8Array.from([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]);

export interface DsaNumbers {
  p: Uint8Array;
  q: Uint8Array;
  g: Uint8Array;
  y: Uint8Array;
}

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(contents);
  return Buffer.concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

/** An unsigned big-endian magnitude as a DER INTEGER (minimal, with a 0 byte before a high bit). */
function integer(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const body = trimmed.length === 0 ? Uint8Array.of(0) : (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Uint8Array.of(0), trimmed]) : trimmed;
  return tlv(0x02, body);
}

const sequence = (...parts: Uint8Array[]) => tlv(0x30, ...parts);

function algorithm(numbers: Pick<DsaNumbers, 'p' | 'q' | 'g'>): Uint8Array {
  return sequence(ID_DSA, sequence(integer(numbers.p), integer(numbers.q), integer(numbers.g)));
}

/** The SubjectPublicKeyInfo of a DSA public key. */
export function dsaSpki(numbers: DsaNumbers): Uint8Array {
  return sequence(algorithm(numbers), tlv(0x03, Uint8Array.of(0), integer(numbers.y)));
}

/** The PKCS#8 PrivateKeyInfo of a DSA private key x. */
export function dsaPkcs8(numbers: Pick<DsaNumbers, 'p' | 'q' | 'g'>, x: Uint8Array): Uint8Array {
  return sequence(integer(Uint8Array.of(0)), algorithm(numbers), tlv(0x04, integer(x)));
}

function malformed(): SshError {
  return new SshError(Code.AuthFailed, 'the DSA key is malformed', 'local');
}

/** Reads one TLV at `offset` of `bytes`, within `end`; bounds-checked. */
function readTlv(bytes: Uint8Array, offset: number, end: number, tag: number): { content: Uint8Array; next: number } {
  if (offset + 2 > end || bytes[offset] !== tag) throw malformed();
  let length = bytes[offset + 1]!;
  let at = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets < 1 || octets > 3 || at + octets > end) throw malformed();
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + bytes[at + i]!;
    at += octets;
  }
  if (at + length > end) throw malformed();
  return { content: bytes.subarray(at, at + length), next: at + length };
}

/** A DER INTEGER's content as an unsigned magnitude (leading zero bytes dropped). */
function magnitude(content: Uint8Array): Uint8Array {
  if (content.length === 0 || (content[0]! & 0x80) !== 0) throw malformed(); // DSA numbers are positive
  let start = 0;
  while (start < content.length - 1 && content[start] === 0) start++;
  return content.subarray(start);
}

/** The numbers of a DSA SubjectPublicKeyInfo, as node:crypto exports it. */
export function readDsaSpki(spki: Uint8Array): DsaNumbers {
  const outer = readTlv(spki, 0, spki.length, 0x30);
  if (outer.next !== spki.length) throw malformed();
  const body = outer.content;
  const algorithmId = readTlv(body, 0, body.length, 0x30);
  const oid = readTlv(algorithmId.content, 0, algorithmId.content.length, 0x06);
  if (!Buffer.from(ID_DSA.subarray(2)).equals(oid.content)) throw malformed();
  const params = readTlv(algorithmId.content, oid.next, algorithmId.content.length, 0x30).content;
  const p = readTlv(params, 0, params.length, 0x02);
  const q = readTlv(params, p.next, params.length, 0x02);
  const g = readTlv(params, q.next, params.length, 0x02);
  const bits = readTlv(body, algorithmId.next, body.length, 0x03).content;
  if (bits[0] !== 0) throw malformed();
  const y = readTlv(bits, 1, bits.length, 0x02);
  return { p: magnitude(p.content), q: magnitude(q.content), g: magnitude(g.content), y: magnitude(y.content) };
}
