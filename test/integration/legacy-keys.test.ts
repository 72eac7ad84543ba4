// Legacy algorithms on request, against real sshds (OpenSSH 9.2, which still has DSA compiled
// in but offers neither it nor SHA-1 RSA by default): ssh-dss and ssh-rsa (SHA-1) as host key
// algorithms when SSHPublicKeyAlgorithms lists them, and as publickey signature algorithms
// when SSHPubKeyAuthSigAlgorithms lists them; the default lists refuse a DSA-only or SHA-1-only
// server at negotiation (1003) and pass a DSA client key over. The revtun command follows
// ssh's `-o HostKeyAlgorithms=+ssh-dss` and `-o PubkeyAcceptedAlgorithms=+ssh-dss`.
// (Debian's Dropbear 2022.83 is built without DSS, so it cannot serve as a second DSA peer.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshdWithEcho, stopAll, TEST_PASSWORD, TEST_USER, type EchoServer, type KeyPair, type Sshd } from '../helpers/sshd.js';
import { roundTrip } from '../helpers/streams.js';
import { runRevtun } from '../helpers/cli.js';
import { SSHReverseTunnel, SshAuthMode, SshError, type ServerAuthenticationEvent } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-legacy-'));
const dsaHostKey = generateKey(dir, 'host_dsa', 'dsa');
const rsaHostKey = generateKey(dir, 'host_rsa_sha1', 'rsa', { bits: 2048 });
const dsaClientKey = generateKey(dir, 'id_dsa', 'dsa');
const rsaClientKey = generateKey(dir, 'id_rsa', 'rsa', { bits: 2048 });
const ca = generateKey(dir, 'ca', 'ed25519');
// The DSA host key also has an OpenSSH host certificate (ssh-dss-cert-v01), for 127.0.0.1.
execFileSync('ssh-keygen', ['-q', '-s', ca.privatePath, '-h', '-I', 'dsa-host', '-n', '127.0.0.1', `${dsaHostKey.privatePath}.pub`], { stdio: 'pipe' });

let dsaServer: Sshd;
let sha1Server: Sshd;
let echo: EchoServer;

beforeAll(async () => {
  // A DSA host key alone, DSA client keys accepted: what a server left on OpenSSH 6 looks like.
  ({ sshd: dsaServer, echo } = await startSshdWithEcho({
    authorizedKeys: [dsaClientKey.publicLine],
    config: [
      `HostKey ${dsaHostKey.privatePath}`,
      `HostCertificate ${dsaHostKey.privatePath}-cert.pub`,
      'HostKeyAlgorithms +ssh-dss,ssh-dss-cert-v01@openssh.com',
      'PubkeyAcceptedAlgorithms +ssh-dss',
      'LogLevel DEBUG1',
    ],
  }));
  // An RSA host key signing with SHA-1 only, and RSA client signatures with SHA-1 only.
  ({ sshd: sha1Server } = await startSshdWithEcho({
    authorizedKeys: [rsaClientKey.publicLine],
    config: [`HostKey ${rsaHostKey.privatePath}`, 'HostKeyAlgorithms ssh-rsa', 'PubkeyAcceptedAlgorithms ssh-rsa', 'LogLevel DEBUG1'],
  }));
});
afterAll(() => stopAll(echo, dsaServer, sha1Server));

function tunnelTo(sshd: Sshd, hostKey: KeyPair): SSHReverseTunnel {
  const t = new SSHReverseTunnel();
  t.sshHost = sshd.host;
  t.sshPort = sshd.port;
  t.sshUser = TEST_USER;
  t.sshPassword = TEST_PASSWORD;
  t.sshAcceptServerHostKey = hostKey.publicLine;
  t.timeout = 30;
  return t;
}

function withKey(t: SSHReverseTunnel, key: KeyPair): SSHReverseTunnel {
  t.sshPassword = '';
  t.sshAuthMode = SshAuthMode.PublicKey;
  t.sshCertStore = key.privatePath;
  return t;
}

/** Forwards a remote port to the echo server and round-trips 64 KiB through it. */
async function bytesThrough(t: SSHReverseTunnel): Promise<void> {
  const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
  const data = randomBytes(64 * 1024);
  expect((await roundTrip(port, data)).equals(data)).toBe(true);
}

async function logonError(t: SSHReverseTunnel): Promise<SshError> {
  const error = await t.sshLogon().then(
    () => null,
    (e: unknown) => e,
  );
  if (t.connected) await t.sshLogoff();
  expect(error).toBeInstanceOf(SshError);
  return error as SshError;
}

describe('ssh-dss host keys', () => {
  it('are refused by the default host key list at negotiation (1003), naming what each side offers', async () => {
    const error = await logonError(tunnelTo(dsaServer, dsaHostKey));
    expect(error.code).toBe(1003);
    expect(error.message).toMatch(/no common host key algorithm .*the server offers ssh-dss/);
    expect(error.message).not.toMatch(/we offer [^;]*ssh-dss/);
  });

  it('log on when SSHPublicKeyAlgorithms lists ssh-dss, and bytes go through a reverse forwarding', async () => {
    const t = tunnelTo(dsaServer, dsaHostKey);
    t.config('SSHPublicKeyAlgorithms=ssh-ed25519,ssh-dss');
    const events: ServerAuthenticationEvent[] = [];
    t.on('sshServerAuthentication', (e) => events.push({ ...e }));
    await t.sshLogon();
    try {
      expect(events.map((e) => e.keyAlgorithm)).toEqual(['ssh-dss']);
      expect(events[0]!.accept).toBe(true);
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
  });

  it('with an OpenSSH host certificate: ssh-dss-cert-v01 logs on when listed, trusting the CA', async () => {
    const t = tunnelTo(dsaServer, dsaHostKey);
    t.sshAcceptServerHostKey = '';
    t.config(`SSHAcceptServerCAKey=${ca.publicLine}`);
    t.config('SSHPublicKeyAlgorithms=ssh-dss-cert-v01@openssh.com');
    let event: ServerAuthenticationEvent | undefined;
    t.on('sshServerAuthentication', (e) => (event = { ...e }));
    await t.sshLogon();
    try {
      expect(event?.keyAlgorithm).toBe('ssh-dss-cert-v01@openssh.com');
      expect(event?.certSubject).toBe('dsa-host');
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
    // The CA alone does not bring the legacy algorithm in: the default list still refuses the server.
    const byDefault = tunnelTo(dsaServer, dsaHostKey);
    byDefault.config(`SSHAcceptServerCAKey=${ca.publicLine}`);
    expect((await logonError(byDefault)).code).toBe(1003);
  });

  it('are checked: another DSA key than the trusted one is refused (1030)', async () => {
    const t = tunnelTo(dsaServer, generateKey(dir, 'other_dsa', 'dsa'));
    t.config('SSHPublicKeyAlgorithms=ssh-dss');
    expect((await logonError(t)).code).toBe(1030);
  });
});

describe('ssh-dss client keys', () => {
  it('are passed over unless SSHPubKeyAuthSigAlgorithms lists ssh-dss (1032 says why)', async () => {
    const t = withKey(tunnelTo(dsaServer, dsaHostKey), dsaClientKey);
    t.config('SSHPublicKeyAlgorithms=ssh-dss');
    const before = dsaServer.log().length;
    const error = await logonError(t);
    expect(error.code).toBe(1032);
    expect(error.message).toMatch(/no allowed signature algorithm for a ssh-dss key/);
    await dsaServer.waitForLog(/Disconnected from|Connection closed by/, before);
    expect(dsaServer.log().slice(before)).not.toMatch(/Accepted publickey/);
  });

  it('sign when ssh-dss is listed, and sshd accepts the DSA key', async () => {
    const t = withKey(tunnelTo(dsaServer, dsaHostKey), dsaClientKey);
    t.config('SSHPublicKeyAlgorithms=ssh-dss');
    t.config(`SSHPubKeyAuthSigAlgorithms=ssh-ed25519,ssh-dss`);
    const before = dsaServer.log().length;
    await t.sshLogon();
    try {
      await dsaServer.waitForLog(/Accepted publickey for \S+ from \S+ port \d+ ssh2: DSA SHA256:/, before);
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
  });
});

describe('ssh-rsa (SHA-1)', () => {
  it('as a host key algorithm: refused by default (1003), logs on when listed', async () => {
    const refused = await logonError(tunnelTo(sha1Server, rsaHostKey));
    expect(refused.code).toBe(1003);
    expect(refused.message).toMatch(/the server offers ssh-rsa\)/);
    const t = tunnelTo(sha1Server, rsaHostKey);
    t.config('SSHPublicKeyAlgorithms=rsa-sha2-512,ssh-rsa');
    let algorithm = '';
    t.on('sshServerAuthentication', (e) => (algorithm = e.keyAlgorithm));
    await t.sshLogon();
    try {
      expect(algorithm).toBe('ssh-rsa');
      await bytesThrough(t);
    } finally {
      await t.sshLogoff();
    }
  });

  it('as a client signature algorithm: used when listed (as by default), not when the list leaves it out', async () => {
    const listed = withKey(tunnelTo(sha1Server, rsaHostKey), rsaClientKey);
    listed.config('SSHPublicKeyAlgorithms=ssh-rsa');
    let before = sha1Server.log().length;
    await listed.sshLogon();
    await sha1Server.waitForLog(/Accepted publickey for \S+ from \S+ port \d+ ssh2: RSA SHA256:/, before);
    await listed.sshLogoff();

    const unlisted = withKey(tunnelTo(sha1Server, rsaHostKey), rsaClientKey);
    unlisted.config('SSHPublicKeyAlgorithms=ssh-rsa');
    unlisted.config('SSHPubKeyAuthSigAlgorithms=rsa-sha2-512,rsa-sha2-256');
    before = sha1Server.log().length;
    expect((await logonError(unlisted)).code).toBe(1032);
    await sha1Server.waitForLog(/Disconnected from|Connection closed by/, before);
    expect(sha1Server.log().slice(before)).not.toMatch(/Accepted publickey/);
  });
});

describe('revtun -o HostKeyAlgorithms=+ssh-dss -o PubkeyAcceptedAlgorithms=+ssh-dss', () => {
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:* ${dsaHostKey.publicLine}\n`);

  function revtun(extra: string[]) {
    return runRevtun(
      [
        '-N',
        '-v',
        '-p',
        String(dsaServer.port),
        '-i',
        dsaClientKey.privatePath,
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        'BatchMode=yes',
        ...extra,
        '-R',
        '0:127.0.0.1:9',
        `${TEST_USER}@127.0.0.1`,
      ],
      { HOME: dir },
    );
  }

  it('logs on to the DSA-only server with its DSA key, as ssh does with the same options', async () => {
    const run = revtun(['-o', 'HostKeyAlgorithms=+ssh-dss', '-o', 'PubkeyAcceptedAlgorithms=+ssh-dss']);
    await run.waitFor(/Allocated port \d+/);
    expect(run.stderr()).toMatch(/hostkey=ssh-dss/);
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
  });

  it('without them, fails at negotiation as ssh does', async () => {
    const run = revtun([]);
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/no common host key algorithm/);
    expect(run.stderr()).toMatch(/\(error 1003\)/);
  });

  it('with HostKeyAlgorithms alone, the DSA key is not offered and the logon fails', async () => {
    const run = revtun(['-o', 'HostKeyAlgorithms=+ssh-dss']);
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/hostkey=ssh-dss/);
    expect(run.stderr()).toMatch(/Permission denied|error 1032/);
  });
});
