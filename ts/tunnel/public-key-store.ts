// Public keys and certificates without their private halves: the store types that hold only
// those (cstPublicKeyFile/Blob 8/9, cstSSHPublicKeyBlob 10, cstP7BFile/Blob 11/12,
// cstSSHPublicKeyFile 13), and the encoded forms sshCertEncoded and sshAcceptServerHostKeyEncoded
// take. They name a server's host key to accept, or describe a client certificate; they never
// sign, so client authentication still refuses them (./cert-store.ts).
//
// Forms read: X.509 certificates (PEM, DER, base64 DER), SubjectPublicKeyInfo and PKCS#1 public
// keys (PEM, DER), OpenSSH public key and certificate lines, RFC 4716 "SSH2 PUBLIC KEY" files,
// SSH key blobs (raw or base64), and PKCS#7 certificate bundles (RFC 2315 SignedData, as
// .p7b files are written; the certificates are taken, the rest is ignored).
//
// Errors are 10022 and describe what was found, never quoting the content.

import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type * as Forge from 'node-forge';
import { SshError, Code } from '../protocol/errors.js';
import { parsePublicKey } from '../protocol/publickey.js';
import { parseCertificate, parseCertificateLine, type OpenSshCertificate } from '../protocol/certificates.js';
import { findPemBlocks, parsePublicKeyLine, sshPublicKeyBlob } from '../crypto/keys.js';
import { isStoreContent } from './cert-store.js';
import { MAX_KEY_FILE_BYTES, readRegularFile, strerror } from './keyfile.js';
import { toKeyObject } from '../crypto/node.js';
import { documentedSubject, forge } from '../crypto/pkcs12.js';
import { readDer } from '../crypto/x509-info.js';

/** One public key of a store: its SSH blob (null when SSH has no form for it), and what certifies it. */
export interface PublicStoreEntry {
  sshBlob: Uint8Array | null;
  publicKey: KeyObject | null;
  certificate?: X509Certificate;
  openssh?: { blob: Uint8Array; certificate: OpenSshCertificate };
  /** The X.509 subject in the documented form, or "" without an X.509 certificate. */
  subject: string;
}

/** A PKCS#7 bundle or PEM file with more certificates than this is not a key store. */
const MAX_CERTIFICATES = 64;

function storeError(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;

function entryOfKey(publicKey: KeyObject): PublicStoreEntry {
  let sshBlob: Uint8Array | null = null;
  try {
    sshBlob = sshPublicKeyBlob(publicKey).blob;
  } catch {
    // A key type SSH has no name for here (RSA-PSS, Ed448): described, never matched.
  }
  return { sshBlob, publicKey, subject: '' };
}

function entryOfCertificate(certificate: X509Certificate): PublicStoreEntry {
  return { ...entryOfKey(certificate.publicKey), certificate, subject: documentedSubject(certificate) };
}

function entryOfSshBlob(blob: Uint8Array): PublicStoreEntry {
  let certificate: OpenSshCertificate | null = null;
  if (/-cert-v01@openssh\.com$/.test(blobType(blob))) certificate = parseCertificate(blob);
  const plain = certificate ? certificate.publicKeyBlob : blob;
  const key = parsePublicKey(plain);
  let publicKey: KeyObject | null = null;
  try {
    publicKey = toKeyObject(key);
  } catch {
    publicKey = null; // a type node:crypto cannot hold: described by its blob alone
  }
  return { sshBlob: plain, publicKey, ...(certificate ? { openssh: { blob, certificate } } : {}), subject: '' };
}

/** The type string an SSH blob starts with, or "" when it does not start like one. */
function blobType(blob: Uint8Array): string {
  if (blob.length < 4) return '';
  const length = Buffer.from(blob.buffer, blob.byteOffset, 4).readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return '';
  const type = Buffer.from(blob.subarray(4, 4 + length)).toString('latin1');
  return /^[a-z0-9@.-]+$/.test(type) ? type : '';
}

/** The certificates of a PKCS#7 SignedData (ContentInfo → [0] content → certificates [0] IMPLICIT). */
function pkcs7Certificates(der: Uint8Array): X509Certificate[] | null {
  const f = forge();
  let root: Forge.asn1.Asn1;
  try {
    root = readDer(Buffer.from(der).toString('binary'));
  } catch {
    return null;
  }
  const children = (node: Forge.asn1.Asn1 | undefined): Forge.asn1.Asn1[] => (node && Array.isArray(node.value) ? node.value : []);
  const [contentType, explicitContent] = children(root);
  if (!contentType || contentType.type !== f.asn1.Type.OID || typeof contentType.value !== 'string') return null;
  if (f.asn1.derToOid(f.util.createBuffer(contentType.value)) !== '1.2.840.113549.1.7.2') return null; // signedData
  const signedData = children(explicitContent)[0];
  const certificateSet = children(signedData).find((n) => n.tagClass === f.asn1.Class.CONTEXT_SPECIFIC && n.type === 0);
  const certificates = children(certificateSet);
  if (certificates.length > MAX_CERTIFICATES) throw storeError(`the PKCS#7 bundle holds more than ${MAX_CERTIFICATES} certificates`);
  return certificates.flatMap((node) => {
    try {
      return [new X509Certificate(Buffer.from(f.asn1.toDer(node).getBytes(), 'binary'))];
    } catch {
      return []; // an attribute certificate or another choice of CertificateChoices
    }
  });
}

/** What binary content is: a DER certificate, a DER public key, a PKCS#7 bundle or an SSH blob. */
function entriesOfBytes(bytes: Uint8Array): PublicStoreEntry[] | null {
  if (blobType(bytes) !== '') {
    try {
      return [entryOfSshBlob(bytes)];
    } catch {
      /* not a usable SSH blob: try the DER forms */
    }
  }
  if (bytes[0] !== 0x30) return null;
  try {
    return [entryOfCertificate(new X509Certificate(bytes))];
  } catch {
    /* not a certificate */
  }
  for (const type of ['spki', 'pkcs1'] as const) {
    try {
      return [entryOfKey(createPublicKey({ key: Buffer.from(bytes), format: 'der', type }))];
    } catch {
      /* not this form */
    }
  }
  const bundle = pkcs7Certificates(bytes);
  return bundle ? bundle.map(entryOfCertificate) : null;
}

/** The body of an RFC 4716 public key file: the base64 lines after the headers. */
function rfc4716Blob(text: string): Uint8Array {
  const m = /---- BEGIN SSH2 PUBLIC KEY ----([\s\S]*?)---- END SSH2 PUBLIC KEY ----/.exec(text);
  if (!m) throw storeError('the SSH2 public key has no END line');
  const lines = m[1]!.split(/\r?\n/);
  const body: string[] = [];
  let continued = false;
  for (const line of lines) {
    // A header is "Tag: value"; one ending in a backslash continues on the next line (§3.3).
    if (continued || /^[\x21-\x39\x3b-\x7e]{1,64}:/.test(line)) {
      continued = line.endsWith('\\');
      continue;
    }
    body.push(line.trim());
  }
  return new Uint8Array(Buffer.from(body.join(''), 'base64'));
}

/**
 * Every public key or certificate that content holds, whatever its form (see the file's
 * opening comment). Throws 10022 when it is none of them; `what` names the content in errors.
 */
export function readPublicKeyContent(content: string | Uint8Array, what: string): PublicStoreEntry[] {
  const notKey = () =>
    storeError(
      `${what} is not a public key or certificate revtun can read (X.509 PEM or DER, a PEM public key, an OpenSSH public key or certificate line, an SSH2 public key file or a PKCS#7 bundle)`,
    );
  if (content.length > MAX_KEY_FILE_BYTES) throw storeError(`${what} is larger than ${MAX_KEY_FILE_BYTES} bytes: not a public key or certificate`);
  if (typeof content !== 'string') {
    // A copy: what is read from here (the key blob trusted for a server) must not change if
    // the application reuses its buffer.
    content = new Uint8Array(content);
    const text = Buffer.from(content).toString('latin1');
    if (/-----BEGIN |---- BEGIN SSH2|^\s*\S+\s+AAAA/.test(text)) return readPublicKeyContent(text, what);
    const entries = entriesOfBytes(content);
    if (!entries || entries.length === 0) throw notKey();
    return entries;
  }
  const text = content.trim();
  try {
    if (text.includes('-----BEGIN CERTIFICATE-----')) {
      const blocks = findPemBlocks(text, 'CERTIFICATE', MAX_CERTIFICATES + 1);
      if (blocks.length > MAX_CERTIFICATES) throw storeError(`${what} holds more than ${MAX_CERTIFICATES} certificates`);
      if (blocks.length === 0) throw notKey();
      return blocks.map((block) => entryOfCertificate(new X509Certificate(block)));
    }
    if (text.includes('-----BEGIN PKCS7-----')) {
      const block = findPemBlocks(text, 'PKCS7', 1)[0];
      if (!block) throw notKey();
      const body = block.slice('-----BEGIN PKCS7-----'.length, -'-----END PKCS7-----'.length);
      const bundle = pkcs7Certificates(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
      if (!bundle || bundle.length === 0) throw notKey();
      return bundle.map(entryOfCertificate);
    }
    if (/-----BEGIN (?:RSA )?PUBLIC KEY-----/.test(text)) return [entryOfKey(createPublicKey(text))];
    if (/---- BEGIN SSH2 PUBLIC KEY ----/.test(text)) return [entryOfSshBlob(rfc4716Blob(text))];
    if (/^\S+-cert-v01@openssh\.com\s/.test(text)) {
      const { blob } = parseCertificateLine(text);
      return [entryOfSshBlob(blob)];
    }
    if (/^\S+\s+[A-Za-z0-9+/]+={0,2}(?:\s|$)/.test(text)) return [entryOfSshBlob(parsePublicKeyLine(text).blob)];
    if (text.length > 0 && BASE64.test(text)) {
      const entries = entriesOfBytes(new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'base64')));
      if (entries && entries.length > 0) return entries;
    }
  } catch (error) {
    if (error instanceof SshError && error.code === Code.BadArgument) throw error;
    throw storeError(`${what} could not be read: ${(error as Error).message}`);
  }
  throw notKey();
}

/** The documented public-only store types: where the store is, and what it holds. */
const PUBLIC_STORE_TYPES: Record<number, { name: string; file: boolean }> = {
  8: { name: 'cstPublicKeyFile', file: true },
  9: { name: 'cstPublicKeyBlob', file: false },
  10: { name: 'cstSSHPublicKeyBlob', file: false },
  11: { name: 'cstP7BFile', file: true },
  12: { name: 'cstP7BBlob', file: false },
  13: { name: 'cstSSHPublicKeyFile', file: true },
};

export function isPublicStoreType(type: number): boolean {
  return type in PUBLIC_STORE_TYPES;
}

/**
 * Reads a file of a public store: a regular file (never a device or a FIFO), bounded. Errors
 * name the file; the caller has made sure the value is a file name, not content.
 */
export function readPublicStoreFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readRegularFile(path));
  } catch (error) {
    throw storeError(`public key file ${path}: ${strerror((error as NodeJS.ErrnoException).code ?? 'EIO')}`);
  }
}

/** The entries of a store of one of the public-only types. */
export function readPublicStore(type: number, store: string | Uint8Array): PublicStoreEntry[] {
  const spec = PUBLIC_STORE_TYPES[type];
  if (!spec) throw storeError(`store type ${type} is not a public key store`);
  // Content is never taken for a file name (the error would quote it), whatever the type says.
  if (spec.file && !isStoreContent(store)) {
    const path = typeof store === 'string' ? store : Buffer.from(store).toString('utf8');
    return readPublicKeyContent(readPublicStoreFile(path), `public key file ${path}`);
  }
  return readPublicKeyContent(store, `the ${spec.name} store`);
}
