// JSON Web Keys (RFC 7517) as private keys for SSH: one JWK, or a JWK Set whose member is
// chosen by its "kid" (sshCertSubject; `*` or empty takes the first private key). node:crypto
// imports JWK itself; this file only chooses the key, checks that it is a private key of a
// type SSH signs with (RFC 7518 §6: RSA, EC P-256/384/521; RFC 8037: OKP Ed25519), and says
// clearly what is wrong otherwise. Errors are 10022 and never quote the key.

import * as crypto from 'node:crypto';
import { SshError, Code } from '../protocol/errors.js';
import { keyPairIsConsistent } from './ssh-key-parts.js';

function jwkError(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

/** A JWK file is well under a kilobyte a key; this bounds a JSON.parse of anything else. */
const MAX_JWK_BYTES = 1024 * 1024;

type Jwk = Record<string, unknown>;

/** True when `text` opens like a JSON object (a JWK or a JWK Set). */
export function looksLikeJwk(text: string): boolean {
  return /^\s*\{/.test(text);
}

function usableType(jwk: Jwk): string | undefined {
  if (jwk.kty === 'RSA') return undefined;
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384' || jwk.crv === 'P-521')) return undefined;
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return undefined;
  const kind = typeof jwk.crv === 'string' ? `${String(jwk.kty)} ${jwk.crv}` : String(jwk.kty);
  return `a JWK of type ${kind} cannot sign for SSH (RSA, EC P-256/P-384/P-521 and OKP Ed25519 can)`;
}

/** Loads the private key of a JWK text (a key or a set), chosen by `kid` within a set. */
export function loadJwkKey(text: string, kid: string): crypto.KeyObject {
  if (text.length > MAX_JWK_BYTES) throw jwkError(`the JWK is larger than ${MAX_JWK_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw jwkError('the JWK is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw jwkError('the JWK is not a JSON object');
  const set = (parsed as Jwk).keys;
  let jwk: Jwk;
  if (Array.isArray(set)) {
    const members = set.filter((k): k is Jwk => typeof k === 'object' && k !== null && !Array.isArray(k));
    const wanted = kid.trim();
    const candidates = wanted === '' || wanted === '*' ? members.filter((k) => 'd' in k) : members.filter((k) => k.kid === wanted);
    if (candidates.length === 0) {
      throw jwkError(wanted === '' || wanted === '*' ? 'the JWK Set holds no private key' : `no key in the JWK Set has kid "${wanted}" (sshCertSubject)`);
    }
    jwk = candidates[0]!;
  } else {
    jwk = parsed as Jwk;
  }
  if (typeof jwk.kty !== 'string') throw jwkError('the JWK has no "kty"');
  const unusable = usableType(jwk);
  if (unusable) throw jwkError(unusable);
  if (!('d' in jwk)) throw jwkError('this JWK is a public key; a private key (with "d") is needed to sign');
  const damaged = jwkError(`the ${jwk.kty} JWK is damaged: its private part does not match its public key`);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
  } catch {
    // Node 26 refuses a private JWK whose parts do not belong together at the import (before,
    // the import took them as given and the check below caught it): tell that apart from a
    // member that is missing or not base64url by whether the public part alone is a key.
    throw wellFormedPublicPart(jwk) ? damaged : jwkError(`the ${jwk.kty} JWK is malformed (a member is missing or not base64url)`);
  }
  if (!keyPairIsConsistent(key)) throw damaged;
  return key;
}

/** The JWK members of each key type's public part (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2). */
const PUBLIC_MEMBERS: Record<string, string[]> = { EC: ['crv', 'x', 'y'], RSA: ['n', 'e'], OKP: ['crv', 'x'] };

/** The members that hold key material, all base64url (RFC 7518 §6.2, §6.3; RFC 8037 §2). */
const KEY_MATERIAL = ['x', 'y', 'd', 'n', 'e', 'p', 'q', 'dp', 'dq', 'qi'];

/** Every member is a base64url string and the public part alone imports as a key. */
function wellFormedPublicPart(jwk: Jwk): boolean {
  const members = PUBLIC_MEMBERS[jwk.kty as string];
  if (!members) return false;
  const base64url = /^[A-Za-z0-9_-]+$/;
  for (const name of KEY_MATERIAL) {
    const value = jwk[name];
    if (value !== undefined && (typeof value !== 'string' || !base64url.test(value))) return false;
  }
  const publicPart: Jwk = { kty: jwk.kty };
  for (const name of members) publicPart[name] = jwk[name];
  try {
    crypto.createPublicKey({ key: publicPart as crypto.JsonWebKey, format: 'jwk' });
    return true;
  } catch {
    return false;
  }
}
