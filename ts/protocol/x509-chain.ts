// X.509 host keys (RFC 6187): the x509v3-* public key algorithms, the decoding of their key
// blob (§2.1: the algorithm name, a certificate count, the DER certificates leaf first, then
// an OCSP response count and the responses), and how each algorithm's signature over the
// exchange hash maps onto a plain SSH signature algorithm a crypto provider verifies (§3).
// Everything here is wire format: what the certificates say, and whom to trust, is decided by
// ./x509-trust.ts.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import { parseSignature } from './publickey.js';
import type { X509AlgorithmSpec } from './key-types.js';

// The x509v3-* algorithms themselves are in the one table of ./key-types.ts.
export { DEFAULT_X509_ALGORITHMS, X509_ALGORITHMS, isX509Algorithm, x509AlgorithmSpec, type X509AlgorithmSpec } from './key-types.js';

/**
 * Bounds on what a server may send: real chains are a leaf and one or two intermediates. A
 * certificate or OCSP response larger than this is no one's; the count limits keep a hostile
 * blob from making us parse hundreds of certificates.
 */
export const MAX_CHAIN_CERTIFICATES = 8;
export const MAX_OCSP_RESPONSES = 8;
export const MAX_CERTIFICATE_BYTES = 16 * 1024;
export const MAX_OCSP_RESPONSE_BYTES = 16 * 1024;

export interface X509ChainBlob {
  algorithm: string;
  /** DER certificates, the server's own first, each certifying the one before it (§2.1). */
  certificates: Uint8Array[];
  ocspResponses: Uint8Array[];
}

function malformed(detail: string): SshError {
  return new SshError(Code.HostKeyVerifyFailed, `malformed X.509 host key: ${detail}`, 'peer');
}

/**
 * Decodes an RFC 6187 §2.1 key blob, refusing a name other than the negotiated one, counts or
 * sizes beyond the bounds above, a certificate that is not one DER SEQUENCE, and trailing bytes.
 */
export function parseX509ChainBlob(blob: Uint8Array, negotiated: string): X509ChainBlob {
  try {
    const r = new Reader(blob);
    const algorithm = r.utf8();
    if (algorithm !== negotiated) throw malformed(`the server sent a ${JSON.stringify(algorithm.slice(0, 64))} key for the negotiated ${negotiated}`);
    const certificateCount = r.uint32();
    if (certificateCount === 0) throw malformed('no certificate');
    if (certificateCount > MAX_CHAIN_CERTIFICATES) throw malformed(`${certificateCount} certificates (at most ${MAX_CHAIN_CERTIFICATES} are accepted)`);
    const certificates: Uint8Array[] = [];
    for (let i = 0; i < certificateCount; i++) {
      const der = r.string();
      if (der.length > MAX_CERTIFICATE_BYTES) throw malformed(`certificate ${i + 1} is ${der.length} bytes (at most ${MAX_CERTIFICATE_BYTES})`);
      if (!isOneDerSequence(der)) throw malformed(`certificate ${i + 1} is not a DER certificate`);
      certificates.push(der);
    }
    const ocspCount = r.uint32();
    if (ocspCount > MAX_OCSP_RESPONSES) throw malformed(`${ocspCount} OCSP responses (at most ${MAX_OCSP_RESPONSES} are accepted)`);
    const ocspResponses: Uint8Array[] = [];
    for (let i = 0; i < ocspCount; i++) {
      const response = r.string();
      if (response.length > MAX_OCSP_RESPONSE_BYTES) throw malformed(`OCSP response ${i + 1} is ${response.length} bytes (at most ${MAX_OCSP_RESPONSE_BYTES})`);
      ocspResponses.push(response);
    }
    r.done('X.509 host key');
    return { algorithm, certificates, ocspResponses };
  } catch (error) {
    if (error instanceof SshError && error.message.startsWith('malformed X.509 host key')) throw error;
    throw malformed(error instanceof Error ? error.message : String(error));
  }
}

/** Encodes an RFC 6187 §2.1 key blob (for tests and for a server role). */
export function encodeX509ChainBlob(chain: X509ChainBlob): Uint8Array {
  const w = new Writer(256).string(chain.algorithm).uint32(chain.certificates.length);
  for (const der of chain.certificates) w.string(der);
  w.uint32(chain.ocspResponses.length);
  for (const response of chain.ocspResponses) w.string(response);
  return w.finish();
}

/** True when `der` is exactly one DER SEQUENCE, as a certificate is (checked before OpenSSL sees it). */
function isOneDerSequence(der: Uint8Array): boolean {
  if (der.length < 2 || der[0] !== 0x30) return false;
  const first = der[1]!;
  if (first < 0x80) return 2 + first === der.length;
  const octets = first & 0x7f;
  if (octets < 1 || octets > 3 || der.length < 2 + octets) return false;
  let length = 0;
  for (let i = 0; i < octets; i++) length = length * 256 + der[2 + i]!;
  return 2 + octets + length === der.length;
}

/**
 * The signature over the exchange hash rewritten as the plain SSH signature a provider verifies:
 * the blob must name the algorithm's signature (§3), and for x509v3-rsa2048-sha256 the name
 * rsa2048-sha256 becomes rsa-sha2-256, the same RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8332).
 */
export function x509SignatureAsPlain(spec: X509AlgorithmSpec, signature: Uint8Array): Uint8Array {
  const parsed = parseSignature(signature);
  if (parsed.algorithm !== spec.signatureName) {
    throw new SshError(Code.HostKeyVerifyFailed, `the server signed with ${JSON.stringify(parsed.algorithm.slice(0, 64))} for ${spec.name} (expected ${spec.signatureName})`, 'peer');
  }
  return new Writer(parsed.signature.length + 32).string(spec.verifyAs).string(parsed.signature).finish();
}
