// PKCS#12 / PFX key stores (RFC 7292): the private keys and certificates in a .pfx or .p12,
// opened with the store's password, and the choice of one of them by certificate subject
// (sshCertSubject, whose matching rules are the documented ones: an exact subject first, then
// a subject that contains the value; `*` or empty takes the first).
//
// The container (MAC check, PBES1/PBES2 decryption of the bags) is node-forge's: it is the
// long-standing PKCS#12 reader for Node, synchronous (credentials are loaded before a logon
// starts, in code that does not wait), and reads what OpenSSL 3 writes by default (PBES2 with
// AES-256-CBC, HMAC-SHA-256 MAC), what `openssl pkcs12 -legacy` and Java's keytool write.
// PKI.js was the alternative: it needs WebCrypto, hence promises all the way up, and brings
// three packages for what forge does alone. Forge's own RSA objects are not used: each key
// leaves as PKCS#8 DER and each certificate as DER, for node:crypto to import, so EC keys
// (which forge does not model) work the same way as RSA ones.
//
// Errors are 10022 (a bad sshCertStore / sshCertStorePassword / sshCertSubject) and never
// quote the store or the password.

import * as crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';
import { SshError, Code } from '../protocol/errors.js';

/** node-forge is large; it is loaded the first time a PFX (or a certificate's extensions) is read. */
export function forge(): typeof Forge {
  return createRequire(import.meta.url)('node-forge') as typeof Forge;
}

function storeError(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

/** A PFX is a few kilobytes; this bounds what a damaged or hostile file makes us parse. */
const MAX_PFX_BYTES = 4 * 1024 * 1024;

/** One private key of a store, with its certificate when the store holds it. */
export interface Pkcs12Entry {
  key: crypto.KeyObject;
  certificate?: crypto.X509Certificate;
  /** The certificate's subject in the documented form ("CN=…, O=…, C=…"), or "" without one. */
  subject: string;
}

/** True when `bytes` start like a DER PFX: SEQUENCE { INTEGER 3, ... } (RFC 7292 §4). */
export function looksLikePkcs12(bytes: Uint8Array): boolean {
  if (bytes.length < 8 || bytes[0] !== 0x30) return false;
  // Skip the outer length (short or long form), then expect INTEGER, length 1, value 3.
  const lengthByte = bytes[1]!;
  const at = lengthByte < 0x80 ? 2 : 2 + (lengthByte & 0x7f);
  return bytes[at] === 0x02 && bytes[at + 1] === 0x01 && bytes[at + 2] === 0x03;
}

/**
 * The most key-derivation iterations a store may ask for (OpenSSL writes 2048, Windows 2000,
 * Java 10000). forge runs them as written, synchronously: a store asking for billions would
 * hold the event loop for hours.
 */
const MAX_PBE_ITERATIONS = 10_000_000;

/**
 * Refuses iteration counts above MAX_PBE_ITERATIONS wherever the store shows one before
 * decryption: MacData (digest, salt, iterations), pkcs-12PbeParams (salt, iterations) and
 * PBKDF2-params (salt, iterationCount, ...) all put the count right after an OCTET STRING
 * salt. DER inside OCTET STRINGs (the store's content) is looked into too. Bags inside an
 * encrypted part are seen only by forge, once that part decrypts with the right password.
 */
function checkIterationCounts(f: typeof Forge, node: Forge.asn1.Asn1, depth: number): void {
  if (depth > 24) return;
  const { Class, Type } = f.asn1;
  if (Array.isArray(node.value)) {
    const children = node.value;
    for (let i = 1; i < children.length; i++) {
      const salt = children[i - 1]!;
      const count = children[i]!;
      if (salt.tagClass !== Class.UNIVERSAL || salt.type !== Type.OCTETSTRING) continue;
      if (count.tagClass !== Class.UNIVERSAL || count.type !== Type.INTEGER || typeof count.value !== 'string') continue;
      let value = 0;
      for (const c of count.value.length > 6 ? '\xff'.repeat(7) : count.value) value = value * 256 + c.charCodeAt(0);
      if (value > MAX_PBE_ITERATIONS)
        throw storeError(`the PKCS#12 store asks for ${count.value.length > 6 ? 'more than 2^48' : value} key derivation iterations; at most ${MAX_PBE_ITERATIONS} are accepted`);
    }
    for (const child of children) checkIterationCounts(f, child, depth + 1);
    return;
  }
  if (node.type === Type.OCTETSTRING && typeof node.value === 'string' && node.value.length > 2 && node.value.charCodeAt(0) === 0x30) {
    let inner: Forge.asn1.Asn1;
    try {
      inner = f.asn1.fromDer(f.util.createBuffer(node.value));
    } catch {
      return; // not DER: plain content
    }
    checkIterationCounts(f, inner, depth + 1);
  }
}

/** Opens a PFX with its password and returns every private key in it, in store order. */
export function loadPkcs12(der: Uint8Array, password: string): Pkcs12Entry[] {
  if (der.length > MAX_PFX_BYTES) throw storeError(`the PKCS#12 store is larger than ${MAX_PFX_BYTES} bytes`);
  if (!looksLikePkcs12(der)) throw storeError('not a PKCS#12 (PFX) store');
  const f = forge();
  let p12: Forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = f.asn1.fromDer(f.util.createBuffer(Buffer.from(der).toString('binary')));
    checkIterationCounts(f, asn1, 0);
    p12 = f.pkcs12.pkcs12FromAsn1(asn1, false, password);
  } catch (error) {
    if (error instanceof SshError) throw error;
    // forge's messages speak of the password when the MAC does not verify or, in a store
    // without a MAC, when a bag does not decrypt. They name no secret, but they are not passed
    // on, to keep that a promise of ours.
    if (/password/i.test((error as Error).message)) {
      throw storeError('wrong password for the PKCS#12 store (sshCertStorePassword)');
    }
    throw storeError('the PKCS#12 store is damaged or uses a form revtun cannot read');
  }

  const keys: crypto.KeyObject[] = [];
  const certificates: crypto.X509Certificate[] = [];
  const oids = f.pki.oids;
  for (const contents of p12.safeContents) {
    for (const bag of contents.safeBags) {
      // forge leaves `asn1` in place of `key` / `cert` for what it does not model (EC keys).
      const raw = bag as Forge.pkcs12.Bag & { asn1?: Forge.asn1.Asn1 };
      try {
        if (bag.type === oids.keyBag || bag.type === oids.pkcs8ShroudedKeyBag) {
          const info = bag.key ? f.pki.wrapRsaPrivateKey(f.pki.privateKeyToAsn1(bag.key)) : raw.asn1;
          if (!info) continue;
          const pkcs8 = Buffer.from(f.asn1.toDer(info).getBytes(), 'binary');
          keys.push(crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
        } else if (bag.type === oids.certBag) {
          const asn1 = bag.cert ? f.pki.certificateToAsn1(bag.cert) : raw.asn1;
          if (!asn1) continue;
          certificates.push(new crypto.X509Certificate(Buffer.from(f.asn1.toDer(asn1).getBytes(), 'binary')));
        }
      } catch {
        throw storeError('the PKCS#12 store holds a key or certificate revtun cannot read');
      }
    }
  }
  return keys.map((key) => {
    const certificate = certificates.find((c) => c.checkPrivateKey(key));
    return certificate ? { key, certificate, subject: documentedSubject(certificate) } : { key, subject: '' };
  });
}

/** Field names as the documentation writes them (S for the state, E for the e-mail address). */
const FIELD_NAMES: Record<string, string> = { ST: 'S', emailAddress: 'E' };

/** The RDNs of a certificate's subject, most specific first (CN before O before C). */
function subjectFields(certificate: crypto.X509Certificate): { name: string; value: string }[] {
  // node prints one "NAME=value" a line, in certificate order, with RFC 2253 backslash escapes.
  return certificate.subject
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => {
      const eq = line.indexOf('=');
      const name = line.slice(0, eq);
      return { name: FIELD_NAMES[name] ?? name, value: line.slice(eq + 1).replace(/\\(.)/g, '$1') };
    })
    .reverse();
}

function joinFields(fields: { name: string; value: string }[]): string {
  // A value holding a comma is quoted, as the documentation asks of a subject given to match.
  return fields.map(({ name, value }) => `${name}=${/[,"]/.test(value) ? `"${value.replace(/"/g, '\\"')}"` : value}`).join(', ');
}

/** "CN=deploy, O=Example, C=US": the form sshCertSubject takes and reports. */
export function documentedSubject(certificate: crypto.X509Certificate): string {
  return joinFields(subjectFields(certificate));
}

/** Spaces around the separators and letter case do not make two subjects differ. */
function normalise(subject: string): string {
  return subject
    .replace(/\s*([,=])\s*/g, '$1')
    .trim()
    .toLowerCase();
}

/**
 * The entry sshCertSubject names: `*` or "" takes the first; otherwise an exact subject match
 * (in either RDN order), then the first subject that contains the value. No match is an error
 * listing the subjects the store does hold (subjects are not secret).
 */
export function selectBySubject<Entry extends { certificate?: crypto.X509Certificate; subject: string }>(
  entries: Entry[],
  subject: string,
  store = 'the PKCS#12 store',
  property = 'sshCertSubject',
): Entry {
  if (entries.length === 0) throw storeError(`${store} holds no private key`);
  const wanted = subject.trim();
  if (wanted === '' || wanted === '*') return entries[0]!;
  const target = normalise(wanted);
  const forms = (e: Entry): string[] => (e.certificate ? [normalise(e.subject), normalise(joinFields(subjectFields(e.certificate).reverse()))] : []);
  const found = entries.find((e) => forms(e).includes(target)) ?? entries.find((e) => forms(e).some((f) => f.includes(target)));
  if (found) return found;
  const held = entries.map((e) => (e.subject ? `"${e.subject}"` : '(a key without a certificate)')).join('; ');
  throw storeError(`no certificate in ${store} matches ${property} "${wanted}" (it holds: ${held})`);
}
