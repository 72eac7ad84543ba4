// SSH public key and signature blobs (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709, RFC 8332):
// parsed into their fields so a crypto provider can verify with them, and matched against
// the signature algorithms that may use each key type.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';

export type PublicKey =
  | { type: 'ssh-ed25519'; key: Uint8Array }
  | { type: 'ecdsa'; curve: 'nistp256' | 'nistp384' | 'nistp521'; point: Uint8Array }
  | { type: 'ssh-rsa'; e: Uint8Array; n: Uint8Array };

export const RSA_MAX_MODULUS_BITS = 16384;

export const ECDSA_CURVES = {
  nistp256: { bytes: 32, hash: 'sha256', jwk: 'P-256' },
  nistp384: { bytes: 48, hash: 'sha384', jwk: 'P-384' },
  nistp521: { bytes: 66, hash: 'sha512', jwk: 'P-521' },
} as const;

export function parsePublicKey(blob: Uint8Array): PublicKey {
  const r = new Reader(blob);
  const type = r.utf8();
  let key: PublicKey;
  if (type === 'ssh-ed25519') {
    const k = r.string();
    if (k.length !== 32) throw new SshError(Code.HostKeyVerifyFailed, 'ed25519 key is not 32 bytes', 'peer');
    key = { type, key: k };
  } else if (type.startsWith('ecdsa-sha2-')) {
    const curve = r.utf8();
    if (type !== `ecdsa-sha2-${curve}` || !(curve in ECDSA_CURVES)) {
      throw new SshError(Code.HostKeyVerifyFailed, `unsupported ECDSA curve ${curve}`, 'peer');
    }
    const point = r.string();
    const size = ECDSA_CURVES[curve as keyof typeof ECDSA_CURVES].bytes;
    if (point.length !== 1 + 2 * size || point[0] !== 4) {
      throw new SshError(Code.HostKeyVerifyFailed, 'ECDSA point is not an uncompressed point of the curve', 'peer');
    }
    key = { type: 'ecdsa', curve: curve as keyof typeof ECDSA_CURVES, point };
  } else if (type === 'ssh-rsa') {
    const e = r.mpint();
    const n = r.mpint();
    // Bounds as OpenSSH's: a huge modulus or exponent from a hostile server would make
    // signature verification burn CPU for minutes.
    if (n.length * 8 < 1024) throw new SshError(Code.HostKeyVerifyFailed, 'RSA key shorter than 1024 bits', 'peer');
    if (n.length * 8 > RSA_MAX_MODULUS_BITS) throw new SshError(Code.HostKeyVerifyFailed, `RSA key longer than ${RSA_MAX_MODULUS_BITS} bits`, 'peer');
    if (e.length === 0 || e.length > 4 || (e[e.length - 1]! & 1) === 0) {
      throw new SshError(Code.HostKeyVerifyFailed, 'RSA public exponent is not a small odd number', 'peer');
    }
    key = { type, e, n };
  } else {
    throw new SshError(Code.UnsupportedAlgorithm, `unsupported public key type ${type}`, 'peer');
  }
  r.done('public key blob');
  return key;
}

export function publicKeyTypeName(key: PublicKey): string {
  return key.type === 'ecdsa' ? `ecdsa-sha2-${key.curve}` : key.type;
}

/** The signature algorithms (RFC 8332 for RSA) that a key of this blob type can make. */
export function signatureAlgorithmsFor(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}

/** The key type a host key / signature algorithm name uses. */
export function keyTypeForAlgorithm(algorithm: string): string {
  return algorithm === 'rsa-sha2-256' || algorithm === 'rsa-sha2-512' ? 'ssh-rsa' : algorithm;
}

/** Splits a signature blob into its algorithm name and raw signature bytes. */
export function parseSignature(blob: Uint8Array): { algorithm: string; signature: Uint8Array } {
  const r = new Reader(blob);
  const algorithm = r.utf8();
  const signature = r.string();
  r.done('signature blob');
  return { algorithm, signature };
}

export function encodeSignature(algorithm: string, signature: Uint8Array): Uint8Array {
  return new Writer(signature.length + 32).string(algorithm).string(signature).finish();
}

/** Converts an ECDSA SSH signature (mpint r, mpint s) to fixed-width r||s. */
export function ecdsaSignatureToP1363(signature: Uint8Array, size: number): Uint8Array {
  const r = new Reader(signature);
  const rInt = r.mpint();
  const sInt = r.mpint();
  r.done('ECDSA signature');
  if (rInt.length > size || sInt.length > size) {
    throw new SshError(Code.HostKeyVerifyFailed, 'ECDSA signature component too large', 'peer');
  }
  const out = new Uint8Array(2 * size);
  out.set(rInt, size - rInt.length);
  out.set(sInt, 2 * size - sInt.length);
  return out;
}

/** Converts fixed-width r||s to the SSH ECDSA signature encoding. */
export function p1363ToEcdsaSignature(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return new Writer(raw.length + 16).mpint(raw.subarray(0, half)).mpint(raw.subarray(half)).finish();
}
