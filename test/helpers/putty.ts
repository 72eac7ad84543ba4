// PuTTY .ppk key files for the tests: made by Debian's puttygen (putty-tools, installed by
// scripts/setup.sh) with the public key line it prints for authorized_keys, and one built here
// byte by byte from PuTTY's manual (appendix C), an unencrypted Ed25519 PPK, as a second
// opinion on the format that does not come from PuTTY's own code.

import { execFileSync } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writer } from '../../ts/protocol/wire.js';
import { sshPublicKeyBlob } from '../../ts/crypto/keys.js';
import { randomEd25519Key } from './peer.js';

export interface PuttyKeyFile {
  path: string;
  text: string;
  /** The base64 lines of the Private-Lines section: none of them may ever be printed. */
  privateLines: string[];
}

function wrap64(bytes: Uint8Array): string[] {
  const b64 = Buffer.from(bytes).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return lines;
}

/** Writes `name` in `dir` with mode 0600 (so only its format, not its permissions, is at fault). */
export function puttyKeyFile(dir: string, name: string, version: 2 | 3 = 3): PuttyKeyFile {
  const key = randomEd25519Key();
  const { blob: publicBlob } = sshPublicKeyBlob(key);
  const seed = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
  const privateBlob = new Writer(64).string(seed).finish();
  const comment = `eddsa-key-${name}`;
  const macInput = new Writer(256).string('ssh-ed25519').string('none').string(comment).string(publicBlob).string(privateBlob).finish();
  // Unencrypted files: v3 MACs with an empty key, v2 with SHA-1 of the fixed prefix alone.
  const mac =
    version === 3
      ? createHmac('sha256', Buffer.alloc(0)).update(macInput).digest('hex')
      : createHmac('sha1', createHash('sha1').update('putty-private-key-file-mac-key').digest()).update(macInput).digest('hex');
  const publicLines = wrap64(publicBlob);
  const privateLines = wrap64(privateBlob);
  const text = [
    `PuTTY-User-Key-File-${version}: ssh-ed25519`,
    'Encryption: none',
    `Comment: ${comment}`,
    `Public-Lines: ${publicLines.length}`,
    ...publicLines,
    `Private-Lines: ${privateLines.length}`,
    ...privateLines,
    `Private-MAC: ${mac}`,
    '',
  ].join('\n');
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return { path, text, privateLines };
}

export interface PuttygenOptions {
  type: 'ed25519' | 'ecdsa' | 'rsa' | 'dsa';
  bits?: number;
  version?: 2 | 3;
  passphrase?: string;
  /** Other --ppk-param settings (kdf, memory, passes, parallelism). */
  ppkParams?: Record<string, string | number>;
}

export interface PuttygenKey extends PuttyKeyFile {
  /** The OpenSSH public key line puttygen -L prints, for authorized_keys. */
  publicLine: string;
}

/** A key made by puttygen itself, written to `dir/name` (mode 0600). */
export function puttygenKey(dir: string, name: string, options: PuttygenOptions): PuttygenKey {
  const path = join(dir, name);
  const passFile = join(dir, `${name}.pass`);
  writeFileSync(passFile, options.passphrase ?? '', { mode: 0o600 }); // empty: no encryption
  const params = { version: options.version ?? 3, ...options.ppkParams };
  const paramText = Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const args = ['-t', options.type, ...(options.bits ? ['-b', String(options.bits)] : []), '-C', name, '--new-passphrase', passFile, '--ppk-param', paramText, '-o', path];
  execFileSync('puttygen', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const publicLine = execFileSync('puttygen', ['-L', path, '--old-passphrase', passFile], { encoding: 'utf8' }).trim();
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Private-Lines: '));
  const privateLines = lines.slice(at + 1, at + 1 + Number(lines[at]!.slice('Private-Lines: '.length)));
  return { path, text, privateLines, publicLine };
}
