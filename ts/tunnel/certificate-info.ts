// The documented read-only certificate properties (sshCertFingerprint, sshCertIssuer,
// sshCertPublicKeyLength… and the same under sshAcceptServerHostKey*), as one record describing
// a key: a plain SSH key, an OpenSSH certificate (PROTOCOL.certkeys) or an X.509 certificate.
//
// What each field holds for each kind (the documentation speaks of X.509 certificates; for SSH
// keys the nearest meaning is used, and said here so the README can say it too):
// - fingerprint, fingerprintSHA1, fingerprintSHA256: the hash of the SSH public key blob in
//   colon-separated hex, as the documentation shows them (and as ssh -E md5 prints MD5).
//   opensshFingerprint (a revtun extension) is the same key as ssh prints it, "SHA256:base64".
// - thumbprintMD5/SHA1/SHA256: the hash of `encoded`, plain hex: the DER certificate, the
//   OpenSSH certificate blob, or for a plain key the key blob.
// - encoded: base64 of that same DER certificate, certificate blob or key blob.
// - subject, issuer: an X.509 certificate's names in the documented "CN=…, O=…" form; an
//   OpenSSH certificate's key ID, and its CA as "ssh-ed25519 SHA256:…" (the same strings as
//   the sshServerAuthentication event's certSubject and certIssuer).
// - effectiveDate, expirationDate: the validity window, "23-Jan-2000 15:00:00" in local time;
//   empty for an OpenSSH certificate's "always" and "forever" ends and for plain keys.
// - subjectAltNames: an X.509 certificate's as node:crypto prints them; an OpenSSH
//   certificate's principals. serialNumber: hex, one pair per byte.
// - publicKey: the public key as PEM (SubjectPublicKeyInfo). privateKey: always empty, the case
//   the documentation allows for a key that is not exportable: revtun never hands out private
//   key material (privateKeyAvailable says whether the key can sign).

import { createHash, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { toHex } from '../protocol/wire.js';
import { FOREVER, type HostCertificateInfo, type OpenSshCertificate } from '../protocol/certificates.js';
import type { X509HostKeyInfo } from '../protocol/x509-trust.js';
import { parsePublicKey, publicKeyTypeName } from '../protocol/publickey.js';
import { toKeyObject } from '../crypto/node.js';
import { sshPublicKeyBlob } from '../crypto/keys.js';
import { documentedSubject } from '../crypto/pkcs12.js';
import { x509Details } from '../crypto/x509-info.js';

export interface CertificateInfo {
  effectiveDate: string;
  expirationDate: string;
  extendedKeyUsage: string;
  fingerprint: string;
  fingerprintSHA1: string;
  fingerprintSHA256: string;
  opensshFingerprint: string;
  issuer: string;
  privateKey: string;
  privateKeyAvailable: boolean;
  privateKeyContainer: string;
  publicKey: string;
  publicKeyAlgorithm: string;
  publicKeyLength: number;
  serialNumber: string;
  signatureAlgorithm: string;
  subjectAltNames: string;
  thumbprintMD5: string;
  thumbprintSHA1: string;
  thumbprintSHA256: string;
  usage: string;
  usageFlags: number;
  version: string;
  subject: string;
  encoded: string;
}

export const EMPTY_CERTIFICATE_INFO: Readonly<CertificateInfo> = Object.freeze({
  effectiveDate: '',
  expirationDate: '',
  extendedKeyUsage: '',
  fingerprint: '',
  fingerprintSHA1: '',
  fingerprintSHA256: '',
  opensshFingerprint: '',
  issuer: '',
  privateKey: '',
  privateKeyAvailable: false,
  privateKeyContainer: '',
  publicKey: '',
  publicKeyAlgorithm: '',
  publicKeyLength: 0,
  serialNumber: '',
  signatureAlgorithm: '',
  subjectAltNames: '',
  thumbprintMD5: '',
  thumbprintSHA1: '',
  thumbprintSHA256: '',
  usage: '',
  usageFlags: 0,
  version: '',
  subject: '',
  encoded: '',
});

/** The read-only fields, in the documentation's order: each is a property under both prefixes. */
export const READ_ONLY_CERTIFICATE_FIELDS = [
  'effectiveDate',
  'expirationDate',
  'extendedKeyUsage',
  'fingerprint',
  'fingerprintSHA1',
  'fingerprintSHA256',
  'opensshFingerprint',
  'issuer',
  'privateKey',
  'privateKeyAvailable',
  'privateKeyContainer',
  'publicKey',
  'publicKeyAlgorithm',
  'publicKeyLength',
  'serialNumber',
  'signatureAlgorithm',
  'subjectAltNames',
  'thumbprintMD5',
  'thumbprintSHA1',
  'thumbprintSHA256',
  'usage',
  'usageFlags',
  'version',
] as const satisfies readonly (keyof CertificateInfo)[];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "23-Jan-2000 15:00:00" in the local time zone, the documented date form. */
export function documentedDate(date: Date): string {
  if (Number.isNaN(date.getTime())) return '';
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getDate())}-${MONTHS[date.getMonth()]}-${date.getFullYear()} ${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

function digest(algorithm: 'md5' | 'sha1' | 'sha256', bytes: Uint8Array): Buffer {
  return createHash(algorithm).update(bytes).digest();
}

const ALGORITHM_NAMES: Record<string, string> = { rsa: 'RSA', 'rsa-pss': 'RSA-PSS', dsa: 'DSA', ec: 'ECDSA', ed25519: 'Ed25519', ed448: 'Ed448' };
const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521, secp256k1: 256 };

/** The key's algorithm name and length in bits. */
function keyShape(key: KeyObject): { algorithm: string; bits: number } {
  const type = key.asymmetricKeyType ?? '';
  const details = key.asymmetricKeyDetails ?? {};
  const bits = details.modulusLength ?? (details.namedCurve ? CURVE_BITS[details.namedCurve] : undefined) ?? (type === 'ed25519' ? 256 : type === 'ed448' ? 448 : 0);
  return { algorithm: ALGORITHM_NAMES[type] ?? type.toUpperCase(), bits };
}

/** The fields every kind shares: the key's fingerprints, algorithm, length and PEM form. */
function keyFields(publicKey: KeyObject | null, sshBlob: Uint8Array, encoded: Uint8Array, privateKeyAvailable: boolean): CertificateInfo {
  const shape = publicKey ? keyShape(publicKey) : { algorithm: '', bits: 0 };
  return {
    ...EMPTY_CERTIFICATE_INFO,
    fingerprint: toHex(digest('md5', sshBlob), ':'),
    fingerprintSHA1: toHex(digest('sha1', sshBlob), ':'),
    fingerprintSHA256: toHex(digest('sha256', sshBlob), ':'),
    opensshFingerprint: `SHA256:${digest('sha256', sshBlob).toString('base64').replace(/=+$/, '')}`,
    privateKeyAvailable,
    publicKey: publicKey ? String(publicKey.export({ type: 'spki', format: 'pem' })) : '',
    publicKeyAlgorithm: shape.algorithm,
    publicKeyLength: shape.bits,
    thumbprintMD5: toHex(digest('md5', encoded)),
    thumbprintSHA1: toHex(digest('sha1', encoded)),
    thumbprintSHA256: toHex(digest('sha256', encoded)),
    encoded: Buffer.from(encoded).toString('base64'),
  };
}

/** A node key object for an SSH key blob, or null for a type node:crypto cannot hold. */
function keyObjectOfBlob(blob: Uint8Array): KeyObject | null {
  try {
    return toKeyObject(parsePublicKey(blob));
  } catch {
    return null;
  }
}

/** A plain SSH key (its blob), or a node key (public or private half). */
export function describeKey(key: Uint8Array | KeyObject, privateKeyAvailable: boolean): CertificateInfo {
  if (key instanceof Uint8Array) return keyFields(keyObjectOfBlob(key), key, key, privateKeyAvailable);
  const blob = sshPublicKeyBlob(key).blob;
  return keyFields(key.type === 'private' ? createPublicKey(key) : key, blob, blob, privateKeyAvailable);
}

/** Minimal big-endian bytes of a serial, at least one. */
function serialHex(serial: bigint): string {
  const hex = serial.toString(16);
  return (hex.length % 2 ? '0' : '') + hex;
}

function certificateTime(seconds: bigint): string {
  if (seconds === 0n || seconds === FOREVER || seconds > 8_640_000_000_000n) return '';
  return documentedDate(new Date(Number(seconds) * 1000));
}

/** The parts of an OpenSSH certificate the properties show (a parsed user or host certificate). */
export interface OpenSshCertificateFields {
  keyId: string;
  serial: bigint;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  caKeyType: string;
  caSha256: string;
  caSignatureAlgorithm: string;
}

export function openSshCertificateFields(cert: OpenSshCertificate, caSignatureAlgorithm: string): OpenSshCertificateFields {
  const caKeyType = (() => {
    try {
      return publicKeyTypeName(parsePublicKey(cert.signatureKey));
    } catch {
      return 'unknown';
    }
  })();
  return {
    keyId: cert.keyId,
    serial: cert.serial,
    principals: cert.principals,
    validAfter: cert.validAfter,
    validBefore: cert.validBefore,
    caKeyType,
    caSha256: digest('sha256', cert.signatureKey).toString('base64').replace(/=+$/, ''),
    caSignatureAlgorithm,
  };
}

/** An OpenSSH certificate: its certified key's fingerprints, the certificate's own fields. */
export function describeOpenSshCertificate(blob: Uint8Array, certifiedKey: Uint8Array, cert: OpenSshCertificateFields, privateKeyAvailable: boolean): CertificateInfo {
  return {
    ...keyFields(keyObjectOfBlob(certifiedKey), certifiedKey, blob, privateKeyAvailable),
    subject: cert.keyId,
    issuer: `${cert.caKeyType} SHA256:${cert.caSha256}`,
    effectiveDate: certificateTime(cert.validAfter),
    expirationDate: certificateTime(cert.validBefore),
    serialNumber: serialHex(cert.serial),
    signatureAlgorithm: cert.caSignatureAlgorithm,
    subjectAltNames: cert.principals.join(','),
  };
}

/** The documented "CN=…, O=…" form of an X.509 certificate's issuer. */
function documentedIssuer(certificate: X509Certificate): string {
  // documentedSubject reads `subject`; a look-alike whose subject is the issuer gives the issuer.
  return documentedSubject({ subject: certificate.issuer } as X509Certificate);
}

/** An X.509 certificate, with whether its private key is at hand. */
export function describeX509(certificate: X509Certificate, privateKeyAvailable: boolean): CertificateInfo {
  let sshBlob: Uint8Array;
  try {
    sshBlob = sshPublicKeyBlob(certificate.publicKey).blob;
  } catch {
    sshBlob = new Uint8Array(certificate.publicKey.export({ type: 'spki', format: 'der' }));
  }
  const details = x509Details(certificate.raw);
  return {
    ...keyFields(certificate.publicKey, sshBlob, certificate.raw, privateKeyAvailable),
    subject: documentedSubject(certificate),
    issuer: documentedIssuer(certificate),
    effectiveDate: documentedDate(new Date(certificate.validFrom)),
    expirationDate: documentedDate(new Date(certificate.validTo)),
    serialNumber: certificate.serialNumber.toUpperCase(),
    subjectAltNames: certificate.subjectAltName ?? '',
    signatureAlgorithm: details.signatureAlgorithm,
    version: details.version,
    usage: details.usage,
    usageFlags: details.usageFlags,
    extendedKeyUsage: details.extendedKeyUsage,
  };
}

/** A server's host key as the connection presented it: a plain key, its OpenSSH host certificate, or its X.509 certificate (RFC 6187). */
export function describeHostKey(info: { hostKey: Uint8Array; certificate?: HostCertificateInfo; x509?: X509HostKeyInfo }): CertificateInfo {
  // The server's own certificate, first in the chain it sent (decoded once already by the core).
  if (info.x509) return describeX509(new X509Certificate(Buffer.from(info.x509.certificates[0]!)), false);
  const cert = info.certificate;
  if (!cert) return describeKey(info.hostKey, false);
  return describeOpenSshCertificate(
    cert.blob,
    info.hostKey,
    {
      keyId: cert.keyId,
      serial: cert.serial,
      principals: cert.principals,
      validAfter: cert.validAfter,
      validBefore: cert.validBefore,
      caKeyType: cert.caKeyType,
      caSha256: cert.caFingerprints.sha256,
      caSignatureAlgorithm: cert.caSignatureAlgorithm,
    },
    false,
  );
}
