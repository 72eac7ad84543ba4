// The documented certificate properties, sshCert* and sshAcceptServerHostKey*: every name the
// reference documents exists, the read-only ones refuse assignment, and each field holds what
// the tools that made the key or certificate say it holds (openssl x509, ssh-keygen -l), for
// PKCS#12 stores with X.509 certificates, OpenSSH keys with and without a user certificate, and
// the public key stores a server key to accept is given in (.pub, RFC 4716, X.509, PKCS#7).

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSHReverseTunnel, SshCertStoreType, SshError } from '../../../ts/index.js';
import { certificatePropertyNames } from '../../../ts/tunnel/certificate-properties.js';
import { documentedDate } from '../../../ts/tunnel/certificate-info.js';
import { Code } from '../../../ts/protocol/errors.js';
import { generateKey } from '../../helpers/sshd.js';
import { makePfx, mergePfx } from '../../helpers/pkcs12.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-certprops-'));
const PASSWORD = 'store password';

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** ssh-keygen's fingerprint of a public key file, in the hash it is asked for. */
function keygenFingerprint(publicPath: string, hash: 'md5' | 'sha256'): string {
  return run('ssh-keygen', ['-l', '-E', hash, '-f', publicPath]).split(/\s+/)[1]!;
}

/** "SHA256:base64" as colon-separated hex, the documented form. */
function sha256Hex(openssh: string): string {
  return Buffer.from(openssh.slice('SHA256:'.length), 'base64')
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1:');
}

/** camelCase of a documented snake_case property name, with the hash names in capitals. */
function camel(snake: string): string {
  return snake
    .split('_')
    .map((part, i) => (i === 0 ? part : /^(md5|sha1|sha256)$/.test(part) ? part.toUpperCase() : part[0]!.toUpperCase() + part.slice(1)))
    .join('');
}

const reference = readFileSync(new URL('../../../../shared/reference/SSHReverseTunnel.txt', import.meta.url), 'utf8');
const documented = [...reference.matchAll(/^(ssh_(?:cert|accept_server_host_key)_[a-z0-9_]+) Property$/gm)].map((m) => ({
  name: camel(m[1]!),
  readOnly: /^\s*This property is read-only\./m.test(reference.slice(m.index!, reference.indexOf(' Property\n', m.index! + m[0].length))),
}));

describe('the documented names', () => {
  it('has every sshCert* and sshAcceptServerHostKey* property the reference documents', () => {
    expect(documented.length).toBeGreaterThanOrEqual(54);
    const t = new SSHReverseTunnel();
    for (const { name } of documented) expect(name in t, name).toBe(true);
  });

  it('refuses an assignment to a read-only one, and takes the settable ones', () => {
    const t = new SSHReverseTunnel() as unknown as Record<string, unknown>;
    for (const { name, readOnly } of documented) {
      if (readOnly) expect(() => (t[name] = 'x'), name).toThrow(TypeError);
    }
    const settable = documented
      .filter((p) => !p.readOnly)
      .map((p) => p.name)
      .sort();
    expect(settable).toEqual(
      [
        'sshAcceptServerHostKeyEncoded',
        'sshAcceptServerHostKeyStore',
        'sshAcceptServerHostKeyStorePassword',
        'sshAcceptServerHostKeyStoreType',
        'sshAcceptServerHostKeySubject',
        'sshCertEncoded',
        'sshCertStore',
        'sshCertStorePassword',
        'sshCertStoreType',
        'sshCertSubject',
      ].sort(),
    );
    // The revtun extension beside the documented fingerprints.
    expect(certificatePropertyNames('sshCert')).toContain('sshCertOpensshFingerprint');
  });

  it('reads the documented defaults while nothing is set', () => {
    const t = new SSHReverseTunnel() as unknown as Record<string, unknown>;
    for (const name of [...certificatePropertyNames('sshCert'), ...certificatePropertyNames('sshAcceptServerHostKey')]) {
      expect(t[name], name).toBe(name.endsWith('Length') || name.endsWith('Flags') ? 0 : name.endsWith('Available') ? false : '');
    }
    expect(t['sshCertSubject']).toBe('');
  });
});

describe('sshCert* from a PKCS#12 store', () => {
  const store = makePfx(dir, 'deploy', {
    key: 'ec-p256',
    subject: '/C=US/O=Example/CN=deploy.example',
    password: PASSWORD,
    extensions: ['keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth,serverAuth', 'subjectAltName=DNS:deploy.example,IP:127.0.0.1'],
  });
  const certPath = store.path.replace(/\.p12$/, '.crt');
  const certificate = new X509Certificate(readFileSync(certPath));
  const publicPath = join(dir, 'deploy.pub');
  writeFileSync(publicPath, `${store.publicLine}\n`);

  function pfxTunnel(subject = '*'): SSHReverseTunnel {
    const t = new SSHReverseTunnel();
    t.sshCertStoreType = SshCertStoreType.PFXFile;
    t.sshCertStore = store.path;
    t.sshCertStorePassword = PASSWORD;
    t.sshCertSubject = subject;
    return t;
  }

  it('describes the certificate as openssl and ssh-keygen see it', () => {
    const t = pfxTunnel('CN=deploy');
    // A part of the subject selects; the property then reads the whole subject.
    expect(t.sshCertSubject).toBe('CN=deploy.example, O=Example, C=US');
    expect(t.sshCertIssuer).toBe('CN=deploy.example, O=Example, C=US');
    expect(t.sshCertVersion).toBe('V3');
    expect(t.sshCertSerialNumber).toBe(
      run('openssl', ['x509', '-in', certPath, '-noout', '-serial'])
        .trim()
        .replace(/^serial=/, '')
        .toUpperCase(),
    );
    expect(t.sshCertSignatureAlgorithm).toBe('ecdsa-with-SHA256');
    expect(t.sshCertPublicKeyAlgorithm).toBe('ECDSA');
    expect(t.sshCertPublicKeyLength).toBe(256);
    expect(t.sshCertUsageFlags).toBe(0x80 | 0x20);
    expect(t.sshCertUsage).toBe('Digital Signature, Key Encipherment');
    expect(t.sshCertExtendedKeyUsage).toBe('1.3.6.1.5.5.7.3.2,1.3.6.1.5.5.7.3.1');
    expect(t.sshCertSubjectAltNames).toBe('DNS:deploy.example, IP Address:127.0.0.1');
    expect(t.sshCertEffectiveDate).toBe(documentedDate(new Date(certificate.validFrom)));
    expect(t.sshCertExpirationDate).toBe(documentedDate(new Date(certificate.validTo)));
    expect(t.sshCertEffectiveDate).toMatch(/^\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d$/);
    // The certificate's own hashes, against openssl's.
    const opensslFingerprint = (hash: string) =>
      run('openssl', ['x509', '-in', certPath, '-noout', '-fingerprint', `-${hash}`])
        .trim()
        .replace(/^.*=/, '')
        .replace(/:/g, '')
        .toLowerCase();
    expect(t.sshCertThumbprintSHA1).toBe(opensslFingerprint('sha1'));
    expect(t.sshCertThumbprintSHA256).toBe(opensslFingerprint('sha256'));
    expect(t.sshCertThumbprintMD5).toBe(opensslFingerprint('md5'));
    // sshCertEncoded reads the selected certificate, as base64 DER.
    expect(Buffer.from(t.sshCertEncoded, 'base64').equals(certificate.raw)).toBe(true);
    // The key's fingerprints, against ssh-keygen's of the same key.
    expect(t.sshCertOpensshFingerprint).toBe(keygenFingerprint(publicPath, 'sha256'));
    expect(t.sshCertFingerprintSHA256).toBe(sha256Hex(keygenFingerprint(publicPath, 'sha256')));
    expect(t.sshCertFingerprint).toBe(keygenFingerprint(publicPath, 'md5').replace(/^MD5:/, ''));
    expect(t.sshCertFingerprintSHA1).toMatch(/^([0-9a-f]{2}:){19}[0-9a-f]{2}$/);
    expect(t.sshCertPublicKey).toBe(certificate.publicKey.export({ type: 'spki', format: 'pem' }));
    expect(t.sshCertPrivateKeyAvailable).toBe(true);
    expect(t.sshCertPrivateKey).toBe(''); // never exported
    expect(t.sshCertPrivateKeyContainer).toBe('');
  });

  it('reads an empty subject and describes nothing when no certificate matches, or the password is wrong', () => {
    const t = pfxTunnel('CN=nobody');
    expect(t.sshCertSubject).toBe('');
    expect(t.sshCertFingerprint).toBe('');
    const wrong = pfxTunnel();
    wrong.sshCertStorePassword = 'not it';
    expect(wrong.sshCertSubject).toBe('');
    expect(wrong.sshCertPublicKeyLength).toBe(0);
    // Putting the password right describes the store again: nothing stale is kept.
    wrong.sshCertStorePassword = PASSWORD;
    expect(wrong.sshCertSubject).toBe('CN=deploy.example, O=Example, C=US');
  });

  it('selects by sshCertEncoded within a store of several, and reads the selected subject', () => {
    const second = makePfx(dir, 'second', { key: 'rsa', subject: '/O=Example/CN=second', password: PASSWORD });
    const merged = mergePfx(dir, 'merged', [store, second], PASSWORD);
    const t = new SSHReverseTunnel();
    t.sshCertStore = merged.path;
    t.sshCertStorePassword = PASSWORD;
    expect(t.sshCertSubject).toBe('CN=deploy.example, O=Example, C=US'); // the first, by default
    t.sshCertEncoded = readFileSync(second.path.replace(/\.p12$/, '.crt'), 'utf8');
    expect(t.sshCertSubject).toBe('CN=second, O=Example');
    expect(t.sshCertPublicKeyAlgorithm).toBe('RSA');
    expect(t.sshCertPublicKeyLength).toBe(2048);
    // A certificate of a key the store does not hold selects nothing.
    t.sshCertEncoded = readFileSync(makePfx(dir, 'stranger', { key: 'ec-p384', subject: '/CN=stranger', password: PASSWORD }).path.replace(/\.p12$/, '.crt'));
    expect(t.sshCertSubject).toBe('');
    expect(t.sshCertFingerprint).toBe('');
  });

  it('fails sshLogon with 10022 before connecting when sshCertEncoded names a key the store does not hold', async () => {
    const t = pfxTunnel();
    t.sshAuthMode = 3;
    t.sshUser = 'someone';
    t.sshCertEncoded = readFileSync(makePfx(dir, 'other', { key: 'ec-p256', subject: '/CN=other', password: PASSWORD }).path.replace(/\.p12$/, '.crt'));
    const error = await t.sshLogon('127.0.0.1', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(Code.BadArgument);
    expect((error as SshError).message).toMatch(/sshCertEncoded names a key that is not in sshCertStore/);
  });
});

describe('sshCert* from a PEM key file with its certificate beside it (PEMKeyFile 6)', () => {
  it('pairs the certificate with the key, in either order in the file', () => {
    const store = makePfx(dir, 'combo', { key: 'ec-p384', subject: '/O=Example/CN=combo', password: PASSWORD });
    const keyText = readFileSync(store.path.replace(/\.p12$/, '.key'), 'utf8');
    const certText = readFileSync(store.path.replace(/\.p12$/, '.crt'), 'utf8');
    for (const [name, content] of [
      ['cert-first.pem', certText + keyText],
      ['key-first.pem', keyText + certText],
    ]) {
      const path = join(dir, name!);
      writeFileSync(path, content!, { mode: 0o600 });
      const t = new SSHReverseTunnel();
      t.sshCertStoreType = SshCertStoreType.PEMKeyFile;
      t.sshCertStore = path;
      expect(t.sshCertSubject, name).toBe('CN=combo, O=Example');
      expect(t.sshCertPublicKeyLength).toBe(384);
      expect(t.sshCertPrivateKeyAvailable).toBe(true);
    }
  });
});

describe('sshCert* from OpenSSH keys', () => {
  it('describes a plain key by its fingerprints, algorithm and length', () => {
    const key = generateKey(dir, 'plain_rsa', 'rsa', { bits: 3072 });
    const t = new SSHReverseTunnel();
    t.sshCertStore = key.privatePath;
    expect(t.sshCertPublicKeyAlgorithm).toBe('RSA');
    expect(t.sshCertPublicKeyLength).toBe(3072);
    expect(t.sshCertOpensshFingerprint).toBe(keygenFingerprint(`${key.privatePath}.pub`, 'sha256'));
    expect(t.sshCertFingerprint).toBe(keygenFingerprint(`${key.privatePath}.pub`, 'md5').replace(/^MD5:/, ''));
    // The encoded form of a plain key is its SSH public key blob.
    expect(t.sshCertThumbprintSHA256).toBe(
      createHash('sha256')
        .update(Buffer.from(key.publicLine.split(' ')[1]!, 'base64'))
        .digest('hex'),
    );
    expect(t.sshCertEncoded).toBe(key.publicLine.split(' ')[1]);
    expect(t.sshCertSubject).toBe('');
    expect(t.sshCertIssuer).toBe('');
    expect(t.sshCertPrivateKeyAvailable).toBe(true);
  });

  it('describes the public half of an encrypted key until its passphrase is given', () => {
    const key = generateKey(dir, 'locked', 'ed25519', { passphrase: 'open sesame' });
    const t = new SSHReverseTunnel();
    t.sshCertStore = key.privatePath;
    expect(t.sshCertOpensshFingerprint).toBe(keygenFingerprint(`${key.privatePath}.pub`, 'sha256'));
    expect(t.sshCertPublicKeyAlgorithm).toBe('Ed25519');
    expect(t.sshCertPublicKeyLength).toBe(256);
    expect(t.sshCertPrivateKeyAvailable).toBe(false);
    t.sshCertStorePassword = 'open sesame';
    expect(t.sshCertPrivateKeyAvailable).toBe(true);
  });

  it('describes the SignedSSHCert user certificate: key ID, CA, principals, serial, validity', () => {
    const key = generateKey(dir, 'certified', 'ecdsa', { bits: 384 });
    const ca = generateKey(dir, 'user_ca', 'ed25519');
    run('ssh-keygen', ['-q', '-s', ca.privatePath, '-I', 'deploy@fleet', '-n', 'deploy,ops', '-z', '4660', '-V', '20300101000000:20300201000000', `${key.privatePath}.pub`]);
    const t = new SSHReverseTunnel();
    t.sshCertStore = key.privatePath;
    t.config(`SignedSSHCert=${key.privatePath}-cert.pub`);
    expect(t.sshCertSubject).toBe('deploy@fleet');
    expect(t.sshCertIssuer).toBe(`ssh-ed25519 ${keygenFingerprint(`${ca.privatePath}.pub`, 'sha256')}`);
    expect(t.sshCertSubjectAltNames).toBe('deploy,ops');
    expect(t.sshCertSerialNumber).toBe('1234');
    expect(t.sshCertSignatureAlgorithm).toBe('ssh-ed25519');
    expect(t.sshCertEffectiveDate).toBe(documentedDate(new Date(2030, 0, 1)));
    expect(t.sshCertExpirationDate).toBe(documentedDate(new Date(2030, 1, 1)));
    // The fingerprints stay the certified key's, as ssh-keygen -l shows them for the certificate.
    expect(t.sshCertOpensshFingerprint).toBe(keygenFingerprint(`${key.privatePath}-cert.pub`, 'sha256'));
    const certBlob = Buffer.from(readFileSync(`${key.privatePath}-cert.pub`, 'utf8').split(' ')[1]!, 'base64');
    expect(t.sshCertThumbprintSHA256).toBe(createHash('sha256').update(certBlob).digest('hex'));
    expect(t.sshCertPrivateKeyAvailable).toBe(true);
  });
});

describe('sshAcceptServerHostKey* from public key stores', () => {
  const host = generateKey(dir, 'host_ecdsa', 'ecdsa', { bits: 256 });
  const hostPub = `${host.privatePath}.pub`;
  const expected = keygenFingerprint(hostPub, 'sha256');

  function accepting(type: number, store: string | Uint8Array): SSHReverseTunnel {
    const t = new SSHReverseTunnel();
    t.sshAcceptServerHostKeyStoreType = type as typeof t.sshAcceptServerHostKeyStoreType;
    t.sshAcceptServerHostKeyStore = store;
    return t;
  }

  it('reads an OpenSSH .pub file (13), its RFC 4716 export, and the key line as a blob (10)', () => {
    const rfc4716 = join(dir, 'host.rfc4716');
    writeFileSync(rfc4716, run('ssh-keygen', ['-e', '-f', hostPub]));
    for (const t of [accepting(13, hostPub), accepting(13, rfc4716), accepting(10, host.publicLine), accepting(10, host.publicLine.split(' ')[1]!)]) {
      expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(expected);
      expect(t.sshAcceptServerHostKeyPublicKeyAlgorithm).toBe('ECDSA');
      expect(t.sshAcceptServerHostKeyPrivateKeyAvailable).toBe(false);
    }
  });

  it('reads X.509 certificates as PEM and DER (8, 9) and PKCS#7 bundles (11, 12), selecting by subject', () => {
    const a = makePfx(dir, 'srv_a', { key: 'rsa', subject: '/O=Example/CN=a.example', password: PASSWORD });
    const b = makePfx(dir, 'srv_b', { key: 'ec-p384', subject: '/O=Example/CN=b.example', password: PASSWORD });
    const aCrt = a.path.replace(/\.p12$/, '.crt');
    const bCrt = b.path.replace(/\.p12$/, '.crt');
    const der = join(dir, 'a.der');
    run('openssl', ['x509', '-in', aCrt, '-outform', 'DER', '-out', der]);
    const p7b = join(dir, 'both.p7b');
    run('openssl', ['crl2pkcs7', '-nocrl', '-certfile', aCrt, '-certfile', bCrt, '-out', p7b]);
    const p7bDer = join(dir, 'both.p7b.der');
    run('openssl', ['crl2pkcs7', '-nocrl', '-certfile', aCrt, '-certfile', bCrt, '-outform', 'DER', '-out', p7bDer]);
    for (const t of [accepting(8, aCrt), accepting(8, der), accepting(9, readFileSync(der)), accepting(9, readFileSync(der).toString('base64'))]) {
      expect(t.sshAcceptServerHostKeySubject).toBe('CN=a.example, O=Example');
      expect(t.sshAcceptServerHostKeyPublicKeyLength).toBe(2048);
    }
    for (const t of [accepting(11, p7b), accepting(11, p7bDer), accepting(12, readFileSync(p7bDer))]) {
      expect(t.sshAcceptServerHostKeySubject).toBe('CN=a.example, O=Example'); // the first
      t.sshAcceptServerHostKeySubject = 'CN=b.example';
      expect(t.sshAcceptServerHostKeySubject).toBe('CN=b.example, O=Example');
      expect(t.sshAcceptServerHostKeyPublicKeyAlgorithm).toBe('ECDSA');
      expect(t.sshAcceptServerHostKeyPublicKeyLength).toBe(384);
      expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(run('ssh-keygen', ['-l', '-E', 'sha256', '-f', writePublicLine(b.publicLine)]).split(/\s+/)[1]);
    }
  });

  it('takes sshAcceptServerHostKeyEncoded as an OpenSSH line or a PEM public key', () => {
    const t = new SSHReverseTunnel();
    t.sshAcceptServerHostKeyEncoded = host.publicLine;
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(expected);
    t.sshAcceptServerHostKeyEncoded = run('ssh-keygen', ['-e', '-m', 'PKCS8', '-f', hostPub]);
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(expected);
    // It reads back as the key blob in base64, the same as the .pub file's.
    expect(t.sshAcceptServerHostKeyEncoded).toBe(host.publicLine.split(' ')[1]);
  });

  it('never quotes key text given as the store of a file type, and reads no device or FIFO (regressions)', async () => {
    const secret = generateKey(dir, 'secret_key', 'ed25519');
    const fifo = join(dir, 'a.fifo');
    run('mkfifo', [fifo]);
    for (const [type, store] of [
      [8, secret.privateText],
      [13, secret.privateText],
      [8, '/dev/zero'],
      [13, fifo],
    ] as const) {
      const t = accepting(type, store);
      t.sshUser = 'someone';
      t.sshPassword = 'x';
      expect(t.sshAcceptServerHostKeyFingerprint).toBe('');
      const error = (await t.sshLogon('127.0.0.1', 1).catch((e: unknown) => e)) as SshError;
      expect(error.code, String(store)).toBe(Code.BadArgument);
      expect(error.message).not.toContain(secret.privateText.split('\n')[1]!);
      if (store === '/dev/zero' || store === fifo) expect(error.message).toMatch(/Not a regular file/);
    }
  });

  it('reads a file of BEGIN lines without END in one pass, and says it is not a key (regression: quadratic scan)', () => {
    const hostile = join(dir, 'begins.pem');
    writeFileSync(hostile, '-----BEGIN CERTIFICATE-----\n'.repeat(36_000)); // about 1 MiB
    const t = accepting(8, hostile);
    expect(t.sshAcceptServerHostKeyFingerprint).toBe('');
  });

  it('reads a .pub file with the default store type, without the private key permission check', () => {
    const t = new SSHReverseTunnel();
    t.sshAcceptServerHostKeyStore = hostPub; // 0644, as ssh-keygen writes it
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(expected);
  });

  it('a buffer changed after it was set is read again (regression: the trusted key and its description drifted apart)', () => {
    const other = generateKey(dir, 'other_ecdsa', 'ecdsa', { bits: 256 });
    const bytes = Buffer.from(host.publicLine.split(' ')[1]!, 'base64');
    const t = new SSHReverseTunnel();
    t.sshAcceptServerHostKeyEncoded = bytes;
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(expected);
    Buffer.from(other.publicLine.split(' ')[1]!, 'base64').copy(bytes);
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(keygenFingerprint(`${other.privatePath}.pub`, 'sha256'));
  });

  it('fails sshLogon with 10022 before connecting when the store names no key', async () => {
    const notKey = join(dir, 'notes.txt');
    writeFileSync(notKey, 'a file of notes, not a certificate\n');
    for (const [type, store] of [
      [13, join(dir, 'missing.pub')],
      [10, 'not a key'],
      [8, notKey],
    ] as const) {
      const t = accepting(type, store);
      t.sshUser = 'someone';
      t.sshPassword = 'x';
      expect(t.sshAcceptServerHostKeyFingerprint).toBe('');
      const error = await t.sshLogon('127.0.0.1', 1).catch((e: unknown) => e);
      expect(error, `${type} ${store}`).toBeInstanceOf(SshError);
      expect((error as SshError).code).toBe(Code.BadArgument);
    }
  });
});

function writePublicLine(line: string): string {
  const path = join(dir, `line-${createHash('sha1').update(line).digest('hex').slice(0, 8)}.pub`);
  writeFileSync(path, `${line}\n`);
  return path;
}
