// Reading key files as OpenSSH does: permissions first, then directories, then the read; and
// telling key text from a file name.

import { describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { looksLikeKeyText, readKeyFile, readPrivateKeyFile } from '../../../ts/tunnel/keyfile.js';
import { Code } from '../../../ts/protocol/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-keyfile-'));
const ownsFiles = process.getuid !== undefined;

describe('readKeyFile', () => {
  it('reads a 0600 file', () => {
    const path = join(dir, 'ok');
    writeFileSync(path, 'text', { mode: 0o600 });
    expect(readKeyFile(path)).toEqual({ ok: true, text: 'text', bytes: Buffer.from('text') });
  });

  it.runIf(ownsFiles).each([0o644, 0o640, 0o604, 0o620])('refuses a file of ours with mode %o, as ssh does', (mode) => {
    const path = join(dir, `open-${mode.toString(8)}`);
    writeFileSync(path, 'text');
    chmodSync(path, mode);
    expect(readKeyFile(path)).toEqual({ ok: false, problem: { kind: 'too-open', mode: 0o100000 | mode } });
    expect(() => readPrivateKeyFile(path)).toThrow(
      expect.objectContaining({ code: Code.AccessDenied, message: expect.stringContaining(`Permissions 0${mode.toString(8)} for '${path}' are too open`) }),
    );
  });

  it('checks permissions before it notices a directory, as ssh does', () => {
    const open = join(dir, 'dir-open');
    mkdirSync(open, { mode: 0o755 });
    chmodSync(open, 0o755);
    const closed = join(dir, 'dir-closed');
    mkdirSync(closed, { mode: 0o700 });
    expect(readKeyFile(open)).toMatchObject({ ok: false, problem: { kind: ownsFiles ? 'too-open' : 'directory' } });
    expect(readKeyFile(closed)).toEqual({ ok: false, problem: { kind: 'directory' } });
    expect(() => readPrivateKeyFile(closed)).toThrow(expect.objectContaining({ code: Code.BadArgument, message: `cannot read key file ${closed}: Is a directory` }));
  });

  it('a missing file, or a path through a file', () => {
    expect(readKeyFile(join(dir, 'missing'))).toEqual({ ok: false, problem: { kind: 'not-accessible', errno: 'ENOENT' } });
    const file = join(dir, 'ok');
    expect(readKeyFile(join(file, 'sub'))).toEqual({ ok: false, problem: { kind: 'not-accessible', errno: 'ENOTDIR' } });
    expect(() => readPrivateKeyFile(join(dir, 'missing'))).toThrow(expect.objectContaining({ code: Code.BadArgument, message: expect.stringMatching(/No such file or directory$/) }));
  });
});

describe('looksLikeKeyText', () => {
  it.each([
    ['a path', '/home/me/.ssh/id_ed25519', false],
    ['a relative path', 'keys/deploy.ppk', false],
    ['PEM text', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n', true],
    ['PEM text on one line (as environment variables hold it)', '-----BEGIN OPENSSH PRIVATE KEY----- b3Bl -----END OPENSSH PRIVATE KEY-----', true],
    ['a PuTTY file', 'PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n', true],
    ['a public key line', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5K me', true],
    ['any multi-line text', 'secret\nsecret\n', true],
    ['something longer than PATH_MAX', 'x'.repeat(5000), true],
  ])('%s', (_name, value, expected) => {
    expect(looksLikeKeyText(value)).toBe(expected);
  });
});
