// Private key files on disk, read the way OpenSSH reads them (sshkey_perm_ok in authfile.c): a
// key file owned by us that group or others may access is refused, since someone else may
// already have copied it. Also tells key text from a file name, so that the error for a file
// that cannot be read, which names the file, is never raised for key text.

import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { Code, SshError } from '../protocol/errors.js';
import { keyTextFormat } from '../crypto/keys.js';

/** Why a key file could not be used, before its content is looked at. */
export type KeyFileProblem =
  /** stat failed (ENOENT, ENOTDIR, EACCES on a directory above it, ...). */
  | { kind: 'not-accessible'; errno: string }
  /** Ours, and group or others may access it: `mode` is its permission bits. */
  | { kind: 'too-open'; mode: number }
  | { kind: 'directory' }
  /** It exists but could not be read (EACCES, EIO, ...). */
  | { kind: 'unreadable'; errno: string };

export type KeyFileRead = { ok: true; text: string; bytes: Buffer } | { ok: false; problem: KeyFileProblem };

const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EIO: 'Input/output error',
  ENOTREG: 'Not a regular file',
  EFBIG: 'File too large',
};

/**
 * Key, certificate and key store files are small (a PFX is a few kilobytes); this bounds what
 * a wrong path (a disk image, a log) makes us read.
 */
export const MAX_KEY_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Reads a regular file of at most `maxBytes`. A device, a FIFO or a socket is refused (ENOTREG)
 * before anything is read from it: /dev/zero would never end and a FIFO would block the event
 * loop. Errors carry a Node-style `code` (ENOENT, EISDIR, ENOTREG, EFBIG, ...).
 */
export function readRegularFile(path: string, maxBytes = MAX_KEY_FILE_BYTES): Buffer {
  const fail = (code: string) => Object.assign(new Error(strerror(code)), { code });
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw fail('EISDIR');
    if (!stat.isFile()) throw fail('ENOTREG');
    if (stat.size > maxBytes) throw fail('EFBIG');
    // One byte more than allowed tells a file that grew since the fstat.
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n <= 0) break;
      length += n;
    }
    if (length > maxBytes) throw fail('EFBIG');
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** The C library's words for a Node error code, as ssh prints them. */
export function strerror(errno: string): string {
  return STRERROR[errno] ?? errno;
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'EIO';
}

/** "0644", as ssh prints a file's permission bits. */
export function octalMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

/**
 * Reads a private key file, checking it as OpenSSH does, in its order: stat, then permissions
 * (only for a file we own; there is no uid to compare on Windows, where the check is skipped),
 * then directory, then the read itself.
 */
export function readKeyFile(path: string): KeyFileRead {
  let stat: Stats;
  try {
    stat = statSync(path);
  } catch (error) {
    return { ok: false, problem: { kind: 'not-accessible', errno: errnoOf(error) } };
  }
  if (process.getuid && stat.uid === process.getuid() && (stat.mode & 0o077) !== 0) {
    return { ok: false, problem: { kind: 'too-open', mode: stat.mode } };
  }
  if (stat.isDirectory()) return { ok: false, problem: { kind: 'directory' } };
  try {
    // The bytes too: a PKCS#12 store is binary.
    const bytes = readRegularFile(path);
    return { ok: true, text: bytes.toString('utf8'), bytes };
  } catch (error) {
    return { ok: false, problem: { kind: 'unreadable', errno: errnoOf(error) } };
  }
}

/**
 * Whether an sshCertStore / privateKey value is key text rather than a file name. A file name
 * has no line break and no key-file marker; anything longer than PATH_MAX is not one either.
 * Erring towards text is safe: text is never quoted, a file name is.
 */
export function looksLikeKeyText(value: string): boolean {
  return /[\r\n]/.test(value) || keyTextFormat(value) !== 'unknown' || value.length > 4096;
}

/**
 * The library's reading of a key file: its text, or an SshError naming the file (never its
 * content). A key file that group or others may access is refused with 10013 (access denied),
 * as OpenSSH refuses it; other failures are 10022 (bad argument), as before.
 */
export function readPrivateKeyFile(path: string): string {
  return readPrivateKeyFileBytes(path).toString('utf8');
}

/** readPrivateKeyFile for a store that may be binary (a PFX): the same checks and errors. */
export function readPrivateKeyFileBytes(path: string): Buffer {
  const read = readKeyFile(path);
  if (read.ok) return read.bytes;
  const { problem } = read;
  switch (problem.kind) {
    case 'too-open':
      throw new SshError(
        Code.AccessDenied,
        `Permissions ${octalMode(problem.mode)} for '${path}' are too open: a private key file must not be accessible by others (chmod 600 it); the key was not used`,
        'local',
      );
    case 'directory':
      throw new SshError(Code.BadArgument, `cannot read key file ${path}: Is a directory`, 'local');
    default:
      throw new SshError(Code.BadArgument, `cannot read key file ${path}: ${strerror(problem.errno)}`, 'local');
  }
}
