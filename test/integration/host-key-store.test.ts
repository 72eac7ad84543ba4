// The documented, certificate-shaped way to name the server key to accept:
// sshAcceptServerHostKeyStore / StoreType / Encoded, against a real sshd. The server's own
// .pub file (SSHPublicKeyFile 13), its PEM public key as sshAcceptServerHostKeyEncoded, and
// an X.509 certificate of another key each decide the logon alone (no fingerprint, no
// handler); and after a logon the sshAcceptServerHostKey* properties describe the key the
// connection accepted, as ssh-keygen -l describes the server's host key file.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_PASSWORD, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { makePfx } from '../helpers/pkcs12.js';
import { Code, SSHReverseTunnel, SshCertStoreType, SshError, type ServerAuthenticationEvent } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-hostkey-store-'));
let sshd: Sshd;

beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [] });
});
afterAll(async () => {
  await sshd?.stop();
});

/** A tunnel that trusts nothing by itself and asks for the server's Ed25519 key. */
function bareTunnel(): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = sshd.host;
  t.sshPort = sshd.port;
  t.sshUser = TEST_USER;
  t.sshPassword = TEST_PASSWORD;
  t.timeout = 30;
  t.config('SSHPublicKeyAlgorithms=ssh-ed25519');
  return t;
}

function keygenSha256(publicPath: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicPath], { encoding: 'utf8' }).split(/\s+/)[1]!;
}

async function refusal(t: SSHReverseTunnel): Promise<SshError> {
  const error = await t.sshLogon().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SshError);
  return error as SshError;
}

describe('sshAcceptServerHostKeyStore', () => {
  it("trusts the key of the server's own .pub file (SSHPublicKeyFile 13), and nothing else is needed", async () => {
    const t = bareTunnel();
    t.sshAcceptServerHostKeyStoreType = SshCertStoreType.SSHPublicKeyFile;
    t.sshAcceptServerHostKeyStore = join(sshd.dir, 'host_ed25519.pub');
    await t.sshLogon();
    expect(t.connected).toBe(true);
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(keygenSha256(join(sshd.dir, 'host_ed25519.pub')));
    await t.sshLogoff();
  });

  it('trusts the key given as sshAcceptServerHostKeyEncoded in PEM form', async () => {
    const t = bareTunnel();
    t.config('SSHPublicKeyAlgorithms=rsa-sha2-256');
    t.sshAcceptServerHostKeyEncoded = execFileSync('ssh-keygen', ['-e', '-m', 'PKCS8', '-f', join(sshd.dir, 'host_rsa.pub')], { encoding: 'utf8' });
    expect(t.sshAcceptServerHostKeyEncoded).toBe(sshd.hostKeys.rsa.split(' ')[1]);
    await t.sshLogon();
    expect(t.connected).toBe(true);
    await t.sshLogoff();
  });

  it('refuses the server (1030) when the store holds another key: a .pub file, or an X.509 certificate', async () => {
    const other = generateKey(dir, 'other_host', 'ed25519');
    const stranger = makePfx(dir, 'stranger', { key: 'ec-p256', subject: '/CN=127.0.0.1', password: 'x' });
    for (const [type, store] of [
      [SshCertStoreType.SSHPublicKeyFile, `${other.privatePath}.pub`],
      [SshCertStoreType.PublicKeyFile, stranger.path.replace(/\.p12$/, '.crt')],
    ] as const) {
      const t = bareTunnel();
      t.sshAcceptServerHostKeyStoreType = type;
      t.sshAcceptServerHostKeyStore = store;
      const events: ServerAuthenticationEvent[] = [];
      t.on('sshServerAuthentication', (e) => events.push({ ...e }));
      const error = await refusal(t);
      expect(error.code).toBe(Code.HostKeyRejected);
      expect(events.map((e) => e.accept)).toEqual([false]);
      expect(t.connected).toBe(false);
    }
  });
});

describe('the sshAcceptServerHostKey* properties after a logon', () => {
  it('describe the key the connection accepted, and reset() clears them', async () => {
    const t = makeTunnel(sshd, { config: ['SSHPublicKeyAlgorithms=rsa-sha2-512'] });
    let event: ServerAuthenticationEvent | null = null;
    t.on('sshServerAuthentication', (e) => (event = { ...e }));
    expect(t.sshAcceptServerHostKeyFingerprint).toBe('');
    await t.sshLogon();
    const accepted = event as unknown as ServerAuthenticationEvent;
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(keygenSha256(join(sshd.dir, 'host_rsa.pub')));
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(accepted.opensshFingerprint);
    expect(t.sshAcceptServerHostKeyFingerprintSHA256).toBe(accepted.fingerprint);
    expect(t.sshAcceptServerHostKeyPublicKeyAlgorithm).toBe('RSA');
    expect(t.sshAcceptServerHostKeyPublicKeyLength).toBeGreaterThanOrEqual(2048);
    expect(t.sshAcceptServerHostKeyEncoded).toBe(sshd.hostKeys.rsa.split(' ')[1]);
    expect(t.sshAcceptServerHostKeyPrivateKeyAvailable).toBe(false);
    await t.sshLogoff();
    t.reset();
    expect(t.sshAcceptServerHostKeyFingerprint).toBe('');
  });
});
