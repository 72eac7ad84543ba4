// Turns the documented authentication properties (SSHAuthMode, SSHUser, SSHPassword, the
// sshCert* key-file forms, PasswordPrompt, TryAllAvailableAuthMethods, ...) into the options
// of the protocol's user-authentication state machine. Key files are read and decrypted here,
// before any connection is made, so a bad key or passphrase fails fast; a key file others may
// read is refused (./keyfile.ts), and no error quotes key text.

import { SshError, Code } from '../protocol/errors.js';
import { matchesPromptPattern, type AuthMethodName, type AuthOptions, type KeyboardInteractiveRequest, type Signer } from '../protocol/auth.js';
import { createSigner } from '../crypto/keys.js';
import { splitList } from './settings.js';
import { loadCertStoreKey, type SshCertStoreTypeValue } from './cert-store.js';
import type { KeyboardInteractiveEvent } from './events.js';

/** SSHAuthMode values (documented numbers). */
export const SshAuthMode = {
  None: 0,
  MultiFactor: 1,
  Password: 2,
  PublicKey: 3,
  KeyboardInteractive: 4,
} as const;
export type SshAuthModeValue = (typeof SshAuthMode)[keyof typeof SshAuthMode];

// Every documented SSHCertStoreType, and how each is read or why it is refused: ./cert-store.ts.
export { SshCertStoreType, type SshCertStoreTypeValue } from './cert-store.js';

export interface Credentials {
  user: string;
  password: string;
  /** Asked for a password the first time one is needed while `password` is empty. */
  passwordProvider?: (() => string | undefined) | null;
  authMode: SshAuthModeValue;
  certStoreType: SshCertStoreTypeValue;
  /** A file name or the store's content (text, base64 or bytes), as certStoreType says. */
  certStore: string | Uint8Array;
  certStorePassword: string;
  /** sshCertSubject: which key of a store that holds several (a PFX, a JWK Set). */
  certSubject?: string;
  tryAllMethods: boolean;
  repeatMethods: boolean;
  passwordPrompt: string;
  publicKeySignatureAlgorithms: string;
  /** Fires the sshKeyboardInteractive event; the handler may set `response`. */
  onPrompt: (event: KeyboardInteractiveEvent) => void;
}

const METHODS_BY_MODE: Record<SshAuthModeValue, AuthMethodName[]> = {
  [SshAuthMode.None]: ['none'],
  [SshAuthMode.Password]: ['password', 'keyboard-interactive'],
  [SshAuthMode.PublicKey]: ['publickey'],
  [SshAuthMode.KeyboardInteractive]: ['keyboard-interactive'],
  [SshAuthMode.MultiFactor]: ['publickey', 'password', 'keyboard-interactive'],
};

function loadSigner(c: Credentials): Signer {
  return createSigner(
    loadCertStoreKey({ type: c.certStoreType, store: c.certStore, password: c.certStorePassword, subject: c.certSubject ?? '' }),
  );
}

export function authOptionsFor(c: Credentials): AuthOptions {
  if (!c.user && c.authMode !== SshAuthMode.None) throw new SshError(Code.BadArgument, 'sshUser is not set', 'local');
  const base = METHODS_BY_MODE[c.authMode];
  if (!base) throw new SshError(Code.BadArgument, `sshAuthMode ${c.authMode as number} is not supported`, 'local');
  const methods = [...base];
  if (c.tryAllMethods) {
    for (const m of ['publickey', 'password', 'keyboard-interactive'] as const) if (!methods.includes(m)) methods.push(m);
  }
  const signer = c.certStore.length > 0 && methods.includes('publickey') ? loadSigner(c) : undefined;
  if (c.authMode === SshAuthMode.PublicKey && !signer) {
    throw new SshError(Code.BadArgument, 'public key authentication needs sshCertStore (a private key file or its text)', 'local');
  }
  // One source for both the password method and keyboard-interactive prompts; a provider is
  // asked at most once, and only if a method actually needs a password.
  let provided: { value: string | undefined } | null = null;
  const password = (): string | undefined => {
    if (c.password !== '') return c.password;
    if (!c.passwordProvider) return undefined;
    provided ??= { value: c.passwordProvider() };
    return provided.value;
  };
  return {
    username: c.user,
    methods,
    password: c.password !== '' || c.passwordProvider ? password : undefined,
    signer,
    publicKeySignatureAlgorithms: splitList(c.publicKeySignatureAlgorithms),
    repeatMethods: c.repeatMethods,
    keyboardInteractive: (request: KeyboardInteractiveRequest) =>
      request.prompts.map((p) => {
        // PasswordPrompt (or, without one, any prompt that asks for a password) gets the password.
        const matches = c.passwordPrompt ? matchesPromptPattern(c.passwordPrompt, p.prompt.trim()) : /password/i.test(p.prompt);
        const event: KeyboardInteractiveEvent = {
          name: request.name,
          instructions: request.instructions,
          prompt: p.prompt,
          echoResponse: p.echo,
          response: matches ? (password() ?? '') : '',
        };
        c.onPrompt(event);
        return event.response;
      }),
  };
}
