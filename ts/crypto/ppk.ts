// PuTTY private key files (PPK), versions 2 and 3, as PuTTY's manual (appendix C, "PPK file
// format") describes them: a few "Name: value" header lines, the SSH public key blob and the
// private part in base64, and a MAC over all of it.
//
//   version 3: the passphrase goes through Argon2 (id, i or d, parameters in the file) to give
//              an AES-256-CBC key, its IV and an HMAC-SHA-256 key; without encryption the MAC
//              key is empty.
//   version 2: key = SHA-1(0,0,0,0 || passphrase) || SHA-1(0,0,0,1 || passphrase), truncated
//              to 32 bytes, IV zero; MAC = HMAC-SHA-1 keyed with
//              SHA-1("putty-private-key-file-mac-key" || passphrase).
//
// The MAC is checked before a single field of the private part is read, so a wrong passphrase
// or an altered file is an error that says so, never a parse of garbage. Like ./keys.ts, no
// error here quotes the file's text.
//
// Argon2 comes from @noble/hashes (audited, pure JS, no native build): node:crypto has no
// Argon2 before Node 24.7 and revtun supports Node 20. PuTTY's default parameters (8 MiB,
// 5 passes) cost it under a second. ppkKdfRequest says what a file asks for, so that a caller
// can derive in a worker (./kdf-worker.ts) and hand the result to loadPpkKey.

import * as crypto from 'node:crypto';
import { Reader, Writer } from '../protocol/wire.js';
import { deriveSync, type KdfRequest } from './kdf-worker.js';
import { SshError, Code } from '../protocol/errors.js';
import { dsaPrivateKey, ecdsaPrivateKey, ed25519PrivateKey, rsaPrivateKey } from './ssh-key-parts.js';

function ppkError(message: string): SshError {
  // Code: the same as for the other key files (./keys.ts), so a caller sees one code for "the
  // key given cannot be used" whatever its format.
  return new SshError(Code.AuthFailed, message, 'local');
}

/**
 * Bounds for values read from the file: a PPK is a few kilobytes, and Argon2's memory is
 * allocated as asked and its passes take CPU (in a worker thread at logon, ./kdf-worker.ts),
 * so a damaged or hostile file must make us neither allocate much nor work for long. PuTTY's own defaults are 8 MiB,
 * parallelism 1 and the passes puttygen times to about 100 ms of C (a few dozen); the total
 * cost, memory times passes, is capped at 2^21 KiB (2 GiB of memory traffic, a few seconds of
 * JavaScript), far above what puttygen writes.
 */
const MAX_LINES = 512;
const MAX_ARGON2_MEMORY_KIB = 256 * 1024;
const MAX_ARGON2_PASSES = 1000;
const MAX_ARGON2_PARALLELISM = 16;
const MAX_ARGON2_COST_KIB = 2 ** 21;

const ARGON2_VARIANTS = ['Argon2id', 'Argon2i', 'Argon2d'] as const;
/** Argon2's output: the AES-256 key, its IV and the HMAC-SHA-256 key. */
const ARGON2_OUTPUT = 32 + 16 + 32;

/** The parsed text of a PPK file: headers and the two decoded blobs, nothing interpreted yet. */
interface PpkFile {
  version: 2 | 3;
  algorithm: string;
  encryption: string;
  comment: string;
  headers: Map<string, string>;
  publicBlob: Uint8Array;
  privateBlob: Uint8Array;
  mac: string;
}

/** Reads the PPK structure (header lines and base64 blocks) without decrypting anything. */
function parsePpkText(text: string): PpkFile {
  const lines = text.split(/\r?\n/);
  let at = 0;
  const headers = new Map<string, string>();
  const header = (name: string): string => {
    const line = lines[at++];
    const m = line === undefined ? null : /^([A-Za-z0-9-]+): ?(.*)$/.exec(line);
    if (!m || m[1] !== name) throw ppkError(`the PuTTY key file is malformed (a "${name}" line was expected)`);
    headers.set(name, m[2]!);
    return m[2]!;
  };
  const block = (name: string): Uint8Array => {
    const count = header(name);
    if (!/^\d{1,4}$/.test(count) || Number(count) > MAX_LINES) throw ppkError(`the PuTTY key file is malformed (bad ${name})`);
    const body = lines.slice(at, at + Number(count));
    at += Number(count);
    if (body.length !== Number(count) || body.some((l) => !/^[A-Za-z0-9+/=]*$/.test(l))) {
      throw ppkError('the PuTTY key file is malformed (truncated or not base64)');
    }
    return Buffer.from(body.join(''), 'base64');
  };

  const first = /^PuTTY-User-Key-File-(\d+): (\S+)$/.exec((lines[at++] ?? '').replace(/^\uFEFF/, '').trim());
  if (!first) throw ppkError('not a PuTTY key file');
  const version = Number(first[1]);
  if (version !== 2 && version !== 3) {
    throw ppkError(
      version === 1
        ? 'PuTTY key files of version 1 (PuTTY before 0.52) are not read; load and save it again with puttygen'
        : `PuTTY key files of version ${version} are not read (revtun reads versions 2 and 3)`,
    );
  }
  const algorithm = first[2]!;
  const encryption = header('Encryption');
  const comment = header('Comment');
  const publicBlob = block('Public-Lines');
  if (version === 3 && encryption !== 'none') {
    for (const name of ['Key-Derivation', 'Argon2-Memory', 'Argon2-Passes', 'Argon2-Parallelism', 'Argon2-Salt']) header(name);
  }
  const privateBlob = block('Private-Lines');
  const mac = header('Private-MAC').trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(mac)) throw ppkError('the PuTTY key file is malformed (bad Private-MAC)');
  return { version, algorithm, encryption, comment, headers, publicBlob, privateBlob, mac };
}

function argon2Number(file: PpkFile, name: string, max: number): number {
  const value = file.headers.get(name)!;
  if (!/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw ppkError(`the PuTTY key file's ${name} is out of range (1 to ${max})`);
  }
  return Number(value);
}

/** The Argon2 parameters of an encrypted v3 file, checked against the bounds above; null for v2 or a plain file. */
function argon2Request(file: PpkFile): KdfRequest | null {
  if (file.version !== 3 || file.encryption === 'none') return null;
  const kdfName = file.headers.get('Key-Derivation')!;
  const variant = ARGON2_VARIANTS.find((v) => v === kdfName);
  if (!variant) throw ppkError(`the PuTTY key file's key derivation ${kdfName} is not supported (Argon2id, Argon2i or Argon2d)`);
  const saltHex = file.headers.get('Argon2-Salt')!;
  if (!/^(?:[0-9a-fA-F]{2}){1,256}$/.test(saltHex)) throw ppkError("the PuTTY key file's Argon2-Salt is malformed");
  const parallelism = argon2Number(file, 'Argon2-Parallelism', MAX_ARGON2_PARALLELISM);
  const memory = argon2Number(file, 'Argon2-Memory', MAX_ARGON2_MEMORY_KIB);
  if (memory < 8 * parallelism) throw ppkError("the PuTTY key file's Argon2-Memory is below 8 KiB per lane");
  const passes = argon2Number(file, 'Argon2-Passes', MAX_ARGON2_PASSES);
  if (memory * passes > MAX_ARGON2_COST_KIB) {
    throw ppkError(`the PuTTY key file's Argon2 cost (${memory} KiB x ${passes} passes) is beyond the ${MAX_ARGON2_COST_KIB} KiB revtun accepts`);
  }
  return { kind: 'argon2', variant, memoryKib: memory, passes, parallelism, salt: Buffer.from(saltHex, 'hex'), length: ARGON2_OUTPUT };
}

/**
 * What an encrypted PPK v3 file asks of its passphrase (Argon2 and its parameters), or null
 * when it needs no costly derivation (a plain file, or v2's two SHA-1s). Errors as loadPpkKey's.
 */
export function ppkKdfRequest(text: string): KdfRequest | null {
  return argon2Request(parsePpkText(text));
}

/**
 * The AES key, IV and MAC key for a file and passphrase (version-specific derivations above).
 * `argon2Output`, when given, is the v3 derivation already made for this passphrase.
 */
function deriveKeys(file: PpkFile, passphrase: string, argon2Output?: Uint8Array): { cipherKey: Buffer; iv: Buffer; macKey: Buffer } {
  const pass = Buffer.from(passphrase, 'utf8');
  const encrypted = file.encryption !== 'none';
  if (file.version === 2) {
    const sha1 = (...parts: Uint8Array[]): Buffer => {
      const h = crypto.createHash('sha1');
      for (const part of parts) h.update(part);
      return h.digest();
    };
    return {
      cipherKey: Buffer.concat([sha1(Buffer.from([0, 0, 0, 0]), pass), sha1(Buffer.from([0, 0, 0, 1]), pass)]).subarray(0, 32),
      iv: Buffer.alloc(16),
      macKey: sha1(Buffer.from('putty-private-key-file-mac-key'), encrypted ? pass : Buffer.alloc(0)),
    };
  }
  const request = argon2Request(file);
  if (!request) return { cipherKey: Buffer.alloc(0), iv: Buffer.alloc(0), macKey: Buffer.alloc(0) };
  const given = argon2Output !== undefined && argon2Output.length === ARGON2_OUTPUT ? argon2Output : undefined;
  const derived = Buffer.from(given ?? deriveSync(request, pass));
  return { cipherKey: derived.subarray(0, 32), iv: derived.subarray(32, 48), macKey: derived.subarray(48, 80) };
}

/**
 * The SSH public key blob of a PPK file, which PPK keeps in the clear: enough to offer the key
 * before asking for its passphrase. The MAC is checked when the key itself is loaded.
 */
export function ppkPublicBlob(text: string): Uint8Array {
  return parsePpkText(text).publicBlob;
}

/** True when the PPK text says its private part is encrypted (a passphrase is needed). */
export function ppkIsEncrypted(text: string): boolean {
  const m = /^Encryption: *(\S+)/m.exec(text);
  return m !== null && m[1] !== 'none';
}

/**
 * Decrypts and checks a PPK file and returns its private key. A wrong passphrase, a missing
 * one, an altered or truncated file each give an SshError saying which; none quotes the file.
 * `argon2Output`: the derivation ppkKdfRequest asked for, made elsewhere (a worker) with this
 * passphrase; without it the derivation runs here.
 */
export function loadPpkKey(text: string, passphrase: string | undefined, argon2Output?: Uint8Array): crypto.KeyObject {
  const file = parsePpkText(text);
  if (file.encryption !== 'none' && file.encryption !== 'aes256-cbc') {
    throw ppkError(`the PuTTY key file's encryption ${file.encryption} is not supported (aes256-cbc)`);
  }
  const encrypted = file.encryption !== 'none';
  if (encrypted && !passphrase) throw ppkError('the private key is encrypted and no passphrase was given');
  const { cipherKey, iv, macKey } = deriveKeys(file, encrypted ? passphrase! : '', argon2Output);

  let plain = file.privateBlob;
  if (encrypted) {
    if (plain.length === 0 || plain.length % 16 !== 0) throw ppkError('the PuTTY key file is damaged (its private part is not whole AES blocks)');
    const decipher = crypto.createDecipheriv('aes-256-cbc', cipherKey, iv).setAutoPadding(false);
    plain = Buffer.concat([decipher.update(plain), decipher.final()]);
  }
  const macInput = new Writer(256 + file.publicBlob.length + plain.length).string(file.algorithm).string(file.encryption).string(file.comment).string(file.publicBlob).string(plain).finish();
  const expected = crypto
    .createHmac(file.version === 3 ? 'sha256' : 'sha1', macKey)
    .update(macInput)
    .digest();
  const given = Buffer.from(file.mac, 'hex');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    throw ppkError(
      encrypted ? 'wrong passphrase for the PuTTY private key (or the file was altered: its MAC does not match)' : 'the PuTTY key file is damaged or was altered (its MAC does not match)',
    );
  }

  try {
    return keyFromBlobs(file.algorithm, file.publicBlob, plain);
  } catch (error) {
    if (error instanceof SshError && error.code === Code.AuthFailed) throw error;
    // The wire reader's errors speak of peer messages; this is a local file whose MAC was good.
    throw ppkError('the PuTTY key file is malformed (its key fields do not parse)');
  }
}

/** The key from PPK's public blob (SSH wire form) and private blob (type-specific fields). */
function keyFromBlobs(algorithm: string, publicBlob: Uint8Array, privateBlob: Uint8Array): crypto.KeyObject {
  const pub = new Reader(publicBlob);
  const priv = new Reader(privateBlob); // may end in padding: not checked with done()
  const type = pub.utf8();
  if (type !== algorithm) throw ppkError(`the PuTTY key file is malformed (its header says ${algorithm}, its key is ${type})`);
  switch (algorithm) {
    case 'ssh-ed25519':
      return ed25519PrivateKey(pub.string(), priv.string());
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521': {
      const curve = pub.utf8();
      if (`ecdsa-sha2-${curve}` !== algorithm) throw ppkError(`the PuTTY key file is malformed (curve ${curve} in a ${algorithm} key)`);
      return ecdsaPrivateKey(curve, pub.string(), priv.mpint());
    }
    case 'ssh-rsa': {
      const e = pub.mpint();
      const n = pub.mpint();
      const d = priv.mpint();
      const p = priv.mpint();
      const q = priv.mpint();
      return rsaPrivateKey({ n, e, d, p, q, iqmp: priv.mpint() });
    }
    case 'ssh-dss': {
      // A legacy key: used only when ssh-dss is listed in SSHPubKeyAuthSigAlgorithms.
      const [p, q, g, y] = [pub.mpint(), pub.mpint(), pub.mpint(), pub.mpint()];
      return dsaPrivateKey({ p, q, g, y }, priv.mpint());
    }
    default:
      throw ppkError(`PuTTY keys of type ${algorithm} are not supported (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa and ssh-dss are)`);
  }
}
