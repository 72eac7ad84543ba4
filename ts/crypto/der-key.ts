// Private keys in binary DER, the "binary" of the PEM key store types: PKCS#8 (RFC 5958,
// plain or encrypted with PBES2), PKCS#1 RSAPrivateKey (RFC 8017 §A.1.2), SEC1 ECPrivateKey
// (RFC 5915) and OpenSSL's DSAPrivateKey, what `openssl pkcs8 -outform DER`, `openssl rsa
// -outform DER`, `openssl ec -outform DER` and `openssl dsa -outform DER` write. OpenSSL (through node:crypto) parses them; this file only
// tries the forms in turn and keeps OpenSSL's messages, which may describe the bytes,
// out of the errors.

import * as crypto from 'node:crypto';
import { SshError, Code } from '../protocol/errors.js';

/**
 * True when `bytes` are exactly one DER SEQUENCE (its length field matches what follows), as
 * every one of these forms is, and as a PFX is.
 */
export function looksLikeDer(bytes: Uint8Array): boolean {
  if (bytes.length < 8 || bytes[0] !== 0x30) return false;
  const first = bytes[1]!;
  if (first < 0x80) return 2 + first === bytes.length;
  const octets = first & 0x7f;
  if (octets < 1 || octets > 3) return false;
  let length = 0;
  for (let i = 0; i < octets; i++) length = length * 256 + bytes[2 + i]!;
  return 2 + octets + length === bytes.length;
}

/**
 * The private key in DER `bytes`, or undefined when they are none of these forms. A wrong
 * or missing passphrase for encrypted PKCS#8 is an error (1032, as for an encrypted PEM key).
 */
export function loadDerPrivateKey(bytes: Uint8Array, passphrase: string | undefined): crypto.KeyObject | undefined {
  const key = Buffer.from(bytes);
  try {
    return crypto.createPrivateKey({ key, format: 'der', type: 'pkcs8', passphrase: passphrase ?? '' });
  } catch (error) {
    if (/bad decrypt|passphrase|interrupted or cancelled/i.test((error as Error).message)) {
      throw new SshError(Code.AuthFailed, 'wrong or missing passphrase for the private key', 'local');
    }
  }
  for (const type of ['pkcs1', 'sec1'] as const) {
    try {
      return crypto.createPrivateKey({ key, format: 'der', type });
    } catch {
      // not this form
    }
  }
  // OpenSSL's traditional DSAPrivateKey (`openssl dsa -outform DER`), which node:crypto takes
  // only as PEM: a legacy key, used only when ssh-dss is listed.
  try {
    const pem = `-----BEGIN DSA PRIVATE KEY-----\n${key.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END DSA PRIVATE KEY-----\n`;
    return crypto.createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return undefined;
  }
}
