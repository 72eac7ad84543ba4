// OpenSSH certificates (PROTOCOL.certkeys): certificates made by ssh-keygen for every key
// type decode to the fields ssh-keygen was given and their CA signatures verify; hand-built
// certificates broken at the byte level (truncated, padded, unknown types, repeated options,
// a certificate as CA) are refused; the host checks name what is wrong; and the client core
// checks a host certificate against its own clock before the application is asked.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as crypto from 'node:crypto';
import { Writer } from '../../../ts/protocol/wire.js';
import { MSG } from '../../../ts/protocol/messages.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { CERT_TYPE_HOST, CERT_TYPE_USER, FOREVER, checkHostCertificate, parseCertificate, verifyCertificateSignature } from '../../../ts/protocol/certificates.js';
import { createSigner } from '../../../ts/crypto/keys.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { generateKey } from '../../helpers/sshd.js';
import { Pair, TestServer, randomEd25519Key } from '../../helpers/peer.js';
import type { HostKeyInfo } from '../../../ts/protocol/client.js';

const provider = new NodeCryptoProvider();
const dir = mkdtempSync(join(tmpdir(), 'revtun-certs-'));

function blobOf(publicLine: string): Uint8Array {
  return new Uint8Array(Buffer.from(publicLine.trim().split(/\s+/)[1]!, 'base64'));
}

/** Signs `hostKeyPath`.pub with ssh-keygen and returns the certificate blob. */
function sshKeygenCertificate(caPath: string, keyPath: string, args: string[]): Uint8Array {
  execFileSync('ssh-keygen', ['-q', '-s', caPath, ...args, `${keyPath}.pub`], { stdio: 'pipe' });
  return blobOf(readFileSync(`${keyPath}-cert.pub`, 'utf8'));
}

interface Fields {
  blobType?: string;
  nonce?: Uint8Array;
  type?: number;
  keyId?: string;
  principals?: string[];
  validAfter?: bigint;
  validBefore?: bigint;
  criticalOptions?: [string, Uint8Array][];
  extensions?: [string, Uint8Array][];
  signatureKey?: Uint8Array;
  signatureAlgorithm?: string;
}

const ca = createSigner(randomEd25519Key());
const hostPrivate = randomEd25519Key();
const hostSigner = createSigner(hostPrivate);
/** The 32-byte Ed25519 key inside a plain blob (string type, string key). */
const hostKeyBytes = hostSigner.publicKey.subarray(4 + 11 + 4);

/** Builds an ed25519 certificate of `hostSigner` byte by byte, signed by `ca` (or `signer`). */
function buildCertificate(fields: Fields = {}, signer = ca): Uint8Array {
  const options = (list: [string, Uint8Array][]) => {
    const w = new Writer();
    for (const [name, data] of list) w.string(name).string(data);
    return w.finish();
  };
  const principals = new Writer();
  for (const p of fields.principals ?? ['gw.example.com']) principals.string(p);
  const body = new Writer(1024)
    .string(fields.blobType ?? 'ssh-ed25519-cert-v01@openssh.com')
    .string(fields.nonce ?? crypto.randomBytes(32))
    .string(hostKeyBytes)
    .uint64(42n)
    .uint32(fields.type ?? CERT_TYPE_HOST)
    .string(fields.keyId ?? 'gw host key')
    .string(principals.finish())
    .uint64(fields.validAfter ?? 0n)
    .uint64(fields.validBefore ?? FOREVER)
    .string(options(fields.criticalOptions ?? []))
    .string(options(fields.extensions ?? []))
    .string(new Uint8Array(0))
    .string(fields.signatureKey ?? signer.publicKey)
    .finish();
  const signature = signer.sign(fields.signatureAlgorithm ?? (signer.keyType === 'ssh-rsa' ? 'rsa-sha2-512' : signer.keyType), body);
  return new Writer(body.length + signature.length + 8).raw(body).string(signature).finish();
}

function malformedMessage(blob: Uint8Array): string {
  try {
    parseCertificate(blob);
  } catch (error) {
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1031);
    return (error as SshError).message;
  }
  throw new Error('the certificate was accepted');
}

describe('certificates made by ssh-keygen', () => {
  const cas = {
    ed25519: generateKey(dir, 'ca_ed25519', 'ed25519'),
    ecdsa: generateKey(dir, 'ca_ecdsa', 'ecdsa', { bits: 384 }),
    rsa: generateKey(dir, 'ca_rsa', 'rsa', { bits: 2048 }),
  };
  it.each([
    ['ed25519', 'ed25519', undefined, 'ssh-ed25519-cert-v01@openssh.com', 'ssh-ed25519'],
    ['ecdsa', 'ecdsa', 256, 'ecdsa-sha2-nistp256-cert-v01@openssh.com', 'ssh-ed25519'],
    ['ecdsa', 'rsa', 384, 'ecdsa-sha2-nistp384-cert-v01@openssh.com', 'rsa-sha2-512'],
    ['ecdsa', 'ed25519', 521, 'ecdsa-sha2-nistp521-cert-v01@openssh.com', 'ssh-ed25519'],
    ['rsa', 'ecdsa', 2048, 'ssh-rsa-cert-v01@openssh.com', 'ecdsa-sha2-nistp384'],
  ] as const)('a %s host key signed by an %s CA (%s bits)', (keyType, caType, bits, blobType, caAlgorithm) => {
    const caKey = keyType === 'ed25519' && caType === 'ed25519' ? cas.ed25519 : cas[caType];
    const host = generateKey(dir, `host_${keyType}_${bits ?? 'x'}_${caType}`, keyType, bits ? { bits } : {});
    const blob = sshKeygenCertificate(caKey.privatePath, host.privatePath, ['-h', '-I', 'gw-1', '-n', 'gw.example.com,10.0.0.1', '-z', '77', '-V', '20260101000000Z:20270101000000Z']);
    const cert = parseCertificate(blob);
    expect(cert.blobType).toBe(blobType);
    expect(cert.type).toBe(CERT_TYPE_HOST);
    expect(cert.keyId).toBe('gw-1');
    expect(cert.serial).toBe(77n);
    expect(cert.principals).toEqual(['gw.example.com', '10.0.0.1']);
    expect(cert.validAfter).toBe(BigInt(Date.UTC(2026, 0, 1) / 1000));
    expect(cert.validBefore).toBe(BigInt(Date.UTC(2027, 0, 1) / 1000));
    expect(cert.criticalOptions).toEqual([]);
    expect(Buffer.from(cert.publicKeyBlob).equals(Buffer.from(blobOf(host.publicLine)))).toBe(true);
    expect(Buffer.from(cert.signatureKey).equals(Buffer.from(blobOf(caKey.publicLine)))).toBe(true);
    expect(verifyCertificateSignature(provider, cert)).toBe(true);
    if (caType === 'rsa') expect(new TextDecoder().decode(cert.signature.subarray(4, 16))).toBe(caAlgorithm);
    const at = (iso: string) => BigInt(Date.parse(iso) / 1000);
    expect(checkHostCertificate(cert, '10.0.0.1', at('2026-06-01T00:00:00Z'))).toBeNull();
    expect(checkHostCertificate(cert, 'gw.example.com', at('2025-06-01T00:00:00Z'))).toMatch(/is not yet valid \(valid from 2026-01-01 00:00:00 UTC to 2027-01-01 00:00:00 UTC\)/);
    expect(checkHostCertificate(cert, 'gw.example.com', at('2027-01-01T00:00:00Z'))).toMatch(/has expired/);
    expect(checkHostCertificate(cert, 'other.example.com', at('2026-06-01T00:00:00Z'))).toMatch(/is not valid for "other.example.com" \(its principals: "gw.example.com", "10.0.0.1"\)/);
  });

  it('a user certificate is not a host certificate', () => {
    const user = generateKey(dir, 'user_key', 'ed25519');
    const cert = parseCertificate(sshKeygenCertificate(cas.ed25519.privatePath, user.privatePath, ['-I', 'alice', '-n', 'alice']));
    expect(cert.type).toBe(CERT_TYPE_USER);
    expect(cert.extensions.map((e) => e.name)).toContain('permit-port-forwarding');
    expect(checkHostCertificate(cert, 'alice', 1n)).toMatch(/not a host certificate/);
  });

  it('a certificate changed after signing fails its CA signature', () => {
    const host = generateKey(dir, 'host_tampered', 'ed25519');
    const blob = sshKeygenCertificate(cas.ed25519.privatePath, host.privatePath, ['-h', '-I', 'gw', '-n', 'gw']);
    const cert = parseCertificate(blob);
    const keyIdAt = Buffer.from(blob).indexOf('gw', 100);
    const tampered = blob.slice();
    tampered[keyIdAt] = 'x'.charCodeAt(0);
    expect(verifyCertificateSignature(provider, parseCertificate(tampered))).toBe(false);
    expect(verifyCertificateSignature(provider, cert)).toBe(true);
  });
});

describe('malformed certificates', () => {
  it('refuses the certificate truncated at every length', () => {
    const blob = buildCertificate();
    expect(verifyCertificateSignature(provider, parseCertificate(blob))).toBe(true);
    for (let length = 0; length < blob.length; length++) {
      expect(malformedMessage(blob.subarray(0, length))).toMatch(/^malformed OpenSSH certificate/);
    }
  });

  it('refuses trailing bytes', () => {
    const blob = buildCertificate();
    const padded = new Uint8Array(blob.length + 1);
    padded.set(blob);
    expect(malformedMessage(padded)).toMatch(/1 trailing bytes after OpenSSH certificate/);
  });

  it('refuses an unknown certificate type, an unknown key type and a key type other than negotiated', () => {
    expect(malformedMessage(buildCertificate({ type: 3 }))).toMatch(/unknown certificate type 3/);
    expect(malformedMessage(buildCertificate({ blobType: 'sk-ssh-ed25519-cert-v01@openssh.com' }))).toMatch(/unknown certificate key type "sk-ssh-ed25519-cert-v01@openssh.com"/);
    expect(() => parseCertificate(buildCertificate(), 'ssh-rsa-cert-v01@openssh.com')).toThrow(/the server sent a ssh-ed25519-cert-v01@openssh.com for the negotiated ssh-rsa-cert-v01@openssh.com/);
  });

  it('refuses an option named twice and a principal with a NUL', () => {
    const empty = new Uint8Array(0);
    expect(
      malformedMessage(
        buildCertificate({
          extensions: [
            ['a@example.com', empty],
            ['a@example.com', empty],
          ],
        }),
      ),
    ).toMatch(/extension "a@example.com" appears twice/);
    expect(malformedMessage(buildCertificate({ principals: ['gw\0evil'] }))).toMatch(/NUL/);
  });

  it('refuses a certificate as the CA key (no chained certificates)', () => {
    expect(malformedMessage(buildCertificate({ signatureKey: buildCertificate() }))).toMatch(/unsupported public key type ssh-ed25519-cert-v01@openssh.com/);
  });

  it('names unknown critical options and an ssh-rsa (SHA-1) CA signature as problems', () => {
    const withOption = parseCertificate(buildCertificate({ criticalOptions: [['force-command', new Writer().string('true').finish()]] }));
    expect(checkHostCertificate(withOption, 'gw.example.com', 1n)).toMatch(/critical options revtun does not know \("force-command"\)/);
    const rsaCa = createSigner(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    const sha1 = parseCertificate(buildCertificate({ signatureAlgorithm: 'ssh-rsa' }, rsaCa));
    expect(verifyCertificateSignature(provider, sha1)).toBe(true);
    expect(checkHostCertificate(sha1, 'gw.example.com', 1n)).toMatch(/signed with ssh-rsa, which is not accepted/);
  });

  it('accepts an empty principals list for any host, as ssh 9.2 does', () => {
    const cert = parseCertificate(buildCertificate({ principals: [] }));
    expect(checkHostCertificate(cert, 'anything', 1n)).toBeNull();
  });
});

describe('the client core with a host certificate', () => {
  const algorithms = { kex: ['curve25519-sha256'], hostKey: ['ssh-ed25519-cert-v01@openssh.com', 'ssh-ed25519'], cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256'], compression: ['none'] };
  const server = (blob: Uint8Array) => new TestServer({ hostKey: hostPrivate, hostKeyBlob: blob, kexInit: { hostKeyAlgorithms: ['ssh-ed25519-cert-v01@openssh.com'] } });

  it('verifies the certificate and gives its fields to verifyHostKey, judged by the core clock', () => {
    const seen: HostKeyInfo[] = [];
    const blob = buildCertificate({ validAfter: 0n, validBefore: 100n, principals: ['gw.example.com'] });
    const pair = new Pair(server(blob), {
      algorithms,
      hostCertificateName: 'gw.example.com',
      verifyHostKey: (info) => {
        seen.push(info);
        return true;
      },
    });
    pair.now = 50_000; // 50 s after the epoch: inside the window
    pair.start();
    expect(pair.has('authenticated')).toBe(true);
    const info = seen[0]!;
    expect(info.algorithm).toBe('ssh-ed25519-cert-v01@openssh.com');
    expect(info.keyType).toBe('ssh-ed25519');
    expect(Buffer.from(info.hostKey).equals(Buffer.from(hostSigner.publicKey))).toBe(true);
    expect(info.certificate).toMatchObject({ keyId: 'gw host key', serial: 42n, principals: ['gw.example.com'], caKeyType: 'ssh-ed25519', problem: null });
    expect(Buffer.from(info.certificate!.caKey).equals(Buffer.from(ca.publicKey))).toBe(true);
  });

  it('an expired certificate has a problem, and a refusal says so with 1030 before any auth message', () => {
    const blob = buildCertificate({ validAfter: 0n, validBefore: 100n });
    const pair = new Pair(server(blob), { algorithms, hostCertificateName: 'gw.example.com', verifyHostKey: (info) => info.certificate?.problem === null });
    pair.now = 100_000; // valid before 100 s: expired at 100 s
    pair.start();
    expect(pair.closedWith?.code).toBe(1030);
    expect(pair.closedWith?.message).toMatch(/host certificate .* was not accepted: the host certificate has expired/);
    expect(pair.server.received).not.toContain(MSG.USERAUTH_REQUEST);
  });

  it('passes on the reason verifyHostKey gives', () => {
    const pair = new Pair(server(buildCertificate()), { algorithms, hostCertificateName: 'gw.example.com', verifyHostKey: () => ({ refused: 'not our CA' }) }).start();
    expect(pair.closedWith?.code).toBe(1030);
    expect(pair.closedWith?.message).toBe('not our CA');
  });

  it('a forged CA signature ends with 1031 without asking the application', () => {
    const blob = buildCertificate().slice();
    blob[blob.length - 1]! ^= 1;
    let asked = false;
    const pair = new Pair(server(blob), { algorithms, verifyHostKey: () => (asked = true) }).start();
    expect(pair.closedWith?.code).toBe(1031);
    expect(pair.closedWith?.message).toMatch(/CA signature .* is invalid/);
    expect(asked).toBe(false);
  });

  it('a re-exchange that shows a renewed certificate of the same key goes on (was 1030: the certificate bytes were compared)', () => {
    const hooks = { hostKey: hostPrivate, hostKeyBlob: buildCertificate({ keyId: 'first' }), kexInit: { hostKeyAlgorithms: ['ssh-ed25519-cert-v01@openssh.com'] } };
    const pair = new Pair(new TestServer(hooks), { algorithms, hostCertificateName: 'gw.example.com', verifyHostKey: () => true }).start();
    expect(pair.has('authenticated')).toBe(true);
    hooks.hostKeyBlob = buildCertificate({ keyId: 'renewed' }); // a fresh nonce and key ID: other bytes, same key
    expect(pair.client.rekey().ok).toBe(true);
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(pair.server.received.filter((id) => id === MSG.NEWKEYS)).toHaveLength(2);
  });

  it('a re-exchange signed by another host key ends with 1030', () => {
    const pair = new Pair(new TestServer({ hostKey: hostPrivate, kexInit: { hostKeyAlgorithms: ['ssh-ed25519'] } }), { algorithms, verifyHostKey: () => true }).start();
    expect(pair.has('authenticated')).toBe(true);
    pair.server.useHostKey(randomEd25519Key());
    expect(pair.client.rekey().ok).toBe(true);
    pair.run();
    expect(pair.closedWith?.code).toBe(1030);
    expect(pair.closedWith?.message).toMatch(/different host key during key re-exchange/);
  });

  it('a certificate for another key than the one that signs the exchange ends with 1031', () => {
    const pair = new Pair(new TestServer({ hostKeyBlob: buildCertificate(), kexInit: { hostKeyAlgorithms: ['ssh-ed25519-cert-v01@openssh.com'] } }), { algorithms }).start();
    expect(pair.closedWith?.code).toBe(1031);
    expect(pair.closedWith?.message).toMatch(/signature over the exchange hash is invalid/);
  });
});
