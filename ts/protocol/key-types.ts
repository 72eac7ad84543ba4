// The one table of SSH public key types and signature algorithms (RFC 4253 §6.6, RFC 5656 §3.1,
// RFC 8332, RFC 8709, PROTOCOL.certkeys): for each key type, its wire name, how its public blob
// is read and bounded, its length in bits, node:crypto's name for it and its certificate type;
// for each signature algorithm, the key type that makes it, the hash, the scheme a crypto
// provider implements it with, its certificate algorithm, and whether it is on by default or
// legacy (used only when the user lists it); and the X.509 host key algorithms of RFC 6187, each
// with the key type and plain signature algorithm it rests on. Everything else that knows about
// key types (publickey.ts, certificates.ts, x509-chain.ts, the providers, the key loaders, the
// settings) reads it here.
//
// Nothing here does cryptography: the protocol core stays free of node:crypto, and each
// provider implements the schemes named here (ts/crypto/node.ts verifies, ts/crypto/keys.ts
// signs).

import type { Reader } from './wire.js';
import { SshError, Code } from './errors.js';

export type EcdsaCurve = 'nistp256' | 'nistp384' | 'nistp521';

export const ECDSA_CURVES = {
  nistp256: { bytes: 32, bits: 256, hash: 'sha256', jwk: 'P-256', openssl: 'prime256v1' },
  nistp384: { bytes: 48, bits: 384, hash: 'sha384', jwk: 'P-384', openssl: 'secp384r1' },
  nistp521: { bytes: 66, bits: 521, hash: 'sha512', jwk: 'P-521', openssl: 'secp521r1' },
} as const;

/** A public key, its fields as the blob carries them. */
export type PublicKey =
  | { type: 'ssh-ed25519'; key: Uint8Array }
  | { type: 'ecdsa'; curve: EcdsaCurve; point: Uint8Array }
  | { type: 'ssh-rsa'; e: Uint8Array; n: Uint8Array }
  | { type: 'ssh-dss'; p: Uint8Array; q: Uint8Array; g: Uint8Array; y: Uint8Array };

/** As OpenSSH's SSHBUF_MAX_BIGNUM / OPENSSL_RSA_MAX_MODULUS_BITS: a larger modulus is no one's real key. */
export const RSA_MAX_MODULUS_BITS = 16384;
/** As OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE before 9.x raised it: older keys still log on. */
export const RSA_MIN_MODULUS_BITS = 1024;

/**
 * DSA as SSH has it (RFC 4253 §6.6): r and s of 160 bits each, so q must have 160 bits; p of
 * 1024 bits is what ssh-keygen makes, up to 3072 is accepted (FIPS 186's largest with that q
 * does not exist, but a larger p only costs more to check, so it is bounded).
 */
export const DSA_Q_BITS = 160;
export const DSA_MIN_P_BITS = 1024;
export const DSA_MAX_P_BITS = 3072;

/** How a signature is made and checked; each crypto provider implements every scheme. */
export type SignatureScheme = 'ed25519' | 'ecdsa' | 'rsa-pkcs1' | 'dsa';

export type SignatureHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface KeyTypeSpec {
  /** The name at the start of the public key blob. */
  readonly name: string;
  /** node:crypto's KeyObject.asymmetricKeyType for such a key. */
  readonly nodeKeyType: 'ed25519' | 'ec' | 'rsa' | 'dsa';
  readonly curve?: EcdsaCurve;
  /**
   * How many string/mpint fields follow the name in the blob; a certificate carries the same
   * fields in the same order after its nonce (PROTOCOL.certkeys).
   */
  readonly publicFields: number;
  /** The type name of an OpenSSH certificate for such a key. */
  readonly certificateType: string;
  /** Reads and checks the fields after the name (throws SshError 1031 for a bad key). */
  read(r: Reader): PublicKey;
  /** The key's size as ssh-keygen -l reports it. */
  bits(key: PublicKey): number;
  /** A type whose every algorithm is legacy (DSA): its keys are used only when one is listed. */
  readonly legacy: boolean;
}

export interface SignatureAlgorithmSpec {
  /** The name negotiated, and written at the start of the signature blob. */
  readonly name: string;
  /** The key type that makes this signature. */
  readonly keyType: string;
  readonly scheme: SignatureScheme;
  /** The digest the scheme signs over; null where the scheme has its own (Ed25519). */
  readonly hash: SignatureHash | null;
  /** Its OpenSSH certificate algorithm name (the key signs with this algorithm under it). */
  readonly certificate: string;
  /**
   * SHA-1 and DSA algorithms: never offered or accepted unless the user lists them
   * (OpenSSH 8.8 dropped ssh-rsa and 7.0 ssh-dss from their defaults).
   */
  readonly legacy: boolean;
  /** ssh-agent's SSH_AGENT_RSA_SHA2_* flag for a sign request (draft-miller-ssh-agent §4.5.1). */
  readonly agentSignFlag?: number;
}

function badKey(message: string): SshError {
  return new SshError(Code.HostKeyVerifyFailed, message, 'peer');
}

/** The number of significant bits in a big-endian magnitude. */
export function bitLength(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i]!));
}

function readEd25519(r: Reader): PublicKey {
  const key = r.string();
  if (key.length !== 32) throw badKey('ed25519 key is not 32 bytes');
  return { type: 'ssh-ed25519', key };
}

function ecdsaReader(curve: EcdsaCurve): (r: Reader) => PublicKey {
  return (r) => {
    const named = r.utf8();
    if (named !== curve) throw badKey(`unsupported ECDSA curve ${named}`);
    const point = r.string();
    const size = ECDSA_CURVES[curve].bytes;
    if (point.length !== 1 + 2 * size || point[0] !== 4) throw badKey('ECDSA point is not an uncompressed point of the curve');
    return { type: 'ecdsa', curve, point };
  };
}

function readRsa(r: Reader): PublicKey {
  const e = r.mpint();
  const n = r.mpint();
  // Bounds as OpenSSH's: a huge modulus or exponent from a hostile server would make
  // signature verification burn CPU for minutes.
  if (n.length * 8 < RSA_MIN_MODULUS_BITS) throw badKey(`RSA key shorter than ${RSA_MIN_MODULUS_BITS} bits`);
  if (n.length * 8 > RSA_MAX_MODULUS_BITS) throw badKey(`RSA key longer than ${RSA_MAX_MODULUS_BITS} bits`);
  if (e.length === 0 || e.length > 4 || (e[e.length - 1]! & 1) === 0) throw badKey('RSA public exponent is not a small odd number');
  return { type: 'ssh-rsa', e, n };
}

/** a < b for big-endian magnitudes. */
function lessThan(a: Uint8Array, b: Uint8Array): boolean {
  const x = a.subarray(a.length - Math.ceil(bitLength(a) / 8));
  const y = b.subarray(b.length - Math.ceil(bitLength(b) / 8));
  if (x.length !== y.length) return x.length < y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
  return false;
}

function readDsa(r: Reader): PublicKey {
  const p = r.mpint();
  const q = r.mpint();
  const g = r.mpint();
  const y = r.mpint();
  const pBits = bitLength(p);
  // Bounded before use, as RSA is: the numbers come from the peer.
  if (pBits < DSA_MIN_P_BITS || pBits > DSA_MAX_P_BITS) throw badKey(`DSA key of ${pBits} bits (${DSA_MIN_P_BITS} to ${DSA_MAX_P_BITS} are accepted)`);
  if (bitLength(q) !== DSA_Q_BITS) throw badKey(`DSA subgroup order of ${bitLength(q)} bits (ssh-dss needs ${DSA_Q_BITS})`);
  const one = Uint8Array.of(1);
  if (!lessThan(one, g) || !lessThan(g, p) || !lessThan(one, y) || !lessThan(y, p)) throw badKey('DSA generator or public value out of range');
  return { type: 'ssh-dss', p, q, g, y };
}

function ecdsaType(curve: EcdsaCurve): KeyTypeSpec {
  return {
    name: `ecdsa-sha2-${curve}`,
    nodeKeyType: 'ec',
    curve,
    publicFields: 2, // curve name, Q
    certificateType: `ecdsa-sha2-${curve}-cert-v01@openssh.com`,
    read: ecdsaReader(curve),
    bits: () => ECDSA_CURVES[curve].bits,
    legacy: false,
  };
}

/** Every key type revtun reads, in the order ssh -Q key lists them. */
export const KEY_TYPES: readonly KeyTypeSpec[] = [
  {
    name: 'ssh-ed25519',
    nodeKeyType: 'ed25519',
    publicFields: 1, // the 32-byte key
    certificateType: 'ssh-ed25519-cert-v01@openssh.com',
    read: readEd25519,
    bits: () => 256,
    legacy: false,
  },
  ecdsaType('nistp256'),
  ecdsaType('nistp384'),
  ecdsaType('nistp521'),
  {
    name: 'ssh-rsa',
    nodeKeyType: 'rsa',
    publicFields: 2, // e, n
    certificateType: 'ssh-rsa-cert-v01@openssh.com',
    read: readRsa,
    bits: (key) => (key.type === 'ssh-rsa' ? bitLength(key.n) : 0),
    legacy: false,
  },
  {
    name: 'ssh-dss',
    nodeKeyType: 'dsa',
    publicFields: 4, // p, q, g, y
    certificateType: 'ssh-dss-cert-v01@openssh.com',
    read: readDsa,
    bits: (key) => (key.type === 'ssh-dss' ? bitLength(key.p) : 0),
    legacy: true,
  },
];

function ecdsaAlgorithm(curve: EcdsaCurve): SignatureAlgorithmSpec {
  const name = `ecdsa-sha2-${curve}`;
  return { name, keyType: name, scheme: 'ecdsa', hash: ECDSA_CURVES[curve].hash, certificate: `${name}-cert-v01@openssh.com`, legacy: false };
}

/**
 * Every signature algorithm revtun verifies and makes. The order is the preference order of the
 * default host key list (DEFAULT_HOST_KEY_ALGORITHMS keeps the non-legacy ones in it).
 */
export const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithmSpec[] = [
  { name: 'ssh-ed25519', keyType: 'ssh-ed25519', scheme: 'ed25519', hash: null, certificate: 'ssh-ed25519-cert-v01@openssh.com', legacy: false },
  ecdsaAlgorithm('nistp256'),
  ecdsaAlgorithm('nistp384'),
  ecdsaAlgorithm('nistp521'),
  // RFC 8332. The certificates of both are ssh-rsa-cert-v01 on the wire; the names exist for negotiation.
  { name: 'rsa-sha2-512', keyType: 'ssh-rsa', scheme: 'rsa-pkcs1', hash: 'sha512', certificate: 'rsa-sha2-512-cert-v01@openssh.com', legacy: false, agentSignFlag: 4 },
  { name: 'rsa-sha2-256', keyType: 'ssh-rsa', scheme: 'rsa-pkcs1', hash: 'sha256', certificate: 'rsa-sha2-256-cert-v01@openssh.com', legacy: false, agentSignFlag: 2 },
  { name: 'ssh-rsa', keyType: 'ssh-rsa', scheme: 'rsa-pkcs1', hash: 'sha1', certificate: 'ssh-rsa-cert-v01@openssh.com', legacy: true },
  // RFC 4253 §6.6: SHA-1, the signature 40 bytes of r || s.
  { name: 'ssh-dss', keyType: 'ssh-dss', scheme: 'dsa', hash: 'sha1', certificate: 'ssh-dss-cert-v01@openssh.com', legacy: true },
];

const keyTypesByName = new Map(KEY_TYPES.map((spec) => [spec.name, spec]));
const algorithmsByName = new Map(SIGNATURE_ALGORITHMS.map((spec) => [spec.name, spec]));

export function keyTypeSpec(name: string): KeyTypeSpec | undefined {
  return keyTypesByName.get(name);
}

export function signatureAlgorithmSpec(name: string): SignatureAlgorithmSpec | undefined {
  return algorithmsByName.get(name);
}

/** The key type of a node:crypto key (and its curve, for EC keys), or undefined for one SSH has no type for. */
export function keyTypeForNodeKey(nodeKeyType: string | undefined, namedCurve?: string): KeyTypeSpec | undefined {
  return KEY_TYPES.find((spec) => spec.nodeKeyType === nodeKeyType && (spec.curve === undefined || ECDSA_CURVES[spec.curve].openssl === namedCurve));
}

/** The signature algorithms a key type can make, strongest first (rsa-sha2-512, rsa-sha2-256, ssh-rsa). */
export function algorithmsOfKeyType(keyType: string): SignatureAlgorithmSpec[] {
  return SIGNATURE_ALGORITHMS.filter((spec) => spec.keyType === keyType);
}

/** The host key algorithms offered by default (SSHPublicKeyAlgorithms): every non-legacy one, in table order. */
export const DEFAULT_HOST_KEY_ALGORITHMS: readonly string[] = SIGNATURE_ALGORITHMS.filter((spec) => !spec.legacy).map((spec) => spec.name);

/**
 * The signature algorithms a CA may have signed a host certificate with: OpenSSH's default
 * CASignatureAlgorithms, the same non-legacy set (no ssh-rsa SHA-1).
 */
export const CA_SIGNATURE_ALGORITHMS: readonly string[] = DEFAULT_HOST_KEY_ALGORITHMS;

/**
 * The default of SSHPubKeyAuthSigAlgorithms, in the documented order. ssh-rsa (SHA-1) is in it
 * as documented: it is used only with a server that does not announce server-sig-algs
 * (RFC 8332 §3.1), which is a server that knows no rsa-sha2 either.
 */
export const DEFAULT_PUBKEY_SIGNATURE_ALGORITHMS: readonly string[] = ['ssh-rsa', 'rsa-sha2-256', 'rsa-sha2-512', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-ed25519'];

/** An X.509 host key algorithm (RFC 6187 §3); the chain blob itself is ./x509-chain.ts's. */
export interface X509AlgorithmSpec {
  /** The host key algorithm name negotiated (RFC 6187 §3). */
  readonly name: string;
  /** The SSH key type the leaf certificate's public key must have. */
  readonly keyType: string;
  /** The name the signature blob starts with (§3: not always a plain SSH algorithm name). */
  readonly signatureName: string;
  /** The plain SSH signature algorithm whose scheme and hash verify it. */
  readonly verifyAs: string;
  /** Smallest key allowed, in bits (§3.3: 2048 for x509v3-rsa2048-sha256). */
  readonly minimumBits?: number;
  /** DSA: offered only when the user lists the name itself. */
  readonly legacy: boolean;
}

/**
 * The X.509 host key algorithms, in the order they are offered when X.509 trust is configured.
 * x509v3-ssh-rsa signs with SHA-1 (RFC 6187 §3.1) yet is not legacy here: it is offered only to
 * a server whose certificate chains to a CA the user trusts, after the SHA-256 form, because it
 * is the one RSA form servers older than RFC 6187's SHA-256 algorithm have.
 */
export const X509_ALGORITHMS: readonly X509AlgorithmSpec[] = [
  { name: 'x509v3-ecdsa-sha2-nistp256', keyType: 'ecdsa-sha2-nistp256', signatureName: 'ecdsa-sha2-nistp256', verifyAs: 'ecdsa-sha2-nistp256', legacy: false },
  { name: 'x509v3-ecdsa-sha2-nistp384', keyType: 'ecdsa-sha2-nistp384', signatureName: 'ecdsa-sha2-nistp384', verifyAs: 'ecdsa-sha2-nistp384', legacy: false },
  { name: 'x509v3-ecdsa-sha2-nistp521', keyType: 'ecdsa-sha2-nistp521', signatureName: 'ecdsa-sha2-nistp521', verifyAs: 'ecdsa-sha2-nistp521', legacy: false },
  { name: 'x509v3-rsa2048-sha256', keyType: 'ssh-rsa', signatureName: 'rsa2048-sha256', verifyAs: 'rsa-sha2-256', minimumBits: 2048, legacy: false },
  { name: 'x509v3-ssh-rsa', keyType: 'ssh-rsa', signatureName: 'ssh-rsa', verifyAs: 'ssh-rsa', legacy: true }, // SHA-1, as ssh-rsa: only when listed,
  { name: 'x509v3-ssh-dss', keyType: 'ssh-dss', signatureName: 'ssh-dss', verifyAs: 'ssh-dss', legacy: true },
];

const x509ByName = new Map(X509_ALGORITHMS.map((spec) => [spec.name, spec]));

export function x509AlgorithmSpec(name: string): X509AlgorithmSpec | undefined {
  return x509ByName.get(name);
}

export function isX509Algorithm(name: string): boolean {
  return x509ByName.has(name);
}

/** The X.509 algorithms offered when the user configures X.509 trust: every one but the legacy ones. */
export const DEFAULT_X509_ALGORITHMS: readonly string[] = X509_ALGORITHMS.filter((spec) => !spec.legacy).map((spec) => spec.name);

/** An OpenSSH certificate algorithm: the type its blob starts with, the plain key type in it, and the signature the key makes. */
export interface CertificateAlgorithmSpec {
  blobType: string;
  plainType: string;
  signature: string;
}

/** Certificate algorithm names (PROTOCOL.certkeys), derived from the signature algorithms. */
export const CERTIFICATE_ALGORITHM_SPECS: Readonly<Record<string, CertificateAlgorithmSpec>> = Object.fromEntries(
  SIGNATURE_ALGORITHMS.map((spec) => [spec.certificate, { blobType: keyTypeSpec(spec.keyType)!.certificateType, plainType: spec.keyType, signature: spec.name }]),
);
