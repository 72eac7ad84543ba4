// Private keys built from the numbers an SSH key file stores (RFC 4253 §6.6 for RSA and DSA,
// RFC 5656 §3.1 for ECDSA, RFC 8709 for Ed25519). OpenSSH's openssh-key-v1 and PuTTY's PPK both
// keep a key as these parts, in different orders; both hand them here, and the key becomes a
// node KeyObject through JWK, the one import form that takes raw parts for every type but DSA
// (which goes through PKCS#8, ./dsa-der.ts).

import * as crypto from 'node:crypto';
import { SshError, Code } from '../protocol/errors.js';
import { ECDSA_CURVES } from '../protocol/publickey.js';
import { dsaPkcs8, dsaSpki, type DsaNumbers } from './dsa-der.js';

export type EcdsaCurveName = keyof typeof ECDSA_CURVES;

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function bigint(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes).toString('hex'));
}

function unbig(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}

function partsError(message: string): SshError {
  return new SshError(Code.AuthFailed, message, 'local');
}

const CHECK_MESSAGE = Buffer.from('revtun: does this private key match its public key?');

/**
 * Whether a key imported from parts signs what its own public key verifies. Import from JWK
 * does not check that the parts belong together (an RSA modulus that is not p·q, an EC point
 * that is not d·G is taken as given), and such a key would only show at logon, as a refused
 * signature. One signature costs about a millisecond, once per key load.
 */
export function keyPairIsConsistent(key: crypto.KeyObject): boolean {
  try {
    const hash = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
    const signature = crypto.sign(hash, CHECK_MESSAGE, key);
    return crypto.verify(hash, CHECK_MESSAGE, crypto.createPublicKey(key), signature);
  } catch {
    return false;
  }
}

function checked(key: crypto.KeyObject, what: string): crypto.KeyObject {
  if (!keyPairIsConsistent(key)) throw partsError(`the ${what} key is damaged: its private part does not match its public key`);
  return key;
}

/** An Ed25519 key from its 32-byte public key and 32-byte seed (OpenSSH stores seed || public). */
export function ed25519PrivateKey(publicKey: Uint8Array, seed: Uint8Array): crypto.KeyObject {
  if (publicKey.length !== 32 || seed.length < 32) throw partsError('the Ed25519 key has the wrong length');
  return crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(publicKey), d: b64u(seed.subarray(0, 32)) }, format: 'jwk' });
}

/** An ECDSA key from its curve, its uncompressed public point (0x04 || x || y) and the scalar d. */
export function ecdsaPrivateKey(curve: string, point: Uint8Array, d: Uint8Array): crypto.KeyObject {
  const spec = ECDSA_CURVES[curve as EcdsaCurveName];
  if (!spec) throw partsError(`unknown curve ${curve}`);
  const size = spec.bytes;
  if (point.length !== 1 + 2 * size || point[0] !== 4) throw partsError(`the ${curve} public point is malformed`);
  // An mpint drops leading zero bytes (and may add one for the sign): JWK wants exactly `size`.
  let scalar = d;
  while (scalar.length > size && scalar[0] === 0) scalar = scalar.subarray(1);
  if (scalar.length > size) throw partsError(`the ${curve} private scalar is too long`);
  const padded = new Uint8Array(size);
  padded.set(scalar, size - scalar.length);
  const key = crypto.createPrivateKey({
    key: { kty: 'EC', crv: spec.jwk, x: b64u(point.subarray(1, 1 + size)), y: b64u(point.subarray(1 + size)), d: b64u(padded) },
    format: 'jwk',
  });
  return checked(key, `ECDSA ${curve}`);
}

export interface RsaParts {
  n: Uint8Array;
  e: Uint8Array;
  d: Uint8Array;
  p: Uint8Array;
  q: Uint8Array;
  /** q⁻¹ mod p. */
  iqmp: Uint8Array;
}

/** An RSA key from the parts SSH files keep; the CRT exponents JWK also wants are derived. */
export function rsaPrivateKey(parts: RsaParts): crypto.KeyObject {
  const d = bigint(parts.d);
  const p = bigint(parts.p);
  const q = bigint(parts.q);
  if (p < 2n || q < 2n) throw partsError('the RSA key is malformed');
  const key = crypto.createPrivateKey({
    key: {
      kty: 'RSA',
      n: b64u(parts.n),
      e: b64u(parts.e),
      d: b64u(parts.d),
      p: b64u(parts.p),
      q: b64u(parts.q),
      dp: b64u(unbig(d % (p - 1n))),
      dq: b64u(unbig(d % (q - 1n))),
      qi: b64u(parts.iqmp),
    },
    format: 'jwk',
  });
  return checked(key, 'RSA');
}

/** A DSA key from p, q, g, y and the private x, as OpenSSH stores it. */
export function dsaPrivateKey(numbers: DsaNumbers, x: Uint8Array): crypto.KeyObject {
  if (bigint(x) === 0n || bigint(x) >= bigint(numbers.q)) throw partsError('the DSA key is malformed');
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: Buffer.from(dsaPkcs8(numbers, x)), format: 'der', type: 'pkcs8' });
  } catch {
    throw partsError('the DSA key is malformed');
  }
  // PKCS#8 carries no y: the one OpenSSL derives from x must be the file's public key.
  const derived = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!Buffer.from(derived).equals(Buffer.from(dsaSpki(numbers)))) throw partsError('the DSA key is damaged: its private part does not match its public key');
  return key;
}
