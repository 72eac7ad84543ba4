// PKCS#12 stores from `openssl pkcs12 -export` (OpenSSL 3's defaults and -legacy) and Java's
// keytool: the key inside, the choice by sshCertSubject in a store that holds two, and the
// errors (wrong password, no key, no match, damage), which are 10022 and quote neither the
// store nor the password.

import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPkcs12, looksLikePkcs12, selectBySubject } from '../../../ts/crypto/pkcs12.js';
import { sshPublicKeyBlob } from '../../../ts/crypto/keys.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { certificateOnlyPfx, makePfx, mergePfx } from '../../helpers/pkcs12.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const dir = mkdtempSync(join(tmpdir(), 'revtun-pfx-'));
const PASSWORD = 'pfx pass phrase';
const rsa = makePfx(dir, 'rsa', { key: 'rsa', subject: '/C=US/O=Example/CN=deploy-rsa', password: PASSWORD });
const ec = makePfx(dir, 'ec', { key: 'ec-p256', subject: '/C=DE/O=Example, Inc./OU=ops/CN=deploy-ec', password: PASSWORD });
const legacy = makePfx(dir, 'legacy', { key: 'ec-p384', subject: '/CN=legacy', password: PASSWORD, legacy: true });
const both = mergePfx(dir, 'both', [rsa, ec], PASSWORD);

function publicLineOf(key: Parameters<typeof sshPublicKeyBlob>[0]): string {
  const { blob, keyType } = sshPublicKeyBlob(key);
  return `${keyType} ${Buffer.from(blob).toString('base64')}`;
}

function refusal(run: () => unknown): SshError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  const error = caught as SshError;
  expect(error.code).toBe(Code.BadArgument);
  expect(`${error.message}\n${error.stack}`).not.toContain(PASSWORD);
  return error;
}

describe('loadPkcs12', () => {
  it.each([
    ['RSA, OpenSSL 3 defaults (PBES2 AES-256, HMAC-SHA-256)', rsa, 'CN=deploy-rsa, O=Example, C=US'],
    ['EC P-256, a subject with a comma', ec, 'CN=deploy-ec, OU=ops, O="Example, Inc.", C=DE'],
    ['EC P-384, -legacy (RC2 and 3DES bags, SHA-1 MAC)', legacy, 'CN=legacy'],
  ])('%s: the key and its subject', (_name, store, subject) => {
    const entries = loadPkcs12(store.der, PASSWORD);
    expect(entries).toHaveLength(1);
    expect(publicLineOf(entries[0]!.key)).toBe(store.publicLine);
    expect(entries[0]!.subject).toBe(subject);
  });

  it('keytool merging two stores: both keys, each with its certificate', () => {
    const entries = loadPkcs12(both.der, PASSWORD);
    expect(entries.map((e) => publicLineOf(e.key)).sort()).toEqual([rsa.publicLine, ec.publicLine].sort());
    expect(entries.map((e) => e.subject).sort()).toEqual(['CN=deploy-ec, OU=ops, O="Example, Inc.", C=DE', 'CN=deploy-rsa, O=Example, C=US']);
  });

  it('a wrong password: 10022 saying so', () => {
    expect(refusal(() => loadPkcs12(rsa.der, 'not it')).message).toBe('wrong password for the PKCS#12 store (sshCertStorePassword)');
    expect(refusal(() => loadPkcs12(legacy.der, '')).message).toMatch(/^wrong password/);
  });

  it.each([
    ['without a MAC (-nomac)', ['-nomac']],
    ['with unencrypted bags (-keypbe NONE -certpbe NONE)', ['-keypbe', 'NONE', '-certpbe', 'NONE']],
  ])('a store %s: the key with the password, a refusal with another', (_name, exportOptions) => {
    const store = makePfx(dir, `variant-${exportOptions.length}`, { key: 'ec-p256', subject: '/CN=variant', password: PASSWORD, exportOptions });
    expect(publicLineOf(loadPkcs12(store.der, PASSWORD)[0]!.key)).toBe(store.publicLine);
    expect(refusal(() => loadPkcs12(store.der, 'not it')).message).toMatch(/^wrong password for the PKCS#12 store|^the PKCS#12 store is damaged/);
  });

  it('a store with an empty password', () => {
    const store = makePfx(dir, 'empty-password', { key: 'rsa', subject: '/CN=empty', password: '' });
    expect(publicLineOf(loadPkcs12(store.der, '')[0]!.key)).toBe(store.publicLine);
    expect(refusal(() => loadPkcs12(store.der, PASSWORD)).message).toBe('wrong password for the PKCS#12 store (sshCertStorePassword)');
  });

  it('a store with certificates and no key', () => {
    const entries = loadPkcs12(readFileSync(certificateOnlyPfx(dir, 'certonly', ec)), PASSWORD);
    expect(entries).toEqual([]);
    expect(refusal(() => selectBySubject(entries, '*')).message).toBe('the PKCS#12 store holds no private key');
  });

  it('damaged or not PKCS#12 at all', () => {
    const cut = rsa.der.subarray(0, rsa.der.length - 100);
    expect(looksLikePkcs12(cut)).toBe(true);
    expect(refusal(() => loadPkcs12(cut, PASSWORD)).message).toMatch(/damaged|wrong password/);
    expect(refusal(() => loadPkcs12(Buffer.from('-----BEGIN PRIVATE KEY-----\n'), PASSWORD)).message).toBe('not a PKCS#12 (PFX) store');
    expect(looksLikePkcs12(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x02, 0, 0, 0]))).toBe(false); // version 2
  });
});

describe('selectBySubject (sshCertSubject)', () => {
  const entries = loadPkcs12(both.der, PASSWORD);
  const pick = (subject: string) => publicLineOf(selectBySubject(entries, subject).key);
  const first = publicLineOf(entries[0]!.key);

  it('`*` and empty take the first key', () => {
    expect(pick('*')).toBe(first);
    expect(pick('')).toBe(first);
  });

  it('an exact subject, in either order, whatever the spacing and case', () => {
    expect(pick('CN=deploy-ec, OU=ops, O="Example, Inc.", C=DE')).toBe(ec.publicLine);
    expect(pick('C=DE,O="Example, Inc.",OU=ops,CN=deploy-ec')).toBe(ec.publicLine);
    expect(pick('cn=deploy-rsa, o=example, c=us')).toBe(rsa.publicLine);
  });

  it('else the first subject that contains the value', () => {
    expect(pick('CN=deploy-rsa')).toBe(rsa.publicLine);
    expect(pick('OU=ops')).toBe(ec.publicLine);
    expect(pick('deploy')).toBe(first);
  });

  it('an exact match wins over an earlier subject that merely contains the value', () => {
    const longer = makePfx(dir, 'longer', { key: 'ec-p256', subject: '/CN=deploy-two', password: PASSWORD });
    const exact = makePfx(dir, 'exact', { key: 'ec-p256', subject: '/CN=deploy', password: PASSWORD });
    const store = loadPkcs12(mergePfx(dir, 'longer-then-exact', [longer, exact], PASSWORD).der, PASSWORD);
    expect(store.map((e) => e.subject)).toEqual(['CN=deploy-two', 'CN=deploy']);
    expect(publicLineOf(selectBySubject(store, 'CN=deploy').key)).toBe(exact.publicLine);
    expect(publicLineOf(selectBySubject(store, 'CN=deploy-t').key)).toBe(longer.publicLine);
  });

  it('no match: 10022 naming what the store holds', () => {
    expect(refusal(() => selectBySubject(entries, 'CN=nobody')).message).toMatch(
      /^no certificate in the PKCS#12 store matches sshCertSubject "CN=nobody" \(it holds: .*CN=deploy-rsa.*CN=deploy-ec|CN=deploy-ec.*CN=deploy-rsa/,
    );
  });
});

describe('hostile iteration counts', () => {
  it('a MAC iteration count of 2^31 - 1 is refused before forge would run it (it would hold the event loop for hours)', () => {
    const forge = createRequire(import.meta.url)('node-forge') as typeof import('node-forge');
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(rsa.der.toString('binary')));
    // PFX ::= SEQUENCE { version, authSafe, macData SEQUENCE { mac, macSalt, iterations } }
    const macData = (asn1.value as import('node-forge').asn1.Asn1[])[2]!;
    const iterations = (macData.value as import('node-forge').asn1.Asn1[])[2]!;
    iterations.value = '\x7f\xff\xff\xff';
    const hostile = Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
    expect(refusal(() => loadPkcs12(hostile, PASSWORD)).message).toMatch(/asks for 2147483647 key derivation iterations/);
  });
});
