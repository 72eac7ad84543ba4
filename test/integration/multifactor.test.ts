// amMultiFactor (SSHAuthMode 1) through sshd's AuthenticationMethods chains: each method's
// partial success leads to the next the server names, in whatever order it asks
// (publickey then password, password then publickey, publickey then keyboard-interactive
// through PAM), and a chain we cannot finish ends with 1032 naming what is still wanted.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_PASSWORD, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { SshAuthMode } from '../../ts/index.js';

const key = generateKey(mkdtempSync(join(tmpdir(), 'revtun-mfa-')), 'id', 'ed25519');
const servers: Sshd[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop();
});

async function sshdWith(methods: string, usePam = false): Promise<Sshd> {
  const sshd = await startSshd({ authorizedKeys: [key.publicLine], config: [`AuthenticationMethods ${methods}`], usePam });
  servers.push(sshd);
  return sshd;
}

function multiFactor(sshd: Sshd, password = TEST_PASSWORD) {
  const t = makeTunnel(sshd, { user: TEST_USER, privateKey: key.privateText, password });
  t.sshAuthMode = SshAuthMode.MultiFactor;
  t.sshPassword = password;
  return t;
}

describe('multi-factor chains (AuthenticationMethods)', () => {
  let pubThenPassword: Sshd;
  let passwordThenPub: Sshd;
  beforeAll(async () => {
    [pubThenPassword, passwordThenPub] = await Promise.all([sshdWith('publickey,password'), sshdWith('password,publickey')]);
  });

  it('publickey, then password', async () => {
    const from = pubThenPassword.log().length;
    const t = multiFactor(pubThenPassword);
    await t.sshLogon();
    await t.sshLogoff();
    await pubThenPassword.waitForLog(/Accepted password for revtuntest/, from);
    expect(pubThenPassword.log().slice(from)).toMatch(/Partial publickey for revtuntest|Accepted publickey for revtuntest/);
  });

  it('password, then publickey (the order the server asks, not ours)', async () => {
    const from = passwordThenPub.log().length;
    const t = multiFactor(passwordThenPub);
    await t.sshLogon();
    await t.sshLogoff();
    await passwordThenPub.waitForLog(/Accepted publickey for revtuntest/, from);
    expect(passwordThenPub.log().slice(from)).toMatch(/Partial password for revtuntest|Accepted password for revtuntest/);
  });

  it('a second factor we cannot give: 1032 naming what the server still wants', async () => {
    const t = multiFactor(pubThenPassword, '');
    t.sshPassword = '';
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 1032, message: expect.stringContaining('password') });
  });

  it('publickey, then keyboard-interactive through PAM', async () => {
    const sshd = await sshdWith('publickey,keyboard-interactive', true);
    const t = multiFactor(sshd);
    const prompts: string[] = [];
    t.on('sshKeyboardInteractive', (e) => {
      prompts.push(e.prompt);
      e.response = TEST_PASSWORD;
    });
    await t.sshLogon();
    await t.sshLogoff();
    expect(prompts.length).toBeGreaterThan(0);
  });
});
