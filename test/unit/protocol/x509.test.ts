// X.509 host keys (RFC 6187): the chain blob is bounded and validated before any certificate
// reaches OpenSSL; the leaf's key becomes the SSH key that signs the exchange hash; the leaf's
// validity window, names and purpose are checked; a chain is trusted only when signatures
// lead from the leaf to a trusted CA certificate; and the client core refuses a hostile chain
// before the application is asked. Certificates are made with openssl.

import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as crypto from 'node:crypto';
import { Writer } from '../../../ts/protocol/wire.js';
import { SshError } from '../../../ts/protocol/errors.js';
import { MAX_CERTIFICATE_BYTES, MAX_CHAIN_CERTIFICATES, encodeX509ChainBlob, parseX509ChainBlob, x509AlgorithmSpec, x509SignatureAsPlain } from '../../../ts/protocol/x509-chain.js';
import { checkX509Leaf, decodeX509HostKey, describeX509HostKey, verifyX509Chain } from '../../../ts/protocol/x509-trust.js';
import { parseCaCertificates, parseCaKeys } from '../../../ts/tunnel/hostkeys.js';
import { DEFAULT_HOST_KEY, preferX509Algorithms } from '../../../ts/tunnel/settings.js';
import { makeCa, makeLeaf } from '../../helpers/x509.js';
import { Pair, TestServer } from '../../helpers/peer.js';
import { MSG } from '../../../ts/protocol/messages.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-x509-unit-'));
const ca = makeCa(dir, 'ca', 'revtun test CA');
const otherCa = makeCa(dir, 'other-ca', 'another CA');
const intermediate = makeLeaf(dir, 'intermediate', ca, { cn: 'revtun test intermediate', altNames: '', ca: true });
const leaf = makeLeaf(dir, 'leaf', ca, { cn: 'localhost', altNames: 'DNS:localhost,IP:127.0.0.1' });
const viaIntermediate = makeLeaf(dir, 'via-intermediate', intermediate, { cn: 'gw.example.com', altNames: 'DNS:gw.example.com' });
const expired = makeLeaf(dir, 'expired', ca, { cn: 'localhost', altNames: 'DNS:localhost', notBefore: '20200101000000Z', notAfter: '20200201000000Z' });
const clientOnly = makeLeaf(dir, 'client-only', ca, { cn: 'localhost', altNames: 'DNS:localhost', extendedKeyUsage: 'clientAuth' });
const rsaLeaf = makeLeaf(dir, 'rsa-leaf', ca, { cn: 'localhost', altNames: 'DNS:localhost', kind: 'rsa-2048' });
const smallRsaLeaf = makeLeaf(dir, 'rsa-small', ca, { cn: 'localhost', altNames: 'DNS:localhost', kind: 'rsa-1024' });

const P256 = x509AlgorithmSpec('x509v3-ecdsa-sha2-nistp256')!;
const now = Date.now();

function refusal(run: () => unknown): SshError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SshError);
    return error as SshError;
  }
  throw new Error('expected a refusal');
}

function trusted(...pems: string[]) {
  return parseCaCertificates(pems.join('\n'));
}

describe('the RFC 6187 chain blob', () => {
  it('round-trips a chain with OCSP responses', () => {
    const blob = encodeX509ChainBlob({ algorithm: P256.name, certificates: [leaf.der, ca.der], ocspResponses: [Uint8Array.of(0x30, 0)] });
    const chain = parseX509ChainBlob(blob, P256.name);
    expect(chain.certificates.map((c) => Buffer.from(c).toString('hex'))).toEqual([leaf.der, ca.der].map((c) => Buffer.from(c).toString('hex')));
    expect(chain.ocspResponses).toHaveLength(1);
  });

  it.each([
    ['another algorithm name', () => encodeX509ChainBlob({ algorithm: 'x509v3-ssh-rsa', certificates: [leaf.der], ocspResponses: [] }), /for the negotiated x509v3-ecdsa-sha2-nistp256/],
    ['no certificate', () => new Writer(64).string(P256.name).uint32(0).uint32(0).finish(), /no certificate/],
    [
      'too many certificates',
      () =>
        new Writer(64)
          .string(P256.name)
          .uint32(MAX_CHAIN_CERTIFICATES + 1)
          .finish(),
      new RegExp(`${MAX_CHAIN_CERTIFICATES + 1} certificates`),
    ],
    ['a count larger than the blob', () => new Writer(64).string(P256.name).uint32(3).string(leaf.der).finish(), /malformed X\.509 host key/],
    [
      'a certificate over the size limit',
      () =>
        new Writer(64)
          .string(P256.name)
          .uint32(1)
          .string(new Uint8Array(MAX_CERTIFICATE_BYTES + 1))
          .uint32(0)
          .finish(),
      /bytes \(at most/,
    ],
    [
      'a certificate that is not DER',
      () => new Writer(64).string(P256.name).uint32(1).string(new TextEncoder().encode('not a certificate')).uint32(0).finish(),
      /certificate 1 is not a DER certificate/,
    ],
    ['too many OCSP responses', () => new Writer(64).string(P256.name).uint32(1).string(leaf.der).uint32(1000).finish(), /1000 OCSP responses/],
    ['trailing bytes', () => Buffer.concat([encodeX509ChainBlob({ algorithm: P256.name, certificates: [leaf.der], ocspResponses: [] }), Uint8Array.of(0)]), /malformed X\.509 host key/],
  ])('refuses %s (1031)', (_what, make, message) => {
    const error = refusal(() => parseX509ChainBlob(make(), P256.name));
    expect(error.code).toBe(1031);
    expect(error.message).toMatch(message);
  });

  it('refuses DER that OpenSSL cannot read as a certificate, naming its position', () => {
    const blob = encodeX509ChainBlob({ algorithm: P256.name, certificates: [leaf.der, Uint8Array.of(0x30, 0x03, 2, 1, 0)], ocspResponses: [] });
    expect(refusal(() => decodeX509HostKey(parseX509ChainBlob(blob, P256.name), P256)).message).toMatch(/certificate 2 cannot be decoded/);
  });
});

describe('the leaf key', () => {
  it("is the SSH key of the certificate, of the algorithm's type", () => {
    const decoded = decodeX509HostKey({ algorithm: P256.name, certificates: [leaf.der], ocspResponses: [] }, P256);
    expect(decoded.keyType).toBe('ecdsa-sha2-nistp256');
    const spki = crypto.createPublicKey({ key: leaf.pem, format: 'pem' }).export({ type: 'spki', format: 'der' });
    // The uncompressed point ends both the SPKI and the SSH blob.
    expect(Buffer.from(decoded.keyBlob.subarray(decoded.keyBlob.length - 65)).equals(spki.subarray(spki.length - 65))).toBe(true);
  });

  it('must match the negotiated algorithm', () => {
    const error = refusal(() => decodeX509HostKey({ algorithm: 'x509v3-ssh-rsa', certificates: [leaf.der], ocspResponses: [] }, x509AlgorithmSpec('x509v3-ssh-rsa')!));
    expect(error.message).toMatch(/holds a ecdsa-sha2-nistp256 key, not the ssh-rsa key x509v3-ssh-rsa needs/);
  });

  it('must have 2048 bits for x509v3-rsa2048-sha256', () => {
    const spec = x509AlgorithmSpec('x509v3-rsa2048-sha256')!;
    expect(decodeX509HostKey({ algorithm: spec.name, certificates: [rsaLeaf.der], ocspResponses: [] }, spec).keyType).toBe('ssh-rsa');
    expect(refusal(() => decodeX509HostKey({ algorithm: spec.name, certificates: [smallRsaLeaf.der], ocspResponses: [] }, spec)).message).toMatch(/at least 2048 bits; the certificate's has 1024/);
  });

  it('signs as RFC 6187 §3 names it: rsa2048-sha256 is verified as rsa-sha2-256, and another name is refused', () => {
    const spec = x509AlgorithmSpec('x509v3-rsa2048-sha256')!;
    const raw = Uint8Array.of(1, 2, 3);
    const plain = x509SignatureAsPlain(spec, new Writer(32).string('rsa2048-sha256').string(raw).finish());
    expect(Buffer.from(plain).equals(Buffer.from(new Writer(32).string('rsa-sha2-256').string(raw).finish()))).toBe(true);
    expect(refusal(() => x509SignatureAsPlain(spec, new Writer(32).string('ssh-rsa').string(raw).finish())).message).toMatch(/expected rsa2048-sha256/);
  });
});

describe('the leaf checks', () => {
  const X509 = crypto.X509Certificate;
  it('accept the leaf for its DNS name and its IP address', () => {
    expect(checkX509Leaf(new X509(leaf.pem), 'localhost', now)).toBeNull();
    expect(checkX509Leaf(new X509(leaf.pem), '127.0.0.1', now)).toBeNull();
  });

  it('refuse another name, quoting the name and the subjectAltName', () => {
    expect(checkX509Leaf(new X509(leaf.pem), '127.0.0.2', now)).toMatch(/not valid for "127\.0\.0\.2" \(its subjectAltName: DNS:localhost, IP Address:127\.0\.0\.1\)/);
    // The CN alone does not count.
    expect(checkX509Leaf(new X509(viaIntermediate.pem), 'revtun test intermediate', now)).toMatch(/not valid for/);
  });

  it('refuse an expired leaf and one not yet valid', () => {
    expect(checkX509Leaf(new X509(expired.pem), 'localhost', now)).toMatch(/has expired \(valid from 2020-01-01 00:00:00 UTC to 2020-02-01 00:00:00 UTC\)/);
    expect(checkX509Leaf(new X509(leaf.pem), 'localhost', now - 86_400_000)).toMatch(/not yet valid/);
  });

  it('refuse a leaf whose extended key usage leaves out SSH servers', () => {
    expect(checkX509Leaf(new X509(clientOnly.pem), 'localhost', now)).toMatch(/not for SSH servers/);
  });

  it('describe the leaf with one-line DNs', () => {
    const info = describeX509HostKey(decodeX509HostKey({ algorithm: P256.name, certificates: [leaf.der], ocspResponses: [] }, P256), null, now);
    expect(info.subject).toBe('CN=localhost, O=revtun test');
    expect(info.issuer).toBe('CN=revtun test CA, O=revtun test');
  });
});

describe('the chain', () => {
  it('is trusted when the leaf is signed by a trusted CA certificate', () => {
    expect(verifyX509Chain([leaf.der], trusted(ca.pem), now)).toEqual({ trusted: true, anchor: 'CN=revtun test CA, O=revtun test' });
    expect(verifyX509Chain([leaf.der, ca.der], trusted(otherCa.pem, ca.pem), now).trusted).toBe(true);
  });

  it('is trusted through an intermediate the server sends', () => {
    expect(verifyX509Chain([viaIntermediate.der, intermediate.der], trusted(ca.pem), now).trusted).toBe(true);
  });

  it('is not trusted without the intermediate, nor by another CA, and says where it ends', () => {
    expect(verifyX509Chain([viaIntermediate.der], trusted(ca.pem), now)).toEqual({
      trusted: false,
      reason: 'the X.509 host certificate is not signed by a trusted CA (the chain ends at issuer "CN=revtun test intermediate, O=revtun test")',
    });
    expect(verifyX509Chain([leaf.der, ca.der], trusted(otherCa.pem), now)).toMatchObject({ trusted: false, reason: expect.stringMatching(/not signed by a trusted CA/) });
  });

  it('is refused when a certificate is not signed by the next one', () => {
    expect(verifyX509Chain([leaf.der, otherCa.der], trusted(ca.pem), now).trusted).toBe(true); // the trusted CA signed the leaf: the rest is not needed
    expect(verifyX509Chain([viaIntermediate.der, otherCa.der], trusted(ca.pem), now)).toMatchObject({ trusted: false, reason: expect.stringMatching(/is not signed by the next certificate/) });
  });

  it('is refused when a server certificate poses as an intermediate', () => {
    const signedByLeaf = makeLeaf(dir, 'signed-by-leaf', leaf, { cn: 'evil.example', altNames: 'DNS:evil.example' });
    expect(verifyX509Chain([signedByLeaf.der, leaf.der], trusted(ca.pem), now)).toMatchObject({ trusted: false, reason: expect.stringMatching(/is not a CA certificate/) });
  });
});

describe('the limits CAs put on a path (RFC 5280 §6.1.4)', () => {
  // Read after the certificates are made: they are valid from the second they were signed.
  const now = () => Date.now() + 1000;
  const server = (issuer: ReturnType<typeof makeCa>, name: string, cn: string) => makeLeaf(dir, name, issuer, { cn, altNames: `DNS:${cn}` });

  it('refuses a CA with name constraints (regression: a leaf outside them was trusted)', () => {
    const constrained = makeLeaf(dir, 'constrained-ca', ca, {
      cn: 'constrained',
      altNames: '',
      extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign', 'nameConstraints=critical,permitted;DNS:.good.example'],
    });
    const outside = server(constrained, 'outside', 'bank.example');
    const judgement = verifyX509Chain([outside.der, constrained.der], [new crypto.X509Certificate(ca.pem)], now());
    expect(judgement).toMatchObject({ trusted: false, reason: expect.stringMatching(/name constraints/) });
  });

  it('honours pathLenConstraint (regression: a CA below a pathlen:0 CA was trusted)', () => {
    const noSubCa = makeLeaf(dir, 'pathlen0-ca', ca, { cn: 'pathlen0', altNames: '', extensions: ['basicConstraints=critical,CA:TRUE,pathlen:0', 'keyUsage=critical,keyCertSign'] });
    const subCa = makeLeaf(dir, 'sub-ca', noSubCa, { cn: 'sub', altNames: '', ca: true });
    const below = server(subCa, 'below-sub', 'gw.example');
    const judgement = verifyX509Chain([below.der, subCa.der, noSubCa.der], [new crypto.X509Certificate(ca.pem)], now());
    expect(judgement).toMatchObject({ trusted: false, reason: expect.stringMatching(/allows 0 CA certificate\(s\) below it, and the chain has 1/) });
    // One level is allowed.
    const direct = server(noSubCa, 'below-pathlen0', 'gw.example');
    expect(verifyX509Chain([direct.der, noSubCa.der], [new crypto.X509Certificate(ca.pem)], now())).toMatchObject({ trusted: true });
  });

  it('refuses an intermediate whose key usage does not allow certificate signing', () => {
    const noSign = makeLeaf(dir, 'nosign-ca', ca, { cn: 'nosign', altNames: '', extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,digitalSignature'] });
    const issued = server(noSign, 'by-nosign', 'gw.example');
    expect(verifyX509Chain([issued.der, noSign.der], [new crypto.X509Certificate(ca.pem)], now())).toMatchObject({
      trusted: false,
      reason: expect.stringMatching(/keyCertSign|is not signed by the next certificate/),
    }); // OpenSSL's issuer check already looks at key usage
  });

  it('matches no partial wildcard (b*.example is not bank.example)', () => {
    const wild = makeLeaf(dir, 'partial-wild', ca, { cn: 'wild', altNames: 'DNS:b*.example' });
    expect(checkX509Leaf(new crypto.X509Certificate(wild.pem), 'bank.example', now())).toMatch(/not valid for "bank.example"/);
  });
});

describe('the host key list with X.509 trust', () => {
  it('puts the X.509 forms of the listed key types first, the SHA-1 ones (x509v3-ssh-rsa, x509v3-ssh-dss) only when listed', () => {
    expect(preferX509Algorithms(DEFAULT_HOST_KEY.join(',')).split(',')).toEqual([
      'x509v3-ecdsa-sha2-nistp256',
      'x509v3-ecdsa-sha2-nistp384',
      'x509v3-ecdsa-sha2-nistp521',
      'x509v3-rsa2048-sha256',
      ...DEFAULT_HOST_KEY,
    ]);
    expect(preferX509Algorithms('ssh-ed25519,ssh-dss')).toBe('ssh-ed25519,ssh-dss');
    expect(preferX509Algorithms('ssh-dss,x509v3-ssh-dss')).toBe('ssh-dss,x509v3-ssh-dss');
  });

  it('leaves a list that names X.509 algorithms as the user wrote it', () => {
    expect(preferX509Algorithms('x509v3-ecdsa-sha2-nistp384,rsa-sha2-256')).toBe('x509v3-ecdsa-sha2-nistp384,rsa-sha2-256');
  });

  it('reads PEM CA certificates and OpenSSH CA keys from the same setting', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPz2dZ8Vd8ZXqQ8n6l2mJc3WqkqgC4mYQ0kF0Hr8yTkD ca';
    expect(parseCaCertificates(`${key}\n${ca.pem}\n${otherCa.pem}`).map((c) => c.subject)).toEqual([new crypto.X509Certificate(ca.pem).subject, new crypto.X509Certificate(otherCa.pem).subject]);
    expect(parseCaKeys(`${ca.pem}\n${key}`)).toHaveLength(1);
  });
});

describe('the client core with an X.509 host key', () => {
  const algorithms = { kex: ['curve25519-sha256'], hostKey: ['x509v3-ecdsa-sha2-nistp256'], cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256'], compression: ['none'] };
  const server = (blob: Uint8Array) => new TestServer({ hostKeyBlob: blob, kexInit: { hostKeyAlgorithms: ['x509v3-ecdsa-sha2-nistp256'] } });

  it('refuses an oversized chain (1031) before decoding any certificate, without asking the application', () => {
    let asked = false;
    const blob = new Writer(64).string(P256.name).uint32(100_000).finish();
    const pair = new Pair(server(blob), { algorithms, verifyHostKey: () => (asked = true) }).start();
    expect(pair.closedWith?.code).toBe(1031);
    expect(pair.closedWith?.message).toMatch(/100000 certificates \(at most 8/);
    expect(asked).toBe(false);
  });

  it('refuses a signature that is not the one RFC 6187 names for the algorithm (1031)', () => {
    // The test server signs with its Ed25519 key whatever the chain says.
    const blob = encodeX509ChainBlob({ algorithm: P256.name, certificates: [leaf.der, ca.der], ocspResponses: [] });
    const pair = new Pair(server(blob), { algorithms, hostCertificateName: 'localhost', verifyHostKey: () => true }).start();
    expect(pair.closedWith?.code).toBe(1031);
    expect(pair.closedWith?.message).toMatch(/signed with "ssh-ed25519" for x509v3-ecdsa-sha2-nistp256/);
    expect(pair.server.received).not.toContain(MSG.USERAUTH_REQUEST);
  });
});
