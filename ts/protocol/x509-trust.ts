// What an X.509 host key chain (RFC 6187) says and whether to believe it: the certificates
// decoded by OpenSSL (node:crypto's X509Certificate), the leaf's public key as an SSH key blob
// (it signs the exchange hash, §3), the leaf's checks against this connection (validity
// window, the host name or address in its subjectAltName, the SSH server purpose of §2.2),
// and the chain's signatures up to a trusted CA certificate. Which CA certificates are trusted
// is the application's business (SSHAcceptServerCAKey, ts/tunnel/hostkeys.ts).
//
// X509Certificate is reached through the module namespace, not a named import, so that a
// runtime whose node:crypto lacks it still loads revtun and fails only here, with a message.

import * as crypto from 'node:crypto';
import { isIP } from 'node:net';
import { SshError, Code } from './errors.js';
import { parsePublicKey, publicKeyBits } from './publickey.js';
import { sshPublicKeyBlob } from '../crypto/keys.js';
import { documentedSubject } from '../crypto/pkcs12.js';
import { pathLengthConstraint, x509Details, x509Extensions } from '../crypto/x509-info.js';
import { parseX509ChainBlob, x509SignatureAsPlain, type X509AlgorithmSpec, type X509ChainBlob } from './x509-chain.js';

/** id-kp-secureShellServer (RFC 6187 §2.2) and anyExtendedKeyUsage (RFC 5280 §4.2.1.12). */
const SSH_SERVER_PURPOSE = '1.3.6.1.5.5.7.3.22';
const ANY_PURPOSE = '2.5.29.37.0';

/** The fields of an X.509 host key chain as verifyHostKey and the application see them. */
export interface X509HostKeyInfo {
  /** The DER certificates as the server sent them, its own first. */
  certificates: Uint8Array[];
  /** The leaf's subject and issuer distinguished names, in the documented form ("CN=gw, O=Example"). */
  subject: string;
  issuer: string;
  validFrom: Date;
  validTo: Date;
  /** The leaf's SHA-256 certificate fingerprint, as openssl x509 -fingerprint -sha256 prints it. */
  fingerprint256: string;
  /** When the core checked the leaf (ms since the epoch, its clock): the chain is judged at the same time. */
  checkedAt: number;
  /**
   * Why the leaf cannot vouch for this host now (not yet valid, expired, issued for another
   * name, not for SSH servers), or null. Whether its chain leads to a trusted CA is judged
   * separately (verifyX509Chain).
   */
  problem: string | null;
}

function malformed(detail: string): SshError {
  return new SshError(Code.HostKeyVerifyFailed, `malformed X.509 host key: ${detail}`, 'peer');
}

function x509Class(): typeof crypto.X509Certificate {
  const X509 = (crypto as { X509Certificate?: typeof crypto.X509Certificate }).X509Certificate;
  if (!X509) throw new SshError(Code.UnsupportedAlgorithm, 'X.509 host keys need node:crypto X509Certificate, which this runtime lacks', 'local');
  return X509;
}

/**
 * A DN as node:crypto gives it (one "NAME=value" a line) in the documented "CN=gw, O=Example"
 * form that sshCertSubject and sshAcceptServerHostKeySubject use, with the control characters
 * a server could forge log lines with replaced.
 */
export function oneLineDn(dn: string): string {
  // documentedSubject reads `subject`; a look-alike whose subject is `dn` gives that DN.
  return documentedSubject({ subject: dn } as crypto.X509Certificate)
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .slice(0, 1024);
}

export interface DecodedX509HostKey {
  certificates: crypto.X509Certificate[];
  /** The leaf's public key as a plain SSH key blob: what signs the exchange hash, and what is fingerprinted. */
  keyBlob: Uint8Array;
  keyType: string;
}

/**
 * Decodes the certificates of a chain blob and the leaf's key, refusing a certificate OpenSSL
 * cannot read, a leaf key of another type than the algorithm's, or one too short for it.
 */
export function decodeX509HostKey(chain: X509ChainBlob, spec: X509AlgorithmSpec): DecodedX509HostKey {
  const X509 = x509Class();
  const certificates = chain.certificates.map((der, index) => {
    try {
      return new X509(Buffer.from(der));
    } catch {
      // OpenSSL's message may describe the bytes; the position is what helps.
      throw malformed(`certificate ${index + 1} cannot be decoded`);
    }
  });
  let key: { blob: Uint8Array; keyType: string };
  try {
    key = sshPublicKeyBlob(certificates[0]!.publicKey);
  } catch {
    throw malformed(`the certificate's public key is of a type SSH has no algorithm for (${certificates[0]!.publicKey.asymmetricKeyType})`);
  }
  if (key.keyType !== spec.keyType) throw malformed(`the certificate holds a ${key.keyType} key, not the ${spec.keyType} key ${spec.name} needs`);
  // The same bounds as for a plain key of the type (RSA 1024..16384 bits...).
  const parsed = parsePublicKey(key.blob);
  if (spec.minimumBits !== undefined && publicKeyBits(parsed) < spec.minimumBits) {
    throw new SshError(Code.HostKeyVerifyFailed, `${spec.name} needs a key of at least ${spec.minimumBits} bits; the certificate's has ${publicKeyBits(parsed)}`, 'peer');
  }
  return { certificates, keyBlob: key.blob, keyType: key.keyType };
}

function when(date: Date): string {
  return date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

/**
 * What is wrong with the leaf for `hostName` at `nowMs`, or null. The name must be in the
 * subjectAltName (a DNS name, or an IP address for an address), as RFC 6125 asks: the subject's
 * CN is not looked at.
 */
export function checkX509Leaf(leaf: crypto.X509Certificate, hostName: string | undefined, nowMs: number): string | null {
  const validFrom = new Date(leaf.validFrom);
  const validTo = new Date(leaf.validTo);
  const validity = `valid from ${when(validFrom)} to ${when(validTo)}`;
  if (nowMs < validFrom.getTime()) return `the X.509 host certificate is not yet valid (${validity})`;
  if (nowMs > validTo.getTime()) return `the X.509 host certificate has expired (${validity})`;
  if (hostName === undefined || hostName === '') return 'no host name was given to check the X.509 host certificate against';
  const name = hostName.replace(/^\[(.*)\]$/, '$1');
  const matches = isIP(name) !== 0 ? leaf.checkIP(name) !== undefined : leaf.checkHost(name, { subject: 'never', partialWildcards: false }) !== undefined;
  if (!matches) {
    const alt = (leaf.subjectAltName ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 256);
    return `the X.509 host certificate is not valid for ${JSON.stringify(hostName)} (its subjectAltName: ${alt === '' ? 'none' : alt})`;
  }
  const purposes = leaf.keyUsage; // node names the extended key usage OIDs so
  if (purposes && purposes.length > 0 && !purposes.includes(SSH_SERVER_PURPOSE) && !purposes.includes(ANY_PURPOSE)) {
    return `the X.509 host certificate is not for SSH servers (its extended key usage lacks id-kp-secureShellServer, ${SSH_SERVER_PURPOSE})`;
  }
  return null;
}

/** The fields of a decoded chain, with the leaf's problem for this connection. */
export function describeX509HostKey(decoded: DecodedX509HostKey, problem: string | null, checkedAt: number): X509HostKeyInfo {
  const leaf = decoded.certificates[0]!;
  return {
    certificates: decoded.certificates.map((c) => new Uint8Array(c.raw)),
    subject: oneLineDn(leaf.subject),
    issuer: oneLineDn(leaf.issuer),
    validFrom: new Date(leaf.validFrom),
    validTo: new Date(leaf.validTo),
    fingerprint256: leaf.fingerprint256,
    checkedAt,
    problem,
  };
}

export type X509ChainJudgement = { trusted: true; anchor: string } | { trusted: false; reason: string };

/**
 * Extensions this check understands, and so may let through when critical (RFC 5280 §4.2:
 * a certificate with a critical extension the verifier does not process must be refused).
 * Name constraints are not among them: a CA that carries them is refused rather than trusted
 * beyond its constraints.
 */
const UNDERSTOOD_EXTENSIONS = new Set(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35']);
const NAME_CONSTRAINTS = '2.5.29.30';

/**
 * The limits the CAs of a verified path put on it (RFC 5280 §6.1.4): each CA's pathLenConstraint
 * bounds the intermediate CAs below it, an intermediate with key usage must allow certificate
 * signing, and no certificate may carry a critical extension this check does not process (name
 * constraints are refused in any form). `path` is leaf first, the anchor last.
 */
function pathProblem(path: readonly crypto.X509Certificate[]): string | null {
  for (let i = 0; i < path.length; i++) {
    const certificate = path[i]!;
    const name = JSON.stringify(oneLineDn(certificate.subject));
    const extensions = x509Extensions(certificate.raw);
    if (extensions.some((e) => e.oid === NAME_CONSTRAINTS)) return `the X.509 certificate ${name} carries name constraints, which revtun does not check: refused`;
    const unknown = extensions.find((e) => e.critical && !UNDERSTOOD_EXTENSIONS.has(e.oid));
    if (unknown) return `the X.509 certificate ${name} has a critical extension revtun does not process (${unknown.oid})`;
    if (i === 0) continue;
    const flags = x509Details(certificate.raw);
    if (flags.usage !== '' && (flags.usageFlags & 0x04) === 0) return `the X.509 CA certificate ${name} is not allowed to sign certificates (its key usage lacks keyCertSign)`;
    const limit = pathLengthConstraint(extensions);
    const below = i - 1; // the intermediate CAs between this CA and the leaf
    if (limit !== undefined && below > limit) return `the X.509 CA certificate ${name} allows ${limit} CA certificate(s) below it, and the chain has ${below}`;
  }
  return null;
}

function signedBy(certificate: crypto.X509Certificate, issuer: crypto.X509Certificate): boolean {
  try {
    return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
  } catch {
    return false; // an issuer key OpenSSL cannot use
  }
}

function currentlyValid(certificate: crypto.X509Certificate, nowMs: number): boolean {
  return nowMs >= new Date(certificate.validFrom).getTime() && nowMs <= new Date(certificate.validTo).getTime();
}

/**
 * Whether the chain (DER, leaf first) leads to one of the trusted CA certificates: each
 * certificate must be signed by the next one, which must be a CA and currently valid, until
 * one is signed by a trusted certificate (or is one). The chain's length is bounded by the
 * blob parser. The reason says where it broke.
 */
export function verifyX509Chain(chainDer: readonly Uint8Array[], trusted: readonly crypto.X509Certificate[], nowMs: number): X509ChainJudgement {
  const X509 = x509Class();
  const chain = chainDer.map((der) => new X509(Buffer.from(der)));
  for (let i = 0; i < chain.length; i++) {
    const certificate = chain[i]!;
    const same = trusted.find((anchor) => anchor.fingerprint256 === certificate.fingerprint256);
    if (same && i > 0) {
      const problem = pathProblem([...chain.slice(0, i), same]);
      return problem ? { trusted: false, reason: problem } : { trusted: true, anchor: oneLineDn(same.subject) };
    }
    const anchor = trusted.find((candidate) => signedBy(certificate, candidate));
    if (anchor) {
      if (!currentlyValid(anchor, nowMs)) {
        return { trusted: false, reason: `the trusted CA certificate ${JSON.stringify(oneLineDn(anchor.subject))} is not valid now (valid from ${anchor.validFrom} to ${anchor.validTo})` };
      }
      const problem = pathProblem([...chain.slice(0, i + 1), anchor]);
      return problem ? { trusted: false, reason: problem } : { trusted: true, anchor: oneLineDn(anchor.subject) };
    }
    const next = chain[i + 1];
    if (!next) break;
    if (!signedBy(certificate, next)) {
      return {
        trusted: false,
        reason: `the X.509 certificate chain does not verify: ${JSON.stringify(oneLineDn(certificate.subject))} is not signed by the next certificate, ${JSON.stringify(oneLineDn(next.subject))}`,
      };
    }
    if (!next.ca) return { trusted: false, reason: `the X.509 certificate chain does not verify: ${JSON.stringify(oneLineDn(next.subject))} signs certificates but is not a CA certificate` };
    if (!currentlyValid(next, nowMs)) return { trusted: false, reason: `the X.509 certificate chain does not verify: ${JSON.stringify(oneLineDn(next.subject))} is not valid now` };
  }
  const top = chain[chain.length - 1]!;
  return { trusted: false, reason: `the X.509 host certificate is not signed by a trusted CA (the chain ends at issuer ${JSON.stringify(oneLineDn(top.issuer))})` };
}

/**
 * An X.509 host key as the client core checks it (RFC 6187 §3): the chain blob decoded and
 * bounded, the leaf's key and the plain signature it must have made over the exchange hash
 * (none when a GSSAPI key exchange proved the hash instead), and the leaf's fields with its
 * problem for `hostName` at `nowMs`.
 */
export function readX509HostKey(
  blob: Uint8Array,
  signature: Uint8Array | null,
  spec: X509AlgorithmSpec,
  hostName: string | undefined,
  nowMs: number,
): { keyBlob: Uint8Array; keyType: string; signatureAlgorithm: string; signature: Uint8Array | null; info: X509HostKeyInfo } {
  const decoded = decodeX509HostKey(parseX509ChainBlob(blob, spec.name), spec);
  const problem = checkX509Leaf(decoded.certificates[0]!, hostName, nowMs);
  return {
    keyBlob: decoded.keyBlob,
    keyType: decoded.keyType,
    signatureAlgorithm: spec.verifyAs,
    signature: signature ? x509SignatureAsPlain(spec, signature) : null,
    info: describeX509HostKey(decoded, problem, nowMs),
  };
}
