// OpenSSH user certificates (PROTOCOL.certkeys) against a real sshd that trusts a CA of the
// test's (TrustedUserCAKeys) and has no authorized_keys for the user: SignedSSHCert with the
// sshCert* key, an identity's certificate, KEY-cert.pub beside -i KEY, CertificateFile, and a
// certificate held by ssh-agent; ed25519 and RSA (rsa-sha2 certificate algorithms). A
// certificate for another principal or from another CA is refused by the server (1032); a
// host certificate or one for another key is refused before connecting (10022).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_USER, type KeyPair, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { runRevtun } from '../helpers/cli.js';
import { SshAuthMode } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-usercert-'));
const ca = generateKey(dir, 'ca', 'ed25519');
const otherCa = generateKey(dir, 'other_ca', 'ed25519');

/** Signs `key`'s public half with `by`; returns the certificate line (also left in KEY-cert.pub). */
function certify(key: KeyPair, options: { by?: KeyPair; principal?: string; host?: boolean } = {}): string {
  const args = ['-q', '-s', (options.by ?? ca).privatePath, '-I', `test-${Math.random().toString(36).slice(2, 8)}`, '-n', options.principal ?? TEST_USER];
  if (options.host) args.push('-h');
  execFileSync('ssh-keygen', [...args, `${key.privatePath}.pub`]);
  return readFileSync(`${key.privatePath}-cert.pub`, 'utf8').trim();
}

let sshd: Sshd;
beforeAll(async () => {
  writeFileSync(join(dir, 'ca.pub'), `${ca.publicLine}\n`);
  sshd = await startSshd({ authorizedKeys: [], config: [`TrustedUserCAKeys ${join(dir, 'ca.pub')}`, 'LogLevel DEBUG1'] });
});
afterAll(() => sshd?.stop());

function certTunnel(key: KeyPair, cert: string) {
  const t = makeTunnel(sshd, { user: TEST_USER, privateKey: key.privatePath });
  t.config(`SignedSSHCert=${cert}`);
  return t;
}

describe('user certificates, from the library', () => {
  it.each(['ed25519', 'rsa'] as const)('SignedSSHCert with the sshCert* key logs on (%s) with a key the server knows only through its CA', async (type) => {
    const key = generateKey(dir, `id_${type}_signed`, type, type === 'rsa' ? { bits: 2048 } : {});
    const cert = certify(key);
    const plain = makeTunnel(sshd, { user: TEST_USER, privateKey: key.privatePath });
    await expect(plain.sshLogon()).rejects.toMatchObject({ code: 1032 }); // without it: refused
    const from = sshd.log().length;
    const t = certTunnel(key, cert);
    await t.sshLogon();
    await t.sshLogoff();
    const line = await sshd.waitForLog(/Accepted publickey for revtuntest .*(ED25519-CERT|RSA-CERT).*/, from);
    expect(line[0]).toMatch(/CA ED25519 SHA256:/);
  });

  it('SignedSSHCert may name the -cert.pub file; identities take a certificate too', async () => {
    const key = generateKey(dir, 'id_by_file', 'ed25519');
    certify(key);
    const byFile = certTunnel(key, `${key.privatePath}-cert.pub`);
    await byFile.sshLogon();
    await byFile.sshLogoff();
    const viaIdentity = makeTunnel(sshd, { user: TEST_USER, password: '' });
    viaIdentity.sshAuthMode = SshAuthMode.PublicKey;
    viaIdentity.addIdentity({ key: key.privatePath, certificate: `${key.privatePath}-cert.pub` });
    await viaIdentity.sshLogon();
    await viaIdentity.sshLogoff();
  });

  it("a jump host with its own key does not get the tunnel's SignedSSHCert (it certifies the tunnel's key)", async () => {
    const bastion = await startSshd({ authorizedKeys: [] });
    try {
      const hopKey = generateKey(dir, 'id_hop', 'ed25519');
      bastion.setAuthorizedKeys('root', [hopKey.publicLine]);
      const key = generateKey(dir, 'id_through', 'ed25519');
      const t = certTunnel(key, certify(key));
      t.jumpHosts = [{ host: bastion.host, port: bastion.port, user: 'root', hostKey: bastion.hostKeys.ed25519, privateKey: hopKey.privatePath }];
      t.config('SSHPublicKeyAlgorithms=ssh-ed25519');
      await t.sshLogon();
      expect(t.connected).toBe(true);
      await t.sshLogoff();
    } finally {
      await bastion.stop();
    }
  });

  it('a certificate for another principal, or from a CA the server does not trust, is refused by the server (1032)', async () => {
    const key = generateKey(dir, 'id_wrong', 'ed25519');
    await expect(certTunnel(key, certify(key, { principal: 'someone-else' })).sshLogon()).rejects.toMatchObject({ code: 1032 });
    await expect(certTunnel(key, certify(key, { by: otherCa })).sshLogon()).rejects.toMatchObject({ code: 1032 });
  });

  it('a host certificate, or a certificate of another key, is refused before connecting (10022)', async () => {
    const key = generateKey(dir, 'id_mismatch', 'ed25519');
    const other = generateKey(dir, 'id_other', 'ed25519');
    await expect(certTunnel(key, certify(key, { host: true })).sshLogon()).rejects.toMatchObject({ code: 10022, message: expect.stringContaining('host certificate') });
    await expect(certTunnel(key, certify(other)).sshLogon()).rejects.toMatchObject({ code: 10022, message: expect.stringContaining('another key') });
  });
});

describe('user certificates, from the command line and the agent', () => {
  let knownHosts: string;
  beforeAll(() => {
    knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
  });
  const revtun = (extra: string[], env: NodeJS.ProcessEnv = {}) =>
    runRevtun(['-N', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-p', String(sshd.port), ...extra, '-R', '0:127.0.0.1:9', `${TEST_USER}@127.0.0.1`], {
      SSH_AUTH_SOCK: '',
      ...env,
    });
  async function logsOn(run: ReturnType<typeof revtun>): Promise<void> {
    await run.waitFor(/Allocated port \d+ for remote forward/);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  }

  it('-i KEY takes KEY-cert.pub beside it, as ssh does', async () => {
    const key = generateKey(dir, 'id_cli', 'ed25519');
    certify(key);
    await logsOn(revtun(['-i', key.privatePath]));
  });

  it('CertificateFile goes with the identity whose key it certifies', async () => {
    const key = generateKey(dir, 'id_certfile', 'ed25519');
    certify(key);
    const elsewhere = join(dir, 'elsewhere-cert.pub');
    copyFileSync(`${key.privatePath}-cert.pub`, elsewhere);
    execFileSync('rm', [`${key.privatePath}-cert.pub`]);
    const config = join(dir, 'config_certfile');
    writeFileSync(config, `Host *\n  IdentityFile ${key.privatePath}\n  CertificateFile ${elsewhere}\n`);
    await logsOn(revtun(['-F', config]));
    // Without the CertificateFile line the key alone is refused.
    writeFileSync(config, `Host *\n  IdentityFile ${key.privatePath}\n`);
    expect(await revtun(['-F', config]).exit).toBe(255);
  });

  it('a certificate held by ssh-agent (ssh-add adds KEY-cert.pub with KEY): no file given', async () => {
    const key = generateKey(dir, 'id_agent', 'ed25519');
    certify(key);
    const socket = join(dir, 'agent.sock');
    const agent: ChildProcess = await new Promise((resolve, reject) => {
      const child = spawn('ssh-agent', ['-D', '-a', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (c: Buffer) => c.toString().includes('SSH_AUTH_SOCK') && resolve(child));
      child.once('exit', (code) => reject(new Error(`ssh-agent exited ${code}`)));
    });
    try {
      execFileSync('ssh-add', [key.privatePath], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'pipe' });
      await logsOn(revtun([], { SSH_AUTH_SOCK: socket }));
    } finally {
      agent.kill();
    }
  });
});
