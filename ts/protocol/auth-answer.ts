// Answers the core's credential requests (./auth.ts) from the sources in AuthOptions: the
// password or its provider, keyboard-interactive handler, and each identity's load() and its
// signer. Any of them may answer later (a Promise: a prompt, an agent); the answer then comes
// as a Promise too, and the caller hands it to SshClientCore.answerCredential when it settles.
// A source that throws or rejects gives "none" for what it was asked (the method or the key is
// passed over); its message goes into the reason without key material, which sources never
// put in their errors. GSSAPI requests go to the connection's security contexts
// (./auth-gssapi.ts), which the answerer's dispose() releases when the connection ends.

import { equalBytes } from './wire.js';
import type { AuthOptions, CredentialAnswer, CredentialRequest } from './auth.js';
import type { LoadedSigner, Signer } from './auth-publickey.js';
import { GssapiContexts } from './auth-gssapi.js';

export type CredentialAnswerer = ((request: CredentialRequest) => CredentialAnswer | Promise<CredentialAnswer>) & {
  /** Releases what answering holds for the connection (GSSAPI contexts); call once it has closed. */
  dispose?: () => void;
};

/** A Promise (or any thenable) rather than a value ready now. */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === 'function';
}

/** Runs `make` and maps its value (now or later) through `to`; a throw or rejection goes to `failed`. */
function settle<T>(make: () => T | Promise<T>, to: (value: T) => CredentialAnswer, failed: (error: unknown) => CredentialAnswer): CredentialAnswer | Promise<CredentialAnswer> {
  let value: T | Promise<T>;
  try {
    value = make();
  } catch (error) {
    return failed(error);
  }
  if (!isPromise(value)) return to(value);
  return value.then(to, failed);
}

const why = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The answer that gives nothing for `request`: its method or key is passed over. */
export function noAnswer(request: CredentialRequest, reason: string): CredentialAnswer {
  switch (request.kind) {
    case 'password':
      return { kind: 'password', password: undefined };
    case 'keyboardInteractive':
      return { kind: 'keyboardInteractive', responses: null };
    case 'publicKey':
      return { kind: 'publicKey', publicKey: null, reason };
    case 'signature':
      return { kind: 'signature', signature: null, reason };
    case 'custom':
      return { kind: 'custom', message: null };
    case 'gssapiToken':
      return { kind: 'gssapiToken', token: null, complete: false, reason };
    case 'gssapiMic':
      return { kind: 'gssapiMic', mic: null, reason };
    case 'gssapiVerifyMic':
      return { kind: 'gssapiVerifyMic', valid: false, reason };
  }
}

/**
 * An answerer for one connection. Each identity is loaded at most once per connection (the
 * loaded signer serves every signature the server asks of it); the password source is the
 * core's to ask once.
 */
export function credentialAnswerer(options: AuthOptions): CredentialAnswerer {
  const loaded = new Map<number, LoadedSigner | Promise<LoadedSigner>>();
  const load = (index: number): LoadedSigner | Promise<LoadedSigner> => {
    let signer = loaded.get(index);
    if (!signer) {
      const identity = options.identities?.[index];
      try {
        signer = identity ? identity.load() : { ok: false, reason: 'no such identity' };
      } catch (error) {
        signer = { ok: false, reason: why(error) };
      }
      if (isPromise(signer)) signer = signer.catch((error: unknown): LoadedSigner => ({ ok: false, reason: why(error) }));
      loaded.set(index, signer);
    }
    return signer;
  };

  const gssapi = new GssapiContexts(options.gssapi);
  const answerer: CredentialAnswerer = (request) => {
    switch (request.kind) {
      case 'gssapiToken':
      case 'gssapiMic':
      case 'gssapiVerifyMic':
        return gssapi.answer(request);
      case 'password': {
        const source = options.password;
        return settle(
          () => (typeof source === 'function' ? source() : source),
          (password) => ({ kind: 'password', password }),
          () => ({ kind: 'password', password: undefined }),
        );
      }
      case 'keyboardInteractive': {
        const handler = options.keyboardInteractive;
        return settle(
          () => (handler ? handler(request.request) : null),
          (responses) => ({ kind: 'keyboardInteractive', responses }),
          () => ({ kind: 'keyboardInteractive', responses: null }),
        );
      }
      case 'publicKey':
        return settle(
          () => load(request.identity),
          (result): CredentialAnswer =>
            result.ok ? { kind: 'publicKey', publicKey: { blob: result.signer.publicKey, keyType: result.signer.keyType } } : { kind: 'publicKey', publicKey: null, reason: result.reason },
          (error) => ({ kind: 'publicKey', publicKey: null, reason: why(error) }),
        );
      case 'custom': {
        const custom = options.custom;
        return settle(
          () => (custom ? custom(request.serverMessage) : null),
          (message) => ({ kind: 'custom', message }),
          () => ({ kind: 'custom', message: null }),
        );
      }
      case 'signature': {
        const failed = (reason: string): CredentialAnswer => ({ kind: 'signature', signature: null, reason });
        const sign = (signer: Signer): CredentialAnswer | Promise<CredentialAnswer> => {
          // A stale .pub beside a replaced key would otherwise sign with another key than offered.
          if (!equalBytes(signer.publicKey, request.publicKey)) return failed('the private key does not match its public key');
          return settle(
            () => signer.sign(request.algorithm, request.data),
            (signature): CredentialAnswer => ({ kind: 'signature', signature }),
            (error) => failed(`cannot sign with the ${signer.keyType} key: ${why(error)}`),
          );
        };
        const result = load(request.identity);
        const withSigner = (value: LoadedSigner) => (value.ok ? sign(value.signer) : failed(value.reason));
        return isPromise(result) ? result.then(withSigner).catch((error: unknown) => failed(why(error))) : withSigner(result);
      }
    }
  };
  answerer.dispose = () => gssapi.dispose();
  return answerer;
}
