// OpenSSH certificates (PROTOCOL.certkeys, the *-cert-v01@openssh.com key types): the strict
// decoding of a certificate blob, the check of the CA's signature over it, and the checks a
// client makes on a host certificate (type, validity window, principals, critical options).
// Which CA to trust is not decided here: that is the application's (SSHAcceptServerCAKey) or
// known_hosts' (@cert-authority) business, and both learn the fields decoded here.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import { parsePublicKey, parseSignature, publicKeyTypeName, type PublicKey } from './publickey.js';
import { CA_SIGNATURE_ALGORITHMS, CERTIFICATE_ALGORITHM_SPECS, keyTypeSpec } from './key-types.js';
import type { CryptoProvider } from '../crypto/provider.js';

export const CERT_TYPE_USER = 1;
export const CERT_TYPE_HOST = 2;

/** valid before = 2^64-1: a certificate that never expires. */
export const FOREVER = 0xffffffffffffffffn;

/**
 * Host key algorithm names for certificates and what each means: the key type written at
 * the start of the certificate blob, the plain key type inside it, and the signature
 * algorithm the certified key signs the exchange hash with. The rsa-sha2 names exist only in
 * negotiation: on the wire their certificates are ssh-rsa-cert-v01 (PROTOCOL.certkeys). The
 * table is derived from ./key-types.ts; the legacy ones (ssh-rsa-cert-v01, SHA-1 signatures)
 * are negotiated only when the application lists them itself.
 */
export const CERTIFICATE_ALGORITHMS = CERTIFICATE_ALGORITHM_SPECS;

export function isCertificateAlgorithm(algorithm: string): boolean {
  return algorithm in CERTIFICATE_ALGORITHMS;
}

/** The certificate algorithm for a plain host key algorithm (ssh-ed25519 → ssh-ed25519-cert-v01@openssh.com). */
export function certificateAlgorithmFor(plainAlgorithm: string): string | undefined {
  const name = `${plainAlgorithm}-cert-v01@openssh.com`;
  return name in CERTIFICATE_ALGORITHMS ? name : undefined;
}

/**
 * The signature algorithms a CA may have signed a host certificate with: OpenSSH's default
 * CASignatureAlgorithms, which leaves out ssh-rsa (SHA-1).
 */
export { CA_SIGNATURE_ALGORITHMS };

/** As OpenSSH's SSHKEY_CERT_MAX_PRINCIPALS: more than this is not a certificate anyone made. */
const MAX_PRINCIPALS = 256;

export interface CertificateOption {
  name: string;
  data: Uint8Array;
}

export interface OpenSshCertificate {
  /** The type written at the start of the blob (e.g. ssh-rsa-cert-v01@openssh.com). */
  blobType: string;
  nonce: Uint8Array;
  /** The certified key, and its blob in plain form (as a plain host key would be sent). */
  publicKey: PublicKey;
  publicKeyBlob: Uint8Array;
  serial: bigint;
  /** 1: user, 2: host. */
  type: number;
  keyId: string;
  /** Empty: valid for any principal (PROTOCOL.certkeys). */
  principals: string[];
  /** Seconds since the epoch; the certificate is valid while validAfter <= now < validBefore. */
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: CertificateOption[];
  extensions: CertificateOption[];
  /** The CA's public key blob, a plain key (chained certificates are not allowed). */
  signatureKey: Uint8Array;
  /** The CA's signature blob, and the bytes it covers (everything before it). */
  signature: Uint8Array;
  signedData: Uint8Array;
}

function malformed(detail: string): SshError {
  return new SshError(Code.HostKeyVerifyFailed, `malformed OpenSSH certificate: ${detail}`, 'peer');
}

/** Where the reader is within `blob`. */
function position(blob: Uint8Array, r: Reader): number {
  return blob.length - r.remaining;
}

/**
 * Reads the fields of the certified key, which come in the certificate where a plain key blob
 * has them, and rebuilds that plain blob so that parsePublicKey judges it as it judges any key.
 */
function readCertifiedKey(blob: Uint8Array, r: Reader, plainType: string): { key: PublicKey; blob: Uint8Array } {
  const start = position(blob, r);
  const fields = keyTypeSpec(plainType)!.publicFields;
  for (let i = 0; i < fields; i++) r.string();
  const plain = new Writer(64 + position(blob, r) - start)
    .string(plainType)
    .raw(blob.subarray(start, position(blob, r)))
    .finish();
  return { key: parsePublicKey(plain), blob: plain };
}

/**
 * Critical options and extensions: (string name, string data) tuples. A name given twice makes
 * the certificate ambiguous and is refused (PROTOCOL.certkeys: each may appear only once).
 */
function readOptions(section: Uint8Array, what: string): CertificateOption[] {
  const r = new Reader(section);
  const options: CertificateOption[] = [];
  while (r.remaining > 0) {
    const name = r.utf8();
    const data = r.string();
    if (options.some((o) => o.name === name)) throw malformed(`${what} "${name}" appears twice`);
    options.push({ name, data });
  }
  return options;
}

function readPrincipals(section: Uint8Array): string[] {
  const r = new Reader(section);
  const principals: string[] = [];
  while (r.remaining > 0) {
    const principal = r.utf8();
    if (principal.includes('\0')) throw malformed('a principal contains a NUL byte');
    principals.push(principal);
    if (principals.length > MAX_PRINCIPALS) throw malformed(`more than ${MAX_PRINCIPALS} principals`);
  }
  return principals;
}

/**
 * Decodes a certificate blob as PROTOCOL.certkeys lays it out, refusing anything else:
 * truncation, trailing bytes, an unknown key or certificate type, a CA key that is itself a
 * certificate. `expectedBlobType`, when given, is the type negotiation led us to expect.
 */
export function parseCertificate(blob: Uint8Array, expectedBlobType?: string): OpenSshCertificate {
  try {
    const r = new Reader(blob);
    const blobType = r.utf8();
    const plainType = Object.values(CERTIFICATE_ALGORITHMS).find((a) => a.blobType === blobType)?.plainType;
    if (!plainType) throw malformed(`unknown certificate key type ${JSON.stringify(blobType.slice(0, 64))}`);
    if (expectedBlobType !== undefined && blobType !== expectedBlobType) {
      throw malformed(`the server sent a ${blobType} for the negotiated ${expectedBlobType}`);
    }
    const nonce = r.string();
    const certified = readCertifiedKey(blob, r, plainType);
    const serial = r.uint64();
    const type = r.uint32();
    if (type !== CERT_TYPE_USER && type !== CERT_TYPE_HOST) throw malformed(`unknown certificate type ${type}`);
    const keyId = r.utf8();
    const principals = readPrincipals(r.string());
    const validAfter = r.uint64();
    const validBefore = r.uint64();
    const criticalOptions = readOptions(r.string(), 'critical option');
    const extensions = readOptions(r.string(), 'extension');
    r.string(); // reserved: ignored in this version of the protocol
    const signatureKey = r.string();
    const signedData = blob.subarray(0, position(blob, r));
    const signature = r.string();
    r.done('OpenSSH certificate');
    // A CA key must be a plain key: parsePublicKey knows no certificate types, so a chained
    // certificate is refused here.
    parsePublicKey(signatureKey);
    parseSignature(signature);
    return {
      blobType,
      nonce,
      publicKey: certified.key,
      publicKeyBlob: certified.blob,
      serial,
      type,
      keyId,
      principals,
      validAfter,
      validBefore,
      criticalOptions,
      extensions,
      signatureKey,
      signature,
      signedData,
    };
  } catch (error) {
    if (error instanceof SshError && error.message.startsWith('malformed OpenSSH certificate')) throw error;
    throw malformed(error instanceof Error ? error.message : String(error));
  }
}

/**
 * A certificate as a -cert.pub file holds it, "type base64 [comment]": the blob and its
 * decoding. The type named on the line must be the blob's own.
 */
export function parseCertificateLine(line: string): { blob: Uint8Array; certificate: OpenSshCertificate } {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/.exec(line);
  if (!m) throw malformed('not a "type base64 [comment]" line');
  const blob = new Uint8Array(Buffer.from(m[2]!, 'base64'));
  const certificate = parseCertificate(blob);
  if (certificate.blobType !== m[1]) throw malformed(`the line says ${m[1]} but holds a ${certificate.blobType}`);
  return { blob, certificate };
}

/** The key type of the CA key (e.g. ssh-ed25519). */
export function signatureKeyType(cert: OpenSshCertificate): string {
  return publicKeyTypeName(parsePublicKey(cert.signatureKey));
}

/** The algorithm the CA signed with, as its signature blob names it. */
export function caSignatureAlgorithm(cert: OpenSshCertificate): string {
  return parseSignature(cert.signature).algorithm;
}

/**
 * True when the CA's signature over the certificate is good. A good ssh-rsa (SHA-1) signature
 * counts as good here, so that the fields are known to be the CA's; checkHostCertificate then
 * refuses the algorithm, as OpenSSH's CASignatureAlgorithms default does.
 */
export function verifyCertificateSignature(provider: CryptoProvider, cert: OpenSshCertificate): boolean {
  return provider.verify(cert.signatureKey, caSignatureAlgorithm(cert), cert.signature, cert.signedData);
}

/**
 * Decodes a certificate the server sent as its host key and checks its CA signature: a bad
 * one is a forgery, refused outright (1031) whichever CA it names.
 */
export function readVerifiedCertificate(provider: CryptoProvider, blob: Uint8Array, blobType: string): OpenSshCertificate {
  const certificate = parseCertificate(blob, blobType);
  if (!verifyCertificateSignature(provider, certificate)) {
    throw new SshError(Code.HostKeyVerifyFailed, "the CA signature on the server's host certificate is invalid", 'peer');
  }
  return certificate;
}

/** A certificate time as people read it ("2026-12-01 17:31:20 UTC"), or "forever"/"the epoch" at the ends. */
export function formatCertificateTime(seconds: bigint): string {
  if (seconds === FOREVER) return 'forever';
  if (seconds === 0n) return 'the epoch';
  // Date covers ±8.64e15 ms; anything later is as good as forever for a reader.
  if (seconds > 8_640_000_000_000n) return 'forever';
  return new Date(Number(seconds) * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

export function formatValidity(cert: OpenSshCertificate): string {
  if (cert.validAfter === 0n && cert.validBefore === FOREVER) return 'forever';
  if (cert.validAfter === 0n) return `before ${formatCertificateTime(cert.validBefore)}`;
  if (cert.validBefore === FOREVER) return `after ${formatCertificateTime(cert.validAfter)}`;
  return `from ${formatCertificateTime(cert.validAfter)} to ${formatCertificateTime(cert.validBefore)}`;
}

/**
 * What is wrong with a host certificate for `hostName` at `nowSeconds`, or null: the checks
 * OpenSSH's ssh makes (sshkey_cert_check_host), each with its own message.
 *
 * An empty principals list is accepted, as ssh 9.2 accepts it for host certificates (checked
 * against that client: it logs on). Principals are compared exactly: ssh 9.2 does not match
 * wildcards in host certificate principals either (a "127.0.0.*" principal does not match
 * 127.0.0.1 with that client).
 */
export function checkHostCertificate(cert: OpenSshCertificate, hostName: string, nowSeconds: bigint): string | null {
  if (cert.type !== CERT_TYPE_HOST) return 'the certificate is not a host certificate (it is a user certificate)';
  if (nowSeconds < cert.validAfter) return `the host certificate is not yet valid (valid ${formatValidity(cert)})`;
  if (nowSeconds >= cert.validBefore) return `the host certificate has expired (valid ${formatValidity(cert)})`;
  if (cert.principals.length > 0 && !cert.principals.includes(hostName)) {
    const listed = cert.principals
      .slice(0, 8)
      .map((p) => JSON.stringify(p))
      .join(', ');
    return `the host certificate is not valid for ${JSON.stringify(hostName)} (its principals: ${listed}${cert.principals.length > 8 ? ', ...' : ''})`;
  }
  // No critical options are defined for host certificates, so any is one we do not know.
  if (cert.criticalOptions.length > 0) {
    return `the host certificate has critical options revtun does not know (${cert.criticalOptions.map((o) => JSON.stringify(o.name)).join(', ')})`;
  }
  const algorithm = caSignatureAlgorithm(cert);
  if (!CA_SIGNATURE_ALGORITHMS.includes(algorithm)) return `the host certificate is signed with ${algorithm}, which is not accepted for CA signatures`;
  return null;
}

/**
 * A host certificate whose CA signature has been verified. Whether its CA is trusted is for
 * the verifyHostKey callback to decide; `problem` says what else is wrong with it, if anything.
 */
export interface HostCertificateInfo {
  /** The certificate blob as the server sent it. */
  blob: Uint8Array;
  keyId: string;
  serial: bigint;
  principals: string[];
  /** Seconds since the epoch (2^64-1: forever). */
  validAfter: bigint;
  validBefore: bigint;
  /** "forever", "from ... to ...", as ssh -L prints it. */
  validity: string;
  criticalOptions: string[];
  extensions: string[];
  /** The CA's public key blob, its type and fingerprints, and the algorithm it signed with. */
  caKey: Uint8Array;
  caKeyType: string;
  caFingerprints: { md5: string; sha1: string; sha256: string };
  caSignatureAlgorithm: string;
  /**
   * Why the certificate cannot vouch for this host now (not a host certificate, not yet valid,
   * expired, another principal, unknown critical options), or null. A certificate with a
   * problem must not be trusted for its CA's sake; its key may still be trusted as a plain key.
   */
  problem: string | null;
}

/** The fields of a decoded host certificate as verifyHostKey and the application see them. */
export function describeHostCertificate(
  cert: OpenSshCertificate,
  blob: Uint8Array,
  fingerprintsOf: (blob: Uint8Array) => HostCertificateInfo['caFingerprints'],
  problem: string | null,
): HostCertificateInfo {
  return {
    blob,
    keyId: cert.keyId,
    serial: cert.serial,
    principals: cert.principals,
    validAfter: cert.validAfter,
    validBefore: cert.validBefore,
    validity: formatValidity(cert),
    criticalOptions: cert.criticalOptions.map((o) => o.name),
    extensions: cert.extensions.map((o) => o.name),
    caKey: cert.signatureKey,
    caKeyType: signatureKeyType(cert),
    caFingerprints: fingerprintsOf(cert.signatureKey),
    caSignatureAlgorithm: caSignatureAlgorithm(cert),
    problem,
  };
}
