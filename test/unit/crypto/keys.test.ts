// Private key parsing errors: whatever the input, an error names the format and never quotes
// the text (regression: an unreadable key's content ended up in error messages).

import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyTextFormat, loadPrivateKey, privateKeyIsEncrypted } from '../../../ts/crypto/keys.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { puttyKeyFile } from '../../helpers/putty.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-keys-unit-'));

function pemBlock(label: string, body: Buffer): string {
  return `-----BEGIN ${label}-----\n${body.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ${label}-----\n`;
}

/** The error loadPrivateKey throws for `text`, checked to quote none of its lines. */
function refusal(text: string, fileName?: string): SshError {
  let caught: unknown;
  try {
    loadPrivateKey(text, undefined, fileName);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  const error = caught as SshError;
  expect(error.code).toBe(1032);
  for (const line of text.split('\n').filter((l) => l.trim().length >= 8)) expect(`${error.message}\n${error.stack}`).not.toContain(line.trim());
  return error;
}

describe('loadPrivateKey never quotes what it cannot read', () => {
  it.each([3, 2] as const)('a PuTTY-User-Key-File-%i whose MAC does not match: named as damaged, never quoted', (version) => {
    const ppk = puttyKeyFile(dir, `v${version}.ppk`, version);
    expect(keyTextFormat(ppk.text)).toBe('putty');
    expect(loadPrivateKey(ppk.text).asymmetricKeyType).toBe('ed25519'); // read since PPK support
    const altered = ppk.text.replace(/^Comment: .*$/m, 'Comment: altered');
    expect(refusal(altered, ppk.path).message).toBe('the PuTTY key file is damaged or was altered (its MAC does not match)');
  });

  it('an SSH.COM key', () => {
    const text = `---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: "k"\nP2/56wAAAi4AAAA3aWYtbW9kbntzaWdue3JzYS1wa2NzMS1zaGExfSxlbmNyeXB0e3JzYS1wa2NzMXYyLW9hZXB9fQ==\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n`;
    expect(refusal(text).message).toMatch(/^SSH\.COM private key files are not supported/);
  });

  it('a public key given for a private one', () => {
    expect(refusal('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5KfJ0sY8m2Jw0nQ8o3yV3x2b8mM0lHq7bX0Yc5Zq1e me@host\n').message).toMatch(/public key/);
  });

  it('text that is no key at all', () => {
    expect(refusal('correct horse battery staple\nand a second secret line\n').message).toMatch(/not a private key/);
  });

  it('a PEM block without its END line', () => {
    const text = pemBlock('OPENSSH PRIVATE KEY', Buffer.from('openssh-key-v1\0secretsecretsecret')).replace(/-----END[^\n]*\n$/, '');
    expect(refusal(text).message).toMatch(/truncated/);
  });

  it('a damaged OpenSSH key body, reported as a local key problem (not a peer protocol error)', () => {
    const error = refusal(pemBlock('OPENSSH PRIVATE KEY', Buffer.from('openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none\0\0\0\0\0\0\0\x01\0\0\0\x40secret')));
    expect(error.origin).toBe('local');
    expect(error.message).toMatch(/damaged/);
  });

  it('a PEM body OpenSSL rejects', () => {
    refusal(pemBlock('PRIVATE KEY', Buffer.from('definitely not DER, but secret all the same')));
  });
});

describe('privateKeyIsEncrypted', () => {
  it('reads the cipher of an OpenSSH key and the markers of PEM', () => {
    const openssh = (cipher: string) => {
      const name = Buffer.from(cipher);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(name.length);
      return pemBlock('OPENSSH PRIVATE KEY', Buffer.concat([Buffer.from('openssh-key-v1\0'), length, name]));
    };
    expect(privateKeyIsEncrypted(openssh('aes256-ctr'))).toBe(true);
    expect(privateKeyIsEncrypted(openssh('none'))).toBe(false);
    expect(privateKeyIsEncrypted(pemBlock('ENCRYPTED PRIVATE KEY', Buffer.from('x')))).toBe(true);
    expect(privateKeyIsEncrypted(pemBlock('RSA PRIVATE KEY', Buffer.from('x')).replace('\n', '\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n'))).toBe(true);
    expect(privateKeyIsEncrypted(pemBlock('PRIVATE KEY', Buffer.from('x')))).toBe(false);
    const ppk = puttyKeyFile(dir, 'enc-check.ppk').text;
    expect(privateKeyIsEncrypted(ppk)).toBe(false);
    expect(privateKeyIsEncrypted(ppk.replace('Encryption: none', 'Encryption: aes256-cbc'))).toBe(true);
  });
});
