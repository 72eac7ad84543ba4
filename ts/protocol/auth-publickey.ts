// Public key user authentication (RFC 4252 §7) over several keys, tried in turn in one
// connection as OpenSSH's client tries its identity files. A key whose public half is known is
// first offered with a query (a request without a signature); only a key the server answers
// with SSH_MSG_USERAUTH_PK_OK is loaded and signs, so a passphrase is asked for that key
// alone. Loading and signing may take time (a passphrase prompt, an agent): the core asks for
// them as credential requests and goes on when they are answered (./auth-answer.ts). A key whose public half cannot be had without its private key (encrypted PEM with
// no .pub beside it) is loaded at its turn and signs straight away, as ssh's "Trying private
// key" does. Which signature algorithms a key may use follows RFC 8332 §3.2 for RSA.
//
// Every request counts against the server's limit (OpenSSH's MaxAuthTries, 6 by default):
// queries and signed requests alike. When it is reached sshd ends the connection; that
// DISCONNECT is reported as an authentication failure (see authDisconnectError).

import { Writer } from './wire.js';
import { DisconnectReason } from './errors.js';
import { MSG } from './messages.js';
import { signatureAlgorithmsFor } from './publickey.js';
import { CERTIFICATE_ALGORITHMS } from './certificates.js';
import { algorithmsOfKeyType } from './key-types.js';

/** A private key that can sign; the protocol never sees the key material itself. */
export interface Signer {
  /** The SSH public key blob. */
  readonly publicKey: Uint8Array;
  /** ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ... */
  readonly keyType: string;
  /** Returns an SSH signature blob made with `algorithm` over `data` (an agent answers later). */
  sign(algorithm: string, data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** A signer that signs at once (a key held here, not an agent's). */
export interface ImmediateSigner extends Signer {
  sign(algorithm: string, data: Uint8Array): Uint8Array;
}

/** The outcome of loading a key when it is about to sign; `reason` never quotes key material. */
export type LoadedSigner = { ok: true; signer: Signer } | { ok: false; reason: string };

/** One key publickey authentication may use. */
export interface PublicKeyIdentity {
  /** How logs and errors name the key: a file name, a fingerprint. Never key material. */
  readonly name: string;
  /**
   * The public half, when it is known without the private key: the key is then offered with a
   * query, and `load` is called only if the server accepts it. null: `load` is called at the
   * key's turn and the request is signed at once.
   */
  readonly publicKey: { blob: Uint8Array; keyType: string } | null;
  /**
   * Loads the private key (this may ask for a passphrase, and take its time). A key that
   * cannot be had is passed over with its reason, as ssh passes over it.
   */
  load(): LoadedSigner | Promise<LoadedSigner>;
}

/** An identity for a key that is already loaded. */
export function loadedIdentity(name: string, signer: Signer): PublicKeyIdentity {
  return { name, publicKey: { blob: signer.publicKey, keyType: signer.keyType }, load: () => ({ ok: true, signer }) };
}

/** The key in play: which identity, what was offered, the algorithms not yet tried with it. */
export interface KeyInPlay {
  /** Its place in AuthOptions.identities. */
  index: number;
  name: string;
  blob: Uint8Array;
  keyType: string;
  algorithmsLeft: string[];
}

/**
 * The signature algorithms to try with a key of `keyType`, in order: the one its type allows
 * (if `allowed` lists it); for RSA, the rsa-sha2 algorithms the server advertises in
 * server-sig-algs, strongest first, or plain ssh-rsa without that extension. A server may
 * advertise rsa-sha2-512 yet accept only rsa-sha2-256 (OpenSSH with PubkeyAcceptedAlgorithms
 * does), hence a list and not one name. Empty: the key cannot be used.
 */
export function signatureAlgorithmsForKey(keyType: string, allowed: string[], serverAlgorithms: string[] | undefined): string[] {
  const certified = Object.entries(CERTIFICATE_ALGORITHMS).filter(([, a]) => a.blobType === keyType);
  if (certified.length > 0) {
    // A client certificate (PROTOCOL.certkeys): the request names the certificate algorithm,
    // chosen as its certified key's signature algorithm would be; the key signs with the latter.
    const plain = signatureAlgorithmsForKey(certified[0]![1].plainType, allowed, serverAlgorithms);
    return plain.flatMap((signature) => certified.filter(([, a]) => a.signature === signature).map(([name]) => name));
  }
  const candidates = signatureAlgorithmsFor(keyType).filter((a) => allowed.includes(a));
  // One algorithm per key type, but for RSA (RFC 8332), whose choice the server's list decides.
  if (candidates.length === 0 || algorithmsOfKeyType(keyType).length < 2) return candidates.slice(0, 1);
  if (serverAlgorithms) {
    const advertised = candidates.filter((a) => serverAlgorithms.includes(a));
    if (advertised.length > 0) return advertised;
  }
  // Without server-sig-algs: the key type's original algorithm (ssh-rsa), which every server knows.
  const original = candidates.find((a) => a === keyType);
  return original ? [original] : candidates.slice(0, 1);
}

/** The algorithm the key itself signs with for a request algorithm (the same, but for certificates). */
export function signingAlgorithm(requestAlgorithm: string): string {
  return CERTIFICATE_ALGORITHMS[requestAlgorithm]?.signature ?? requestAlgorithm;
}

/** RFC 4252 §7: the query, "publickey" with FALSE, the algorithm and the key blob. */
export function publicKeyQuery(header: Writer, algorithm: string, blob: Uint8Array): Uint8Array {
  return header.boolean(false).string(algorithm).string(blob).finish();
}

/**
 * RFC 4252 §7: what the signature of a signed request covers, the session identifier
 * followed by the request itself up to the key blob.
 */
export function publicKeySignedData(sessionId: Uint8Array, username: string, algorithm: string, blob: Uint8Array): Uint8Array {
  return new Writer(512).string(sessionId).byte(MSG.USERAUTH_REQUEST).string(username).string('ssh-connection').string('publickey').boolean(true).string(algorithm).string(blob).finish();
}

/** RFC 4252 §7: the signed request, "publickey" with TRUE, the algorithm, the key blob and the signature. */
export function signedPublicKeyRequest(header: Writer, algorithm: string, blob: Uint8Array, signature: Uint8Array): Uint8Array {
  return header.boolean(true).string(algorithm).string(blob).string(signature).finish();
}

/**
 * OpenSSH's sshd ends the connection once MaxAuthTries requests have failed, with reason 2
 * (protocol error) and "Too many authentication failures"; other servers use reason 14. Either
 * one, arriving during authentication, is an authentication failure (1032), not a lost
 * connection: retrying would meet the same limit.
 */
export function isAuthLimitDisconnect(reason: number, description: string): boolean {
  return reason === DisconnectReason.NoMoreAuthMethodsAvailable || /too many authentication failures/i.test(description);
}
