// DSA (ssh-dss, RFC 4253 §6.6) keys from every form ssh-keygen and openssl write them in:
// OpenSSH (plain and passphrase-protected), PEM "DSA PRIVATE KEY", PKCS#8, and DER through the
// key stores; each signs 40-byte r||s signatures that ssh-keygen's own public key verifies
// with every crypto provider. Public blobs a peer could send with numbers out of bounds are
// refused before any arithmetic is done with them.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Reader, Writer } from '../../../ts/protocol/wire.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { parsePublicKey, parseSignature, publicKeyBits } from '../../../ts/protocol/publickey.js';
import { createSigner, loadPrivateKey, publicKeyOfPrivateText } from '../../../ts/crypto/keys.js';
import { loadCertStoreKey, SshCertStoreType } from '../../../ts/tunnel/cert-store.js';
import { CRYPTO_PROVIDER_NAMES, loadCryptoProvider } from '../../../ts/crypto/select.js';
import { generateKey } from '../../helpers/sshd.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-dsa-'));
const openssh = generateKey(dir, 'id_dsa', 'dsa');
const pem = generateKey(dir, 'id_dsa_pem', 'dsa', { format: 'PEM' });
const pkcs8 = generateKey(dir, 'id_dsa_pkcs8', 'dsa', { format: 'PKCS8' });
const encrypted = generateKey(dir, 'id_dsa_enc', 'dsa', { passphrase: 'dsa passphrase' });
const derPath = join(dir, 'id_dsa.der');
execFileSync('openssl', ['dsa', '-in', pem.privatePath, '-outform', 'DER', '-out', derPath], { stdio: 'pipe' });

function blobOf(publicLine: string): Uint8Array {
  return new Uint8Array(Buffer.from(publicLine.split(/\s+/)[1]!, 'base64'));
}

const providers = CRYPTO_PROVIDER_NAMES.flatMap((name) => {
  try {
    return [loadCryptoProvider(name)];
  } catch {
    return [];
  }
});

describe('DSA private keys', () => {
  it.each([
    ['OpenSSH', openssh, undefined],
    ['PEM (DSA PRIVATE KEY)', pem, undefined],
    ['PKCS#8', pkcs8, undefined],
    ['OpenSSH with a passphrase', encrypted, 'dsa passphrase'],
  ])('loads a %s key and signs ssh-dss signatures its .pub verifies', (_form, key, passphrase) => {
    const signer = createSigner(loadPrivateKey(key.privateText, passphrase));
    const blob = blobOf(key.publicLine);
    expect(signer.keyType).toBe('ssh-dss');
    expect(Buffer.from(signer.publicKey).equals(Buffer.from(blob))).toBe(true);
    const data = new TextEncoder().encode('exchange hash');
    const signature = signer.sign('ssh-dss', data);
    const parsed = parseSignature(signature);
    expect(parsed.algorithm).toBe('ssh-dss');
    expect(parsed.signature.length).toBe(40);
    for (const provider of providers) {
      expect(provider.verify(blob, 'ssh-dss', signature, data), provider.name).toBe(true);
      expect(provider.verify(blob, 'ssh-dss', signature, new TextEncoder().encode('other')), provider.name).toBe(false);
    }
    expect(() => signer.sign('rsa-sha2-256', data)).toThrow(/cannot make rsa-sha2-256/);
  });

  it('gives the public half of an OpenSSH DSA key without its passphrase', () => {
    expect(publicKeyOfPrivateText(encrypted.privateText)?.keyType).toBe('ssh-dss');
  });

  it('reads a 1024-bit key, as ssh-keygen -l reports it', () => {
    expect(publicKeyBits(parsePublicKey(blobOf(openssh.publicLine)))).toBe(1024);
  });

  it('loads from the key stores: PEMKeyFile, and DER in an Auto store', () => {
    const fromFile = loadCertStoreKey({ type: SshCertStoreType.PEMKeyFile, store: pem.privatePath, password: '', subject: '' });
    expect(fromFile.asymmetricKeyType).toBe('dsa');
    const der = readFileSync(derPath);
    const fromDer = loadCertStoreKey({ type: SshCertStoreType.Auto, store: der.toString('base64'), password: '', subject: '' });
    expect(Buffer.from(createSigner(fromDer).publicKey).equals(Buffer.from(blobOf(pem.publicLine)))).toBe(true);
  });

  it('refuses an OpenSSH DSA key whose private part does not match its public key', () => {
    // The same file with another x in its private section (PROTOCOL.key): damaged or forged. The
    // other x is the key's own plus one, so that it stays below q (another key's x, from another
    // group, is above this q half the time, and is refused as malformed before the comparison).
    const sections = (text: string) => {
      const body = Buffer.from(text.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
      const r = new Reader(body, 'openssh-key-v1\0'.length);
      const head = [r.utf8(), r.utf8(), r.string(), r.uint32(), r.string()] as const;
      const secret = new Reader(r.string());
      const check = secret.uint32();
      secret.uint32();
      const numbers = [secret.utf8(), secret.mpint(), secret.mpint(), secret.mpint(), secret.mpint(), secret.mpint()] as const;
      return { head, check, numbers };
    };
    const mine = sections(openssh.privateText);
    const [type, p, q, g, y, x] = mine.numbers;
    const big = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
    const otherX = big(x) + 1n < big(q) ? big(x) + 1n : big(x) - 1n;
    const otherBytes = Uint8Array.from(Buffer.from(otherX.toString(16).padStart(2 * Math.ceil(otherX.toString(16).length / 2), '0'), 'hex'));
    const secret = new Writer(1024).uint32(mine.check).uint32(mine.check).string(type).mpint(p).mpint(q).mpint(g).mpint(y).mpint(otherBytes).string('mixed');
    const [cipher, kdf, kdfOptions, count, publicBlob] = mine.head;
    const file = new Writer(2048).raw(new TextEncoder().encode('openssh-key-v1\0')).string(cipher).string(kdf).string(kdfOptions).uint32(count).string(publicBlob).string(secret.finish()).finish();
    const text = `-----BEGIN OPENSSH PRIVATE KEY-----\n${Buffer.from(file).toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
    expect(() => loadPrivateKey(text)).toThrow(/does not match its public key/);
  });
});

describe('DSA public key blobs from a peer', () => {
  const [p, q, g, y] = (() => {
    const parts = blobOf(openssh.publicLine);
    const r = new (class {
      at = 0;
      next(): Uint8Array {
        const length = Buffer.from(parts).readUInt32BE(this.at);
        const out = parts.subarray(this.at + 4, this.at + 4 + length);
        this.at += 4 + length;
        return out;
      }
    })();
    r.next(); // "ssh-dss"
    return [r.next(), r.next(), r.next(), r.next()];
  })();
  const blob = (parts: Uint8Array[]) => {
    const w = new Writer(600).string('ssh-dss');
    for (const part of parts) w.string(part);
    return w.finish();
  };

  it("takes ssh-keygen's blob as it is", () => {
    expect(parsePublicKey(blob([p!, q!, g!, y!])).type).toBe('ssh-dss');
  });

  it.each([
    ['a p of 4096 bits', () => [Buffer.concat([Uint8Array.of(0), Buffer.alloc(512, 0xff)]), q!, g!, y!], /DSA key of 4096 bits/],
    ['a p of 512 bits', () => [Buffer.concat([Uint8Array.of(0), Buffer.alloc(64, 0xff)]), q!, g!, y!], /DSA key of 512 bits/],
    ['a q of 256 bits', () => [p!, Buffer.concat([Uint8Array.of(0), Buffer.alloc(32, 0xff)]), g!, y!], /subgroup order of 256 bits/],
    ['a generator of 1', () => [p!, q!, Uint8Array.of(1), y!], /out of range/],
    ['a public value of p', () => [p!, q!, g!, p!], /out of range/],
  ])('refuses %s (1031)', (_what, parts, message) => {
    let error: unknown;
    try {
      parsePublicKey(blob(parts()));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1031);
    expect((error as SshError).message).toMatch(message);
  });

  it('refuses a signature that is not 40 bytes', () => {
    const signer = createSigner(loadPrivateKey(openssh.privateText));
    const good = parseSignature(signer.sign('ssh-dss', Uint8Array.of(1))).signature;
    const longer = new Writer(64)
      .string('ssh-dss')
      .string(Buffer.concat([Uint8Array.of(0), good]))
      .finish();
    for (const provider of providers) expect(provider.verify(blobOf(openssh.publicLine), 'ssh-dss', longer, Uint8Array.of(1))).toBe(false);
  });
});
