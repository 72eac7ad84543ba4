// The CLI's identity file, chosen as ssh chooses: each -i / IdentityFile in turn (or the default
// ~/.ssh/id_* files), passing over with ssh's own messages any that cannot be used (missing,
// unreadable, a directory, accessible by others, a format revtun does not read, a passphrase
// that cannot be had), so that authentication goes on with the next file or the next method.
// A key file's content never reaches the terminal: only its name and what it looks like.

import { isPrivateKeyTextFormat, keyTextFormat, loadPrivateKey, privateKeyIsEncrypted, unsupportedKeyFormatMessage } from '../crypto/keys.js';
import { octalMode, readKeyFile, strerror } from '../tunnel/keyfile.js';

export interface Identity {
  path: string;
  text: string;
  passphrase: string;
}

export interface IdentityChoice {
  /** Paths in order, already expanded. */
  files: string[];
  /** Given with -i / IdentityFile: only then is a missing file worth a warning, as in ssh. */
  userProvided: boolean;
  /** Asks for a passphrase; undefined when there is no way to ask (BatchMode, no terminal). */
  askPassphrase: (prompt: string) => string | undefined;
  /** Prints one of ssh's warnings; the caller decides whether -q silences it. */
  warn: (line: string) => void;
  /** Prints a warning ssh prints even under -q (an identity file that is not accessible). */
  warnAlways: (line: string) => void;
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

/** The first identity file that can be used, or undefined (authentication then goes on without one). */
export function chooseIdentity(choice: IdentityChoice): Identity | undefined {
  for (const path of choice.files) {
    const identity = tryIdentity(path, choice);
    if (identity) return identity;
  }
  return undefined;
}

function tryIdentity(path: string, choice: IdentityChoice): Identity | undefined {
  const read = readKeyFile(path);
  if (!read.ok) {
    const { problem } = read;
    switch (problem.kind) {
      case 'not-accessible':
        if (choice.userProvided) choice.warnAlways(`Warning: Identity file ${path} not accessible: ${strerror(problem.errno)}.`);
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
  const format = keyTextFormat(read.text);
  // OpenSSH, PEM, and PuTTY's .ppk (which ssh itself does not read: a revtun extension).
  if (!isPrivateKeyTextFormat(format)) {
    choice.warn(`Load key "${path}": ${unsupportedKeyFormatMessage(format, path)}`);
    return undefined;
  }
  let passphrase = '';
  if (privateKeyIsEncrypted(read.text)) {
    const asked = choice.askPassphrase(`Enter passphrase for key '${path}': `);
    if (asked === undefined) return undefined; // ssh, too, passes over the key without a word
    passphrase = asked;
  }
  try {
    loadPrivateKey(read.text, passphrase || undefined, path);
  } catch (error) {
    // keys.ts never quotes the key in its messages.
    choice.warn(`Load key "${path}": ${(error as Error).message}`);
    return undefined;
  }
  return { path, text: read.text, passphrase };
}
