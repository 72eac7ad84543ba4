// What an X.509 certificate says about itself beyond what node:crypto's X509Certificate reads
// out: its version, its signature algorithm, its key usage bits and its extended key usages
// (RFC 5280 §4.1.2.1, §4.1.1.2, §4.2.1.3, §4.2.1.12). These feed the documented certificate
// properties (sshCertVersion, sshCertSignatureAlgorithm, sshCertUsage, sshCertUsageFlags,
// sshCertExtendedKeyUsage and their sshAcceptServerHostKey* twins).
//
// The DER is walked with node-forge's ASN.1 reader (already used for PKCS#12), not its
// certificate parser: that one models RSA keys only and refuses an EC or Ed25519 certificate.
// Anything unexpected in the structure leaves the field at its empty value: the certificate was
// already accepted by node:crypto, and these are descriptions, not checks.

import type * as Forge from 'node-forge';
import { forge } from './pkcs12.js';

export interface X509Details {
  /** "V1", "V2" or "V3". */
  version: string;
  /** The signature algorithm's name (e.g. sha256WithRSAEncryption), or its OID when it has none here. */
  signatureAlgorithm: string;
  /** The key usage bits as the documentation numbers them (0x80 digital signature … 0x01 encipher only; 0x8000 decipher only). */
  usageFlags: number;
  /** Those bits by name, comma-separated. */
  usage: string;
  /** The extended key usage OIDs, comma-separated. */
  extendedKeyUsage: string;
}

/** The key usage names, first bit first (RFC 5280 §4.2.1.3: digitalSignature is bit 0). */
const KEY_USAGE_NAMES = ['Digital Signature', 'Non-Repudiation', 'Key Encipherment', 'Data Encipherment', 'Key Agreement', 'Certificate Signing', 'CRL Signing', 'Encipher Only', 'Decipher Only'];

/** Names for the signature algorithms forge's table lacks or names unlike OpenSSL. */
const SIGNATURE_NAMES: Record<string, string> = {
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1',
  '1.2.840.10045.4.3.2': 'ecdsa-with-SHA256',
  '1.2.840.10045.4.3.3': 'ecdsa-with-SHA384',
  '1.2.840.10045.4.3.4': 'ecdsa-with-SHA512',
  '1.3.101.112': 'Ed25519',
  '1.3.101.113': 'Ed448',
  '1.2.840.10040.4.3': 'dsaWithSHA1',
  '2.16.840.1.101.3.4.3.2': 'dsa_with_SHA256',
};

const KEY_USAGE_OID = '2.5.29.15';
const EXT_KEY_USAGE_OID = '2.5.29.37';

/**
 * DER as forge's ASN.1 tree, bit strings left as bytes (forge would otherwise try to read a
 * signature or key usage bits as DER). The options object is forge's documented form; its
 * type declarations know only the older boolean.
 */
export function readDer(bytes: string): Forge.asn1.Asn1 {
  const f = forge();
  const options = { strict: true, decodeBitStrings: false } as unknown as boolean;
  return f.asn1.fromDer(f.util.createBuffer(bytes), options);
}

/** The elements of a constructed ASN.1 node (none for a primitive or a missing one). */
function children(node: Forge.asn1.Asn1 | undefined): Forge.asn1.Asn1[] {
  return node && Array.isArray(node.value) ? node.value : [];
}

export const EMPTY_X509_DETAILS: X509Details = { version: '', signatureAlgorithm: '', usageFlags: 0, usage: '', extendedKeyUsage: '' };

/** The details of a DER certificate (`raw` of an X509Certificate). */
export function x509Details(der: Uint8Array): X509Details {
  const f = forge();
  const { Class, Type } = f.asn1;
  let certificate: Forge.asn1.Asn1;
  try {
    certificate = readDer(Buffer.from(der).toString('binary'));
  } catch {
    return EMPTY_X509_DETAILS;
  }
  const [tbs, signatureAlgorithm] = children(certificate);
  const tbsFields = children(tbs);
  const tagged = (tag: number) => tbsFields.find((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === tag);

  // version [0] EXPLICIT INTEGER, absent for v1.
  const versionValue = children(tagged(0))[0]?.value;
  const versionNumber = typeof versionValue === 'string' && versionValue.length === 1 ? versionValue.charCodeAt(0) : 0;
  const version = `V${versionNumber + 1}`;

  const oidOf = (node: Forge.asn1.Asn1 | undefined): string => {
    const first = children(node)[0];
    return first && first.type === Type.OID && typeof first.value === 'string' ? f.asn1.derToOid(f.util.createBuffer(first.value)) : '';
  };
  const signatureOid = oidOf(signatureAlgorithm);
  const signatureName = SIGNATURE_NAMES[signatureOid] ?? (f.pki.oids as Record<string, string>)[signatureOid] ?? signatureOid;

  let usageFlags = 0;
  const usages: string[] = [];
  const extendedKeyUsages: string[] = [];
  for (const { oid, value } of x509Extensions(der)) {
    let inner: Forge.asn1.Asn1;
    try {
      inner = readDer(value);
    } catch {
      continue;
    }
    if (oid === KEY_USAGE_OID && inner.type === Type.BITSTRING && typeof inner.value === 'string') {
      // The first content byte counts the unused bits of the last; the bits follow, bit 0 first.
      const bits = inner.value.slice(1);
      const first = bits.charCodeAt(0) || 0;
      const second = bits.length > 1 ? bits.charCodeAt(1) : 0;
      usageFlags = first | (second & 0x80 ? 0x8000 : 0);
      KEY_USAGE_NAMES.forEach((name, bit) => {
        const byte = bit < 8 ? first : second;
        if (byte & (0x80 >> (bit % 8))) usages.push(name);
      });
    } else if (oid === EXT_KEY_USAGE_OID) {
      for (const purpose of children(inner)) {
        if (purpose.type === Type.OID && typeof purpose.value === 'string') extendedKeyUsages.push(f.asn1.derToOid(f.util.createBuffer(purpose.value)));
      }
    }
  }
  return { version, signatureAlgorithm: signatureName, usageFlags, usage: usages.join(', '), extendedKeyUsage: extendedKeyUsages.join(',') };
}

/** One extension of a certificate: its OID, whether it is critical, and its DER value. */
export interface X509Extension {
  oid: string;
  critical: boolean;
  value: string;
}

/** The extensions of a DER certificate (RFC 5280 §4.1: tbsCertificate's [3] EXPLICIT Extensions). */
export function x509Extensions(der: Uint8Array): X509Extension[] {
  const f = forge();
  const { Class, Type } = f.asn1;
  let certificate: Forge.asn1.Asn1;
  try {
    certificate = readDer(Buffer.from(der).toString('binary'));
  } catch {
    return [];
  }
  const tbs = children(certificate)[0];
  const tagged = children(tbs).find((n) => n.tagClass === Class.CONTEXT_SPECIFIC && n.type === 3);
  return children(children(tagged)[0]).flatMap((extension) => {
    const fields = children(extension);
    const id = fields[0];
    const value = fields[fields.length - 1];
    if (!id || id.type !== Type.OID || typeof id.value !== 'string' || !value || value.type !== Type.OCTETSTRING || typeof value.value !== 'string') return [];
    const flag = fields.length === 3 ? fields[1] : undefined;
    const critical = flag?.type === Type.BOOLEAN && typeof flag.value === 'string' && flag.value.charCodeAt(0) !== 0;
    return [{ oid: f.asn1.derToOid(f.util.createBuffer(id.value)), critical, value: value.value }];
  });
}

/** basicConstraints' pathLenConstraint (RFC 5280 §4.2.1.9), or undefined when there is none. */
export function pathLengthConstraint(extensions: readonly X509Extension[]): number | undefined {
  const basic = extensions.find((e) => e.oid === '2.5.29.19');
  if (!basic) return undefined;
  const f = forge();
  try {
    const sequence = readDer(basic.value);
    const fields = Array.isArray(sequence.value) ? sequence.value : [];
    const length = fields.find((n) => n.type === f.asn1.Type.INTEGER);
    if (!length || typeof length.value !== 'string') return undefined;
    let n = 0;
    for (const c of length.value.slice(0, 4)) n = n * 256 + c.charCodeAt(0);
    return n;
  } catch {
    return 0; // unreadable: as strict as can be
  }
}
