// X.509 host keys (RFC 6187) against AsyncSSH, which serves x509v3-* host keys with pyOpenSSL.
// The certificates are made with openssl: a CA, and one leaf per host key, each for
// DNS:localhost,IP:127.0.0.1 unless said otherwise; the client picks the leaf it is shown by
// the algorithm it asks for, as in host-certificates.test.ts:
//   x509v3-ecdsa-sha2-nistp256  valid, sent with its CA (leaf + CA)
//   x509v3-rsa2048-sha256 / x509v3-ssh-rsa  valid RSA 2048
//   x509v3-ecdsa-sha2-nistp384  expired in 2020
//   x509v3-ecdsa-sha2-nistp521  valid, for DNS:other.example only
//   x509v3-ssh-dss  valid DSA (legacy: only when listed)
// Trust comes from a PEM CA certificate in SSHAcceptServerCAKey; without one nothing changes for
// the default user, who still negotiates the plain key AsyncSSH also offers.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAsyncSsh, type Peer } from '../helpers/peers.js';
import { chainFile, makeCa, makeLeaf } from '../helpers/x509.js';
import { echoServer, roundTrip } from '../helpers/streams.js';
import { generateKey, stopAll, TEST_PASSWORD, TEST_USER, type EchoServer } from '../helpers/sshd.js';
import { sshPublicKeyBlob } from '../../ts/crypto/keys.js';
import { SSHReverseTunnel, SshError, type ServerAuthenticationEvent } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-x509-'));
const ca = makeCa(dir, 'ca', 'revtun test CA');
const otherCa = makeCa(dir, 'other-ca', 'another CA');
const names = 'DNS:localhost,IP:127.0.0.1';
const p256 = makeLeaf(dir, 'p256', ca, { cn: 'localhost', altNames: names });
const rsa = makeLeaf(dir, 'rsa', ca, { cn: 'localhost', altNames: names, kind: 'rsa-2048' });
const expired = makeLeaf(dir, 'p384-expired', ca, { cn: 'localhost', altNames: names, kind: 'ec-384', notBefore: '20200101000000Z', notAfter: '20200201000000Z' });
const otherName = makeLeaf(dir, 'p521-other', ca, { cn: 'other.example', altNames: 'DNS:other.example', kind: 'ec-521' });
const dsa = makeLeaf(dir, 'dsa', ca, { cn: 'localhost', altNames: names, kind: 'dsa' });

let server: Peer;
let echo: EchoServer;
beforeAll(async () => {
  echo = await echoServer();
  server = await startAsyncSsh(
    ['aes128-gcm@openssh.com', 'aes128-ctr'],
    ['hmac-sha2-256'],
    [
      { privatePath: p256.keyPath, certificatePath: chainFile(dir, 'p256', [p256, ca]) },
      { privatePath: rsa.keyPath, certificatePath: rsa.certPath },
      { privatePath: expired.keyPath, certificatePath: expired.certPath },
      { privatePath: otherName.keyPath, certificatePath: otherName.certPath },
      { privatePath: dsa.keyPath, certificatePath: dsa.certPath },
    ],
  );
});
afterAll(() => stopAll(server, echo));

/** The SHA256 fingerprint of a certificate's public key, as its SSH key blob is fingerprinted. */
function keyFingerprint(pem: string): string {
  const blob = sshPublicKeyBlob(new X509Certificate(pem).publicKey).blob;
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function tunnel(options: { trust?: string; algorithms?: string } = {}): { t: SSHReverseTunnel; events: ServerAuthenticationEvent[] } {
  const t = new SSHReverseTunnel();
  t.sshHost = server.host;
  t.sshPort = server.port;
  t.sshUser = TEST_USER;
  t.sshPassword = TEST_PASSWORD;
  t.timeout = 30;
  if (options.trust !== undefined) t.config(`SSHAcceptServerCAKey=${options.trust}`);
  if (options.algorithms !== undefined) t.config(`SSHPublicKeyAlgorithms=${options.algorithms}`);
  const events: ServerAuthenticationEvent[] = [];
  t.on('sshServerAuthentication', (e) => events.push({ ...e }));
  return { t, events };
}

async function bytesThrough(t: SSHReverseTunnel): Promise<void> {
  const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
  const data = randomBytes(64 * 1024);
  expect((await roundTrip(port, data)).equals(data)).toBe(true);
}

async function refusal(t: SSHReverseTunnel): Promise<SshError> {
  const error = await t.sshLogon().then(
    () => null,
    (e: unknown) => e,
  );
  if (t.connected) await t.sshLogoff();
  expect(error).toBeInstanceOf(SshError);
  expect((error as SshError).code).toBe(1030);
  return error as SshError;
}

describe('X.509 host keys with the CA certificate in SSHAcceptServerCAKey', () => {
  it('log on with the leaf the CA signed, the event names its subject and issuer, and bytes go through a reverse forwarding', async () => {
    const { t, events } = tunnel({ trust: ca.pem });
    await t.sshLogon();
    try {
      expect(events).toHaveLength(1);
      const e = events[0]!;
      expect(e.accept).toBe(true);
      expect(e.keyAlgorithm).toBe('x509v3-ecdsa-sha2-nistp256');
      expect(e.certSubject).toBe('CN=localhost, O=revtun test');
      expect(e.certIssuer).toBe('CN=revtun test CA, O=revtun test');
      expect(e.opensshFingerprint).toBe(keyFingerprint(p256.pem));
      // The sshAcceptServerHostKey* properties describe the same certificate, in the same words.
      expect(t.sshAcceptServerHostKeySubject).toBe(e.certSubject);
      expect(t.sshAcceptServerHostKeySubjectAltNames).toBe('DNS:localhost, IP Address:127.0.0.1');
      // The chain as AsyncSSH sent it: the leaf, then its CA.
      expect(e.x509?.certificates.map((der) => new X509Certificate(Buffer.from(der)).fingerprint256)).toEqual([
        new X509Certificate(p256.pem).fingerprint256,
        new X509Certificate(ca.pem).fingerprint256,
      ]);
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
  });

  it.each(['x509v3-rsa2048-sha256', 'x509v3-ssh-rsa'])('log on with an RSA leaf over %s', async (algorithm) => {
    const { t, events } = tunnel({ trust: ca.pem, algorithms: algorithm });
    await t.sshLogon();
    try {
      expect(events[0]?.keyAlgorithm).toBe(algorithm);
      expect(events[0]?.opensshFingerprint).toBe(keyFingerprint(rsa.pem));
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
  });

  it('log on with a DSA leaf over x509v3-ssh-dss only when it is listed', async () => {
    const listed = tunnel({ trust: ca.pem, algorithms: 'x509v3-ssh-dss' });
    await listed.t.sshLogon();
    expect(listed.events[0]?.keyAlgorithm).toBe('x509v3-ssh-dss');
    expect(listed.events[0]?.opensshFingerprint).toBe(keyFingerprint(dsa.pem));
    await listed.t.sshLogoff();
    // Trust alone brings in the X.509 forms of the default list, which has no DSA.
    const byDefault = tunnel({ trust: ca.pem, algorithms: 'ssh-dss' });
    byDefault.t.on('sshServerAuthentication', (e) => (e.accept = true));
    await byDefault.t.sshLogon();
    expect(byDefault.events[0]?.keyAlgorithm).toBe('ssh-dss');
    await byDefault.t.sshLogoff();
  });

  it('keep the OpenSSH CA keys of the same setting working beside the certificate', async () => {
    // A CA key line and a PEM certificate together: the line is parsed as before, the PEM as a CA certificate.
    const { t, events } = tunnel({ trust: `${generateKey(dir, 'openssh_ca', 'ed25519').publicLine}\n${ca.pem}` });
    await t.sshLogon();
    expect(events[0]?.keyAlgorithm).toBe('x509v3-ecdsa-sha2-nistp256');
    await t.sshLogoff();
  });

  it('refuse a chain from a CA that is not trusted, saying so', async () => {
    const { t, events } = tunnel({ trust: otherCa.pem });
    const error = await refusal(t);
    expect(error.message).toMatch(
      /X\.509 host certificate .* was not accepted: the X\.509 host certificate is not signed by a trusted CA \(the chain ends at issuer "CN=revtun test CA, O=revtun test"\)/,
    );
    expect(events[0]?.accept).toBe(false);
  });

  it('refuse an expired leaf, saying it expired', async () => {
    const { t } = tunnel({ trust: ca.pem, algorithms: 'x509v3-ecdsa-sha2-nistp384' });
    expect((await refusal(t)).message).toMatch(/the X\.509 host certificate has expired \(valid from 2020-01-01 00:00:00 UTC to 2020-02-01 00:00:00 UTC\)/);
  });

  it('refuse a leaf for another name, naming the name', async () => {
    const { t } = tunnel({ trust: ca.pem, algorithms: 'x509v3-ecdsa-sha2-nistp521' });
    expect((await refusal(t)).message).toMatch(/the X\.509 host certificate is not valid for "127\.0\.0\.1" \(its subjectAltName: DNS:other\.example\)/);
  });
});

describe('X.509 host keys without X.509 trust', () => {
  it('are not offered: the default user negotiates the plain key as before', async () => {
    const { t, events } = tunnel();
    t.on('sshServerAuthentication', (e) => (e.accept = true));
    await t.sshLogon();
    await t.sshLogoff();
    expect(events[0]?.keyAlgorithm).toBe('ecdsa-sha2-nistp256');
    expect(events[0]?.certSubject).toBe('');
  });

  it('when listed, a leaf may be accepted by its key fingerprint, as any key', async () => {
    const { t, events } = tunnel({ algorithms: 'x509v3-ecdsa-sha2-nistp256' });
    t.config(`SSHAcceptServerHostKeyFingerPrint=${keyFingerprint(p256.pem)}`);
    await t.sshLogon();
    try {
      expect(events[0]?.keyAlgorithm).toBe('x509v3-ecdsa-sha2-nistp256');
      expect(events[0]?.certIssuer).toBe('CN=revtun test CA, O=revtun test');
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
  });

  it('when listed and not accepted, are refused (1030)', async () => {
    const { t } = tunnel({ algorithms: 'x509v3-ecdsa-sha2-nistp256' });
    expect((await refusal(t)).message).toMatch(/was not accepted/);
  });
});

describe('SSHAcceptServerCAKey with certificates', () => {
  it('refuses a server certificate given as a CA (10022), pointing to the fingerprint instead', () => {
    const t = new SSHReverseTunnel();
    expect(() => t.config(`SSHAcceptServerCAKey=${p256.pem}`)).toThrow(
      /certificate 1 \("CN=localhost, O=revtun test"\) is not a CA certificate; to trust one server's certificate, accept its key by fingerprint/,
    );
  });

  it('refuses a damaged PEM certificate (10022)', () => {
    const t = new SSHReverseTunnel();
    const damaged = ca.pem.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA');
    expect(() => t.config(`SSHAcceptServerCAKey=${damaged}`)).toThrow(/CA certificate 1 is not a readable PEM certificate/);
  });
});
