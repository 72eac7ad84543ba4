// The two certificate-shaped groups of properties: sshCert* (the client key) and
// sshAcceptServerHostKey* (a server key to accept). Each group is set by a store type, a store,
// its password, a subject and an encoded certificate, and read back as the record of
// ./certificate-info.ts. This file turns the settable part into the selected key and its
// record, as documented:
// - a store holding several certificates (a PFX, a PKCS#7 bundle, a PEM file of several) is
//   searched by the subject, exact match first, then containment, `*` or empty taking the
//   first; the subject then reads back as the full subject of the match, or "" when nothing
//   matched;
// - an encoded certificate or key, with a store, selects the store's entry for that key;
//   without a store, it is the key itself (with no private key);
// - for the client, a SignedSSHCert certificate is what is described (it is what is offered).
//
// Resolution is cached until an input changes (a file store also by its modification time), so
// reading twenty properties opens a PFX or derives a PPK key once. Reading never throws: a
// store that cannot be read describes nothing, and the error is kept for sshLogon to report.

import type { KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { SshError, Code } from '../protocol/errors.js';
import { equalBytes } from '../protocol/wire.js';
import { caSignatureAlgorithm, parseCertificateLine, type OpenSshCertificate } from '../protocol/certificates.js';
import { publicKeyOfPrivateText, sshPublicKeyBlob } from '../crypto/keys.js';
import { selectBySubject } from '../crypto/pkcs12.js';
import { isStoreContent, openCertStore, SshCertStoreType, storeEntries, storeKeyText } from './cert-store.js';
import { isPublicStoreType, readPublicKeyContent, readPublicStore, readPublicStoreFile, type PublicStoreEntry } from './public-key-store.js';
import { describeKey, describeOpenSshCertificate, describeX509, EMPTY_CERTIFICATE_INFO, openSshCertificateFields, type CertificateInfo } from './certificate-info.js';

export interface CertificateSlotInputs {
  storeType: number;
  store: string | Uint8Array;
  password: string;
  subject: string;
  encoded: string | Uint8Array;
  /** The client's SignedSSHCert: a certificate line or a -cert.pub path. */
  signedCert?: string;
}

export interface ResolvedCertificate {
  info: Readonly<CertificateInfo>;
  /** What the subject property reads back. */
  subject: string;
  /** The selected key's SSH public key blob (plain, even for a certificate), or null; logon selects the same key by it. */
  keyBlob: Uint8Array | null;
  /** Why nothing is described, when something was set but cannot be used. */
  error: SshError | null;
}

/** One entry of a store as this file sees it: public parts, and whether its private key is open. */
interface SlotEntry extends PublicStoreEntry {
  privateKey: KeyObject | null;
}

function badArgument(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

function isSet(value: string | Uint8Array): boolean {
  return typeof value === 'string' ? value.trim() !== '' : value.length > 0;
}

/** Errors a passphrase (or a PFX password) would mend: the public half is then still described. */
const NEEDS_PASSPHRASE = /passphrase|password/;

const publicEntries = (entries: PublicStoreEntry[]): SlotEntry[] => entries.map((e) => ({ ...e, privateKey: null }));

/**
 * The entries of the store the inputs name, private or public. For a server key (`publicFirst`)
 * the automatic type reads public key files and lines first, without the private key file's
 * permission check: a .pub file is world-readable, as it should be.
 */
function readEntries(inputs: CertificateSlotInputs, publicFirst: boolean): SlotEntry[] {
  if (isPublicStoreType(inputs.storeType)) return publicEntries(readPublicStore(inputs.storeType, inputs.store));
  if (publicFirst && inputs.storeType === SshCertStoreType.Auto) {
    try {
      const { store } = inputs;
      const content = isStoreContent(store) ? store : readPublicStoreFile(typeof store === 'string' ? store : Buffer.from(store).toString('utf8'));
      return publicEntries(readPublicKeyContent(content, 'the store'));
    } catch {
      // Not a public key: a key store with a private key (a PFX, a key file), read as for the client.
    }
  }
  const opened = openCertStore(inputs.storeType, inputs.store);
  try {
    return storeEntries(opened, inputs.password, inputs.subject).map((e) => {
      const blob = sshPublicKeyBlob(e.key).blob;
      return { sshBlob: blob, publicKey: null, privateKey: e.key, subject: e.subject, ...(e.certificate ? { certificate: e.certificate } : {}) };
    });
  } catch (error) {
    if (!(error instanceof SshError) || !NEEDS_PASSPHRASE.test(error.message)) throw error;
    // Locked: an OpenSSH or PuTTY key still shows its public half.
    const text = storeKeyText(opened);
    const half = text === undefined ? null : publicKeyOfPrivateText(text);
    if (!half) throw error;
    return publicEntries(readPublicKeyContent(half.blob, 'the key'));
  }
}

/** Does a store entry hold the key (or the very certificate) `wanted` names? */
function sameKey(entry: PublicStoreEntry, wanted: PublicStoreEntry): boolean {
  if (entry.certificate && wanted.certificate) return entry.certificate.raw.equals(wanted.certificate.raw);
  return entry.sshBlob !== null && wanted.sshBlob !== null && equalBytes(entry.sshBlob, wanted.sshBlob);
}

/** The SignedSSHCert value (the line, or the file it names: a regular file, bounded), decoded. */
function signedCertificate(value: string): { blob: Uint8Array; certificate: OpenSshCertificate } {
  const trimmed = value.trim();
  if (/^\S+-cert-v01@openssh\.com\s/.test(trimmed)) return parseCertificateLine(trimmed);
  return parseCertificateLine(Buffer.from(readPublicStoreFile(trimmed)).toString('utf8'));
}

function describeCertificate({ blob, certificate }: { blob: Uint8Array; certificate: OpenSshCertificate }, privateKeyAvailable: boolean): CertificateInfo {
  return describeOpenSshCertificate(blob, certificate.publicKeyBlob, openSshCertificateFields(certificate, caSignatureAlgorithm(certificate)), privateKeyAvailable);
}

function describeEntry(entry: SlotEntry, signedCert: string | undefined): CertificateInfo {
  const available = entry.privateKey !== null;
  if (signedCert) return describeCertificate(signedCertificate(signedCert), available);
  if (entry.certificate) return describeX509(entry.certificate, available);
  if (entry.openssh) return describeCertificate(entry.openssh, available);
  if (entry.privateKey) return describeKey(entry.privateKey, true);
  if (entry.publicKey) return describeKey(entry.publicKey, false);
  return entry.sshBlob ? describeKey(entry.sshBlob, false) : { ...EMPTY_CERTIFICATE_INFO };
}

/**
 * Selects and describes the key the inputs name. `names` says how errors name the properties
 * (e.g. "sshCertEncoded", "sshCertSubject").
 */
export function resolveCertificate(inputs: CertificateSlotInputs, names: SlotNames): ResolvedCertificate {
  const storeSet = isSet(inputs.store);
  const encodedSet = isSet(inputs.encoded);
  const nothing = (subject: string, error: SshError | null = null): ResolvedCertificate => ({ info: EMPTY_CERTIFICATE_INFO, subject, keyBlob: null, error });
  if (!storeSet && !encodedSet && !inputs.signedCert) return nothing(inputs.subject);
  try {
    if (!storeSet && !encodedSet) {
      // A SignedSSHCert alone: its key is elsewhere (an identity, the agent); described without one.
      const signed = signedCertificate(inputs.signedCert!);
      const info = describeCertificate(signed, false);
      return { info, subject: info.subject, keyBlob: signed.certificate.publicKeyBlob, error: null };
    }
    const entries: SlotEntry[] = storeSet ? readEntries(inputs, names.publicFirst) : publicEntries(readPublicKeyContent(inputs.encoded, names.encoded));
    if (entries.length === 0) return nothing('', badArgument(`${names.store} holds no key`));
    let chosen: SlotEntry;
    if (storeSet && encodedSet) {
      const wanted = readPublicKeyContent(inputs.encoded, names.encoded)[0]!;
      const found = entries.find((e) => sameKey(e, wanted));
      if (!found) return nothing('', badArgument(`${names.encoded} names a key that is not in ${names.store}`));
      chosen = found;
    } else if (entries.some((e) => e.certificate)) {
      chosen = selectBySubject(entries, inputs.subject, `the ${names.store} store`, names.subject);
    } else {
      chosen = entries[0]!;
    }
    const info = describeEntry(chosen, inputs.signedCert);
    const subject = chosen.certificate ? chosen.subject : info.subject !== '' ? info.subject : inputs.subject;
    return { info, subject, keyBlob: chosen.sshBlob, error: null };
  } catch (error) {
    const failure = error instanceof SshError ? error : badArgument(`${names.store}: ${(error as Error).message}`);
    return nothing('', failure);
  }
}

/** A file store's modification stamp, so that a replaced key file is read again. */
function fileStamp(store: string | Uint8Array): string {
  if (typeof store !== 'string' || store.length > 4096 || /[\n\0]/.test(store)) return '';
  try {
    const stat = statSync(store, { throwIfNoEntry: false });
    return stat ? `${stat.mtimeMs}:${stat.size}:${stat.ino}` : '';
  } catch {
    return ''; // not a usable path (too long a name, a directory it cannot enter): content, or a file to fail at logon
  }
}

function sameInput(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return equalBytes(a, b);
  return a === b;
}

/** How errors name a group's properties; `publicFirst` for the server key group (see readEntries). */
export interface SlotNames {
  encoded: string;
  subject: string;
  store: string;
  publicFirst: boolean;
}

/** One group's cache: the last inputs and what they resolved to. */
export class CertificateSlot {
  private last: { inputs: unknown[]; resolved: ResolvedCertificate } | null = null;

  constructor(private readonly names: SlotNames) {}

  resolve(inputs: CertificateSlotInputs): ResolvedCertificate {
    // Bytes are copied into the key: a buffer the application changes afterwards is a new input.
    const copy = (value: string | Uint8Array) => (typeof value === 'string' ? value : new Uint8Array(value));
    const key = [inputs.storeType, copy(inputs.store), inputs.password, inputs.subject, copy(inputs.encoded), inputs.signedCert ?? '', fileStamp(inputs.store), fileStamp(inputs.signedCert ?? '')];
    if (this.last && this.last.inputs.length === key.length && this.last.inputs.every((v, i) => sameInput(v, key[i]))) return this.last.resolved;
    const resolved = resolveCertificate(inputs, this.names);
    this.last = { inputs: key, resolved };
    return resolved;
  }

  /** Forgets the cached key (logoff, reset): nothing of a store outlives the settings that named it. */
  clear(): void {
    this.last = null;
  }
}
