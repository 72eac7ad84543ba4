// JWK private keys exported by node:crypto (RFC 7517/7518/8037): each key type SSH signs
// with, a JWK Set chosen by kid, and the refusals (a public JWK, a type SSH cannot sign with,
// malformed JSON), none of which quotes the key.

import { describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import { loadJwkKey } from '../../../ts/crypto/jwk.js';
import { sshPublicKeyBlob } from '../../../ts/crypto/keys.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';

function exported(type: 'ed25519' | 'ec' | 'rsa', options: object = {}): { jwk: crypto.JsonWebKey; publicLine: string } {
  const { privateKey } = crypto.generateKeyPairSync(type as 'ec', options as crypto.ECKeyPairOptions<'pem', 'pem'>) as unknown as { privateKey: crypto.KeyObject };
  const { blob, keyType } = sshPublicKeyBlob(privateKey);
  return { jwk: privateKey.export({ format: 'jwk' }), publicLine: `${keyType} ${Buffer.from(blob).toString('base64')}` };
}

function publicLineOf(key: crypto.KeyObject): string {
  const { blob, keyType } = sshPublicKeyBlob(key);
  return `${keyType} ${Buffer.from(blob).toString('base64')}`;
}

function refusal(text: string, kid = ''): SshError {
  let caught: unknown;
  try {
    loadJwkKey(text, kid);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  const error = caught as SshError;
  expect(error.code).toBe(Code.BadArgument);
  const d = /"d":"([^"]+)"/.exec(text)?.[1];
  if (d) expect(`${error.message}\n${error.stack}`).not.toContain(d);
  return error;
}

describe('loadJwkKey', () => {
  it.each([
    ['Ed25519 (OKP)', () => exported('ed25519')],
    ['EC P-256', () => exported('ec', { namedCurve: 'P-256' })],
    ['EC P-384', () => exported('ec', { namedCurve: 'P-384' })],
    ['EC P-521', () => exported('ec', { namedCurve: 'P-521' })],
    ['RSA 2048', () => exported('rsa', { modulusLength: 2048 })],
  ])('%s exported by node:crypto', (_name, make) => {
    const { jwk, publicLine } = make();
    expect(publicLineOf(loadJwkKey(JSON.stringify(jwk), ''))).toBe(publicLine);
    expect(publicLineOf(loadJwkKey(JSON.stringify(jwk, null, 2), '*'))).toBe(publicLine); // a kid is meaningless for one key
  });

  it('a JWK Set: `*` or empty takes the first private key, a kid picks its key', () => {
    const a = exported('ed25519');
    const b = exported('ec', { namedCurve: 'P-256' });
    const { d: _d, ...publicOnly } = a.jwk;
    const set = JSON.stringify({
      keys: [
        { ...publicOnly, kid: 'public' },
        { ...a.jwk, kid: 'first' },
        { ...b.jwk, kid: 'second' },
      ],
    });
    expect(publicLineOf(loadJwkKey(set, ''))).toBe(a.publicLine);
    expect(publicLineOf(loadJwkKey(set, '*'))).toBe(a.publicLine);
    expect(publicLineOf(loadJwkKey(set, 'second'))).toBe(b.publicLine);
    expect(refusal(set, 'third').message).toBe('no key in the JWK Set has kid "third" (sshCertSubject)');
    expect(refusal(set, 'public').message).toMatch(/public key; a private key .* is needed/);
    expect(refusal(JSON.stringify({ keys: [publicOnly] })).message).toBe('the JWK Set holds no private key');
  });

  it('a public JWK: a private key is needed', () => {
    const { d: _d, ...publicOnly } = exported('rsa', { modulusLength: 2048 }).jwk;
    expect(refusal(JSON.stringify(publicOnly)).message).toBe('this JWK is a public key; a private key (with "d") is needed to sign');
  });

  it('key types SSH does not sign with', () => {
    const x25519 = crypto.generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' });
    expect(refusal(JSON.stringify(x25519)).message).toMatch(/^a JWK of type OKP X25519 cannot sign for SSH/);
    const secp256k1 = crypto.generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ format: 'jwk' });
    expect(refusal(JSON.stringify(secp256k1)).message).toMatch(/^a JWK of type EC secp256k1 cannot sign/);
    expect(refusal(JSON.stringify({ kty: 'oct', k: 'c2VjcmV0c2VjcmV0c2VjcmV0' })).message).toMatch(/^a JWK of type oct cannot sign/);
  });

  it('a private part that does not belong to the public one (refused by the import on Node 26, by our own check before)', () => {
    const ec = exported('ec', { namedCurve: 'P-256' }).jwk;
    const other = exported('ec', { namedCurve: 'P-256' }).jwk;
    expect(refusal(JSON.stringify({ ...ec, x: other.x, y: other.y })).message).toBe('the EC JWK is damaged: its private part does not match its public key');
    const rsa = exported('rsa', { modulusLength: 2048 }).jwk;
    const otherRsa = exported('rsa', { modulusLength: 2048 }).jwk;
    expect(refusal(JSON.stringify({ ...rsa, n: otherRsa.n })).message).toBe('the RSA JWK is damaged: its private part does not match its public key');
  });

  it('malformed JSON, a JSON array, a JWK with a damaged member', () => {
    expect(refusal('{"kty":"EC", "d": "c2VjcmV0c2VjcmV0"').message).toBe('the JWK is not valid JSON');
    expect(refusal('[]').message).toBe('the JWK is not a JSON object');
    const { jwk } = exported('ec', { namedCurve: 'P-256' });
    expect(refusal(JSON.stringify({ ...jwk, x: 'AAAA' })).message).toBe('the EC JWK is malformed (a member is missing or not base64url)');
  });
});
