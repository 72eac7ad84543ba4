// Logging on to a real OpenSSH sshd with keys from every key store revtun reads
// (sshCertStoreType): PuTTY .ppk files from puttygen (v2 and v3, plain and encrypted),
// PKCS#12 stores from `openssl pkcs12 -export` and keytool (file, bytes, base64; chosen by
// sshCertSubject), JWKs exported by node:crypto (file and text), .NET's RSA XML (file and
// text). sshd's own log names the key
// it accepted, by fingerprint, so each test proves that the key from the store signed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as crypto from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { puttygenKey, type PuttygenKey, type PuttygenOptions } from '../helpers/putty.js';
import { makePfx, mergePfx, opensshPublicLine, type PfxStore } from '../helpers/pkcs12.js';
import { rsaKeyXml } from '../helpers/xml-key.js';
import { sshPublicKeyBlob } from '../../ts/crypto/keys.js';
import { Code, SshAuthMode, SshCertStoreType, SshError, type SSHReverseTunnel } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-key-stores-'));
const PASSPHRASE = 'ppk passphrase';
const PFX_PASSWORD = 'pfx password';

function ppkCase(name: string, options: PuttygenOptions): [string, PuttygenKey, string | undefined] {
  return [name, puttygenKey(dir, `${name.replace(/[ ,]+/g, '-')}.ppk`, options), options.passphrase];
}
const cheap = { memory: 1024, passes: 2 };
const ppks = [
  ppkCase('v2 ed25519', { type: 'ed25519', version: 2 }),
  ppkCase('v2 ed25519 encrypted', { type: 'ed25519', version: 2, passphrase: PASSPHRASE }),
  ppkCase('v2 ecdsa nistp384 encrypted', { type: 'ecdsa', bits: 384, version: 2, passphrase: PASSPHRASE }),
  ppkCase('v2 rsa encrypted', { type: 'rsa', bits: 2048, version: 2, passphrase: PASSPHRASE }),
  ppkCase('v3 ed25519', { type: 'ed25519' }),
  ppkCase('v3 ed25519 encrypted, default Argon2id', { type: 'ed25519', passphrase: PASSPHRASE }),
  ppkCase('v3 ecdsa nistp256 encrypted, Argon2i', { type: 'ecdsa', bits: 256, passphrase: PASSPHRASE, ppkParams: { kdf: 'argon2i', ...cheap } }),
  ppkCase('v3 ecdsa nistp521 encrypted, Argon2d', { type: 'ecdsa', bits: 521, passphrase: PASSPHRASE, ppkParams: { kdf: 'argon2d', ...cheap } }),
  ppkCase('v3 rsa', { type: 'rsa', bits: 2048 }),
  ppkCase('v3 rsa encrypted', { type: 'rsa', bits: 2048, passphrase: PASSPHRASE, ppkParams: cheap }),
];

const pfxRsa = makePfx(dir, 'rsa', { key: 'rsa', subject: '/C=US/O=Example/CN=deploy-rsa', password: PFX_PASSWORD });
const pfxEc = makePfx(dir, 'ec', { key: 'ec-p256', subject: '/C=US/O=Example/CN=deploy-ec', password: PFX_PASSWORD });
/** In a store with pfxEc, first, and not in authorized_keys: picking it cannot log on. */
const pfxStranger = makePfx(dir, 'stranger', { key: 'rsa', subject: '/C=US/O=Example/CN=stranger', password: PFX_PASSWORD });
const pfxBoth = mergePfx(dir, 'both', [pfxStranger, pfxEc], PFX_PASSWORD);
/** A renewed certificate: a new key under the same subject as the old one, first in the store. */
const pfxOld = makePfx(dir, 'old', { key: 'ec-p256', subject: '/C=US/O=Example/CN=renewed', password: PFX_PASSWORD });
const pfxRenewed = makePfx(dir, 'renewed', { key: 'ec-p256', subject: '/C=US/O=Example/CN=renewed', password: PFX_PASSWORD });
const pfxSameSubject = mergePfx(dir, 'same-subject', [pfxOld, pfxRenewed], PFX_PASSWORD);

function jwkCase(name: string, type: 'ed25519' | 'ec' | 'rsa', options: object): { name: string; text: string; path: string; publicLine: string } {
  const { privateKey } = crypto.generateKeyPairSync(type as 'ec', options as crypto.ECKeyPairOptions<'pem', 'pem'>) as unknown as { privateKey: crypto.KeyObject };
  const text = JSON.stringify(privateKey.export({ format: 'jwk' }));
  const path = join(dir, `${name}.jwk`);
  writeFileSync(path, text, { mode: 0o600 });
  const { blob, keyType } = sshPublicKeyBlob(privateKey);
  return { name, text, path, publicLine: `${keyType} ${Buffer.from(blob).toString('base64')}` };
}
const jwks = [jwkCase('ed25519', 'ed25519', {}), jwkCase('ec P-384', 'ec', { namedCurve: 'P-384' }), jwkCase('rsa', 'rsa', { modulusLength: 2048 })];

const xmlKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const xmlText = rsaKeyXml(xmlKey);
const xmlPath = join(dir, 'key.xml');
writeFileSync(xmlPath, xmlText, { mode: 0o600 });
const xmlPublicLine = `ssh-rsa ${Buffer.from(sshPublicKeyBlob(xmlKey).blob).toString('base64')}`;

/** An EC key as PKCS#8 DER, by openssl, with its public line from ssh-keygen. */
const derPem = join(dir, 'der.pem');
execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', derPem], { stdio: 'ignore' });
const derPath = join(dir, 'key.der');
execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', derPem, '-outform', 'DER', '-out', derPath], { stdio: 'ignore' });
chmodSync(derPath, 0o600);
const derPublicLine = opensshPublicLine(dir, derPem, 'der');

/** sshd's fingerprint form for an OpenSSH public key line. */
function fingerprint(publicLine: string): string {
  const blob = Buffer.from(publicLine.split(' ')[1]!, 'base64');
  return `SHA256:${crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd({
    authorizedKeys: [...ppks.map(([, k]) => k.publicLine), pfxRsa.publicLine, pfxEc.publicLine, pfxRenewed.publicLine, ...jwks.map((j) => j.publicLine), xmlPublicLine, derPublicLine],
  });
});
afterAll(async () => {
  await sshd?.stop();
});

/** A tunnel set to use `store` as sshCertStore with `type`. */
function storeTunnel(type: number, store: string | Uint8Array, password: string, subject = ''): SSHReverseTunnel {
  const tunnel = makeTunnel(sshd, { privateKey: 'set below' });
  tunnel.sshCertStoreType = type as typeof tunnel.sshCertStoreType;
  tunnel.sshCertStore = store;
  tunnel.sshCertStorePassword = password;
  tunnel.sshCertSubject = subject;
  return tunnel;
}

/** Logs on, logs off, and expects sshd to have accepted exactly the key of `publicLine`. */
async function logsOnWith(tunnel: SSHReverseTunnel, publicLine: string): Promise<void> {
  const before = sshd.log().length;
  await tunnel.sshLogon();
  expect(tunnel.connected).toBe(true);
  await tunnel.sshLogoff();
  // sshd's stderr can reach us after the connection's bytes: wait for the line, don't race it.
  const type = publicLine.startsWith('ssh-rsa') ? 'RSA' : publicLine.startsWith('ssh-ed25519') ? 'ED25519' : 'ECDSA';
  const accepted = `Accepted publickey for revtuntest from 127.0.0.1 port \\d+ ssh2: ${type} ${fingerprint(publicLine).replace(/[+/]/g, '\\$&')}`;
  await sshd.waitForLog(new RegExp(accepted), before);
}

/** The rejection of a logon that must fail before any connection is made (no event fired). */
async function failsBeforeConnecting(tunnel: SSHReverseTunnel): Promise<unknown> {
  const events: string[] = [];
  for (const name of ['connected', 'connectionStatus', 'sshStatus'] as const) tunnel.on(name, () => events.push(name));
  const error = await tunnel.sshLogon().then(
    () => null,
    (e: unknown) => e,
  );
  expect(events).toEqual([]);
  return error;
}

describe('PuTTY .ppk from puttygen', () => {
  it.each(ppks)('%s, as a file (PPKFile 14)', async (_name, ppk, passphrase) => {
    await logsOnWith(storeTunnel(SshCertStoreType.PPKFile, ppk.path, passphrase ?? ''), ppk.publicLine);
  });

  it.each(ppks.filter(([name]) => name.startsWith('v3')))('%s, as text (PPKBlob 15)', async (_name, ppk, passphrase) => {
    await logsOnWith(storeTunnel(SshCertStoreType.PPKBlob, ppk.text, passphrase ?? ''), ppk.publicLine);
  });

  it('the default (Auto 99) with a .ppk path, as a plain application sets it', async () => {
    const [, ppk] = ppks[5]!;
    await logsOnWith(makeTunnel(sshd, { privateKey: ppk.path, passphrase: PASSPHRASE }), ppk.publicLine);
  });

  it('a wrong passphrase fails before connecting, never quoting the file', async () => {
    const [, ppk] = ppks[3]!;
    const error = await failsBeforeConnecting(storeTunnel(SshCertStoreType.PPKFile, ppk.path, 'not it'));
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).message).toBe(`key file ${ppk.path}: wrong passphrase for the PuTTY private key (or the file was altered: its MAC does not match)`);
    for (const line of ppk.privateLines) expect(String((error as Error).stack)).not.toContain(line);
  });
});

describe('PKCS#12 from openssl pkcs12 -export and keytool', () => {
  const cases: [string, () => SSHReverseTunnel, PfxStore][] = [
    ['RSA, a file (PFXFile 2)', () => storeTunnel(SshCertStoreType.PFXFile, pfxRsa.path, PFX_PASSWORD), pfxRsa],
    ['EC, a file (PFXFile 2)', () => storeTunnel(SshCertStoreType.PFXFile, pfxEc.path, PFX_PASSWORD), pfxEc],
    ['EC, bytes (PFXBlob 3)', () => storeTunnel(SshCertStoreType.PFXBlob, pfxEc.der, PFX_PASSWORD), pfxEc],
    ['RSA, base64 (PFXBlob 3)', () => storeTunnel(SshCertStoreType.PFXBlob, pfxRsa.der.toString('base64'), PFX_PASSWORD), pfxRsa],
    ['RSA, a file with Auto (99)', () => storeTunnel(SshCertStoreType.Auto, pfxRsa.path, PFX_PASSWORD), pfxRsa],
    ['two keys, sshCertSubject "CN=deploy-ec"', () => storeTunnel(SshCertStoreType.PFXFile, pfxBoth.path, PFX_PASSWORD, 'CN=deploy-ec'), pfxEc],
    ['two keys, the exact subject', () => storeTunnel(SshCertStoreType.PFXBlob, pfxBoth.der, PFX_PASSWORD, 'CN=deploy-ec, O=Example, C=US'), pfxEc],
    [
      'two keys, sshCertEncoded naming the second certificate',
      () => {
        const tunnel = storeTunnel(SshCertStoreType.PFXFile, pfxBoth.path, PFX_PASSWORD);
        tunnel.sshCertEncoded = readFileSync(pfxEc.path.replace(/\.p12$/, '.crt'), 'utf8');
        return tunnel;
      },
      pfxEc,
    ],
    [
      'two certificates with one subject, sshCertEncoded naming the second (regression: the first signed)',
      () => {
        const tunnel = storeTunnel(SshCertStoreType.PFXFile, pfxSameSubject.path, PFX_PASSWORD);
        tunnel.sshCertEncoded = readFileSync(pfxRenewed.path.replace(/\.p12$/, '.crt'));
        return tunnel;
      },
      pfxRenewed,
    ],
  ];
  it.each(cases)('%s', async (_name, make, store) => {
    await logsOnWith(make(), store.publicLine);
  });

  it('two keys, sshCertSubject "*": the first, which this server does not know (1032)', async () => {
    await expect(storeTunnel(SshCertStoreType.PFXFile, pfxBoth.path, PFX_PASSWORD, '*').sshLogon()).rejects.toMatchObject({ code: Code.AuthFailed });
  });

  it('a wrong password is 10022 saying so, before connecting', async () => {
    const error = await failsBeforeConnecting(storeTunnel(SshCertStoreType.PFXFile, pfxRsa.path, 'wrong'));
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(Code.BadArgument);
    expect((error as SshError).message).toBe(`key file ${pfxRsa.path}: wrong password for the PKCS#12 store (sshCertStorePassword)`);
  });
});

describe('JWK exported by node:crypto', () => {
  it.each(jwks)('$name, a file (JWKFile 18)', async (jwk) => {
    await logsOnWith(storeTunnel(SshCertStoreType.JWKFile, jwk.path, ''), jwk.publicLine);
  });

  it.each(jwks)('$name, the JSON text (JWKBlob 19)', async (jwk) => {
    await logsOnWith(storeTunnel(SshCertStoreType.JWKBlob, jwk.text, ''), jwk.publicLine);
  });

  it('the JSON text with Auto (99)', async () => {
    await logsOnWith(storeTunnel(SshCertStoreType.Auto, jwks[0]!.text, ''), jwks[0]!.publicLine);
  });
});

describe("RSA in .NET's XML form", () => {
  it('a file (XMLFile 16)', async () => {
    await logsOnWith(storeTunnel(SshCertStoreType.XMLFile, xmlPath, ''), xmlPublicLine);
  });

  it('the text (XMLBlob 17)', async () => {
    await logsOnWith(storeTunnel(SshCertStoreType.XMLBlob, xmlText, ''), xmlPublicLine);
  });
});

describe('PKCS#8 DER from openssl', () => {
  it('a file (PEMKeyFile 6)', async () => {
    await logsOnWith(storeTunnel(SshCertStoreType.PEMKeyFile, derPath, ''), derPublicLine);
  });

  it('bytes (PEMKeyBlob 7)', async () => {
    await logsOnWith(storeTunnel(SshCertStoreType.PEMKeyBlob, readFileSync(derPath), ''), derPublicLine);
  });
});

describe('the identities extension takes every store type', () => {
  /** A tunnel with no sshCertStore: only `identities` can log it on. */
  function identitiesTunnel(): SSHReverseTunnel {
    const tunnel = makeTunnel(sshd, { password: '' });
    tunnel.sshPassword = '';
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    return tunnel;
  }

  it('a PFX chosen by subject, its password from a function asked once, at its turn', async () => {
    const tunnel = identitiesTunnel();
    const asked: number[] = [];
    tunnel.addIdentity({
      key: pfxBoth.path,
      storeType: SshCertStoreType.PFXFile,
      subject: 'CN=deploy-ec',
      passphrase: (attempt) => {
        asked.push(attempt);
        return PFX_PASSWORD;
      },
    });
    await logsOnWith(tunnel, pfxEc.publicLine);
    expect(asked).toEqual([1]);
  });

  it('encrypted PPKs offered by their public half: only the key the server accepts asks for its passphrase', async () => {
    const unknown = puttygenKey(dir, 'not-authorized.ppk', { type: 'ed25519', passphrase: PASSPHRASE, ppkParams: cheap });
    const [, known] = ppks[6]!; // encrypted, authorized
    const asked: string[] = [];
    const tunnel = identitiesTunnel();
    tunnel.addIdentity({
      key: unknown.path,
      passphrase: () => {
        asked.push('unknown');
        return PASSPHRASE;
      },
    });
    tunnel.addIdentity({
      key: known.path,
      passphrase: () => {
        asked.push('known');
        return PASSPHRASE;
      },
    });
    await logsOnWith(tunnel, known.publicLine);
    expect(asked).toEqual(['known']);
  });

  it('a JWK as bytes', async () => {
    const tunnel = identitiesTunnel();
    tunnel.addIdentity({ key: Buffer.from(jwks[2]!.text), storeType: SshCertStoreType.JWKBlob });
    await logsOnWith(tunnel, jwks[2]!.publicLine);
  });

  it('a refused store type fails before connecting, as sshCertStoreType does', async () => {
    const tunnel = identitiesTunnel();
    tunnel.addIdentity({ key: jwks[0]!.path, storeType: SshCertStoreType.PKCS11 });
    const error = await failsBeforeConnecting(tunnel);
    expect(error).toMatchObject({ code: Code.BadArgument, message: expect.stringMatching(/^sshCertStoreType 23 \(cstPKCS11\): /) });
  });
});

describe('a store type that cannot give a key here', () => {
  it.each([
    [SshCertStoreType.User, /^sshCertStoreType 0 \(cstUser\): a Windows user certificate store/],
    [SshCertStoreType.SSHPublicKeyBlob, /^sshCertStoreType 10 \(cstSSHPublicKeyBlob\): .*signing needs the private key/],
    [SshCertStoreType.JKSFile, /^sshCertStoreType 4 \(cstJKSFile\): Java key stores exist only on Java/],
  ])('%i is refused with 10022 before connecting', async (type, message) => {
    const error = await failsBeforeConnecting(storeTunnel(type, jwks[0]!.path, ''));
    expect(error).toMatchObject({ code: Code.BadArgument, message: expect.stringMatching(message) });
  });
});
