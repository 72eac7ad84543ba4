// The CLI's identity files, taken as ssh takes them: every -i file, then the config's
// IdentityFile lines (or, when there are none, the default ~/.ssh/id_* files), each checked in
// turn and passed over with ssh's own messages when it cannot be used (missing, unreadable, a
// directory, accessible by others, a format revtun does not read, damaged). The usable ones are
// all handed to the tunnel, which offers them in order in one connection; an encrypted key's
// passphrase is asked for only when the server accepts that key (or, for encrypted PEM without
// a .pub file, whose public half cannot be read, at its turn), as ssh asks.
// A key file's content never reaches the terminal: only its name and what it looks like.

import { existsSync, readFileSync } from 'node:fs';
import {
  isPrivateKeyTextFormat,
  keyTextFormat,
  loadPrivateKey,
  parsePublicKeyLine,
  privateKeyIsEncrypted,
  publicKeyOfPrivateText,
  sshPublicKeyBlob,
  unsupportedKeyFormatMessage,
} from '../crypto/keys.js';
import { parseCertificateLine } from '../protocol/certificates.js';
import { octalMode, readKeyFile, strerror } from '../tunnel/keyfile.js';
import { SshCertStoreType, type SshIdentity } from '../tunnel/identities.js';

export interface IdentityChoice {
  /** Paths in order, already expanded and without duplicates. */
  files: string[];
  /** Given with -i / IdentityFile: only then is a missing file worth a message, as in ssh. */
  userProvided: boolean;
  /** Asks for a passphrase; undefined when there is no way to ask (BatchMode, no terminal). */
  askPassphrase: (prompt: string) => string | undefined | Promise<string | undefined>;
  /** Prints one of ssh's warnings; the caller decides whether -q silences it. */
  warn: (line: string) => void;
  /** Prints a debug line at -v level `level` (ssh's debug1..3). */
  debug: (level: number, line: string) => void;
  /** CertificateFile paths: each goes with the identity whose key it certifies. */
  certificateFiles?: string[];
}

/** ssh's words for a key file that group or others may access (sshkey_perm_ok). */
export function unprotectedKeyWarning(path: string, mode: number): string[] {
  return [
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
    '@         WARNING: UNPROTECTED PRIVATE KEY FILE!          @',
    '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
    `Permissions ${octalMode(mode)} for '${path}' are too open.`,
    'It is required that your private key files are NOT accessible by others.',
    'This private key will be ignored.',
  ];
}

/**
 * The identity files that can be used, in order, ready for SSHReverseTunnel.identities (empty:
 * authentication goes on without a key). A passphrase given once is remembered for the
 * process, so that a reconnect does not wait at a prompt for a key already opened.
 */
export function usableIdentities(choice: IdentityChoice): SshIdentity[] {
  const identities: SshIdentity[] = [];
  for (const path of choice.files) {
    choice.debug(1, `Will attempt key: ${path}${choice.userProvided ? ' explicit' : ''}`);
    const identity = tryIdentity(path, choice);
    if (!identity) continue;
    // ssh loads KEY-cert.pub beside KEY and offers the certificate before the key.
    if (existsSync(`${path}-cert.pub`)) {
      identity.certificate = `${path}-cert.pub`;
      choice.debug(1, `Will attempt key: ${path} with certificate ${path}-cert.pub`);
    }
    identities.push(identity);
  }
  for (const file of choice.certificateFiles ?? []) attachCertificate(file, identities, choice);
  return identities;
}

/** The key a certificate file certifies, as a base64 blob, or undefined when it cannot be read. */
function certifiedKey(file: string): string | undefined {
  try {
    return Buffer.from(parseCertificateLine(readFileSync(file, 'utf8')).certificate.publicKeyBlob).toString('base64');
  } catch {
    return undefined;
  }
}

/** The public half of an identity's key, as a base64 blob (without decrypting it). */
function identityKey(identity: SshIdentity): string | undefined {
  if (typeof identity.key !== 'string') return undefined; // the CLI's identities are key text
  try {
    const known = identity.publicKey ? parsePublicKeyLine(identity.publicKey) : (publicKeyOfPrivateText(identity.key) ?? sshPublicKeyBlob(loadPrivateKey(identity.key)));
    return Buffer.from(known.blob).toString('base64');
  } catch {
    return undefined;
  }
}

/** CertificateFile: the certificate goes with the identity whose key it certifies, as in ssh. */
function attachCertificate(file: string, identities: SshIdentity[], choice: IdentityChoice): void {
  const key = certifiedKey(file);
  if (key === undefined) {
    choice.warn(`no such identity: ${file}: not a readable certificate`);
    return;
  }
  const owner = identities.find((identity) => identity.certificate === undefined && identityKey(identity) === key);
  if (!owner) {
    choice.debug(1, `certificate ${file} matches no identity file`);
    return;
  }
  owner.certificate = file;
  choice.debug(1, `Will attempt key: ${owner.name ?? 'key'} with certificate ${file}`);
}

function tryIdentity(path: string, choice: IdentityChoice): SshIdentity | undefined {
  const read = readKeyFile(path);
  if (!read.ok) {
    const { problem } = read;
    switch (problem.kind) {
      case 'not-accessible':
        // ssh's load_identity_file: INFO for a file the user named, debug3 for a default one.
        if (choice.userProvided) choice.warn(`no such identity: ${path}: ${strerror(problem.errno)}`);
        else choice.debug(3, `no such identity: ${path}: ${strerror(problem.errno)}`);
        return undefined;
      case 'too-open':
        for (const line of unprotectedKeyWarning(path, problem.mode)) choice.warn(line);
        choice.warn(`Load key "${path}": bad permissions`);
        return undefined;
      case 'directory':
        choice.warn(`Load key "${path}": Is a directory`);
        return undefined;
      case 'unreadable':
        choice.warn(`Load key "${path}": ${strerror(problem.errno)}`);
        return undefined;
    }
  }
  const text = read.text;
  const format = keyTextFormat(text);
  // OpenSSH, PEM, and PuTTY's .ppk (which ssh itself does not read: a revtun extension).
  if (!isPrivateKeyTextFormat(format)) {
    choice.warn(`Load key "${path}": ${unsupportedKeyFormatMessage(format, path)}`);
    return undefined;
  }
  const identity: SshIdentity = { key: text, storeType: SshCertStoreType.PEMKeyBlob, name: path };
  try {
    if (!privateKeyIsEncrypted(text)) {
      loadPrivateKey(text, undefined, path); // a damaged key is passed over now, with ssh's words
      return identity;
    }
    // Offered before it is decrypted: the public half from the file itself (OpenSSH and PPK keep
    // it in the clear), else from the .pub beside it, as ssh 9.2 reads it.
    if (publicKeyOfPrivateText(text) === null) {
      const publicLine = readPublicKeyFile(`${path}.pub`);
      if (publicLine !== undefined) identity.publicKey = publicLine;
    }
  } catch (error) {
    // keys.ts never quotes the key in its messages.
    choice.warn(`Load key "${path}": ${(error as Error).message}`);
    return undefined;
  }
  let remembered: string | undefined | Promise<string | undefined>;
  identity.passphrase = (attempt) => {
    if (attempt === 1 && remembered !== undefined) return remembered;
    remembered = choice.askPassphrase(`Enter passphrase for key '${path}': `);
    return remembered;
  };
  return identity;
}

/** The line of a .pub file when it holds a public key revtun can offer. */
function readPublicKeyFile(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const line = readFileSync(path, 'utf8');
    parsePublicKeyLine(line);
    return line;
  } catch {
    return undefined; // as ssh: the key is then decrypted at its turn
  }
}
