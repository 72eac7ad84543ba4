// User authentication and host key trust against a real OpenSSH sshd (with PAM for
// keyboard-interactive): every key type and file format, passphrases, wrong credentials,
// and an untrusted host key that must stop the logon before any credential is sent.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_PASSWORD, TEST_USER, type KeyPair, type Sshd } from '../helpers/sshd.js';
import { fingerprintsOf, makeTunnel } from '../helpers/tunnel.js';
import { puttyKeyFile } from '../helpers/putty.js';
import { Code, openReverseTunnel, SshAuthMode, SshError, type SSHReverseTunnel } from '../../ts/index.js';

const keyDir = mkdtempSync(join(tmpdir(), 'revtun-keys-'));
const keys: Record<string, KeyPair> = {
  ed25519: generateKey(keyDir, 'ed25519', 'ed25519'),
  ecdsa256: generateKey(keyDir, 'ecdsa256', 'ecdsa', { bits: 256 }),
  ecdsa384: generateKey(keyDir, 'ecdsa384', 'ecdsa', { bits: 384 }),
  ecdsa521: generateKey(keyDir, 'ecdsa521', 'ecdsa', { bits: 521 }),
  rsa: generateKey(keyDir, 'rsa', 'rsa', { bits: 2048 }),
  ed25519Encrypted: generateKey(keyDir, 'ed25519-enc', 'ed25519', { passphrase: 'open sesame' }),
  rsaEncrypted: generateKey(keyDir, 'rsa-enc', 'rsa', { bits: 2048, passphrase: 'open sesame' }),
  ecdsaEncrypted: generateKey(keyDir, 'ecdsa-enc', 'ecdsa', { bits: 256, passphrase: 'open sesame' }),
  rsaPkcs1: generateKey(keyDir, 'rsa-pkcs1', 'rsa', { bits: 2048, format: 'PEM' }),
  rsaPkcs1Encrypted: generateKey(keyDir, 'rsa-pkcs1-enc', 'rsa', { bits: 2048, format: 'PEM', passphrase: 'open sesame' }),
  ecdsaSec1: generateKey(keyDir, 'ecdsa-sec1', 'ecdsa', { bits: 256, format: 'PEM' }),
  rsaPkcs8: generateKey(keyDir, 'rsa-pkcs8', 'rsa', { bits: 2048, format: 'PKCS8' }),
  ed25519Pkcs8: generateKey(keyDir, 'ed25519-pkcs8', 'ed25519', { format: 'PKCS8' }),
};
const stranger = generateKey(keyDir, 'stranger', 'ed25519');
/** A PuTTY file whose MAC no longer matches (its comment was changed): read, and refused. */
const putty = (() => {
  const file = puttyKeyFile(keyDir, 'putty.ppk');
  const text = file.text.replace(/^Comment: .*$/m, 'Comment: altered');
  writeFileSync(file.path, text, { mode: 0o600 });
  return { ...file, text };
})();

/** Everything an application could show a user: the message and each cause's message. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e; e = (e as Error).cause) parts.push(e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e));
  return parts.join('\n');
}

/** Logs on, collecting the log and status events, and returns the rejection. */
async function failedLogon(tunnel: SSHReverseTunnel): Promise<{ error: unknown; events: string[] }> {
  const events: string[] = [];
  tunnel.config('LogLevel=3');
  tunnel.on('log', (e) => events.push(e.message));
  tunnel.on('sshStatus', (e) => events.push(e.message));
  tunnel.on('error', (e) => events.push(e.description));
  const error = await tunnel.sshLogon().then(
    () => null,
    (e: unknown) => e,
  );
  return { error, events };
}

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd({ usePam: true, authorizedKeys: Object.values(keys).map((k) => k.publicLine), config: ['LogLevel DEBUG1'] });
});
afterAll(async () => {
  await sshd?.stop();
});

describe('password', () => {
  it('logs on with the right password', async () => {
    const tunnel = makeTunnel(sshd);
    const methods: string[] = [];
    tunnel.on('sshStatus', (e) => methods.push(e.message));
    await tunnel.sshLogon();
    expect(tunnel.connected).toBe(true);
    expect(methods).toContain('trying authentication method password');
    await tunnel.sshLogoff();
  });

  it('fails with 1032 naming the methods the server still allows', async () => {
    const tunnel = makeTunnel(sshd, { password: 'wrong password' });
    tunnel.sshAuthMode = SshAuthMode.Password;
    tunnel.config('TryAllAvailableAuthMethods=False');
    const error = await tunnel.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1032);
    expect((error as SshError).message).toMatch(/publickey/);
    expect(tunnel.connected).toBe(false);
  });
});

describe('keyboard-interactive', () => {
  it('answers the PAM password prompt through the sshKeyboardInteractive event', async () => {
    const tunnel = makeTunnel(sshd, { password: '' });
    tunnel.sshAuthMode = SshAuthMode.KeyboardInteractive;
    const prompts: string[] = [];
    tunnel.on('sshKeyboardInteractive', (e) => {
      prompts.push(e.prompt);
      expect(e.echoResponse).toBe(false);
      e.response = TEST_PASSWORD;
    });
    await tunnel.sshLogon();
    expect(prompts.length).toBeGreaterThan(0);
    expect(prompts[0]).toMatch(/password/i);
    await tunnel.sshLogoff();
  });

  it('fills in the password for a prompt that matches PasswordPrompt', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.sshAuthMode = SshAuthMode.KeyboardInteractive;
    tunnel.config('PasswordPrompt=*assword*');
    const responses: string[] = [];
    tunnel.on('sshKeyboardInteractive', (e) => responses.push(e.response));
    await tunnel.sshLogon();
    expect(responses).toEqual([TEST_PASSWORD]);
    await tunnel.sshLogoff();
  });

  it('fails with 1032 when the answer is wrong', async () => {
    const tunnel = makeTunnel(sshd, { password: '' });
    tunnel.sshAuthMode = SshAuthMode.KeyboardInteractive;
    tunnel.on('sshKeyboardInteractive', (e) => {
      e.response = 'not it';
    });
    await expect(tunnel.sshLogon()).rejects.toMatchObject({ code: 1032 });
  });
});

describe('public key', () => {
  const cases: [string, KeyPair, string?][] = [
    ['ed25519 (OpenSSH format)', keys.ed25519!],
    ['ecdsa nistp256', keys.ecdsa256!],
    ['ecdsa nistp384', keys.ecdsa384!],
    ['ecdsa nistp521', keys.ecdsa521!],
    ['rsa (rsa-sha2 from server-sig-algs)', keys.rsa!],
    ['ed25519 with passphrase', keys.ed25519Encrypted!, 'open sesame'],
    ['rsa with passphrase', keys.rsaEncrypted!, 'open sesame'],
    ['ecdsa with passphrase', keys.ecdsaEncrypted!, 'open sesame'],
    ['rsa PEM PKCS#1', keys.rsaPkcs1!],
    ['rsa PEM PKCS#1 with passphrase', keys.rsaPkcs1Encrypted!, 'open sesame'],
    ['ecdsa PEM SEC1', keys.ecdsaSec1!],
    ['rsa PEM PKCS#8', keys.rsaPkcs8!],
    ['ed25519 PEM PKCS#8', keys.ed25519Pkcs8!],
  ];
  it.each(cases)('%s', async (_name, key, passphrase) => {
    const tunnel = makeTunnel(sshd, { privateKey: key.privatePath, ...(passphrase ? { passphrase } : {}) });
    const statuses: string[] = [];
    tunnel.on('sshStatus', (e) => statuses.push(e.message));
    await tunnel.sshLogon();
    expect(statuses).toContain('trying authentication method publickey');
    expect(statuses).not.toContain('trying authentication method password');
    await tunnel.sshLogoff();
  });

  it('accepts the key text itself instead of a path', async () => {
    const tunnel = makeTunnel(sshd, { privateKey: keys.ed25519!.privateText });
    await tunnel.sshLogon();
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it.each(['rsa-sha2-512', 'rsa-sha2-256'])('signs with %s when that is the only RSA algorithm in server-sig-algs', async (alg) => {
    const strict = await startSshd({ authorizedKeys: [keys.rsa!.publicLine], config: [`PubkeyAcceptedAlgorithms ${alg}`] });
    try {
      const tunnel = makeTunnel(strict, { privateKey: keys.rsa!.privatePath });
      await tunnel.sshLogon();
      await tunnel.sshLogoff();
      // sshd's stderr can reach us after the connection's bytes: wait for the line, don't race it.
      await strict.waitForLog(/Accepted publickey for revtuntest from 127\.0\.0\.1 port \d+ ssh2: RSA SHA256/);
    } finally {
      await strict.stop();
    }
  });

  it('reports a wrong passphrase before connecting', async () => {
    const tunnel = makeTunnel(sshd, { privateKey: keys.ed25519Encrypted!.privatePath, passphrase: 'wrong' });
    await expect(tunnel.sshLogon()).rejects.toMatchObject({ code: 1032, message: expect.stringMatching(/passphrase/) });
  });

  it('fails with 1032 for a key the server does not know', async () => {
    const tunnel = makeTunnel(sshd, { privateKey: stranger.privatePath });
    await expect(tunnel.sshLogon()).rejects.toMatchObject({ code: 1032 });
  });
});

// Regression: a key revtun could not parse (a PuTTY file, before PPK support) was taken for a
// file name, and the "cannot read key file <name>" error then printed the whole key, private
// lines included. A damaged PPK is what stands for a key that cannot be used now.
describe('key material never appears in errors or logs', () => {
  const cases: [string, () => SSHReverseTunnel][] = [
    ['sshCertStore = the path of a PuTTY file', () => makeTunnel(sshd, { privateKey: putty.path })],
    ['sshCertStore = the text of a PuTTY file', () => makeTunnel(sshd, { privateKey: putty.text })],
  ];
  it.each(cases)('%s: named by what it is, never quoted', async (_name, make) => {
    const { error, events } = await failedLogon(make());
    const shown = `${errorText(error)}\n${events.join('\n')}`;
    for (const line of putty.privateLines) expect(shown).not.toContain(line);
    expect(shown).not.toContain('Private-MAC');
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(Code.AuthFailed);
    expect((error as SshError).message).toMatch(/the PuTTY key file is damaged or was altered \(its MAC does not match\)$/);
  });

  it('names the file when sshCertStore is a path', async () => {
    const { error } = await failedLogon(makeTunnel(sshd, { privateKey: putty.path }));
    expect((error as SshError).message).toContain(putty.path);
  });

  it.each([
    ['a path', putty.path],
    ['the text', putty.text],
  ])('openReverseTunnel({ privateKey: %s of a PuTTY file })', async (_name, privateKey) => {
    const error = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      privateKey,
      hostKey: sshd.hostKeys.ed25519,
      remote: { port: 0 },
      local: { port: 1 },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    for (const line of putty.privateLines) expect(errorText(error)).not.toContain(line);
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).message).toMatch(/the PuTTY key file is damaged or was altered/);
  });

  it('a key text that is no key at all is not quoted either', async () => {
    const secret = 'AAAAthisIsNotAKeyButItIsSecret\nAndSoIsThisSecondLine\n';
    const { error, events } = await failedLogon(makeTunnel(sshd, { privateKey: secret }));
    expect(error).toBeInstanceOf(SshError);
    expect(`${errorText(error)}\n${events.join('\n')}`).not.toMatch(/Secret|SecondLine/);
  });
});

// OpenSSH ignores a private key file that group or others may access; a library given a key
// path refuses it the same way (an application that passes the key text is not affected).
describe('key file permissions', () => {
  const open = join(keyDir, 'ed25519-0644');
  copyFileSync(keys.ed25519!.privatePath, open);
  chmodSync(open, 0o644);

  it('refuses a key file others can read with 10013, before connecting', async () => {
    const tunnel = makeTunnel(sshd, { privateKey: open });
    const connected: string[] = [];
    tunnel.on('connected', () => connected.push('connected'));
    const { error } = await failedLogon(tunnel);
    expect(error).toBeInstanceOf(SshError);
    expect(error).toMatchObject({ code: Code.AccessDenied, origin: 'local' });
    expect((error as SshError).message).toMatch(/Permissions 0644 for '.*ed25519-0644' are too open/);
    expect(connected).toEqual([]);
  });

  it('openReverseTunnel refuses it too', async () => {
    await expect(
      openReverseTunnel({ host: sshd.host, port: sshd.port, username: TEST_USER, privateKey: open, hostKey: sshd.hostKeys.ed25519, remote: { port: 0 }, local: { port: 1 } }),
    ).rejects.toMatchObject({ code: Code.AccessDenied });
  });

  it('the same key as text still logs on', async () => {
    const tunnel = makeTunnel(sshd, { privateKey: keys.ed25519!.privateText });
    await tunnel.sshLogon();
    await tunnel.sshLogoff();
  });
});

describe('host key trust', () => {
  it('rejects an unknown host key with 1030 before sending any credential', async () => {
    const tunnel = makeTunnel(sshd, { trustKey: stranger.publicLine });
    const events: { accept: boolean; fingerprint: string }[] = [];
    const statuses: string[] = [];
    tunnel.on('sshServerAuthentication', (e) => events.push({ accept: e.accept, fingerprint: e.opensshFingerprint }));
    tunnel.on('sshStatus', (e) => statuses.push(e.message));
    const before = sshd.log().length;
    await expect(tunnel.sshLogon()).rejects.toMatchObject({ code: 1030 });
    expect(events).toHaveLength(1);
    expect(events[0]!.accept).toBe(false);
    expect(fingerprintsOf(sshd)).toContain(events[0]!.fingerprint);
    expect(statuses.filter((s) => s.startsWith('trying authentication'))).toEqual([]);
    // sshd saw no user authentication request at all on this connection.
    expect(sshd.log().slice(before)).not.toMatch(/userauth-request/);
    expect(tunnel.connected).toBe(false);
  });

  it.each(['SHA256', 'MD5', 'SHA1'])("the event's fingerprint is the documented hex form of %s, and opensshFingerprint is what ssh-keygen -l prints", async (hash) => {
    const tunnel = makeTunnel(sshd, { trustKey: sshd.hostKeys.ed25519 });
    tunnel.config('SSHPublicKeyAlgorithms=ssh-ed25519');
    tunnel.config(`SSHFingerprintHashAlgorithm=${hash}`);
    const seen: { fingerprint: string; openssh: string }[] = [];
    tunnel.on('sshServerAuthentication', (e) => seen.push({ fingerprint: e.fingerprint, openssh: e.opensshFingerprint }));
    await tunnel.sshLogon();
    await tunnel.sshLogoff();
    const file = join(sshd.dir, 'host_ed25519.pub');
    const printed = (e: string) => execFileSync('ssh-keygen', ['-l', '-E', e, '-f', file], { encoding: 'utf8' }).split(/\s+/)[1]!;
    expect(seen[0]!.openssh).toBe(printed('sha256'));
    // ssh-keygen prints MD5 as hex already, SHA1 and SHA256 as base64.
    const hashed = printed(hash.toLowerCase());
    const expected =
      hash === 'MD5'
        ? hashed.slice(4)
        : Buffer.from(hashed.slice(hash.length + 1), 'base64')
            .toString('hex')
            .replace(/(..)(?!$)/g, '$1:');
    expect(seen[0]!.fingerprint).toBe(expected);
  });

  it('accepts an unknown key when the sshServerAuthentication handler sets accept', async () => {
    const tunnel = makeTunnel(sshd, { trustKey: stranger.publicLine });
    tunnel.on('sshServerAuthentication', (e) => {
      e.accept = true;
    });
    await tunnel.sshLogon();
    expect(tunnel.config('SSHFingerprintSHA256')).not.toBe('');
    await tunnel.sshLogoff();
  });

  it('accepts the key named by sshAcceptServerHostKey (public key line)', async () => {
    const tunnel = makeTunnel(sshd, { trustKey: sshd.hostKeys.ed25519 });
    tunnel.config('SSHPublicKeyAlgorithms=ssh-ed25519');
    let preAccepted: boolean | undefined;
    tunnel.on('sshServerAuthentication', (e) => {
      preAccepted = e.accept;
    });
    await tunnel.sshLogon();
    expect(preAccepted).toBe(true);
    await tunnel.sshLogoff();
  });

  it('accepts a key named by its MD5 fingerprint in SSHAcceptServerHostKeyFingerPrint', async () => {
    const probe = makeTunnel(sshd);
    probe.config('SSHPublicKeyAlgorithms=ssh-ed25519');
    await probe.sshLogon();
    const md5 = probe.config('SSHFingerprintMD5');
    await probe.sshLogoff();
    expect(md5).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);

    const tunnel = makeTunnel(sshd, { trustKey: stranger.publicLine });
    tunnel.config('SSHPublicKeyAlgorithms=ssh-ed25519');
    tunnel.config(`SSHAcceptServerHostKeyFingerPrint=${md5}`);
    await tunnel.sshLogon();
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });

  it('SSHAcceptAnyServerHostKey accepts whatever key the server shows', async () => {
    const tunnel = makeTunnel(sshd, { trustKey: stranger.publicLine });
    tunnel.config('SSHAcceptAnyServerHostKey=True');
    await tunnel.sshLogon();
    expect(tunnel.connected).toBe(true);
    await tunnel.sshLogoff();
  });
});
