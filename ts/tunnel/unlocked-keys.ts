// The encrypted client keys one logon has decrypted. A key whose passphrase is costly by
// design (OpenSSH's bcrypt-pbkdf, PuTTY v3's Argon2: 0.3-2 s) is decrypted once per logon,
// with the derivation in a worker thread (../crypto/kdf-worker.ts), and every connection of
// that logon (the first, each reconnect, each jump host) signs with the same key instead of
// deriving it again on the event loop. The tunnel empties this at logoff, reset, a failed
// logon and when it gives up reconnecting, so no decrypted key outlives its logon; an unlock
// under way is abandoned then (its worker stopped).
//
// Keys are found again by where they come from (the file, or a hash of the content given),
// their store type and subject, and a hash of the passphrase text (or "asked", for a key whose
// passphrase came from a function: it is not asked again within the logon). The hashes keep
// passphrases out of the map's keys; nothing here is logged but file names and KDF parameters.

import { createHash, type KeyObject } from 'node:crypto';
import { SshError, Code } from '../protocol/errors.js';
import { keyKdfRequest, loadPrivateKey, privateKeyIsEncrypted } from '../crypto/keys.js';
import { deriveOffThread, describeKdf } from '../crypto/kdf-worker.js';
import { openCertStore, SshCertStoreType, storeKeyText, type OpenedStore, type SshCertStoreTypeValue } from './cert-store.js';
import type { SshIdentity } from './identities.js';
import type { JumpHost } from './jump.js';

/** The passphrase slot of a key whose passphrase a function gave. */
const ASKED = Symbol('asked');

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('base64');

/** Where a key comes from, as this logon's keys are found again. */
export function keySource(store: OpenedStore, storeType: number, subject: string, selectKey?: Uint8Array): string {
  const chosen = selectKey ? `\0key:${sha256(selectKey)}` : '';
  return `${storeType}\0${subject}${chosen}\0${store.path !== undefined ? `file:${store.path}` : `content:${sha256(store.content)}`}`;
}

/** The key files and store of a set of credentials, as authOptionsFor lists them. */
export interface KeySet {
  certStore: string | Uint8Array;
  certStoreType: SshCertStoreTypeValue;
  certStorePassword: string;
  certSubject: string;
  /** sshCertEncoded's choice of the store's key, as authOptionsFor passes it. */
  certKey?: Uint8Array | undefined;
  identities: readonly SshIdentity[];
}

/** Every key the tunnel (`own`) and its jump hosts may decrypt with a passphrase given as text. */
export function keySources(own: KeySet, hops: readonly JumpHost[]): SshIdentity[] {
  const of = (set: KeySet): SshIdentity[] => [
    ...(set.certStore.length > 0
      ? [{ key: set.certStore, storeType: set.certStoreType, passphrase: set.certStorePassword, subject: set.certSubject, ...(set.certKey ? { selectKey: set.certKey } : {}) }]
      : []),
    ...set.identities,
  ];
  return [
    ...of(own),
    ...hops.flatMap((hop) =>
      of({ certStore: hop.privateKey ?? '', certStoreType: SshCertStoreType.Auto, certStorePassword: hop.privateKeyPassphrase ?? '', certSubject: '', identities: hop.identities ?? [] }),
    ),
  ];
}

export class UnlockedKeys {
  private keys = new Map<string, KeyObject>();
  /** The unlock under way (sshLogon awaiting it), abandoned by clear(). */
  private pending: AbortController | null = null;
  /** Counts clear()s: a decryption that finishes after one belongs to no logon and is dropped. */
  private generation = 0;

  constructor(private readonly log: (level: 1 | 2 | 3, message: string) => void) {}

  private slot(source: string, passphrase: string | typeof ASKED): string {
    return `${source}\0${passphrase === ASKED ? 'asked' : `text:${sha256(passphrase)}`}`;
  }

  /** The key decrypted this logon from `source` with `passphrase` (text, or the one a function gave). */
  get(source: string, passphrase: string | typeof ASKED): KeyObject | undefined {
    return this.keys.get(this.slot(source, passphrase));
  }

  /** The key decrypted this logon from `source` with a passphrase a function gave. */
  getAsked(source: string): KeyObject | undefined {
    return this.get(source, ASKED);
  }

  /** Which logon this is: what rememberAsked takes, so that a late answer is not kept past a logoff. */
  get epoch(): number {
    return this.generation;
  }

  /** Keeps a key a function's passphrase opened, for the rest of the logon that began at `epoch`. */
  rememberAsked(source: string, key: KeyObject, epoch: number): void {
    if (epoch === this.generation) this.keys.set(this.slot(source, ASKED), key);
  }

  /**
   * Decrypts key text with `passphrase`, the costly derivation in a worker, and keeps the key
   * for this logon (under the passphrase, or as asked). Errors are loadPrivateKey's.
   */
  async open(source: string, text: string, passphrase: string, name: string, asked: boolean, signal?: AbortSignal, epoch = this.generation): Promise<KeyObject> {
    const request = keyKdfRequest(text);
    const generation = epoch;
    let derived: Uint8Array | undefined;
    if (request) {
      this.log(2, `${name}: deriving the key from its passphrase, ${describeKdf(request)}, in a worker thread`);
      const pass = Buffer.from(passphrase, 'utf8');
      try {
        derived = await deriveOffThread(request, pass, signal);
        this.log(3, `${name}: key derived`);
      } finally {
        pass.fill(0);
      }
    }
    try {
      const key = loadPrivateKey(text, passphrase, undefined, derived);
      if (generation === this.generation) this.keys.set(this.slot(source, asked ? ASKED : passphrase), key);
      return key;
    } finally {
      derived?.fill(0);
    }
  }

  /**
   * Decrypts, before the logon connects, every encrypted key among `identities` whose
   * passphrase is given as text. Replaces what an earlier logon left. A key that cannot be
   * read is left for the logon's own checks to report; a wrong passphrase fails here, naming
   * the file. Rejects with AlreadyConnecting while another unlock is under way, and with
   * BadState when clear() abandons this one.
   */
  async unlock(identities: readonly SshIdentity[]): Promise<void> {
    if (this.pending) throw new SshError(Code.AlreadyConnecting, 'already connecting', 'local');
    this.clear();
    const abort = new AbortController();
    this.pending = abort;
    try {
      for (const [index, identity] of identities.entries()) {
        const passphrase = identity.passphrase;
        if (typeof passphrase !== 'string' || passphrase === '') continue;
        let store: OpenedStore;
        let text: string | undefined;
        try {
          store = openCertStore(identity.storeType ?? SshCertStoreType.Auto, identity.key);
          text = storeKeyText(store);
          if (text === undefined || !privateKeyIsEncrypted(text)) continue;
        } catch {
          continue; // the logon's own checks report it, with their words
        }
        const name = identity.name ?? (store.path !== undefined ? `key file ${store.path}` : `key ${index + 1}`);
        const source = keySource(store, identity.storeType ?? SshCertStoreType.Auto, identity.subject ?? '', identity.selectKey);
        if (this.get(source, passphrase)) continue;
        try {
          await this.open(source, text, passphrase, name, false, abort.signal);
        } catch (error) {
          if (abort.signal.aborted || !(error instanceof SshError) || store.path === undefined) throw error;
          throw new SshError(error.code, `key file ${store.path}: ${error.message}`, error.origin, { cause: error });
        }
      }
    } catch (error) {
      if (this.pending === abort) this.keys.clear();
      throw error;
    } finally {
      if (this.pending === abort) this.pending = null;
    }
  }

  /** Forgets every decrypted key, and abandons an unlock under way. */
  clear(): void {
    this.generation++;
    this.pending?.abort();
    this.pending = null;
    this.keys.clear();
  }
}
