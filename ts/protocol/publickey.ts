// SSH public key and signature blobs (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709, RFC 8332):
// parsed into their fields so a crypto provider can verify with them, and matched against
// the signature algorithms that may use each key type. What each key type and algorithm is
// comes from the one table in ./key-types.ts.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import { algorithmsOfKeyType, keyTypeSpec, signatureAlgorithmSpec, type PublicKey } from './key-types.js';

export { ECDSA_CURVES, RSA_MAX_MODULUS_BITS, type PublicKey } from './key-types.js';

/** Reads a public key blob, refusing unknown types, bad fields and trailing bytes. */
export function parsePublicKey(blob: Uint8Array): PublicKey {
  const r = new Reader(blob);
  const type = r.utf8();
  const spec = keyTypeSpec(type);
  if (!spec) {
    if (type.startsWith('ecdsa-sha2-')) throw new SshError(Code.HostKeyVerifyFailed, `unsupported ECDSA curve ${type.slice('ecdsa-sha2-'.length)}`, 'peer');
    throw new SshError(Code.UnsupportedAlgorithm, `unsupported public key type ${type}`, 'peer');
  }
  const key = spec.read(r);
  r.done('public key blob');
  return key;
}

export function publicKeyTypeName(key: PublicKey): string {
  return key.type === 'ecdsa' ? `ecdsa-sha2-${key.curve}` : key.type;
}

/** The key's size in bits, as ssh-keygen -l prints it. */
export function publicKeyBits(key: PublicKey): number {
  return keyTypeSpec(publicKeyTypeName(key))!.bits(key);
}

/** The signature algorithms (RFC 8332 for RSA) that a key of this blob type can make, strongest first. */
export function signatureAlgorithmsFor(keyType: string): string[] {
  const algorithms = algorithmsOfKeyType(keyType).map((spec) => spec.name);
  return algorithms.length > 0 ? algorithms : [keyType];
}

/** The key type a host key / signature algorithm name uses. */
export function keyTypeForAlgorithm(algorithm: string): string {
  return signatureAlgorithmSpec(algorithm)?.keyType ?? algorithm;
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
