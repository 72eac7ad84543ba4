// PuTTY .ppk key files for the tests that check revtun never quotes key material: a real,
// unencrypted PPK (version 3 or 2) for a fresh Ed25519 key, built as puttygen would (the
// format is in PuTTY's sshpubk.c), since puttygen itself is not installed here.

import { createHash, createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
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
