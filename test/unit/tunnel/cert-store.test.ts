// Every documented sshCertStoreType value: each one either gives the key of a store of its
// kind (file or blob, in each blob form the documentation names) or is refused with 10022 and
// a message naming the type and why; an undocumented value is refused too. Nothing is
// accepted and then ignored.

import { describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCertStoreKey, SshCertStoreType, STORE_TYPES, type CertStoreSpec } from '../../../ts/tunnel/cert-store.js';
import { sshPublicKeyBlob } from '../../../ts/crypto/keys.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { makePfx } from '../../helpers/pkcs12.js';
import { puttygenKey } from '../../helpers/putty.js';
import { rsaKeyXml } from '../../helpers/xml-key.js';

/** The sshCertStoreType list of the documentation, by number and name. */
const DOCUMENTED: [number, string][] = [
  [0, 'cstUser'],
  [1, 'cstMachine'],
  [2, 'cstPFXFile'],
  [3, 'cstPFXBlob'],
  [4, 'cstJKSFile'],
  [5, 'cstJKSBlob'],
  [6, 'cstPEMKeyFile'],
  [7, 'cstPEMKeyBlob'],
  [8, 'cstPublicKeyFile'],
  [9, 'cstPublicKeyBlob'],
  [10, 'cstSSHPublicKeyBlob'],
  [11, 'cstP7BFile'],
  [12, 'cstP7BBlob'],
  [13, 'cstSSHPublicKeyFile'],
  [14, 'cstPPKFile'],
  [15, 'cstPPKBlob'],
  [16, 'cstXMLFile'],
  [17, 'cstXMLBlob'],
  [18, 'cstJWKFile'],
  [19, 'cstJWKBlob'],
  [21, 'cstBCFKSFile'],
  [22, 'cstBCFKSBlob'],
  [23, 'cstPKCS11'],
  [99, 'cstAuto'],
];

const dir = mkdtempSync(join(tmpdir(), 'revtun-stores-'));
const PASSWORD = 'store password';

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function publicLineOf(key: crypto.KeyObject): string {
  const { blob, keyType } = sshPublicKeyBlob(key);
  return `${keyType} ${Buffer.from(blob).toString('base64')}`;
}

const pfx = makePfx(dir, 'store', { key: 'ec-p256', subject: '/O=Example/CN=store', password: PASSWORD });
const pemKey = crypto.generateKeyPairSync('ed25519').privateKey;
const pemText = pemKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const ppk = puttygenKey(dir, 'store.ppk', { type: 'ecdsa', bits: 384 });
const jwkKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
const jwkText = JSON.stringify(jwkKey.export({ format: 'jwk' }));
const xmlKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const xmlText = rsaKeyXml(xmlKey);
const paths = { pfx: pfx.path, pem: file('key.pem', pemText), ppk: ppk.path, jwk: file('key.jwk', jwkText), xml: file('key.xml', xmlText) };

const expected = {
  pfx: pfx.publicLine,
  pem: publicLineOf(pemKey),
  ppk: ppk.publicLine.split(' ').slice(0, 2).join(' '),
  jwk: publicLineOf(jwkKey),
  xml: publicLineOf(xmlKey),
};

function load(type: number, store: string | Uint8Array, extra: Partial<CertStoreSpec> = {}): string {
  return publicLineOf(loadCertStoreKey({ type, store, password: PASSWORD, subject: '', ...extra }));
}

function refusal(run: () => unknown, code: number = Code.BadArgument): SshError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SshError);
  expect((caught as SshError).code).toBe(code);
  expect((caught as SshError).message).not.toContain(PASSWORD);
  return caught as SshError;
}

describe('the store type table', () => {
  it('has every documented value with its documented name, and no other', () => {
    expect(Object.entries(STORE_TYPES).map(([n, t]) => [Number(n), t.name])).toEqual(DOCUMENTED);
    expect(Object.values(SshCertStoreType).sort((a, b) => a - b)).toEqual(DOCUMENTED.map(([n]) => n));
    for (const [key, value] of Object.entries(SshCertStoreType)) expect(STORE_TYPES[value].name).toBe(`cst${key}`);
  });
});

describe('each documented value', () => {
  const working: [number, string, () => string][] = [
    [2, 'a PFX file', () => load(2, paths.pfx)],
    [3, 'a PFX blob', () => load(3, pfx.der)],
    [6, 'a PEM key file', () => load(6, paths.pem)],
    [7, 'a PEM key blob', () => load(7, pemText)],
    [14, 'a PPK file', () => load(14, paths.ppk)],
    [15, 'a PPK blob', () => load(15, ppk.text)],
    [16, 'an XML file', () => load(16, paths.xml)],
    [17, 'an XML blob', () => load(17, xmlText)],
    [18, 'a JWK file', () => load(18, paths.jwk)],
    [19, 'a JWK blob', () => load(19, jwkText)],
  ];
  const format = (n: number) => (n <= 3 ? 'pfx' : n <= 7 ? 'pem' : n <= 15 ? 'ppk' : n <= 17 ? 'xml' : 'jwk');
  const refused = DOCUMENTED.filter(([n]) => n !== 99 && !working.some(([w]) => w === n));

  it.each(working)('%i: %s gives its key', (type, _what, run) => {
    expect(run()).toBe(expected[format(type)]);
  });

  it.each(refused)('%i (%s) is refused with 10022 saying why', (type, name) => {
    const error = refusal(() => load(type, paths.pem));
    expect(error.message).toMatch(new RegExp(`^sshCertStoreType ${type} \\(${name}\\): `));
    if ([8, 9, 10, 11, 12, 13].includes(type)) expect(error.message).toMatch(/signing needs the private key/);
    else expect(error.message).toMatch(/on this platform|exist only on/);
  });

  it.each([
    ['a PFX file', paths.pfx, 'pfx'],
    ['a PEM file', paths.pem, 'pem'],
    ['a PPK file', paths.ppk, 'ppk'],
    ['a JWK file', paths.jwk, 'jwk'],
    ['PFX bytes', pfx.der, 'pfx'],
    ['PFX base64', pfx.der.toString('base64'), 'pfx'],
    ['PEM text', pemText, 'pem'],
    ['PEM text in base64 (one line: no file name either)', Buffer.from(pemText).toString('base64'), 'pem'],
    ['PPK text', ppk.text, 'ppk'],
    ['JWK text', jwkText, 'jwk'],
    ['an XML file', paths.xml, 'xml'],
    ['XML text', xmlText, 'xml'],
  ] as const)('99 (cstAuto): %s', (_what, store, kind) => {
    expect(load(99, store)).toBe(expected[kind]);
  });

  it.each([20, 24, 98, 100, -1, 2.5])('%s, undocumented, is refused with 10022', (type) => {
    expect(refusal(() => load(type, paths.pem)).message).toMatch(new RegExp(`^sshCertStoreType ${type} is not a documented store type \\(0 cstUser, 1 cstMachine, .*99 cstAuto\\)$`));
  });
});

describe('blob forms and misplaced stores', () => {
  it('a PFX blob as bytes, base64 (with line breaks too) or a binary string', () => {
    expect(load(3, pfx.der.toString('base64'))).toBe(expected.pfx);
    expect(load(3, pfx.der.toString('base64').replace(/.{64}/g, '$&\n'))).toBe(expected.pfx);
    expect(load(3, pfx.der.toString('latin1'))).toBe(expected.pfx);
  });

  it('a PEM blob in base64', () => {
    expect(load(7, Buffer.from(pemText).toString('base64'))).toBe(expected.pem);
  });

  describe('DER private keys (the binary of the PEM types), made by openssl', () => {
    const ecPem = file('der-ec.pem', crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' }) as string);
    const rsaPem = file('der-rsa.pem', crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    const der = (name: string, args: string[]): { path: string; bytes: Buffer } => {
      const path = join(dir, name);
      execFileSync('openssl', [...args, '-outform', 'DER', '-out', path], { stdio: 'ignore' });
      chmodSync(path, 0o600);
      return { path, bytes: readFileSync(path) };
    };
    const forms = {
      'PKCS#8': der('k.p8.der', ['pkcs8', '-topk8', '-nocrypt', '-in', ecPem]),
      'PKCS#8 encrypted': der('k.p8enc.der', ['pkcs8', '-topk8', '-in', rsaPem, '-passout', `pass:${PASSWORD}`]),
      'PKCS#1': der('k.p1.der', ['rsa', '-traditional', '-in', rsaPem]),
      SEC1: der('k.sec1.der', ['ec', '-in', ecPem]),
    };
    const publicOf = (pem: string) => publicLineOf(crypto.createPrivateKey(readFileSync(pem, 'utf8')));

    it.each(Object.entries(forms))('%s: a file (6), bytes and base64 (7), Auto (99)', (name, { path, bytes }) => {
      const want = publicOf(name === 'PKCS#8' || name === 'SEC1' ? ecPem : rsaPem);
      expect(load(6, path)).toBe(want);
      expect(load(7, bytes)).toBe(want);
      expect(load(7, bytes.toString('base64'))).toBe(want);
      expect(load(99, bytes)).toBe(want);
      expect(load(99, path)).toBe(want);
      // Given with the file type, the bytes are content: never a file name, never quoted.
      expect(load(6, bytes)).toBe(want);
      expect(load(6, bytes.toString('latin1'))).toBe(want);
    });

    it('encrypted PKCS#8 with a wrong password: 1032, as an encrypted PEM key', () => {
      expect(refusal(() => load(6, forms['PKCS#8 encrypted'].path, { password: 'wrong' }), Code.AuthFailed).message).toBe(
        `key file ${forms['PKCS#8 encrypted'].path}: wrong or missing passphrase for the private key`,
      );
    });

    it('DER that is no key', () => {
      const bytes = Buffer.from([0x30, 0x08, 0x02, 0x01, 0x05, 0x04, 0x03, 0x73, 0x65, 0x63]);
      const error = refusal(() => load(7, bytes));
      expect(error.message).toMatch(/^not a private key in a format revtun reads/);
    });
  });

  it('key content given with a file type is read as content, never as a file name', () => {
    expect(load(6, pemText)).toBe(expected.pem);
    expect(load(2, pfx.der)).toBe(expected.pfx);
    expect(load(14, ppk.text)).toBe(expected.ppk);
    expect(load(18, jwkText)).toBe(expected.jwk);
    expect(load(16, xmlText)).toBe(expected.xml);
    expect(load(6, Buffer.from(pemText).toString('base64'))).toBe(expected.pem);
  });

  it('a store of another kind than the type says: named, with the type to use', () => {
    expect(refusal(() => load(6, paths.pfx)).message).toBe(`key file ${paths.pfx}: this is a PKCS#12 (PFX) store, not key text: set sshCertStoreType to PFXFile (2), PFXBlob (3) or Auto (99)`);
    expect(refusal(() => load(7, jwkText)).message).toMatch(/^this is a JWK, not key text: set sshCertStoreType to JWKFile \(18\)/);
    expect(refusal(() => load(2, paths.pem)).message).toBe(`key file ${paths.pem}: not a PKCS#12 (PFX) store`);
  });

  it('a wrong PFX password: 10022 naming the file, not 1032', () => {
    expect(refusal(() => load(2, paths.pfx, { password: 'wrong' })).message).toBe(`key file ${paths.pfx}: wrong password for the PKCS#12 store (sshCertStorePassword)`);
  });

  it('sshCertSubject that matches nothing in the PFX', () => {
    expect(refusal(() => load(2, paths.pfx, { subject: 'CN=other' })).message).toMatch(/no certificate in the PKCS#12 store matches sshCertSubject "CN=other" \(it holds: "CN=store, O=Example"\)/);
  });

  it('a PFX file others may read is refused as a key file is (10013)', () => {
    const open = file('open.p12', pfx.der);
    chmodSync(open, 0o644);
    expect(refusal(() => load(2, open), Code.AccessDenied).message).toMatch(/^Permissions 0644 for '.*open\.p12' are too open/);
  });
});
