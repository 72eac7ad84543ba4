// Client private keys given as text: the OpenSSH "openssh-key-v1" format (PROTOCOL.key), plain
// or protected with bcrypt-pbkdf + AES, PEM PKCS#1 / SEC1 / PKCS#8 / "DSA PRIVATE KEY" through
// OpenSSL, and PuTTY's
// PPK (./ppk.ts). Every form becomes a node KeyObject and a Signer that produces SSH signature
// blobs.
//
// Key text is secret: no error raised here quotes it, not even a line of it. A file in another
// format is named by what it looks like (SSH.COM, a public key) so that the user can convert it.

import * as crypto from 'node:crypto';
import { Reader, Writer, equalBytes } from '../protocol/wire.js';
import { SshError, Code } from '../protocol/errors.js';
import { ECDSA_CURVES, encodeSignature, p1363ToEcdsaSignature } from '../protocol/publickey.js';
import { DSA_Q_BITS, bitLength, keyTypeForNodeKey, keyTypeSpec, signatureAlgorithmSpec } from '../protocol/key-types.js';
import { readDsaSpki } from './dsa-der.js';
import type { ImmediateSigner } from '../protocol/auth.js';
import { dsaPrivateKey, ecdsaPrivateKey, ed25519PrivateKey, rsaPrivateKey } from './ssh-key-parts.js';
import { loadPpkKey, ppkIsEncrypted, ppkKdfRequest, ppkPublicBlob } from './ppk.js';
import { deriveSync, type KdfRequest } from './kdf-worker.js';

const OPENSSH_MAGIC = 'openssh-key-v1\0';

function keyError(message: string): SshError {
  return new SshError(Code.AuthFailed, message, 'local');
}

const SSH_CIPHERS: Record<string, { openssl: string; keyLength: number; ivLength: number }> = {
  'aes256-ctr': { openssl: 'aes-256-ctr', keyLength: 32, ivLength: 16 },
  'aes192-ctr': { openssl: 'aes-192-ctr', keyLength: 24, ivLength: 16 },
  'aes128-ctr': { openssl: 'aes-128-ctr', keyLength: 16, ivLength: 16 },
  'aes256-cbc': { openssl: 'aes-256-cbc', keyLength: 32, ivLength: 16 },
  'aes128-cbc': { openssl: 'aes-128-cbc', keyLength: 16, ivLength: 16 },
};

function decodePem(text: string): { label: string; body: Buffer } | null {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return null;
  const body = m[2]!.replace(/^[A-Za-z-]+:.*$/gm, '').replace(/\s+/g, '');
  return { label: m[1]!, body: Buffer.from(body, 'base64') };
}

/**
 * The complete `-----BEGIN label-----` … `-----END label-----` blocks of a text, in order, at
 * most `max`. Found with indexOf, in one pass: a lazy regular expression rescans the rest of the
 * text for every BEGIN without an END, which makes a hostile file of BEGIN lines quadratic.
 */
export function findPemBlocks(text: string, label: string, max: number): string[] {
  const begin = `-----BEGIN ${label}-----`;
  const end = `-----END ${label}-----`;
  const blocks: string[] = [];
  for (let at = text.indexOf(begin); at >= 0 && blocks.length < max;) {
    const stop = text.indexOf(end, at + begin.length);
    if (stop < 0) break; // no END after this BEGIN: none after any later one either
    blocks.push(text.slice(at, stop + end.length));
    at = text.indexOf(begin, stop + end.length);
  }
  return blocks;
}

/** What a key text looks like, judged from its marker lines alone. */
export type KeyTextFormat = 'openssh' | 'pem' | 'putty' | 'ssh.com' | 'public' | 'unknown';

export function keyTextFormat(text: string): KeyTextFormat {
  if (/-----BEGIN OPENSSH PRIVATE KEY-----/.test(text)) return 'openssh';
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) return 'pem';
  if (/^\s*PuTTY-User-Key-File-\d+:/.test(text)) return 'putty';
  if (/---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----/.test(text)) return 'ssh.com';
  if (/^\s*(?:ssh-|ecdsa-sha2-|sk-)\S+\s+AAAA/.test(text) || /---- BEGIN SSH2 PUBLIC KEY ----|-----BEGIN (?:RSA |EC )?PUBLIC KEY-----/.test(text)) {
    return 'public';
  }
  return 'unknown';
}

/**
 * Why a text in `format` cannot be used as a private key. `fileName`, when the key came from a
 * file, goes into the conversion command so that it can be copied as it stands.
 */
export function unsupportedKeyFormatMessage(format: KeyTextFormat, fileName?: string): string {
  switch (format) {
    case 'ssh.com':
      return `SSH.COM private key files are not supported; convert it with \`ssh-keygen -i -f ${fileName ?? 'key'}\``;
    case 'public':
      return 'this is a public key; a private key is needed';
    default:
      return 'not a private key in a format revtun reads (OpenSSH, PEM or PuTTY PPK)';
  }
}

/** True when the key text needs a passphrase (an OpenSSH or PPK key with a cipher, or encrypted PEM). */
export function privateKeyIsEncrypted(text: string): boolean {
  if (keyTextFormat(text) === 'putty') return ppkIsEncrypted(text);
  const pem = decodePem(text);
  if (!pem) return false;
  if (pem.label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type:\s*4,\s*ENCRYPTED/m.test(text)) return true;
  if (pem.label !== 'OPENSSH PRIVATE KEY') return false;
  try {
    const r = new Reader(pem.body, OPENSSH_MAGIC.length);
    return r.utf8() !== 'none';
  } catch {
    return false; // malformed: loadPrivateKey says so
  }
}

/** The bcrypt-pbkdf an encrypted openssh-key-v1 key asks for, or null (plain, or not that format). */
function openSshKdfRequest(data: Uint8Array): KdfRequest | null {
  const magic = new TextEncoder().encode(OPENSSH_MAGIC);
  if (!equalBytes(data.subarray(0, magic.length), magic)) return null;
  const r = new Reader(data, magic.length);
  const cipher = SSH_CIPHERS[r.utf8()];
  if (!cipher || r.utf8() !== 'bcrypt') return null; // parseOpenSshKey says what is wrong
  const k = new Reader(r.string());
  return { kind: 'bcrypt', salt: k.string(), rounds: k.uint32(), length: cipher.keyLength + cipher.ivLength };
}

/**
 * What an encrypted key text asks of its passphrase when that is costly (OpenSSH's
 * bcrypt-pbkdf, PPK v3's Argon2), so that the caller can derive it off the event loop
 * (./kdf-worker.ts) and pass the result to loadPrivateKey; null for any other key.
 */
export function keyKdfRequest(text: string): KdfRequest | null {
  try {
    if (keyTextFormat(text) === 'putty') return ppkKdfRequest(text);
    const pem = decodePem(text);
    return pem?.label === 'OPENSSH PRIVATE KEY' ? openSshKdfRequest(pem.body) : null;
  } catch {
    return null; // damaged: loadPrivateKey says how
  }
}

/** Parses an OpenSSH-format private key into a node KeyObject. */
function parseOpenSshKey(data: Uint8Array, passphrase: string | undefined, derivedKey?: Uint8Array): crypto.KeyObject {
  const magic = new TextEncoder().encode(OPENSSH_MAGIC);
  if (!equalBytes(data.subarray(0, magic.length), magic)) throw keyError('not an openssh-key-v1 private key');
  const r = new Reader(data, magic.length);
  const cipherName = r.utf8();
  const kdfName = r.utf8();
  const kdfOptions = r.string();
  const count = r.uint32();
  if (count !== 1) throw keyError(`key files with ${count} keys are not supported`);
  r.string(); // public key (repeated inside the private section)
  let secret = r.string();
  if (cipherName !== 'none') {
    const cipher = SSH_CIPHERS[cipherName];
    if (!cipher) throw keyError(`private key cipher ${cipherName} is not supported`);
    if (kdfName !== 'bcrypt') throw keyError(`private key KDF ${kdfName} is not supported`);
    if (passphrase === undefined || passphrase === '') throw keyError('the private key is encrypted and no passphrase was given');
    const k = new Reader(kdfOptions);
    const request: KdfRequest = { kind: 'bcrypt', salt: k.string(), rounds: k.uint32(), length: cipher.keyLength + cipher.ivLength };
    const derived = Buffer.from(derivedKey?.length === request.length ? derivedKey : deriveSync(request, Buffer.from(passphrase, 'utf8')));
    const decipher = crypto.createDecipheriv(cipher.openssl, derived.subarray(0, cipher.keyLength), derived.subarray(cipher.keyLength)).setAutoPadding(false);
    secret = Buffer.concat([decipher.update(secret), decipher.final()]);
  }
  const p = new Reader(secret);
  const checkWord = p.uint32();
  if (checkWord !== p.uint32()) throw keyError('wrong passphrase for the private key (check bytes differ)');
  const type = p.utf8();
  switch (type) {
    case 'ssh-ed25519': {
      const pub = p.string();
      return ed25519PrivateKey(pub, p.string());
    }
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521': {
      const curve = p.utf8();
      const point = p.string();
      return ecdsaPrivateKey(curve, point, p.mpint());
    }
    case 'ssh-rsa': {
      const n = p.mpint();
      const e = p.mpint();
      const d = p.mpint();
      const iqmp = p.mpint();
      const pp = p.mpint();
      return rsaPrivateKey({ n, e, d, iqmp, p: pp, q: p.mpint() });
    }
    case 'ssh-dss': {
      const dsaP = p.mpint();
      const q = p.mpint();
      const g = p.mpint();
      const y = p.mpint();
      return dsaPrivateKey({ p: dsaP, q, g, y }, p.mpint());
    }
    default:
      throw keyError(`private key type ${type} is not supported`);
  }
}

/** The key text formats loadPrivateKey reads. */
export function isPrivateKeyTextFormat(format: KeyTextFormat): boolean {
  return format === 'openssh' || format === 'pem' || format === 'putty';
}

/**
 * Loads a private key from the text of a key file (OpenSSH, PEM or PuTTY PPK). `fileName` only
 * names the file in the advice given for a format revtun does not read. `derived`: what
 * keyKdfRequest asked for, already derived from this passphrase (else it is derived here).
 */
export function loadPrivateKey(text: string | Uint8Array, passphrase?: string, fileName?: string, derived?: Uint8Array): crypto.KeyObject {
  const source = typeof text === 'string' ? text : Buffer.from(text).toString('utf8');
  const format = keyTextFormat(source);
  if (!isPrivateKeyTextFormat(format)) throw keyError(unsupportedKeyFormatMessage(format, fileName));
  if (format === 'putty') return loadPpkKey(source, passphrase, derived);
  const pem = decodePem(source);
  if (!pem) throw keyError('the private key is truncated (its END line is missing)');
  if (pem.label === 'OPENSSH PRIVATE KEY') {
    try {
      return parseOpenSshKey(pem.body, passphrase, derived);
    } catch (error) {
      // The wire reader's errors speak of messages from the peer; this is a damaged local file.
      if (error instanceof SshError && error.code === Code.AuthFailed) throw error;
      throw keyError('the OpenSSH private key is damaged (truncated or malformed)');
    }
  }
  try {
    return crypto.createPrivateKey({ key: source, format: 'pem', passphrase: passphrase ?? '' });
  } catch (cause) {
    const message = (cause as Error).message;
    if (/bad decrypt|passphrase|interrupted or cancelled/i.test(message)) {
      throw keyError('wrong or missing passphrase for the private key');
    }
    throw keyError(`cannot read the private key: ${message}`);
  }
}

function checkedBlob(blob: Uint8Array, what: string): { blob: Uint8Array; keyType: string } {
  let keyType: string;
  try {
    keyType = new Reader(blob).utf8();
  } catch {
    throw keyError(`${what} is damaged`);
  }
  if (!keyTypeSpec(keyType)) throw keyError(`private key type ${keyType} is not supported`);
  return { blob, keyType };
}

/**
 * The public half of a private key, read without its passphrase: an OpenSSH key file carries
 * it in the clear ahead of the encrypted part (PROTOCOL.key), so does a PPK file, and an
 * unencrypted key gives it up on loading. Null for encrypted PEM, which hides it (ssh then
 * reads the .pub file).
 */
export function publicKeyOfPrivateText(text: string): { blob: Uint8Array; keyType: string } | null {
  if (keyTextFormat(text) === 'putty') return checkedBlob(ppkPublicBlob(text), 'the PuTTY key');
  const pem = decodePem(text);
  if (!pem) throw keyError('the private key is truncated (its END line is missing)');
  if (pem.label === 'OPENSSH PRIVATE KEY') {
    const magic = new TextEncoder().encode(OPENSSH_MAGIC);
    if (!equalBytes(pem.body.subarray(0, magic.length), magic)) throw keyError('not an openssh-key-v1 private key');
    let blob: Uint8Array;
    try {
      const r = new Reader(pem.body, magic.length);
      r.utf8(); // cipher
      r.utf8(); // KDF
      r.string(); // KDF options
      const count = r.uint32();
      if (count !== 1) throw keyError(`key files with ${count} keys are not supported`);
      blob = r.string();
    } catch (error) {
      if (error instanceof SshError && error.code === Code.AuthFailed) throw error;
      throw keyError('the OpenSSH private key is damaged (truncated or malformed)');
    }
    return checkedBlob(blob, 'the OpenSSH private key');
  }
  if (privateKeyIsEncrypted(text)) return null;
  return sshPublicKeyBlob(loadPrivateKey(text));
}

/** The key blob of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"), as in a .pub file. */
export function parsePublicKeyLine(line: string): { blob: Uint8Array; keyType: string } {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/.exec(line);
  if (!m) throw keyError('not an OpenSSH public key line ("type base64 [comment]")');
  const parsed = checkedBlob(Buffer.from(m[2]!, 'base64'), 'the public key');
  if (parsed.keyType !== m[1]) throw keyError(`the public key line says ${m[1]} but holds a ${parsed.keyType} key`);
  return parsed;
}

/**
 * The SSH public key blob for a node key (public or private). Ed25519 and EC keys are read
 * from SPKI DER, where the raw key or point ends the structure; only RSA goes through JWK.
 * (JWK export of a generated Ed/X25519 key can deadlock Node 20; see ./node.ts.)
 */
export function sshPublicKeyBlob(key: crypto.KeyObject): { blob: Uint8Array; keyType: string } {
  const publicKey = key.type === 'private' ? crypto.createPublicKey(key) : key;
  const type = publicKey.asymmetricKeyType;
  const spec = keyTypeForNodeKey(type, publicKey.asymmetricKeyDetails?.namedCurve);
  if (!spec) throw keyError(type === 'ec' ? `unsupported EC curve ${publicKey.asymmetricKeyDetails?.namedCurve}` : `unsupported key type ${type}`);
  const w = new Writer(600).string(spec.name);
  switch (spec.nodeKeyType) {
    case 'ed25519': {
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      w.string(spki.subarray(spki.length - 32));
      break;
    }
    case 'ec': {
      const curve = spec.curve!;
      const spki = publicKey.export({ type: 'spki', format: 'der' });
      w.string(curve).string(spki.subarray(spki.length - (1 + 2 * ECDSA_CURVES[curve].bytes)));
      break;
    }
    case 'rsa': {
      const jwk = publicKey.export({ format: 'jwk' });
      w.mpint(Buffer.from(jwk.e!, 'base64url')).mpint(Buffer.from(jwk.n!, 'base64url'));
      break;
    }
    case 'dsa': {
      // node:crypto has no JWK for DSA: the numbers come out of SubjectPublicKeyInfo.
      const numbers = readDsaSpki(publicKey.export({ type: 'spki', format: 'der' }));
      if (bitLength(numbers.q) !== DSA_Q_BITS) throw keyError(`ssh-dss needs a DSA key with a ${DSA_Q_BITS}-bit subgroup (ssh-keygen -t dsa makes one); this one has ${bitLength(numbers.q)} bits`);
      w.mpint(numbers.p).mpint(numbers.q).mpint(numbers.g).mpint(numbers.y);
      break;
    }
  }
  return { blob: w.finish(), keyType: spec.name };
}

/** Makes a Signer for user authentication from a private key. */
export function createSigner(key: crypto.KeyObject): ImmediateSigner {
  const { blob, keyType } = sshPublicKeyBlob(key);
  return {
    publicKey: blob,
    keyType,
    sign(algorithm, data) {
      const spec = signatureAlgorithmSpec(algorithm);
      if (!spec || spec.keyType !== keyType) throw new SshError(Code.CannotSign, `a ${keyType} key cannot make ${algorithm} signatures`, 'local');
      switch (spec.scheme) {
        case 'ed25519':
          return encodeSignature(algorithm, crypto.sign(null, data, key));
        case 'ecdsa':
          return encodeSignature(algorithm, p1363ToEcdsaSignature(crypto.sign(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' })));
        case 'rsa-pkcs1':
          return encodeSignature(algorithm, crypto.sign(spec.hash, data, key));
        case 'dsa':
          // RFC 4253 §6.6: r || s, 20 bytes each (the key's q has 160 bits, checked above).
          return encodeSignature(algorithm, crypto.sign(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }));
      }
    },
  };
}
