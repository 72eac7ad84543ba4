// Turns the documented authentication properties (SSHAuthMode, SSHUser, SSHPassword, the
// sshCert* key-file forms, PasswordPrompt, TryAllAvailableAuthMethods, ...) and the
// `identities` extension into the options of the protocol's user-authentication state
// machine. Key files are read here, before any connection is made, so a bad key fails fast
// (./identities.ts says when a key is decrypted); a key file others may read is refused
// (./keyfile.ts), and no error quotes key text. The GSSAPI modes get their security contexts
// from ../crypto/gssapi.ts, which refuses them (1005) where GSSAPI cannot be had.

import { SshError, Code } from '../protocol/errors.js';
import { matchesPromptPattern, type AuthMethodName, type AuthOptions, type KeyboardInteractiveRequest, type PublicKeyIdentity } from '../protocol/auth.js';
import { splitList } from './settings.js';
import { isPromise } from '../protocol/auth-answer.js';
import { certificateIdentity, publicKeyIdentity, SshCertStoreType, type SshCertStoreTypeValue, type SshIdentity } from './identities.js';
import type { KeyboardInteractiveEvent } from './events.js';
import { kerberosSource } from '../crypto/gssapi.js';
import type { UnlockedKeys } from './unlocked-keys.js';

export { SshCertStoreType, type SshCertStoreTypeValue, type SshIdentity };

/** SSHAuthMode values (documented numbers). */
export const SshAuthMode = {
  None: 0,
  MultiFactor: 1,
  Password: 2,
  PublicKey: 3,
  KeyboardInteractive: 4,
  /** Kerberos through GSSAPI, gssapi-with-mic (RFC 4462 §3). */
  GSSAPIWithMic: 5,
  /** Kerberos through a GSSAPI key exchange and gssapi-keyex (RFC 4462 §2, §4); gssapi-with-mic if the exchange was not one. */
  GSSAPIKeyex: 6,
  /** The application writes the requests itself, in the sshCustomAuth event. */
  Custom: 99,
} as const;
/** One of the SshAuthMode numbers (the type of `sshAuthMode`). */
export type SshAuthModeValue = (typeof SshAuthMode)[keyof typeof SshAuthMode];

export interface Credentials {
  user: string;
  password: string;
  /** Asked for a password the first time one is needed while `password` is empty (the answer may come later: a Promise). */
  passwordProvider?: (() => string | undefined | Promise<string | undefined>) | null;
  authMode: SshAuthModeValue;
  certStoreType: SshCertStoreTypeValue;
  /** A file name or the store's content (text, base64 or bytes), as certStoreType says. */
  certStore: string | Uint8Array;
  certStorePassword: string;
  /** sshCertEncoded's choice within the store, by the key's SSH public key blob (wins over certSubject). */
  certKey?: Uint8Array | undefined;
  /** sshCertSubject: which key of a store that holds several (a PFX, a JWK Set). */
  certSubject?: string;
  /** Keys tried after the certStore one, in order. */
  identities: readonly SshIdentity[];
  /** The keys this logon has decrypted already, reused instead of decrypting again (./unlocked-keys.ts). */
  unlockedKeys?: UnlockedKeys;
  /**
   * Keys from ssh-agent, offered before the file keys; with `agentOnly` instead of them. An
   * agent that will be asked once connected counts as keys before it is (agentExpected).
   */
  agentIdentities?: readonly PublicKeyIdentity[];
  agentOnly?: boolean;
  agentExpected?: boolean;
  /** SignedSSHCert: the user certificate of the sshCert* key (a certificate line or file). */
  signedCert?: string;
  /** ssh's IdentitiesOnly: of the agent's keys, only those that are also key files here. */
  identitiesOnly?: boolean;
  tryAllMethods: boolean;
  repeatMethods: boolean;
  passwordPrompt: string;
  publicKeySignatureAlgorithms: string;
  /** amCustom: fires sshCustomAuth with the server's message; returns the message to send (null: give up). */
  onCustomAuth?: (serverMessage: Uint8Array) => Uint8Array | null;
  /** Fires the sshKeyboardInteractive event; the handler may set `response`. */
  onPrompt: (event: KeyboardInteractiveEvent) => void;
  /** KerberosSPN, KerberosRealm, KerberosDelegation and the host the service name is made from. */
  kerberos?: { host: string; spn: string; realm: string; delegate: boolean };
  /** In the other modes, try GSSAPI first too, as ssh's GSSAPIAuthentication and GSSAPIKeyExchange do (skipped where GSSAPI cannot be had). */
  alsoGssapi?: { withMic: boolean; keyExchange: boolean };
  /** Told why alsoGssapi's methods were left out. */
  gssapiLeftOut?: (reason: string) => void;
}

const METHODS_BY_MODE: Record<SshAuthModeValue, AuthMethodName[]> = {
  [SshAuthMode.None]: ['none'],
  [SshAuthMode.Password]: ['password', 'keyboard-interactive'],
  [SshAuthMode.PublicKey]: ['publickey'],
  [SshAuthMode.KeyboardInteractive]: ['keyboard-interactive'],
  [SshAuthMode.MultiFactor]: ['publickey', 'password', 'keyboard-interactive'],
  [SshAuthMode.GSSAPIWithMic]: ['gssapi-with-mic'],
  [SshAuthMode.GSSAPIKeyex]: ['gssapi-keyex', 'gssapi-with-mic'],
  [SshAuthMode.Custom]: [],
};

export function authOptionsFor(c: Credentials): AuthOptions {
  if (!c.user && c.authMode !== SshAuthMode.None) throw new SshError(Code.BadArgument, 'sshUser is not set', 'local');
  const base = METHODS_BY_MODE[c.authMode];
  if (!base) throw new SshError(Code.BadArgument, `sshAuthMode ${c.authMode as number} is not supported`, 'local');
  const methods = [...base];
  if (c.tryAllMethods) {
    for (const m of ['publickey', 'password', 'keyboard-interactive'] as const) if (!methods.includes(m)) methods.push(m);
  }
  const gssapi = gssapiFor(c, methods);
  // The documented single key comes first; every key is read now, before connecting.
  const keys: SshIdentity[] = [];
  if (c.certStore.length > 0) {
    keys.push({
      key: c.certStore,
      storeType: c.certStoreType,
      passphrase: c.certStorePassword,
      subject: c.certSubject ?? '',
      ...(c.certKey ? { selectKey: c.certKey } : {}),
      ...(c.signedCert ? { certificate: c.signedCert } : {}),
    });
  }
  keys.push(...c.identities);
  // A key with a certificate is offered as the certificate first, then as itself (as ssh does).
  const allFileKeys = keys.flatMap((key, i) => {
    const plain = publicKeyIdentity(key, i + 1, c.unlockedKeys);
    return key.certificate ? [certificateIdentity(plain, key.certificate), plain] : [plain];
  });
  // A key both in the agent and in a file is offered once, as the agent's (it needs no passphrase).
  const fileBlobs = allFileKeys.flatMap((k) => (k.publicKey ? [Buffer.from(k.publicKey.blob).toString('base64')] : []));
  const agentKeys = (c.agentIdentities ?? []).filter((k) => !c.identitiesOnly || fileBlobs.includes(Buffer.from(k.publicKey!.blob).toString('base64')));
  const agentBlobs = new Set(agentKeys.map((k) => Buffer.from(k.publicKey!.blob).toString('base64')));
  const fileKeys = c.agentOnly ? [] : allFileKeys.filter((k) => !k.publicKey || !agentBlobs.has(Buffer.from(k.publicKey.blob).toString('base64')));
  const identities = methods.includes('publickey') ? [...agentKeys, ...fileKeys] : [];
  if (c.authMode === SshAuthMode.Custom) {
    if (!c.onCustomAuth) throw new SshError(Code.BadArgument, 'sshAuthMode 99 (custom) needs an sshCustomAuth handler', 'local');
    return { username: c.user, methods: [], identities: [], publicKeySignatureAlgorithms: [], repeatMethods: false, custom: c.onCustomAuth };
  }
  if (c.authMode === SshAuthMode.PublicKey && identities.length === 0 && !c.agentExpected) {
    throw new SshError(Code.BadArgument, 'public key authentication needs sshCertStore or an identity (a private key file or its text)', 'local');
  }
  // One source for both the password method and keyboard-interactive prompts; a provider is
  // asked at most once, and only if a method actually needs a password.
  let provided: { value: string | undefined | Promise<string | undefined> } | null = null;
  const password = (): string | undefined | Promise<string | undefined> => {
    if (c.password !== '') return c.password;
    if (!c.passwordProvider) return undefined;
    provided ??= { value: c.passwordProvider() };
    return provided.value;
  };
  return {
    username: c.user,
    methods,
    password: c.password !== '' || c.passwordProvider ? password : undefined,
    identities,
    gssapi,
    publicKeySignatureAlgorithms: splitList(c.publicKeySignatureAlgorithms),
    repeatMethods: c.repeatMethods,
    keyboardInteractive: (request: KeyboardInteractiveRequest) => {
      // PasswordPrompt (or, without one, any prompt that asks for a password) gets the password.
      const matches = request.prompts.map((p) => (c.passwordPrompt ? matchesPromptPattern(c.passwordPrompt, p.prompt.trim()) : /password/i.test(p.prompt)));
      const respond = (known: string | undefined) =>
        request.prompts.map((p, i) => {
          const event: KeyboardInteractiveEvent = {
            name: request.name,
            instructions: request.instructions,
            prompt: p.prompt,
            echoResponse: p.echo,
            response: matches[i] ? (known ?? '') : '',
          };
          c.onPrompt(event);
          return event.response;
        });
      // The provider's answer may come later (a prompt): the responses wait for it.
      const answer = matches.some(Boolean) ? password() : undefined;
      return isPromise(answer) ? answer.then(respond) : respond(answer);
    },
  };
}

const isGssapi = (m: AuthMethodName) => m === 'gssapi-with-mic' || m === 'gssapi-keyex';

/**
 * The GSSAPI source for the modes that use it (the methods list gains them first with
 * alsoGssapi). In the GSSAPI modes a password makes it alternate credentials, as documented:
 * sshUser's own, instead of the ticket cache. Where GSSAPI cannot be had, those modes fail
 * now (1005) and alsoGssapi drops the methods again.
 */
function gssapiFor(c: Credentials, methods: AuthMethodName[]): AuthOptions['gssapi'] {
  const gssapiMode = c.authMode === SshAuthMode.GSSAPIWithMic || c.authMode === SshAuthMode.GSSAPIKeyex;
  if (!gssapiMode && c.alsoGssapi?.withMic) methods.unshift('gssapi-with-mic');
  if (!gssapiMode && c.alsoGssapi?.keyExchange) methods.unshift('gssapi-keyex');
  if (!methods.some(isGssapi)) return undefined;
  const kerberos = c.kerberos ?? { host: '', spn: '', realm: '', delegate: false };
  const alternate = gssapiMode && c.password !== '' ? { user: c.user, password: c.password } : {};
  try {
    return kerberosSource({ ...kerberos, ...alternate });
  } catch (error) {
    if (gssapiMode) throw error;
    c.gssapiLeftOut?.((error as Error).message);
    methods.splice(0, methods.length, ...methods.filter((m) => !isGssapi(m)));
    return undefined;
  }
}
