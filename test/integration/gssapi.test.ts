// GSSAPI (Kerberos) authentication against a real MIT KDC and OpenSSH's sshd (Debian's, with
// the GSSAPI key exchange patch): gssapi-with-mic with a reverse forwarding through it, the
// failures a user meets (no ticket, a wrong service name), credential delegation as the KDC
// sees it, gssapi-keyex, the CLI's -K, and the refusal where the native addon is not used.
//
// sshd allows only the GSSAPI methods (AuthenticationMethods), so nothing else can let the user
// in. The client finds its realm through KRB5_CONFIG and its tickets through KRB5CCNAME, as
// ssh does; each test points KRB5CCNAME at the ccache it needs.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runRevtun, type Run } from '../helpers/cli.js';
import { startKdc, type Kdc } from '../helpers/kdc.js';
import { startSshd, stopAll, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { echoServer, roundTrip } from '../helpers/streams.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { Code, SshAuthMode, SshError, type SSHReverseTunnel } from '../../ts/index.js';

const USER_PASSWORD = 'kerberos test password';

let kdc: Kdc;
let sshd: Sshd;
let echo: Awaited<ReturnType<typeof echoServer>>;
/** A ccache holding revtuntest's forwardable TGT. */
let ticket: string;
const savedEnv = { KRB5_CONFIG: process.env['KRB5_CONFIG'], KRB5CCNAME: process.env['KRB5CCNAME'] };

beforeAll(async () => {
  kdc = await startKdc();
  kdc.addUser(TEST_USER, USER_PASSWORD);
  kdc.addHost('127.0.0.1');
  kdc.addHost('localhost'); // the name GSSAPITrustDns finds for 127.0.0.1 in /etc/hosts
  ticket = kdc.kinit(TEST_USER, USER_PASSWORD);
  process.env['KRB5_CONFIG'] = kdc.krb5Config;
  process.env['KRB5CCNAME'] = ticket;
  sshd = await startSshd({
    env: { KRB5_CONFIG: kdc.krb5Config, KRB5_KTNAME: `FILE:${kdc.keytab}` },
    config: [
      'GSSAPIAuthentication yes',
      'GSSAPIKeyExchange yes',
      // The keytab holds host/127.0.0.1, not host/<this machine's name>, which the strict check wants.
      'GSSAPIStrictAcceptorCheck no',
      'AuthenticationMethods gssapi-with-mic gssapi-keyex',
      'LogLevel DEBUG1',
    ],
  });
  echo = await echoServer();
});

afterAll(async () => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await stopAll(echo, sshd, kdc);
});

afterEach(() => {
  process.env['KRB5CCNAME'] = ticket;
});

/** A tunnel for the test user in a GSSAPI mode, with no password to fall back on. */
function kerberosTunnel(mode: number = SshAuthMode.GSSAPIWithMic): SSHReverseTunnel {
  const tunnel = makeTunnel(sshd, { password: '' });
  tunnel.sshAuthMode = mode as typeof tunnel.sshAuthMode;
  tunnel.config('KerberosDelegation=False');
  return tunnel;
}

async function logonError(tunnel: SSHReverseTunnel): Promise<SshError> {
  const error = await tunnel.sshLogon().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SshError);
  return error as SshError;
}

describe('gssapi-with-mic', () => {
  it('logs on with the ticket and carries a reverse forwarding', async () => {
    process.env['KRB5CCNAME'] = ticket;
    const tunnel = kerberosTunnel();
    const statuses: string[] = [];
    tunnel.on('sshStatus', (e) => statuses.push(e.message));
    const logged = sshd.log().length;
    await tunnel.sshLogon();
    expect(statuses).toContain('trying authentication method gssapi-with-mic');
    await sshd.waitForLog(new RegExp(`Accepted gssapi-with-mic for ${TEST_USER}`), logged);
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    const data = randomBytes(64 * 1024);
    expect((await roundTrip(port, data)).equals(data)).toBe(true);
    await tunnel.sshLogoff();
  });

  it('without a ticket fails with 1032 saying no Kerberos credentials are there', async () => {
    process.env['KRB5CCNAME'] = kdc.emptyCcache();
    const error = await logonError(kerberosTunnel());
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gssapi-with-mic: .*No Kerberos credentials available/);
  });

  it('with a service principal the KDC does not know fails with 1032 naming it', async () => {
    const tunnel = kerberosTunnel();
    tunnel.config(`KerberosSPN=host/nowhere.invalid@${kdc.realm}`);
    const error = await logonError(tunnel);
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/Server host\/nowhere\.invalid@REVTUN\.TEST not found in Kerberos database/);
  });

  it('KerberosRealm names the server principal host/<sshHost>@REALM (a DNS name, in capitals)', async () => {
    const tunnel = kerberosTunnel();
    tunnel.config(`KerberosRealm=${kdc.realm.toLowerCase()}`);
    await tunnel.sshLogon();
    await tunnel.sshLogoff();
    const missing = kerberosTunnel();
    missing.config('KerberosRealm=OTHER.INVALID');
    // The KDC has no way to that realm: it is asked for the cross-realm ticket and says so.
    const error = await logonError(missing);
    expect(error.message).toMatch(/GSSAPI context for host\/127\.0\.0\.1@OTHER\.INVALID: .*krbtgt\/OTHER\.INVALID@REVTUN\.TEST not found/);
  });

  it('with sshPassword, gets its own credentials for sshUser instead of the ticket cache', async () => {
    process.env['KRB5CCNAME'] = kdc.emptyCcache();
    const tunnel = kerberosTunnel();
    tunnel.sshPassword = USER_PASSWORD;
    const asRequests = () =>
      kdc
        .log()
        .split('\n')
        .filter((line) => line.includes(`AS_REQ`) && line.includes('ISSUE') && line.includes(`${TEST_USER}@`)).length;
    const before = asRequests();
    await tunnel.sshLogon();
    await tunnel.sshLogoff();
    expect(asRequests()).toBe(before + 1);
    const wrong = kerberosTunnel();
    wrong.sshPassword = 'not the password';
    const error = await logonError(wrong);
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gss_acquire_cred_with_password\(revtuntest\) failed/);
  });

  it('with KerberosDelegation the TGT is forwarded: the KDC issues a krbtgt ticket for it, and sshd receives it', async () => {
    const tgsFor = (log: string) => log.split('\n').filter((line) => /TGS_REQ .* for krbtgt\//.test(line)).length;
    const undelegated = kerberosTunnel();
    const before = tgsFor(kdc.log());
    await undelegated.sshLogon();
    await undelegated.sshLogoff();
    expect(tgsFor(kdc.log())).toBe(before);

    const delegated = kerberosTunnel();
    delegated.config('KerberosDelegation=True');
    const statuses: string[] = [];
    delegated.on('sshStatus', (e) => statuses.push(e.message));
    const logged = sshd.log().length;
    await delegated.sshLogon();
    await sshd.waitForLog(/Received some client credentials/, logged);
    await delegated.sshLogoff();
    expect(tgsFor(kdc.log())).toBe(before + 1);
    expect(statuses).toContain('GSSAPI credentials delegated to the server');
  });
});

describe('gssapi-keyex', () => {
  const names = ['gss-curve25519-sha256-', 'gss-nistp256-sha256-', 'gss-group14-sha256-'].map((prefix) => `${prefix}toWM5Slw5Ew8Mqkay+al2g==`);

  for (const name of names) {
    it(`${name.split('-').slice(0, 3).join('-')}: the server proves itself with GSSAPI, the user logs on with gssapi-keyex, and a forwarding carries data`, async () => {
      const tunnel = kerberosTunnel(SshAuthMode.GSSAPIKeyex);
      tunnel.config(`SSHKeyExchangeAlgorithms=${name},curve25519-sha256`);
      const statuses: string[] = [];
      tunnel.on('sshStatus', (e) => statuses.push(e.message));
      const logs: string[] = [];
      tunnel.on('log', (e) => logs.push(e.message));
      const logged = sshd.log().length;
      await tunnel.sshLogon();
      expect(statuses).toContain(`GSSAPI key exchange ${name}: the server's MIC over the exchange hash verifies`);
      // sshd sends no host key here, so the fingerprints the tunnel was given could not be applied: it says so.
      expect(logs.filter((m) => /authenticated by Kerberos .* host key trust .* was not applied/.test(m))).toHaveLength(1);
      expect(statuses).toContain('trying authentication method gssapi-keyex');
      await sshd.waitForLog(new RegExp(`Accepted gssapi-keyex for ${TEST_USER}`), logged);
      const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
      const data = randomBytes(32 * 1024);
      expect((await roundTrip(port, data)).equals(data)).toBe(true);
      await tunnel.sshLogoff();
    });
  }

  it('with sshPassword the password goes to the KDC once per logon, right or wrong, though the logon starts several GSSAPI contexts (was once per context)', async () => {
    process.env['KRB5CCNAME'] = kdc.emptyCcache();
    // One line per password the KDC judged: issued, or refused (a first request without
    // pre-authentication is answered "NEEDED_PREAUTH" and is not counted).
    const judged = () =>
      kdc
        .log()
        .split('\n')
        .filter((line) => line.includes('AS_REQ') && line.includes(`${TEST_USER}@`) && /ISSUE|PREAUTH_FAILED/.test(line)).length;
    const right = kerberosTunnel(SshAuthMode.GSSAPIKeyex);
    right.sshPassword = USER_PASSWORD;
    const statuses: string[] = [];
    right.on('sshStatus', (e) => statuses.push(e.message));
    let before = judged();
    await right.sshLogon();
    // Two contexts: the probe before offering GSSAPI key exchanges, and the exchange's (which gssapi-keyex's MIC reuses).
    expect(statuses.some((m) => /^GSSAPI key exchange gss-.*verifies$/.test(m))).toBe(true);
    expect(statuses).toContain('trying authentication method gssapi-keyex');
    await right.sshLogoff();
    expect(judged()).toBe(before + 1);

    const wrong = kerberosTunnel(SshAuthMode.GSSAPIKeyex);
    wrong.sshPassword = 'not the password';
    before = judged();
    const error = await logonError(wrong);
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gss_acquire_cred_with_password\(revtuntest\) failed/);
    expect(judged()).toBe(before + 1);
  });

  it('a re-exchange is a GSSAPI one again, and the connection carries on', async () => {
    const tunnel = kerberosTunnel(SshAuthMode.GSSAPIKeyex);
    const statuses: string[] = [];
    tunnel.on('sshStatus', (e) => statuses.push(e.message));
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    await tunnel.exchangeKeys();
    expect(statuses.filter((m) => /^GSSAPI key exchange gss-curve25519-sha256-.*verifies$/.test(m))).toHaveLength(2);
    const data = randomBytes(16 * 1024);
    expect((await roundTrip(port, data)).equals(data)).toBe(true);
    await tunnel.sshLogoff();
  });

  it('without a ticket the GSSAPI key exchanges are not offered, and the logon fails with 1032 saying why', async () => {
    process.env['KRB5CCNAME'] = kdc.emptyCcache();
    const tunnel = kerberosTunnel(SshAuthMode.GSSAPIKeyex);
    const logs: string[] = [];
    tunnel.on('log', (e) => logs.push(e.message));
    const error = await logonError(tunnel);
    expect(logs.some((m) => /^not offering the GSSAPI key exchanges: .*No Kerberos credentials available/.test(m))).toBe(true);
    // The first of the default list that OpenSSH 9.2 has: the sntrup761 hybrid (native core).
    expect(logs.some((m) => /negotiated kex=sntrup761x25519-sha512 /.test(m))).toBe(true);
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gssapi-with-mic: .*No Kerberos credentials available/);
  });
});

describe('the revtun command', () => {
  const home = mkdtempSync(join(tmpdir(), 'revtun-gssapi-cli-'));
  const runs: Run[] = [];
  afterEach(async () => {
    for (const run of runs.splice(0)) {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.exit;
    }
  });

  /** A known_hosts file trusting the sshd's ed25519 key. */
  function knownHosts(): string {
    const path = join(home, 'known_hosts');
    writeFileSync(path, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
    return path;
  }

  /** revtun with Kerberos the only way in: no keys, no passwords, ssh_config from -F none. */
  function revtunKerberos(extra: string[]): Run {
    const args = ['-N', '-F', 'none', '-p', String(sshd.port), '-o', `UserKnownHostsFile=${knownHosts()}`, '-o', 'BatchMode=yes'];
    args.push('-o', 'PasswordAuthentication=no', '-o', 'KbdInteractiveAuthentication=no', '-o', 'PubkeyAuthentication=no');
    const run = runRevtun([...args, ...extra, '-R', `0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`], { HOME: home, KRB5_CONFIG: kdc.krb5Config, KRB5CCNAME: ticket });
    runs.push(run);
    return run;
  }

  async function forwardsAndStops(run: Run): Promise<void> {
    const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
    const data = randomBytes(20_000);
    expect((await roundTrip(port, data)).equals(data)).toBe(true);
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  }

  it('-K logs on with gssapi-with-mic and delegates the credentials', async () => {
    const logged = sshd.log().length;
    const run = revtunKerberos(['-K']);
    await forwardsAndStops(run);
    await sshd.waitForLog(new RegExp(`Accepted gssapi-with-mic for ${TEST_USER}`), logged);
    expect(sshd.log().slice(logged)).toMatch(/Received some client credentials/);
  });

  it('-o GSSAPIAuthentication=yes alone does not delegate, as in ssh', async () => {
    const logged = sshd.log().length;
    await forwardsAndStops(revtunKerberos(['-o', 'GSSAPIAuthentication=yes']));
    await sshd.waitForLog(new RegExp(`Accepted gssapi-with-mic for ${TEST_USER}`), logged);
    expect(sshd.log().slice(logged)).not.toMatch(/Received some client credentials/);
  });

  it('-o GSSAPIKeyExchange=yes uses the GSSAPI key exchange and gssapi-keyex', async () => {
    const logged = sshd.log().length;
    await forwardsAndStops(revtunKerberos(['-o', 'GSSAPIKeyExchange=yes', '-v']));
    await sshd.waitForLog(new RegExp(`Accepted gssapi-keyex for ${TEST_USER}`), logged);
  });

  it('GSSAPITrustDns asks for the service of the name the resolver gives (host/localhost), not of the address', async () => {
    const ticketsFor = (name: string) =>
      kdc
        .log()
        .split('\n')
        .filter((line) => line.includes(`for host/${name}@${kdc.realm}`) && line.includes('ISSUE')).length;
    const before = ticketsFor('localhost');
    await forwardsAndStops(revtunKerberos(['-o', 'GSSAPIAuthentication=yes', '-o', 'GSSAPITrustDns=yes']));
    expect(ticketsFor('localhost')).toBe(before + 1);
  });

  it('GSSAPIServerIdentity names the service; an unknown one fails saying so', async () => {
    const run = revtunKerberos(['-K', '-o', 'GSSAPIServerIdentity=nowhere.invalid']);
    expect(await run.exit).toBe(255);
    // krb5 takes the realm from the name's domain (INVALID), which the KDC has no way to.
    expect(run.stderr()).toMatch(/GSSAPI context for host@nowhere\.invalid: .*krbtgt\/INVALID@REVTUN\.TEST not found in Kerberos database.*\(error 1032\)/);
  });

  /** Runs revtun with `extra` where libgssapi_krb5.so.2 is hidden (in a mount namespace of its own); resolves with its status and stderr. */
  async function revtunWithoutLibrary(extra: string[]): Promise<{ code: number | null; stderr: string }> {
    const library = /\s=>\s(\S*libgssapi_krb5\.so\.2)$/m.exec(execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }))?.[1];
    expect(library).toBeDefined();
    const script = 'mount --bind /dev/null "$1" && shift && exec "$@"';
    const args = ['-N', '-F', 'none', '-p', String(sshd.port), '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts()}`, ...extra];
    const child = spawn('unshare', ['-m', 'sh', '-c', script, 'sh', library!, process.execPath, CLI, ...args, '-R', '0:127.0.0.1:1', `${TEST_USER}@127.0.0.1`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, HOME: home, KRB5_CONFIG: kdc.krb5Config, KRB5CCNAME: ticket },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { code, stderr };
  }

  it('without libgssapi_krb5.so.2, Kerberos alone is refused with 1005 naming the library', async () => {
    const { code, stderr } = await revtunWithoutLibrary(['-K', '-o', 'PasswordAuthentication=no', '-o', 'KbdInteractiveAuthentication=no', '-o', 'PubkeyAuthentication=no']);
    expect(stderr).toMatch(/GSSAPI \(Kerberos\) authentication is not available: cannot load libgssapi_krb5\.so\.2: .*\(error 1005\)/);
    expect(code).toBe(255);
  });

  it('without libgssapi_krb5.so.2, -K next to other methods is left out, and -vv says why', async () => {
    const { code, stderr } = await revtunWithoutLibrary(['-K', '-vv']);
    expect(stderr).toMatch(/debug2: not trying GSSAPI: GSSAPI \(Kerberos\) authentication is not available: cannot load libgssapi_krb5\.so\.2/);
    expect(stderr).not.toMatch(/trying authentication method gssapi/);
    // It got as far as user authentication, where sshd allows nothing else.
    expect(stderr).toMatch(/the server still allows: gssapi-keyex, gssapi-with-mic.*\(error 1032\)/);
    expect(code).toBe(255);
  });
});

describe('where GSSAPI cannot be had', () => {
  it('without the native addon (REVTUN_CRYPTO=node) sshAuthMode 5 is refused with 1005 before connecting', async () => {
    const saved = process.env['REVTUN_CRYPTO'];
    process.env['REVTUN_CRYPTO'] = 'node';
    try {
      const tunnel = kerberosTunnel();
      let connected = false;
      tunnel.on('connected', () => (connected = true));
      const error = await logonError(tunnel);
      expect(error.code).toBe(Code.UnsupportedAlgorithm);
      expect(error.message).toBe(
        'GSSAPI (Kerberos) authentication is not available: the native addon is not in use (REVTUN_CRYPTO=node), and GSSAPI needs it: neither WASM nor node:crypto has GSSAPI',
      );
      expect(connected).toBe(false);
    } finally {
      if (saved === undefined) delete process.env['REVTUN_CRYPTO'];
      else process.env['REVTUN_CRYPTO'] = saved;
    }
  });
});
