// sshCertStoreType: every documented store type, what revtun does with each, and the one
// function that turns sshCertStore / sshCertStorePassword / sshCertSubject into a private key.
//
// A type says where the store is (a file name or the content itself) and what it holds. The
// formats are read by ../crypto (keys.ts for OpenSSH, PEM and PuTTY text, pkcs12.ts, jwk.ts,
// xml-key.ts); this file reads the files (with OpenSSH's permission check, ./keyfile.ts) and dispatches.
// A type that cannot give a private key here (Windows system stores, Java key stores, PKCS#11,
// public keys and certificates alone) is refused with a message saying why and what to use
// instead: no value is accepted and then ignored.
//
// Errors: 10022 for a store type or store content that cannot be used; the key file formats
// keep keys.ts's code (1032) for a wrong passphrase or a damaged key, as before; 10013 for a
// key file others may read. No error quotes a store's content or its password.

import type * as crypto from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { SshError, Code } from '../protocol/errors.js';
import { findPemBlocks, isPrivateKeyTextFormat, keyTextFormat, loadPrivateKey, sshPublicKeyBlob, unsupportedKeyFormatMessage } from '../crypto/keys.js';
import { equalBytes } from '../protocol/wire.js';
import { documentedSubject, loadPkcs12, looksLikePkcs12, selectBySubject } from '../crypto/pkcs12.js';
import { loadJwkKey, looksLikeJwk } from '../crypto/jwk.js';
import { loadXmlKey, looksLikeXmlKey } from '../crypto/xml-key.js';
import { loadDerPrivateKey, looksLikeDer } from '../crypto/der-key.js';
import { looksLikeKeyText, readPrivateKeyFileBytes } from './keyfile.js';

/** The documented SSHCertStoreType values (cstUser = 0 … cstAuto = 99). */
export const SshCertStoreType = {
  User: 0,
  Machine: 1,
  PFXFile: 2,
  PFXBlob: 3,
  JKSFile: 4,
  JKSBlob: 5,
  PEMKeyFile: 6,
  PEMKeyBlob: 7,
  PublicKeyFile: 8,
  PublicKeyBlob: 9,
  SSHPublicKeyBlob: 10,
  P7BFile: 11,
  P7BBlob: 12,
  SSHPublicKeyFile: 13,
  PPKFile: 14,
  PPKBlob: 15,
  XMLFile: 16,
  XMLBlob: 17,
  JWKFile: 18,
  JWKBlob: 19,
  BCFKSFile: 21,
  BCFKSBlob: 22,
  PKCS11: 23,
  Auto: 99,
} as const;
/** One of the SshCertStoreType numbers (the type of `sshCertStoreType` and the other store types). */
export type SshCertStoreTypeValue = (typeof SshCertStoreType)[keyof typeof SshCertStoreType];

type StoreFormat = 'pfx' | 'key-text' | 'jwk' | 'xml' | 'detect';

/** What a store type means here: where its content is and how it is read, or why it is refused. */
export type StoreTypeHandling = { use: 'file' | 'blob' | 'either'; format: StoreFormat } | { use: 'refused'; reason: string };

const NEEDS_PRIVATE_KEY =
  'this store type holds a public key or certificates only, and signing needs the private key: use a store with the private key (PEMKeyFile 6, PFXFile 2, PPKFile 14, XMLFile 16, JWKFile 18 or Auto 99)';
const TO_PFX = 'export the certificate with its private key to a PFX file and use PFXFile (2)';
const JAVA_TO_PFX = 'convert it with `keytool -importkeystore -deststoretype PKCS12` and use PFXFile (2)';

/** Each documented value, by number: its documented name and revtun's handling. */
export const STORE_TYPES: Record<SshCertStoreTypeValue, { name: string } & StoreTypeHandling> = {
  0: { name: 'cstUser', use: 'refused', reason: `a Windows user certificate store, which revtun cannot open on this platform; ${TO_PFX}` },
  1: { name: 'cstMachine', use: 'refused', reason: `a Windows machine certificate store, which revtun cannot open on this platform; ${TO_PFX}` },
  2: { name: 'cstPFXFile', use: 'file', format: 'pfx' },
  3: { name: 'cstPFXBlob', use: 'blob', format: 'pfx' },
  4: { name: 'cstJKSFile', use: 'refused', reason: `Java key stores exist only on Java; ${JAVA_TO_PFX}` },
  5: { name: 'cstJKSBlob', use: 'refused', reason: `Java key stores exist only on Java; ${JAVA_TO_PFX}` },
  6: { name: 'cstPEMKeyFile', use: 'file', format: 'key-text' },
  7: { name: 'cstPEMKeyBlob', use: 'blob', format: 'key-text' },
  8: { name: 'cstPublicKeyFile', use: 'refused', reason: NEEDS_PRIVATE_KEY },
  9: { name: 'cstPublicKeyBlob', use: 'refused', reason: NEEDS_PRIVATE_KEY },
  10: { name: 'cstSSHPublicKeyBlob', use: 'refused', reason: NEEDS_PRIVATE_KEY },
  11: { name: 'cstP7BFile', use: 'refused', reason: NEEDS_PRIVATE_KEY },
  12: { name: 'cstP7BBlob', use: 'refused', reason: NEEDS_PRIVATE_KEY },
  13: { name: 'cstSSHPublicKeyFile', use: 'refused', reason: NEEDS_PRIVATE_KEY },
  14: { name: 'cstPPKFile', use: 'file', format: 'key-text' },
  15: { name: 'cstPPKBlob', use: 'blob', format: 'key-text' },
  16: { name: 'cstXMLFile', use: 'file', format: 'xml' },
  17: { name: 'cstXMLBlob', use: 'blob', format: 'xml' },
  18: { name: 'cstJWKFile', use: 'file', format: 'jwk' },
  19: { name: 'cstJWKBlob', use: 'blob', format: 'jwk' },
  21: { name: 'cstBCFKSFile', use: 'refused', reason: `Bouncy Castle FIPS key stores exist only on Java and .NET; ${JAVA_TO_PFX}` },
  22: { name: 'cstBCFKSBlob', use: 'refused', reason: `Bouncy Castle FIPS key stores exist only on Java and .NET; ${JAVA_TO_PFX}` },
  23: { name: 'cstPKCS11', use: 'refused', reason: 'PKCS#11 security keys are not available to revtun on this platform; load the key into ssh-agent or use a key file' },
  99: { name: 'cstAuto', use: 'either', format: 'detect' },
};

function storeError(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

export interface CertStoreSpec {
  type: number;
  /** A file name, or the content (text, base64 or bytes). */
  store: string | Uint8Array;
  password: string;
  /** sshCertSubject: chooses within a store that holds several keys (PFX, JWK Set). */
  subject: string;
}

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

/** The bytes of a blob given as a string: base64 when it is base64, else a binary string. */
function blobBytes(store: string | Uint8Array): Uint8Array {
  if (typeof store !== 'string') return store;
  return BASE64.test(store) ? Buffer.from(store, 'base64') : Buffer.from(store, 'latin1');
}

function isBase64Pkcs12(value: string): boolean {
  return value.length >= 16 && BASE64.test(value) && looksLikePkcs12(Buffer.from(value.slice(0, 64).replace(/\s/g, ''), 'base64'));
}

/** Base64 of key text or of DER (the blob types allow it): content, though it has no line break. */
function isBase64Content(value: string): boolean {
  if (value.length < 64 || !BASE64.test(value)) return false;
  const bytes = Buffer.from(value, 'base64');
  return looksLikeDer(bytes) || keyTextFormat(bytes.toString('utf8')) !== 'unknown';
}

/** Whether a value is the store's content rather than a file name (never to be quoted in an error). */
export function isStoreContent(store: string | Uint8Array): boolean {
  // Content is never taken for a file name: the error for a file that cannot be read names
  // the file, and would print the key. Binary (control characters, bytes that are not UTF-8:
  // DER, a PFX) is content; so is text that names its format or is base64 of such text.
  const text = typeof store === 'string' ? store : Buffer.from(store).toString('utf8');
  if (/[\x00-\x08\x0a-\x1f\x7f-\x9f\ufffd]/.test(text)) return true;
  return looksLikeKeyText(text) || looksLikeJwk(text) || looksLikeXmlKey(text) || isBase64Pkcs12(text) || isBase64Content(text);
}

/** A store whose type has been checked and whose file, if it is one, has been read. */
export interface OpenedStore {
  format: StoreFormat;
  content: string | Uint8Array;
  /** The file it was read from, which errors then name. */
  path?: string;
}

/**
 * Checks the store type (10022 for a refused or undocumented one) and reads the file when the
 * store is a file name (10013 for one others may read, 10022 for one that cannot be read).
 */
export function openCertStore(type: number, store: string | Uint8Array): OpenedStore {
  const entry = STORE_TYPES[type as SshCertStoreTypeValue];
  if (!entry) {
    const known = Object.entries(STORE_TYPES)
      .map(([n, t]) => `${n} ${t.name}`)
      .join(', ');
    throw storeError(`sshCertStoreType ${String(type)} is not a documented store type (${known})`);
  }
  if (entry.use === 'refused') throw storeError(`sshCertStoreType ${type} (${entry.name}): ${entry.reason}`);
  if (entry.use === 'blob' || isStoreContent(store)) return { format: entry.format, content: store };
  const path = typeof store === 'string' ? store : Buffer.from(store).toString('utf8');
  return { format: entry.format, content: readPrivateKeyFileBytes(path), path };
}

/**
 * The OpenSSH, PEM or PPK text an opened store holds (base64 decoded), or undefined when it
 * holds another format (PFX, JWK, XML, DER): the caller can then read a key's public half and
 * whether it is encrypted without a passphrase.
 */
export function storeKeyText(opened: OpenedStore): string | undefined {
  if (opened.format !== 'key-text' && opened.format !== 'detect') return undefined;
  const { content } = opened;
  if (opened.format === 'detect' && (typeof content !== 'string' ? looksLikePkcs12(content) : isBase64Pkcs12(content))) return undefined;
  const source = asKeyText(typeof content === 'string' ? content : Buffer.from(content).toString('utf8'));
  return isPrivateKeyTextFormat(keyTextFormat(source)) ? source : undefined;
}

/** The private key of an opened store (errors do not name the file: the caller adds it). */
export function keyFromStore(opened: OpenedStore, password: string, subject: string, keyBlob?: Uint8Array): crypto.KeyObject {
  return keyFromContent(opened.format, opened.content, { password, subject, ...(keyBlob ? { keyBlob } : {}) }, opened.path);
}

/** The private key that a store type, store, password and subject designate; errors name its file. */
export function loadCertStoreKey(spec: CertStoreSpec): crypto.KeyObject {
  const opened = openCertStore(spec.type, spec.store);
  try {
    return keyFromStore(opened, spec.password, spec.subject);
  } catch (error) {
    if (!(error instanceof SshError) || opened.path === undefined) throw error;
    throw new SshError(error.code, `key file ${opened.path}: ${error.message}`, error.origin, { cause: error });
  }
}

/** Key text, or the key text that a base64 blob holds ("binary or Base64-encoded", say the blob types). */
function asKeyText(text: string): string {
  if (keyTextFormat(text) === 'unknown' && BASE64.test(text.trim())) {
    const decoded = Buffer.from(text, 'base64').toString('utf8');
    if (isPrivateKeyTextFormat(keyTextFormat(decoded))) return decoded;
  }
  return text;
}

function keyFromContent(format: StoreFormat, content: string | Uint8Array, spec: { password: string; subject: string; keyBlob?: Uint8Array }, fileName: string | undefined): crypto.KeyObject {
  const pfx = (): crypto.KeyObject => {
    const entries = loadPkcs12(blobBytes(content), spec.password);
    if (!spec.keyBlob) return selectBySubject(entries, spec.subject).key;
    const wanted = spec.keyBlob;
    const found = entries.find((e) => equalBytes(sshPublicKeyBlob(e.key).blob, wanted));
    if (!found) throw storeError('the PKCS#12 store holds no key of the certificate sshCertEncoded names');
    return found.key;
  };
  const text = (): string => (typeof content === 'string' ? content : Buffer.from(content).toString('utf8'));
  switch (format) {
    case 'pfx':
      return pfx();
    case 'jwk':
      return loadJwkKey(text(), spec.subject);
    case 'xml':
      return loadXmlKey(text());
    case 'key-text':
      return keyText(text(), content, spec, fileName);
    case 'detect': {
      if (typeof content !== 'string' ? looksLikePkcs12(content) : isBase64Pkcs12(content)) return pfx();
      if (looksLikeJwk(text())) return loadJwkKey(text(), spec.subject);
      if (looksLikeXmlKey(text())) return loadXmlKey(text());
      return keyText(text(), content, spec, fileName);
    }
  }
}

/**
 * OpenSSH, PEM or PPK text (the formats name themselves by their first lines), or its base64;
 * or a DER private key (PKCS#8, PKCS#1, SEC1), as bytes or base64.
 */
function keyText(text: string, content: string | Uint8Array, spec: { password: string }, fileName: string | undefined): crypto.KeyObject {
  const source = asKeyText(text);
  if (!isPrivateKeyTextFormat(keyTextFormat(source))) {
    // Say what it is when it is a store of another type, rather than "not a key".
    // Base64 (a blob, or a file of base64) is decoded; binary content is taken as it is.
    const bytes = BASE64.test(text.trim()) ? Buffer.from(text, 'base64') : typeof content === 'string' ? Buffer.from(content, 'latin1') : content;
    if (looksLikeDer(bytes) && !looksLikePkcs12(bytes)) {
      const der = loadDerPrivateKey(bytes, spec.password || undefined);
      if (der) return der;
    }
    if (looksLikePkcs12(bytes)) {
      throw storeError(`this is a PKCS#12 (PFX) store, not key text: set sshCertStoreType to PFXFile (2), PFXBlob (3) or Auto (99)`);
    }
    if (looksLikeJwk(source)) throw storeError('this is a JWK, not key text: set sshCertStoreType to JWKFile (18), JWKBlob (19) or Auto (99)');
    if (looksLikeXmlKey(source)) throw storeError('this is an XML key, not key text: set sshCertStoreType to XMLFile (16), XMLBlob (17) or Auto (99)');
    if (keyTextFormat(source) === 'unknown') throw storeError(unsupportedKeyFormatMessage('unknown', fileName));
  }
  return loadPrivateKey(source, spec.password || undefined, fileName);
}

/** One private key of an opened store, with the X.509 certificate the store pairs it with, if any. */
export interface PrivateStoreEntry {
  key: crypto.KeyObject;
  certificate?: X509Certificate;
  /** The certificate's subject in the documented form, or "". */
  subject: string;
}

/**
 * Every private key an opened store holds: all of a PFX's, or the one key of the other
 * formats (a JWK Set's by its kid, `subject`); a PEM key file's certificate ("a private key and an optional certificate", as the
 * PEM store types are documented) is paired with its key. Errors as keyFromStore's.
 */
export function storeEntries(opened: OpenedStore, password: string, subject: string): PrivateStoreEntry[] {
  const { content } = opened;
  const isPfx = opened.format === 'pfx' || (opened.format === 'detect' && (typeof content !== 'string' ? looksLikePkcs12(content) : isBase64Pkcs12(content)));
  if (isPfx) return loadPkcs12(blobBytes(content), password);
  const key = keyFromStore(opened, password, subject); // a JWK Set's kid
  const text = typeof content === 'string' ? content : Buffer.from(content).toString('latin1');
  const pem = findPemBlocks(text, 'CERTIFICATE', 1)[0];
  if (pem) {
    try {
      const certificate = new X509Certificate(pem);
      if (certificate.checkPrivateKey(key)) return [{ key, certificate, subject: documentedSubject(certificate) }];
    } catch {
      // A damaged certificate beside the key: the key still signs, it is just not described.
    }
  }
  return [{ key, subject: '' }];
}
