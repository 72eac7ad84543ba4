// The key-type registry (ts/protocol/key-types.ts) against ssh-keygen: every key type it knows
// is read from a key ssh-keygen made, with the bit length ssh-keygen -l reports; every
// signature algorithm is made by the key loader and verified by every crypto provider; the
// default lists are the ones revtun has always offered, and no legacy algorithm is in them
// but the documented ssh-rsa of SSHPubKeyAuthSigAlgorithms.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CA_SIGNATURE_ALGORITHMS,
  CERTIFICATE_ALGORITHM_SPECS,
  DEFAULT_HOST_KEY_ALGORITHMS,
  DEFAULT_PUBKEY_SIGNATURE_ALGORITHMS,
  KEY_TYPES,
  SIGNATURE_ALGORITHMS,
  X509_ALGORITHMS,
  algorithmsOfKeyType,
  keyTypeSpec,
  signatureAlgorithmSpec,
} from '../../../ts/protocol/key-types.js';
import { parsePublicKey, publicKeyBits, signatureAlgorithmsFor, keyTypeForAlgorithm } from '../../../ts/protocol/publickey.js';
import { createSigner, loadPrivateKey } from '../../../ts/crypto/keys.js';
import { CRYPTO_PROVIDER_NAMES, loadCryptoProvider } from '../../../ts/crypto/select.js';
import { generateKey } from '../../helpers/sshd.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-key-types-'));

const KEYS: { keyType: string; make: () => ReturnType<typeof generateKey> }[] = [
  { keyType: 'ssh-ed25519', make: () => generateKey(dir, 'ed25519', 'ed25519') },
  { keyType: 'ecdsa-sha2-nistp256', make: () => generateKey(dir, 'ecdsa256', 'ecdsa', { bits: 256 }) },
  { keyType: 'ecdsa-sha2-nistp384', make: () => generateKey(dir, 'ecdsa384', 'ecdsa', { bits: 384 }) },
  { keyType: 'ecdsa-sha2-nistp521', make: () => generateKey(dir, 'ecdsa521', 'ecdsa', { bits: 521 }) },
  { keyType: 'ssh-rsa', make: () => generateKey(dir, 'rsa3072', 'rsa', { bits: 3072 }) },
  { keyType: 'ssh-dss', make: () => generateKey(dir, 'dsa', 'dsa') },
];

function sshKeygenBits(path: string): number {
  return Number(execFileSync('ssh-keygen', ['-l', '-f', `${path}.pub`], { encoding: 'utf8' }).split(/\s+/)[0]);
}

function providers() {
  return CRYPTO_PROVIDER_NAMES.flatMap((name) => {
    try {
      return [loadCryptoProvider(name)];
    } catch {
      return []; // a provider that did not build here; providers.test.ts reports it
    }
  });
}

describe('the key-type registry', () => {
  it('names each key type and algorithm once, and every algorithm belongs to a known key type', () => {
    expect(new Set(KEY_TYPES.map((k) => k.name)).size).toBe(KEY_TYPES.length);
    expect(new Set(SIGNATURE_ALGORITHMS.map((a) => a.name)).size).toBe(SIGNATURE_ALGORITHMS.length);
    for (const algorithm of SIGNATURE_ALGORITHMS) expect(keyTypeSpec(algorithm.keyType), algorithm.name).toBeDefined();
    for (const keyType of KEY_TYPES) expect(algorithmsOfKeyType(keyType.name).length, keyType.name).toBeGreaterThan(0);
  });

  it('rests every X.509 algorithm on a known key type and a signature algorithm of that type', () => {
    for (const x509 of X509_ALGORITHMS) {
      expect(keyTypeSpec(x509.keyType), x509.name).toBeDefined();
      expect(signatureAlgorithmSpec(x509.verifyAs)?.keyType, x509.name).toBe(x509.keyType);
    }
    expect(X509_ALGORITHMS.filter((a) => a.legacy).map((a) => a.name)).toEqual(['x509v3-ssh-rsa', 'x509v3-ssh-dss']); // the SHA-1 ones;
  });

  it('keeps the default lists revtun has always had', () => {
    expect(DEFAULT_HOST_KEY_ALGORITHMS).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256']);
    expect(CA_SIGNATURE_ALGORITHMS).toEqual(DEFAULT_HOST_KEY_ALGORITHMS);
    expect(DEFAULT_PUBKEY_SIGNATURE_ALGORITHMS).toEqual(['ssh-rsa', 'rsa-sha2-256', 'rsa-sha2-512', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-ed25519']);
    const legacy = SIGNATURE_ALGORITHMS.filter((a) => a.legacy).map((a) => a.name);
    expect(legacy).toEqual(['ssh-rsa', 'ssh-dss']);
    expect(DEFAULT_HOST_KEY_ALGORITHMS.filter((a) => legacy.includes(a))).toEqual([]);
  });

  it('derives the certificate algorithms, the rsa-sha2 ones carried in ssh-rsa-cert-v01 blobs', () => {
    expect(CERTIFICATE_ALGORITHM_SPECS['rsa-sha2-512-cert-v01@openssh.com']).toEqual({ blobType: 'ssh-rsa-cert-v01@openssh.com', plainType: 'ssh-rsa', signature: 'rsa-sha2-512' });
    expect(CERTIFICATE_ALGORITHM_SPECS['ssh-ed25519-cert-v01@openssh.com']).toEqual({ blobType: 'ssh-ed25519-cert-v01@openssh.com', plainType: 'ssh-ed25519', signature: 'ssh-ed25519' });
  });

  it('maps algorithm names to key types and back, strongest RSA algorithm first', () => {
    expect(signatureAlgorithmsFor('ssh-rsa')).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect(keyTypeForAlgorithm('rsa-sha2-256')).toBe('ssh-rsa');
    expect(keyTypeForAlgorithm('ecdsa-sha2-nistp384')).toBe('ecdsa-sha2-nistp384');
    expect(signatureAlgorithmSpec('rsa-sha2-512')?.agentSignFlag).toBe(4);
    expect(signatureAlgorithmSpec('no-such-algorithm')).toBeUndefined();
  });

  it.each(KEYS)('reads a $keyType key ssh-keygen made, with the bits ssh-keygen -l reports', ({ keyType, make }) => {
    const key = make();
    const blob = new Uint8Array(Buffer.from(key.publicLine.split(/\s+/)[1]!, 'base64'));
    const parsed = parsePublicKey(blob);
    expect(publicKeyBits(parsed)).toBe(sshKeygenBits(key.privatePath));
    const signer = createSigner(loadPrivateKey(key.privateText));
    expect(signer.keyType).toBe(keyType);
    expect(Buffer.from(signer.publicKey).equals(Buffer.from(blob))).toBe(true);
    // Every algorithm of the key type is made here and verified by every provider.
    const data = new TextEncoder().encode(`signed by a ${keyType} key`);
    for (const algorithm of algorithmsOfKeyType(keyType)) {
      const signature = signer.sign(algorithm.name, data);
      for (const provider of providers()) {
        expect(provider.verify(blob, algorithm.name, signature, data), `${provider.name} ${algorithm.name}`).toBe(true);
        expect(provider.verify(blob, algorithm.name, signature, new TextEncoder().encode('other data')), `${provider.name} ${algorithm.name}`).toBe(false);
      }
    }
  });

  it('refuses to sign with an algorithm of another key type', () => {
    const signer = createSigner(loadPrivateKey(generateKey(dir, 'ed25519-other', 'ed25519').privateText));
    expect(() => signer.sign('rsa-sha2-256', new Uint8Array(4))).toThrow(/cannot make rsa-sha2-256 signatures/);
  });
});
