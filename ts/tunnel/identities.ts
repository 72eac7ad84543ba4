// The client keys publickey authentication may use: the documented sshCert* key first, then
// the `identities` extension, each turned into the protocol's PublicKeyIdentity. Stores of
// every sshCertStoreType are opened by ./cert-store.ts. Files are read and their format checked
// at sshLogon, before connecting, so that a wrong path fails fast as it always has; a key with
// a passphrase given as text is decrypted then too. A key whose passphrase comes from a
// function stays encrypted until the server has accepted its public half: the function is
// asked for that key alone, as ssh asks. No message here
// quotes key text; a key is named by its file, or by its number and fingerprint.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { SshError, Code } from '../protocol/errors.js';
import { equalBytes } from '../protocol/wire.js';
import { isPromise } from '../protocol/auth-answer.js';
import { CERT_TYPE_USER, parseCertificateLine, type OpenSshCertificate } from '../protocol/certificates.js';
import { loadedIdentity, type LoadedSigner, type PublicKeyIdentity } from '../protocol/auth.js';
import { createSigner, parsePublicKeyLine, privateKeyIsEncrypted, publicKeyOfPrivateText } from '../crypto/keys.js';
import { looksLikeKeyText, readRegularFile } from './keyfile.js';
import { keyFromStore, openCertStore, SshCertStoreType, storeKeyText, type SshCertStoreTypeValue } from './cert-store.js';
import { keySource, type UnlockedKeys } from './unlocked-keys.js';
import { keyKdfRequest } from '../crypto/keys.js';

// Every documented SSHCertStoreType, and how each is read or why it is refused: ./cert-store.ts.
export { SshCertStoreType, type SshCertStoreTypeValue };

/**
 * A client key for publickey authentication (a revtun extension): see
 * SSHReverseTunnel.identities. Keys are offered in order within one connection.
 */
export interface SshIdentity {
  /** A key store file (OpenSSH, PEM, PPK, PFX, JWK, ...) or its content (text, base64 or bytes). */
  key: string | Uint8Array;
  /** How `key` is read: any documented SshCertStoreType (default Auto: the content tells the format, and content from a path). */
  storeType?: SshCertStoreTypeValue;
  /** Which key of a store that holds several (a PFX's certificate subject, a JWK Set's kid), as sshCertSubject. */
  subject?: string;
  /**
   * The passphrase of an encrypted key, or a PFX's password. Text is checked at sshLogon, before connecting. A
   * function is asked only when this key is about to sign (after the server accepted its
   * public half), at every logon that gets that far; `attempt` counts from 1, and an answer
   * that does not open the key is asked for again up to PASSPHRASE_ATTEMPTS times, as ssh
   * asks. Return undefined or '' to pass over the key (or a Promise of the answer: a prompt).
   * Once a passphrase has opened the key, the rest of the logon (reconnects) uses the key
   * without asking again.
   */
  passphrase?: string | ((attempt: number) => string | undefined | Promise<string | undefined>);
  /**
   * The public half as an OpenSSH line ("ssh-ed25519 AAAA… comment"), for an encrypted PEM key
   * whose public half cannot be read without the passphrase. By default `<key file>.pub` is
   * read when it exists. Without either, such a key is decrypted at its turn and signs at once.
   */
  publicKey?: string;
  /** How logs and errors name the key (default: its file name, or "key N"). Never put key text here. */
  name?: string;
  /**
   * An OpenSSH user certificate for this key ("ssh-ed25519-cert-v01@openssh.com AAAA…", or
   * the path of a -cert.pub file), offered before the plain key, as ssh offers KEY-cert.pub.
   */
  certificate?: string;
  /** @internal The store's key with this SSH public key blob (sshCertEncoded's choice), rather than by subject. */
  selectKey?: Uint8Array;
}

/** How many times a passphrase function is asked for one key: ssh's NumberOfPasswordPrompts default. */
export const PASSPHRASE_ATTEMPTS = 3;

/** "SHA256:…" as ssh prints a key's fingerprint. */
function fingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function withFile(error: unknown, path: string | undefined): unknown {
  if (!(error instanceof SshError) || path === undefined) return error;
  return new SshError(error.code, `key file ${path}: ${error.message}`, error.origin, { cause: error });
}

/** Checks the shape of an identity given by the application (10022 for a bad one). */
export function checkIdentity(identity: SshIdentity): void {
  const bad = (what: string) => new SshError(Code.BadArgument, `identity: ${what}`, 'local');
  if (typeof identity !== 'object' || identity === null) throw bad('expected an object with a key');
  if (!(typeof identity.key === 'string' || identity.key instanceof Uint8Array) || identity.key.length === 0) {
    throw bad('key must be a key file path or the key store content');
  }
  const { passphrase, storeType, publicKey, name, subject } = identity;
  if (passphrase !== undefined && typeof passphrase !== 'string' && typeof passphrase !== 'function') throw bad('passphrase must be a string or a function');
  if (storeType !== undefined && !(Object.values(SshCertStoreType) as number[]).includes(storeType)) {
    throw bad(`storeType ${String(storeType)} is not a documented SshCertStoreType`);
  }
  if (subject !== undefined && typeof subject !== 'string') throw bad('subject must be a string');
  if (publicKey !== undefined && typeof publicKey !== 'string') throw bad('publicKey must be an OpenSSH public key line');
  if (name !== undefined && (typeof name !== 'string' || looksLikeKeyText(name))) throw bad('name must be a short label, not key text');
  if (identity.certificate !== undefined && (typeof identity.certificate !== 'string' || identity.certificate === '')) throw bad('certificate must be a certificate line or a file path');
}

/** A certificate line, or the text of the file it names. */
function certificateText(certificate: string): { text: string; source: string } {
  const trimmed = certificate.trim();
  if (/^[a-z0-9-]+-cert-v01@openssh\.com\s/.test(trimmed)) return { text: trimmed, source: 'the certificate' };
  try {
    return { text: readRegularFile(trimmed).toString('utf8').trim(), source: trimmed };
  } catch (error) {
    throw new SshError(Code.BadArgument, `certificate file ${trimmed}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'local');
  }
}

/**
 * The identity of `key` with its user certificate (PROTOCOL.certkeys): offered as the
 * certificate blob, and signed by the key. Refused (10022) when the text is no user
 * certificate, or certifies another key than `key`'s.
 */
export function certificateIdentity(key: PublicKeyIdentity, certificate: string): PublicKeyIdentity {
  const { text, source } = certificateText(certificate);
  const bad = (what: string) => new SshError(Code.BadArgument, `${source}: ${what}`, 'local');
  let blob: Uint8Array;
  let cert: OpenSshCertificate;
  try {
    ({ blob, certificate: cert } = parseCertificateLine(text));
  } catch (error) {
    throw bad(`not an OpenSSH certificate (${(error as Error).message})`);
  }
  if (cert.type !== CERT_TYPE_USER) throw bad('a host certificate, not a user certificate');
  if (key.publicKey && !equalBytes(key.publicKey.blob, cert.publicKeyBlob)) throw bad(`certifies another key than ${key.name}`);
  const wrap = (loaded: LoadedSigner): LoadedSigner => {
    if (!loaded.ok) return loaded;
    if (!equalBytes(loaded.signer.publicKey, cert.publicKeyBlob)) return { ok: false, reason: 'the certificate certifies another key' };
    const inner = loaded.signer;
    return { ok: true, signer: { publicKey: blob, keyType: cert.blobType, sign: (algorithm, data) => inner.sign(algorithm, data) } };
  };
  return {
    name: `${key.name} certificate "${cert.keyId}" (serial ${cert.serial})`,
    publicKey: { blob, keyType: cert.blobType },
    load: () => {
      const loaded = key.load();
      return isPromise(loaded) ? loaded.then(wrap) : wrap(loaded);
    },
  };
}

/**
 * Turns one identity into what the protocol offers. `position` (1-based) names a key given as
 * text. Throws SshError for a file that cannot be read, a key that is not one, or a
 * passphrase given as text that does not open the key.
 */
export function publicKeyIdentity(identity: SshIdentity, position: number, unlocked?: UnlockedKeys): PublicKeyIdentity {
  checkIdentity(identity);
  // Content is never taken for a file name, whatever storeType says (cert-store.ts): the
  // error for a file that cannot be read names the file, and would print the key.
  const storeType = identity.storeType ?? SshCertStoreType.Auto;
  const store = openCertStore(storeType, identity.key);
  const path = store.path;
  const label = identity.name ?? path ?? `key ${position}`;
  const text = storeKeyText(store);
  const subject = identity.subject ?? '';
  const source = keySource(store, storeType, subject, identity.selectKey);
  // A key this logon has decrypted already (./unlocked-keys.ts) is not decrypted again.
  const signerWith = (password: string | undefined) => createSigner(unlocked?.get(source, password ?? '') ?? keyFromStore(store, password ?? '', subject, identity.selectKey));
  const loaded = (signer: ReturnType<typeof createSigner>) => loadedIdentity(`${label} ${signer.keyType} ${fingerprint(signer.publicKey)}`, signer);
  const passphrase = identity.passphrase;
  try {
    // Key text tells whether it is encrypted; a PFX, JWK, XML or DER store only by trying.
    const encrypted = text === undefined ? undefined : privateKeyIsEncrypted(text);
    if (typeof passphrase !== 'function' || encrypted === false) {
      // Nothing to wait for: load it now, and a wrong passphrase fails before connecting.
      return loaded(signerWith(typeof passphrase === 'string' && passphrase !== '' ? passphrase : undefined));
    }
    if (encrypted === undefined) {
      try {
        return loaded(signerWith(undefined));
      } catch (error) {
        if (!(error instanceof SshError) || !NEEDS_PASSPHRASE.test(error.message)) throw error;
      }
    }
    const known = (text === undefined ? null : publicKeyOfPrivateText(text)) ?? publicHalfBeside(identity, path);
    // Decrypting with an answer: in a worker when the key's KDF is costly, and kept for the logon.
    const open = async (asked: string, epoch: number) => {
      if (!unlocked) return signerWith(asked);
      if (text !== undefined && keyKdfRequest(text)) return createSigner(await unlocked.open(source, text, asked, label, true, undefined, epoch));
      const key = keyFromStore(store, asked, subject, identity.selectKey);
      unlocked.rememberAsked(source, key, epoch);
      return createSigner(key);
    };
    const load = async (): Promise<LoadedSigner> => {
      const opened = unlocked?.getAsked(source);
      if (opened) return { ok: true, signer: createSigner(opened) };
      const epoch = unlocked?.epoch ?? 0;
      let reason = 'no passphrase given';
      for (let attempt = 1; attempt <= PASSPHRASE_ATTEMPTS; attempt++) {
        let asked: string | undefined;
        try {
          asked = await passphrase(attempt);
        } catch {
          // The application's own error, whatever it holds, stays out of logs and the DISCONNECT.
          return { ok: false, reason: 'the passphrase function threw an error' };
        }
        if (typeof asked !== 'string' || asked === '') break;
        try {
          return { ok: true, signer: await open(asked, epoch) };
        } catch (error) {
          if (!(error instanceof SshError)) throw error;
          reason = error.message;
          if (!NEEDS_PASSPHRASE.test(reason)) break; // a damaged key: asking again will not help
        }
      }
      return { ok: false, reason };
    };
    return { name: known ? `${label} ${known.keyType} ${fingerprint(known.blob)}` : label, publicKey: known, load };
  } catch (error) {
    throw withFile(error, path);
  }
}

/** A key's errors that another passphrase (or a PFX's password) may mend. */
const NEEDS_PASSPHRASE = /passphrase|password/;

/** The public half from `publicKey`, or from the .pub file beside the key file. */
function publicHalfBeside(identity: SshIdentity, path: string | undefined): { blob: Uint8Array; keyType: string } | null {
  if (identity.publicKey !== undefined) return parsePublicKeyLine(identity.publicKey);
  if (path === undefined || !existsSync(`${path}.pub`)) return null;
  try {
    return parsePublicKeyLine(readRegularFile(`${path}.pub`).toString('utf8'));
  } catch {
    return null; // as ssh: an unreadable .pub only means the key is decrypted at its turn
  }
}
