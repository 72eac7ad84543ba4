// Several client keys tried in turn in one connection, as ssh tries its identity files,
// against a real sshd: the revtun command with -i files, the config's IdentityFile lines and
// the default ~/.ssh/id_* files; the library's `identities`. Each refused key shows in sshd's
// log as "Failed publickey"; a passphrase is asked only for the key sshd accepted; sshd's
// MaxAuthTries ends it with 1032.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, startSshdWithEcho, stopAll, TEST_USER, type EchoServer, type KeyPair, type Sshd } from '../helpers/sshd.js';
import { roundTrip } from '../helpers/streams.js';
import { runRevtun, type Run } from '../helpers/cli.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { Code, openReverseTunnel, SshAuthMode, SshError, type SSHReverseTunnel } from '../../ts/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-ids-'));
const PASSPHRASE = 'open sesame';
const keys = {
  first: generateKey(dir, 'id_first', 'ed25519'),
  second: generateKey(dir, 'id_second', 'ed25519'),
  third: generateKey(dir, 'id_third', 'ed25519'),
  fourth: generateKey(dir, 'id_fourth', 'ed25519'),
  lockedRefused: generateKey(dir, 'id_locked_refused', 'ed25519', { passphrase: PASSPHRASE }),
  lockedAccepted: generateKey(dir, 'id_locked_accepted', 'ed25519', { passphrase: PASSPHRASE }),
};

/** "SHA256:…" of a public key line, as sshd logs it. */
function fingerprint(key: KeyPair): string {
  const blob = Buffer.from(key.publicLine.split(/\s+/)[1]!, 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

let sshd: Sshd;
let echo: EchoServer;
let knownHosts: string;
beforeAll(async () => {
  // DEBUG1 for "Failed publickey" / "Postponed publickey" / "Accepted publickey" lines.
  ({ sshd, echo } = await startSshdWithEcho({ config: ['LogLevel DEBUG1'] }));
  knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
});
afterAll(() => stopAll(echo, sshd));

function authorize(...authorized: KeyPair[]): void {
  sshd.setAuthorizedKeys(
    TEST_USER,
    authorized.map((k) => k.publicLine),
  );
}

function revtun(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  return runRevtun(['-N', '-p', String(sshd.port), '-o', `UserKnownHostsFile=${knownHosts}`, ...args, '-R', `0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`], {
    HOME: join(dir, 'empty-home'),
    ...env,
  });
}

/** Waits for the forwarding, checks it carries data, stops revtun; returns its stderr. */
async function loggedOn(run: Run): Promise<string> {
  const port = Number((await run.waitFor(/Allocated port (\d+) for remote forward/))[1]);
  expect((await roundTrip(port, Buffer.from('through'))).toString()).toBe('through');
  run.child.kill('SIGINT');
  expect(await run.exit).toBe(0);
  return run.stderr();
}

/** An SSH_ASKPASS script that answers PASSPHRASE and appends each prompt to a file. */
function askpass(name: string): { env: NodeJS.ProcessEnv; asked: () => string[] } {
  const record = join(dir, `${name}.asked`);
  const script = join(dir, `${name}.sh`);
  writeFileSync(script, `#!/bin/sh\necho "$1" >> '${record}'\necho '${PASSPHRASE}'\n`);
  chmodSync(script, 0o755);
  return {
    env: { SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: 'force' },
    asked: () => {
      try {
        return readFileSync(record, 'utf8')
          .split('\n')
          .map((l) => l.trimEnd())
          .filter(Boolean);
      } catch {
        return [];
      }
    },
  };
}

describe('revtun with several identity files', () => {
  it('two -i keys, only the second authorized: the first is offered and refused, the second logs on', async () => {
    authorize(keys.second);
    const before = sshd.log().length;
    const stderr = await loggedOn(revtun(['-v', '-o', 'BatchMode=yes', '-i', keys.first.privatePath, '-i', keys.second.privatePath]));
    expect(stderr).toContain(`offering public key: ${keys.first.privatePath} ssh-ed25519 ${fingerprint(keys.first)}`);
    expect(stderr).toContain(`server accepts key: ${keys.second.privatePath} ssh-ed25519 ${fingerprint(keys.second)}`);
    const log = sshd.log().slice(before);
    expect(log).toContain(`Failed publickey for ${TEST_USER} from 127.0.0.1`);
    expect(log).toMatch(new RegExp(`Failed publickey for ${TEST_USER} .*${escapeRegExp(fingerprint(keys.first))}`));
    expect(log).toMatch(new RegExp(`Accepted publickey for ${TEST_USER} .*${escapeRegExp(fingerprint(keys.second))}`));
    // Only the accepted key signed: the refused one was a query ("publickey test") alone.
    expect(log).not.toMatch(new RegExp(`Accepted publickey for ${TEST_USER} .*${escapeRegExp(fingerprint(keys.first))}`));
  });

  // Regression: with -i given, the config's IdentityFile lines were dropped (ssh keeps both, -i first).
  it('-i plus a config IdentityFile, only the config key authorized: logs on with it after offering the -i key', async () => {
    authorize(keys.third);
    const config = join(dir, 'config_both');
    writeFileSync(config, `Host *\n  IdentityFile ${keys.third.privatePath}\n  BatchMode yes\n`);
    const before = sshd.log().length;
    const stderr = await loggedOn(revtun(['-v', '-F', config, '-i', keys.first.privatePath]));
    const offers = [...stderr.matchAll(/offering public key: (\S+)/g)].map((m) => m[1]);
    expect(offers).toEqual([keys.first.privatePath, keys.third.privatePath]);
    expect(sshd.log().slice(before)).toMatch(new RegExp(`Accepted publickey for ${TEST_USER} .*${escapeRegExp(fingerprint(keys.third))}`));
  });

  it("with no -i nor IdentityFile, the default files in ssh order (id_rsa, id_ecdsa, …, id_ed25519) from the user's ~/.ssh", async () => {
    authorize(keys.second);
    // ~ is the home the password database gives, as in ssh (not $HOME): run as the test user.
    const [uid, gid, home] = execFileSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' })
      .trim()
      .split(':')
      .filter((_, i) => [2, 3, 5].includes(i));
    const sshDir = join(home!, '.ssh');
    rmSync(sshDir, { recursive: true, force: true });
    mkdirSync(sshDir, { mode: 0o700 });
    // Key types need not match the names: ssh reads what is in the file.
    copyFileSync(keys.first.privatePath, join(sshDir, 'id_ecdsa'));
    copyFileSync(keys.second.privatePath, join(sshDir, 'id_ed25519'));
    writeFileSync(join(sshDir, 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
    for (const path of [sshDir, ...['id_ecdsa', 'id_ed25519', 'known_hosts'].map((f) => join(sshDir, f))]) chownSync(path, Number(uid), Number(gid));
    try {
      const run = runRevtun(
        ['-N', '-vvv', '-o', 'BatchMode=yes', '-p', String(sshd.port), '-R', `0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`],
        { HOME: join(dir, 'not-the-home') },
        { uid: Number(uid), gid: Number(gid) },
      );
      const stderr = await loggedOn(run);
      const offers = [...stderr.matchAll(/offering public key: (\S+)/g)].map((m) => m[1]);
      expect(offers).toEqual([join(sshDir, 'id_ecdsa'), join(sshDir, 'id_ed25519')]);
      // A missing default file is only a debug line, as in ssh.
      expect(stderr).toContain(`debug3: no such identity: ${join(sshDir, 'id_rsa')}: No such file or directory`);
      expect(stderr).not.toMatch(/Warning: Identity file/);
    } finally {
      rmSync(sshDir, { recursive: true, force: true });
    }
  });

  it('a missing -i file and a missing IdentityFile are reported, and revtun goes on with the next', async () => {
    authorize(keys.second);
    const missing = join(dir, 'no-such-key');
    const missingInConfig = join(dir, 'no-such-config-key');
    const config = join(dir, 'config_missing');
    writeFileSync(config, `Host *\n  IdentityFile ${missingInConfig}\n  IdentityFile ${keys.second.privatePath}\n  BatchMode yes\n`);
    const stderr = await loggedOn(revtun(['-F', config, '-i', missing]));
    expect(stderr).toContain(`Warning: Identity file ${missing} not accessible: No such file or directory.`);
    expect(stderr).toContain(`no such identity: ${missingInConfig}: No such file or directory`);
  });

  it('asks for the passphrase of the key the server accepted, and of no other', async () => {
    authorize(keys.lockedAccepted);
    const ask = askpass('accepted-only');
    const stderr = await loggedOn(revtun(['-v', '-i', keys.lockedRefused.privatePath, '-i', keys.lockedAccepted.privatePath], ask.env));
    expect(ask.asked()).toEqual([`Enter passphrase for key '${keys.lockedAccepted.privatePath}':`]);
    // Both were offered before any passphrase: the public half is read without it.
    expect(stderr.indexOf(`offering public key: ${keys.lockedRefused.privatePath}`)).toBeGreaterThan(-1);
    expect(stderr.indexOf(`server accepts key: ${keys.lockedAccepted.privatePath}`)).toBeGreaterThan(stderr.indexOf(`offering public key: ${keys.lockedRefused.privatePath}`));
  });

  it('an encrypted PEM key without a .pub file is decrypted at its turn (its public half is hidden)', async () => {
    const pemDir = mkdtempSync(join(dir, 'pem-'));
    const pem = generateKey(pemDir, 'id_pem', 'rsa', { bits: 2048, format: 'PEM', passphrase: PASSPHRASE });
    rmSync(`${pem.privatePath}.pub`);
    authorize(pem);
    const ask = askpass('pem');
    const stderr = await loggedOn(revtun(['-v', '-i', keys.first.privatePath, '-i', pem.privatePath], ask.env));
    expect(stderr).toContain(`trying private key: ${pem.privatePath}`);
    expect(ask.asked()).toEqual([`Enter passphrase for key '${pem.privatePath}':`]);
  });

  it('under BatchMode an encrypted key the server accepts is passed over without a prompt', async () => {
    authorize(keys.lockedAccepted);
    const ask = askpass('batch');
    const run = revtun(['-o', 'BatchMode=yes', '-i', keys.lockedAccepted.privatePath], ask.env);
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/keys not used: \S+id_locked_accepted ssh-ed25519 SHA256:\S+ \(no passphrase given\).*\(error 1032\)/);
    expect(ask.asked()).toEqual([]);
  });
});

describe("the server's MaxAuthTries", () => {
  let strict: Sshd;
  beforeAll(async () => {
    strict = await startSshd({ authorizedKeys: [keys.fourth.publicLine], config: ['LogLevel DEBUG1', 'MaxAuthTries 3'] });
  });
  afterAll(() => stopAll(strict));

  it('more refused keys than MaxAuthTries: revtun fails with 1032 as ssh fails, and the later keys are never offered', async () => {
    const known = join(dir, 'known_hosts_strict');
    writeFileSync(known, `[127.0.0.1]:${strict.port} ${strict.hostKeys.ed25519}\n`);
    const ids = [keys.first, keys.second, keys.third, keys.fourth].flatMap((k) => ['-i', k.privatePath]);
    const run = runRevtun(['-N', '-v', '-p', String(strict.port), '-o', `UserKnownHostsFile=${known}`, '-o', 'BatchMode=yes', ...ids, '-R', `0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`], {
      HOME: join(dir, 'empty-home'),
    });
    expect(await run.exit).toBe(255);
    expect(run.stderr()).toMatch(/Too many authentication failures.*\(error 1032\)/);
    expect(run.stderr()).not.toContain(`offering public key: ${keys.fourth.privatePath}`);
    await strict.waitForLog(/maximum authentication attempts exceeded/);
  });

  it('the library: sshLogon rejects with 1032 naming the keys offered', async () => {
    const tunnel = makeTunnel(strict, {});
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    for (const k of [keys.first, keys.second, keys.third, keys.fourth]) tunnel.addIdentity({ key: k.privatePath });
    const error = (await tunnel.sshLogon().then(
      () => null,
      (e: unknown) => e,
    )) as SshError;
    expect(error).toBeInstanceOf(SshError);
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/Too many authentication failures/);
    expect(error.message).toContain(`keys offered: ${keys.first.privatePath} ssh-ed25519`);
    expect(error.message).not.toContain(keys.fourth.privatePath);
  });
});

describe('SSHReverseTunnel.identities', () => {
  /** Logs on at LogLevel 3, collecting everything an application could show. */
  async function logon(tunnel: SSHReverseTunnel): Promise<{ error: unknown; shown: string; statuses: string[] }> {
    const logs: string[] = [];
    const statuses: string[] = [];
    tunnel.config('LogLevel=3');
    tunnel.on('log', (e) => logs.push(e.message));
    tunnel.on('sshStatus', (e) => statuses.push(e.message));
    const error = await tunnel.sshLogon().then(
      () => null,
      (e: unknown) => e,
    );
    if (!error) await tunnel.sshLogoff();
    const text = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : '';
    return { error, statuses, shown: `${text}\n${logs.join('\n')}\n${statuses.join('\n')}` };
  }

  function privateLines(key: KeyPair): string[] {
    return key.privateText.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'));
  }

  it('the sshCert* key comes first; a passphrase function is asked only for the key the server accepted', async () => {
    authorize(keys.lockedAccepted);
    const asked: string[] = [];
    const tunnel = makeTunnel(sshd, { privateKey: keys.first.privatePath });
    tunnel.addIdentity({
      key: keys.lockedRefused.privatePath,
      passphrase: () => {
        asked.push('refused');
        return PASSPHRASE;
      },
    });
    tunnel.addIdentity({
      key: keys.lockedAccepted.privateText,
      name: 'deploy key',
      passphrase: (attempt) => {
        asked.push(`accepted ${attempt}`);
        return PASSPHRASE;
      },
    });
    const before = sshd.log().length;
    const { error, shown, statuses } = await logon(tunnel);
    expect(error).toBeNull();
    expect(asked).toEqual(['accepted 1']);
    const offers = statuses.flatMap((m) => /^offering public key: (.+?) ssh-ed25519/.exec(m)?.[1] ?? []);
    expect(offers).toEqual([keys.first.privatePath, keys.lockedRefused.privatePath, 'deploy key']);
    expect(sshd.log().slice(before)).toMatch(new RegExp(`Accepted publickey for ${TEST_USER} .*${escapeRegExp(fingerprint(keys.lockedAccepted))}`));
    for (const k of [keys.first, keys.lockedRefused, keys.lockedAccepted]) for (const line of privateLines(k)) expect(shown).not.toContain(line);
  });

  it('a wrong answer is asked again, up to three times, then the key is passed over; 1032 says why and quotes no key', async () => {
    authorize(keys.lockedAccepted);
    let calls = 0;
    const tunnel = makeTunnel(sshd, {});
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    tunnel.identities = [
      {
        key: keys.lockedAccepted.privateText,
        passphrase: () => {
          calls++;
          return 'wrong';
        },
      },
    ];
    const { error, shown } = await logon(tunnel);
    expect(calls).toBe(3);
    expect(error).toMatchObject({ code: Code.AuthFailed });
    expect((error as Error).message).toMatch(/keys not used: key 1 ssh-ed25519 SHA256:\S+ \(wrong passphrase/);
    for (const line of privateLines(keys.lockedAccepted)) expect(shown).not.toContain(line);
  });

  it('a passphrase function that throws passes over its key without quoting the error, and the next key logs on', async () => {
    authorize(keys.lockedAccepted, keys.second);
    const tunnel = makeTunnel(sshd, {});
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    tunnel.addIdentity({
      key: keys.lockedAccepted.privatePath,
      passphrase: () => {
        throw new Error('keychain said: hunter2');
      },
    });
    tunnel.addIdentity({ key: keys.second.privatePath });
    const { error, shown, statuses } = await logon(tunnel);
    expect(error).toBeNull();
    expect(statuses).toContainEqual(expect.stringMatching(/^not using key \S+id_locked_accepted .*: the passphrase function threw an error$/));
    expect(shown).not.toContain('hunter2');
  });

  it('a passphrase given as text is still checked before connecting, for every identity', async () => {
    const tunnel = makeTunnel(sshd, {});
    tunnel.sshAuthMode = SshAuthMode.PublicKey;
    tunnel.addIdentity({ key: keys.first.privatePath }).addIdentity({ key: keys.lockedAccepted.privatePath, passphrase: 'wrong' });
    const before = sshd.log().length;
    await expect(tunnel.sshLogon()).rejects.toMatchObject({ code: 1032, message: expect.stringContaining(`key file ${keys.lockedAccepted.privatePath}: wrong passphrase`) });
    expect(sshd.log().slice(before)).not.toMatch(/userauth-request|Connection from/);
  });

  it('openReverseTunnel({ identities }) logs on with the one the server accepts', async () => {
    authorize(keys.third);
    const opened = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      identities: [{ key: keys.first.privatePath }, { key: keys.third.privateText, name: 'third' }],
      hostKey: sshd.hostKeys.ed25519,
      remote: { address: '127.0.0.1', port: 0 },
      local: { host: '127.0.0.1', port: echo.port },
      config: ['AutoReconnect=0'],
    });
    expect((await roundTrip(opened.port, Buffer.from('keys'))).toString()).toBe('keys');
    await opened.close();
  });

  it('addIdentity refuses a malformed identity with 10022, and a name that is key text', () => {
    const tunnel = makeTunnel(sshd, {});
    expect(() => tunnel.addIdentity({ key: '' })).toThrow(expect.objectContaining({ code: Code.BadArgument }));
    expect(() => tunnel.addIdentity({ key: 'k', passphrase: 42 as unknown as string })).toThrow(expect.objectContaining({ code: Code.BadArgument }));
    let thrown: unknown;
    try {
      tunnel.addIdentity({ key: 'k', name: keys.first.privateText });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: Code.BadArgument });
    for (const line of privateLines(keys.first)) expect((thrown as Error).message).not.toContain(line);
    expect(tunnel.identities).toEqual([]);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
