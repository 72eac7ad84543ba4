// OpenSSH host certificates against real sshds started with HostCertificate: certificates made
// by ssh-keygen -s -h for each host key, trusted through the library's SSHAcceptServerCAKey or
// a known_hosts @cert-authority line given to the revtun command. Expired, not yet valid,
// wrong-principal, wrong-CA and revoked-CA certificates must each be refused with their own
// message before any credential is sent (sshd's DEBUG1 log must show no userauth request).
//
// Two servers, each key type with its own certificate, and the client picks the certificate
// it is shown through the host key algorithm it asks for:
//   a: ed25519 valid · ecdsa expired · rsa not yet valid
//   b: ed25519 for another principal · ecdsa valid · rsa valid

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, stopAll, TEST_PASSWORD, TEST_USER, type KeyPair, type Sshd } from '../helpers/sshd.js';
import { runRevtun, type Run } from '../helpers/cli.js';
import { fingerprintsOf } from '../helpers/tunnel.js';
import { virtualScheduler } from '../helpers/clock.js';
import { SSHReverseTunnel, SshError, type ServerAuthenticationEvent, type TunnelStateEvent } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-hostcert-'));
const clientKey = generateKey(dir, 'id_ed25519', 'ed25519');
const ca = generateKey(dir, 'ca', 'ed25519');
const otherCa = generateKey(dir, 'other_ca', 'ed25519');
const ecdsaCa = generateKey(dir, 'ecdsa_ca', 'ecdsa', { bits: 384 });

let a: Sshd;
let b: Sshd;

/** Signs the sshd's host key `name` (host_ed25519...) and returns the HostCertificate line. */
function certify(sshd: Sshd, name: string, signer: KeyPair, args: string[]): string {
  const keyPath = join(sshd.dir, name);
  execFileSync('ssh-keygen', ['-q', '-s', signer.privatePath, '-h', '-I', `${name}@test`, ...args, `${keyPath}.pub`], { stdio: 'pipe' });
  return `HostCertificate ${keyPath}-cert.pub`;
}

beforeAll(async () => {
  // DEBUG1 so that tests can check that sshd saw no user authentication request at all.
  const options = { authorizedKeys: [clientKey.publicLine], config: ['LogLevel DEBUG1'] };
  [a, b] = await Promise.all([startSshd(options), startSshd(options)]);
  a.setConfig([
    'LogLevel DEBUG1',
    certify(a, 'host_ed25519', ca, ['-n', '127.0.0.1']),
    certify(a, 'host_ecdsa', ca, ['-n', '127.0.0.1', '-V', '-2d:-1d']),
    certify(a, 'host_rsa', ca, ['-n', '127.0.0.1', '-V', '+1d:+2d']),
  ]);
  b.setConfig([
    'LogLevel DEBUG1',
    certify(b, 'host_ed25519', ca, ['-n', 'other']),
    certify(b, 'host_ecdsa', ecdsaCa, ['-n', '127.0.0.1,gw.example.com']),
    certify(b, 'host_rsa', ca, ['-n', '127.0.0.1']),
  ]);
  await Promise.all([a.restart(), b.restart()]);
});
afterAll(() => stopAll(a, b));

function sha256Of(key: KeyPair): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key.privatePath}.pub`], { encoding: 'utf8' }).split(/\s+/)[1]!;
}

/** A tunnel that trusts nothing but `caLine` and logs on with the test user's password. */
function caTunnel(sshd: Sshd, caLine: string, hostKeyAlgorithms?: string): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = sshd.host;
  t.sshPort = sshd.port;
  t.sshUser = TEST_USER;
  t.sshPassword = TEST_PASSWORD;
  t.timeout = 30;
  t.config(`SSHAcceptServerCAKey=${caLine}`);
  if (hostKeyAlgorithms) t.config(`SSHPublicKeyAlgorithms=${hostKeyAlgorithms}`);
  return t;
}

/** Asserts that sshd saw the connection end without any authentication request. */
async function expectNoAuthentication(sshd: Sshd, before: number): Promise<void> {
  await sshd.waitForLog(/Disconnected from \S+ port \d+|Connection closed by/, before);
  expect(sshd.log().slice(before)).not.toMatch(/userauth-request|Accepted|Failed/);
}

describe('SSHAcceptServerCAKey', () => {
  it('logs on to a server with a host certificate from the trusted CA, and the event names the certificate', async () => {
    const t = caTunnel(a, ca.publicLine);
    const events: ServerAuthenticationEvent[] = [];
    t.on('sshServerAuthentication', (e) => events.push({ ...e }));
    await t.sshLogon();
    expect(t.connected).toBe(true);
    expect(events).toHaveLength(1);
    const e = events[0]!;
    expect(e.accept).toBe(true);
    expect(e.keyAlgorithm).toBe('ssh-ed25519-cert-v01@openssh.com');
    expect(e.certSubject).toBe('host_ed25519@test');
    expect(e.certIssuer).toBe(`ssh-ed25519 ${sha256Of(ca)}`);
    // The host key is the certified key, whose fingerprint ssh-keygen -l prints.
    expect(fingerprintsOf(a)).toContain(e.opensshFingerprint);
    expect(e.certificate?.principals).toEqual(['127.0.0.1']);
    // The sshAcceptServerHostKey* properties describe the certificate the logon accepted.
    expect(t.sshAcceptServerHostKeySubject).toBe('host_ed25519@test');
    expect(t.sshAcceptServerHostKeyIssuer).toBe(e.certIssuer);
    expect(t.sshAcceptServerHostKeySubjectAltNames).toBe('127.0.0.1');
    expect(t.sshAcceptServerHostKeyOpensshFingerprint).toBe(e.opensshFingerprint);
    expect(t.sshAcceptServerHostKeyFingerprintSHA256).toBe(e.fingerprint);
    expect(t.sshAcceptServerHostKeySignatureAlgorithm).toBe('ssh-ed25519');
    expect(t.sshAcceptServerHostKeyExpirationDate).toBe(''); // valid forever
    await t.sshLogoff();
  });

  it.each([
    ['an ECDSA certificate signed by an ECDSA CA', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp256-cert-v01@openssh.com', () => ecdsaCa],
    ['an RSA certificate (rsa-sha2-512)', 'rsa-sha2-512', 'rsa-sha2-512-cert-v01@openssh.com', () => ca],
    ['an RSA certificate (rsa-sha2-256)', 'rsa-sha2-256', 'rsa-sha2-256-cert-v01@openssh.com', () => ca],
  ])('logs on with %s', async (_what, plain, negotiated, signer) => {
    const t = caTunnel(b, signer().publicLine, plain);
    let algorithm = '';
    t.on('sshServerAuthentication', (e) => (algorithm = e.keyAlgorithm));
    await t.sshLogon();
    expect(algorithm).toBe(negotiated);
    await t.sshLogoff();
  });

  it('trusts any CA of several given one per line', async () => {
    const t = caTunnel(b, `${otherCa.publicLine}\n${ecdsaCa.publicLine}`, 'ecdsa-sha2-nistp256');
    await t.sshLogon();
    expect(t.connected).toBe(true);
    await t.sshLogoff();
  });

  it.each([
    ['expired', () => a, 'ecdsa-sha2-nistp256', () => ca, /the host certificate has expired \(valid from .* to .*\)/],
    ['not yet valid', () => a, 'rsa-sha2-512', () => ca, /the host certificate is not yet valid \(valid from .* to .*\)/],
    ['for another principal', () => b, 'ssh-ed25519', () => ca, /the host certificate is not valid for "127\.0\.0\.1" \(its principals: "other"\)/],
    ['signed by another CA', () => a, 'ssh-ed25519', () => otherCa, /the host certificate is signed by a CA that is not trusted \(ssh-ed25519 SHA256:/],
  ])('refuses a certificate %s with 1030 before any credential is sent', async (_what, server, plain, signer, message) => {
    const sshd = server();
    const before = sshd.log().length;
    const t = caTunnel(sshd, signer().publicLine, plain);
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(1030);
    expect((error as SshError).message).toMatch(/^the server host certificate \(\S+ SHA256:\S+\) was not accepted: /);
    expect((error as SshError).message).toMatch(message);
    expect(t.connected).toBe(false);
    await expectNoAuthentication(sshd, before);
  });

  it('says so when the server presents a plain key although a CA is trusted', async () => {
    // A certificate algorithm the list already names keeps its place: the plain key is negotiated,
    // as with a server that has no HostCertificate.
    const t = caTunnel(a, ca.publicLine, 'ssh-ed25519,ssh-ed25519-cert-v01@openssh.com');
    let algorithm = '';
    t.on('sshServerAuthentication', (e) => (algorithm = e.keyAlgorithm));
    const error = await t.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as SshError).code).toBe(1030);
    expect((error as SshError).message).toMatch(/it is a plain key, not a certificate from the CA of SSHAcceptServerCAKey/);
    expect(algorithm).toBe('ssh-ed25519');
  });

  it('still accepts the certified key when the application trusts it as a plain key', async () => {
    const t = caTunnel(a, ca.publicLine, 'ecdsa-sha2-nistp256');
    t.sshAcceptServerHostKey = a.hostKeys.ecdsa;
    await t.sshLogon();
    expect(t.connected).toBe(true);
    await t.sshLogoff();
  });

  it('judges the certificate again at each reconnect: a rotated key with a new certificate is accepted, an expired one ends the tunnel', async () => {
    const sshd = await startSshd({ authorizedKeys: [clientKey.publicLine], config: ['LogLevel DEBUG1'] });
    try {
      sshd.setConfig(['LogLevel DEBUG1', certify(sshd, 'host_ed25519', ca, ['-n', '127.0.0.1'])]);
      await sshd.restart();
      const clock = virtualScheduler(0);
      const t = caTunnel(sshd, ca.publicLine, 'ssh-ed25519');
      t.scheduler = clock;
      const next = (state: TunnelStateEvent['state']) =>
        new Promise<TunnelStateEvent>((resolve) => {
          const on = (e: TunnelStateEvent) => {
            if (e.state !== state) return;
            t.off('tunnelState', on);
            resolve(e);
          };
          t.on('tunnelState', on);
        });
      const seen: string[] = [];
      t.on('sshServerAuthentication', (e) => seen.push(e.fingerprint));
      await t.sshLogon();
      // A new host key, certified by the same CA: a pinned key would refuse it.
      sshd.replaceHostKeys();
      sshd.setConfig(['LogLevel DEBUG1', certify(sshd, 'host_ed25519_1', ca, ['-n', '127.0.0.1'])]);
      const up = next('up');
      await sshd.restart();
      await clock.nextWait();
      clock.pass();
      await up;
      expect(seen).toHaveLength(2);
      expect(seen[1]).not.toBe(seen[0]);
      // The same key with an expired certificate: refused, and not retried.
      sshd.setConfig(['LogLevel DEBUG1', certify(sshd, 'host_ed25519_1', ca, ['-n', '127.0.0.1', '-V', '-2d:-1d'])]);
      const closed = next('closed');
      await sshd.restart();
      await clock.nextWait();
      clock.pass();
      const end = await closed;
      const error = end.state === 'closed' ? end.error : undefined;
      expect(error?.code).toBe(1030);
      expect(error?.message).toMatch(/the host certificate has expired/);
      await t.reset();
    } finally {
      await sshd.stop();
    }
  });

  it('refuses a CA key that is not a public key line with 10022', () => {
    const t = new SSHReverseTunnel();
    expect(() => t.config('SSHAcceptServerCAKey=ssh-ed25519 not-base64!')).toThrow(expect.objectContaining({ code: 10022 }));
    expect(() => t.config(`SSHAcceptServerCAKey=ssh-rsa ${ca.publicLine.split(' ')[1]}`)).toThrow(/labelled ssh-rsa but holds a ssh-ed25519 key/);
  });
});

describe('revtun with @cert-authority in known_hosts', () => {
  function knownHosts(name: string, lines: string[]): string {
    const path = join(dir, name);
    writeFileSync(path, lines.join('\n') + '\n');
    return path;
  }

  function revtun(sshd: Sshd, known: string, extra: string[] = []): Run {
    return runRevtun(
      [
        '-N',
        '-v',
        '-p',
        String(sshd.port),
        '-i',
        clientKey.privatePath,
        '-o',
        `UserKnownHostsFile=${known}`,
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        'BatchMode=yes',
        ...extra,
        '-R',
        '0:127.0.0.1:9',
        `root@${sshd.host}`,
      ],
      { HOME: dir },
    );
  }

  async function loggedOn(run: Run): Promise<void> {
    await run.waitFor(/Allocated port \d+/);
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  }

  /** The exit status of a run that should fail; one that connects instead is stopped and reported. */
  async function exitStatusOrConnected(run: Run): Promise<number | 'connected'> {
    const connected = await run.waitFor(/Allocated port/).then(
      () => true,
      () => false,
    );
    if (!connected) return run.exit;
    run.child.kill('SIGINT');
    await run.exit;
    return 'connected';
  }

  async function refused(sshd: Sshd, run: Run, before: number): Promise<string> {
    expect(await exitStatusOrConnected(run)).toBe(255);
    expect(run.stderr()).toMatch(/\(error 1030\)/);
    expect(run.stderr()).not.toMatch(/trying authentication method/);
    await expectNoAuthentication(sshd, before);
    return run.stderr();
  }

  it('logs on with only the @cert-authority line, preferring the certificate algorithms', async () => {
    const known = knownHosts('kh-ca', [`@cert-authority 127.0.0.1,[127.0.0.1]:* ${ca.publicLine}`]);
    const run = revtun(a, known);
    await loggedOn(run);
    expect(run.stderr()).toMatch(/hostkey=ssh-ed25519-cert-v01@openssh\.com/);
  });

  it('checks the principals against HostKeyAlias, and looks the alias up in known_hosts', async () => {
    const known = knownHosts('kh-alias', [`@cert-authority [other]:${b.port} ${ca.publicLine}`]);
    await loggedOn(revtun(b, known, ['-o', 'HostKeyAlias=other', '-o', 'HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com']));
  });

  it.each([
    ['expired', () => a, 'ecdsa-sha2-nistp256-cert-v01@openssh.com', /Host certificate refused: the host certificate has expired/],
    ['not yet valid', () => a, 'rsa-sha2-512-cert-v01@openssh.com', /Host certificate refused: the host certificate is not yet valid/],
    ['for another principal', () => b, 'ssh-ed25519-cert-v01@openssh.com', /Host certificate refused: the host certificate is not valid for "127\.0\.0\.1"/],
  ])('refuses a certificate %s before any credential, then finds no plain key either', async (_what, server, algorithm, message) => {
    const sshd = server();
    const known = knownHosts(`kh-${algorithm}`, [`@cert-authority * ${ca.publicLine}`]);
    const before = sshd.log().length;
    const stderr = await refused(sshd, revtun(sshd, known, ['-o', `HostKeyAlgorithms=${algorithm}`]), before);
    expect(stderr).toMatch(message);
    expect(stderr).toMatch(/No \S+ host key is known for 127\.0\.0\.1/);
  });

  it('refuses a certificate from a CA no @cert-authority line trusts', async () => {
    const known = knownHosts('kh-other-ca', [`@cert-authority * ${otherCa.publicLine}`]);
    const before = a.log().length;
    const stderr = await refused(a, revtun(a, known), before);
    expect(stderr).toMatch(/Host certificate refused: the host certificate is signed by a CA that is not trusted \(ssh-ed25519 SHA256:/);
    expect(stderr).toContain(sha256Of(ca));
  });

  it('refuses a certificate whose CA key is @revoked, even with the @cert-authority line', async () => {
    const known = knownHosts('kh-revoked-ca', [`@cert-authority * ${ca.publicLine}`, `@revoked * ${ca.publicLine}`]);
    const before = a.log().length;
    const stderr = await refused(a, revtun(a, known), before);
    expect(stderr).toMatch(/WARNING: REVOKED HOST KEY DETECTED!/);
    expect(stderr).toMatch(/Host key verification failed: the CA key of the host certificate \(ssh-ed25519 SHA256:\S+\) is marked as revoked\./);
  });

  it('accepts an expired certificate whose key known_hosts holds as a plain key, as ssh does, saying what was wrong', async () => {
    const known = knownHosts('kh-plain-too', [`@cert-authority * ${ca.publicLine}`, `[127.0.0.1]:${a.port} ${a.hostKeys.ecdsa}`]);
    const run = revtun(a, known, ['-o', 'HostKeyAlgorithms=ecdsa-sha2-nistp256-cert-v01@openssh.com']);
    await loggedOn(run);
    expect(run.stderr()).toMatch(/Host certificate refused: the host certificate has expired/);
  });
});
