// PuTTY .ppk files made by Debian's puttygen: versions 2 and 3, plain and encrypted (v2's
// SHA-1 key derivation, v3's Argon2id/i/d), every key type revtun signs with. Each loaded key
// must have exactly the public key puttygen -L prints; a wrong passphrase, a missing one, a
// file altered anywhere the MAC covers, or a hostile Argon2 parameter is a clear error that
// quotes no line of the file.

import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey, privateKeyIsEncrypted, sshPublicKeyBlob } from '../../../ts/crypto/keys.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { puttyKeyFile, puttygenKey, type PuttygenOptions } from '../../helpers/putty.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-ppk-'));
const PASSPHRASE = 'correct horse';
/** Small Argon2 costs keep the many v3 files quick; one case below keeps puttygen's defaults. */
const CHEAP_ARGON2 = { memory: 256, passes: 1 };

function publicLineOf(text: string, passphrase?: string): string {
  const { blob, keyType } = sshPublicKeyBlob(loadPrivateKey(text, passphrase));
  return `${keyType} ${Buffer.from(blob).toString('base64')}`;
}

/** The error loading `text` gives, checked to quote none of the file's lines. */
function refusal(text: string, passphrase?: string): SshError {
  let caught: unknown;
  try {
    loadPrivateKey(text, passphrase);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  const error = caught as SshError;
  for (const line of text.split('\n').filter((l) => l.trim().length >= 8)) expect(`${error.message}\n${error.stack}`).not.toContain(line.trim());
  if (passphrase) expect(error.message).not.toContain(passphrase);
  return error;
}

const KEY_TYPES: [string, Pick<PuttygenOptions, 'type' | 'bits'>][] = [
  ['ed25519', { type: 'ed25519' }],
  ['ecdsa nistp256', { type: 'ecdsa', bits: 256 }],
  ['ecdsa nistp384', { type: 'ecdsa', bits: 384 }],
  ['ecdsa nistp521', { type: 'ecdsa', bits: 521 }],
  ['rsa 2048', { type: 'rsa', bits: 2048 }],
  // Legacy: loaded, and used only when ssh-dss is listed in SSHPubKeyAuthSigAlgorithms.
  ['dsa 1024', { type: 'dsa', bits: 1024 }],
];

describe.each([2, 3] as const)('PPK version %i from puttygen', (version) => {
  it.each(KEY_TYPES)('%s, unencrypted: the key puttygen made', (name, type) => {
    const ppk = puttygenKey(dir, `v${version}-${name.replace(/ /g, '-')}.ppk`, { ...type, version });
    expect(privateKeyIsEncrypted(ppk.text)).toBe(false);
    expect(publicLineOf(ppk.text)).toBe(ppk.publicLine.split(' ').slice(0, 2).join(' '));
  });

  it.each(KEY_TYPES)('%s, encrypted: the key with the passphrase, a clear refusal without it or with another', (name, type) => {
    const ppk = puttygenKey(dir, `v${version}-${name.replace(/ /g, '-')}-enc.ppk`, {
      ...type,
      version,
      passphrase: PASSPHRASE,
      ...(version === 3 ? { ppkParams: CHEAP_ARGON2 } : {}),
    });
    expect(privateKeyIsEncrypted(ppk.text)).toBe(true);
    expect(publicLineOf(ppk.text, PASSPHRASE)).toBe(ppk.publicLine.split(' ').slice(0, 2).join(' '));
    expect(refusal(ppk.text, 'not the passphrase').message).toMatch(/^wrong passphrase for the PuTTY private key/);
    expect(refusal(ppk.text).message).toBe('the private key is encrypted and no passphrase was given');
  });
});

describe('PPK version 3 key derivations', () => {
  it.each(['argon2id', 'argon2i', 'argon2d'])('%s', (kdf) => {
    const ppk = puttygenKey(dir, `kdf-${kdf}.ppk`, { type: 'ed25519', passphrase: PASSPHRASE, ppkParams: { kdf, ...CHEAP_ARGON2 } });
    expect(ppk.text).toMatch(new RegExp(`^Key-Derivation: ${kdf}$`, 'im'));
    expect(publicLineOf(ppk.text, PASSPHRASE)).toBe(ppk.publicLine.split(' ').slice(0, 2).join(' '));
  });

  it("puttygen's default Argon2id parameters", () => {
    const ppk = puttygenKey(dir, 'kdf-default.ppk', { type: 'ecdsa', bits: 256, passphrase: PASSPHRASE });
    expect(ppk.text).toMatch(/^Argon2-Memory: 8192$/m);
    expect(publicLineOf(ppk.text, PASSPHRASE)).toBe(ppk.publicLine.split(' ').slice(0, 2).join(' '));
  });

  it('parallelism above 1', () => {
    const ppk = puttygenKey(dir, 'kdf-parallel.ppk', { type: 'ed25519', passphrase: PASSPHRASE, ppkParams: { memory: 256, passes: 1, parallelism: 4 } });
    expect(ppk.text).toMatch(/^Argon2-Parallelism: 4$/m);
    expect(publicLineOf(ppk.text, PASSPHRASE)).toBe(ppk.publicLine.split(' ').slice(0, 2).join(' '));
  });

  it('Argon2 memory within bounds but memory x passes beyond them (hours of work on the event loop) is refused before any work', () => {
    const ppk = puttygenKey(dir, 'kdf-slow.ppk', { type: 'ed25519', passphrase: PASSPHRASE, ppkParams: CHEAP_ARGON2 });
    const hostile = ppk.text.replace(/^Argon2-Memory: \d+$/m, 'Argon2-Memory: 262144').replace(/^Argon2-Passes: \d+$/m, 'Argon2-Passes: 1000');
    expect(refusal(hostile, PASSPHRASE).message).toMatch(/Argon2 cost \(262144 KiB x 1000 passes\) is beyond/);
  });

  it('an Argon2 memory cost beyond 256 MiB is refused before anything is allocated', () => {
    const ppk = puttygenKey(dir, 'kdf-huge.ppk', { type: 'ed25519', passphrase: PASSPHRASE, ppkParams: CHEAP_ARGON2 });
    const hostile = ppk.text.replace(/^Argon2-Memory: \d+$/m, 'Argon2-Memory: 262145');
    expect(refusal(hostile, PASSPHRASE).message).toMatch(/Argon2-Memory is out of range/);
  });
});

describe('altered, damaged and foreign PPK files', () => {
  const plain = puttygenKey(dir, 'alter.ppk', { type: 'ed25519' });
  const encrypted = puttygenKey(dir, 'alter-enc.ppk', { type: 'rsa', bits: 2048, version: 2, passphrase: PASSPHRASE });

  /** `text` with one character of the first line matching `prefix`'s value (or body) changed. */
  function flip(text: string, lineIndex: (lines: string[]) => number): string {
    const lines = text.split('\n');
    const i = lineIndex(lines);
    const line = lines[i]!;
    const at = line.length - 2;
    lines[i] = line.slice(0, at) + (line[at] === 'A' ? 'B' : 'A') + line.slice(at + 1);
    return lines.join('\n');
  }
  const privateLine = (lines: string[]) => lines.findIndex((l) => l.startsWith('Private-Lines:')) + 1;
  const publicLine = (lines: string[]) => lines.findIndex((l) => l.startsWith('Public-Lines:')) + 1;

  it.each([
    ['a private line', privateLine],
    ['a public line', publicLine],
  ])('%s altered in an unencrypted file: the MAC says so', (_what, where) => {
    expect(refusal(flip(plain.text, where)).message).toBe('the PuTTY key file is damaged or was altered (its MAC does not match)');
  });

  it('the comment altered: the MAC covers it', () => {
    expect(refusal(plain.text.replace(/^Comment: .*$/m, 'Comment: someone else')).message).toMatch(/MAC does not match/);
  });

  it('a private line altered in an encrypted file: wrong passphrase or altered', () => {
    expect(refusal(flip(encrypted.text, privateLine), PASSPHRASE).message).toMatch(/^wrong passphrase for the PuTTY private key \(or the file was altered/);
  });

  it('truncated', () => {
    const text = plain.text.split('\n').slice(0, -3).join('\n');
    expect(refusal(text).message).toMatch(/^the PuTTY key file is malformed/);
  });

  it('version 1, and versions from the future', () => {
    expect(refusal(plain.text.replace('PuTTY-User-Key-File-3:', 'PuTTY-User-Key-File-1:')).message).toMatch(/version 1 .* load and save it again with puttygen/);
    expect(refusal(plain.text.replace('PuTTY-User-Key-File-3:', 'PuTTY-User-Key-File-4:')).message).toMatch(/version 4 are not read/);
  });

  it.each([2, 3] as const)('the PPK v%i built here from the manual reads too', (version) => {
    const ppk = puttyKeyFile(dir, `manual-v${version}.ppk`, version);
    expect(loadPrivateKey(ppk.text).asymmetricKeyType).toBe('ed25519');
  });
});
