// amCustom (SSHAuthMode 99) against a real sshd: the application writes the user
// authentication requests itself in the sshCustomAuth event, with the documented packet
// helpers; here password authentication, by hand. A wrong answer and giving up end with 1032.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, TEST_PASSWORD, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { SshAuthMode, type SSHReverseTunnel } from '../../ts/index.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd?.stop());

/** An sshCustomAuth handler that sends a password request with `password`, and gives up on a failure. */
function passwordByHand(t: SSHReverseTunnel, password: string, seen: string[]): void {
  t.on('sshCustomAuth', (e) => {
    const incoming = t.decodePacket(e.packet);
    const type = Number(t.getSshParam(incoming, 'MessageType'));
    seen.push(type === 51 ? `failure:${t.getSshParam(incoming, 'AuthMethods')}` : String(type));
    if (type !== 6) {
      e.packet = ''; // a failure: give up
      return;
    }
    let out: Uint8Array = new Uint8Array(0);
    out = t.setSshParam(out, 'b', '50'); // SSH_MSG_USERAUTH_REQUEST
    out = t.setSshParam(out, 's', TEST_USER);
    out = t.setSshParam(out, 's', 'ssh-connection');
    out = t.setSshParam(out, 's', 'password');
    out = t.setSshParam(out, 'f', 'False');
    out = t.setSshParam(out, 's', password);
    e.packet = t.encodePacket(out);
  });
}

describe('amCustom', () => {
  it('password authentication written by hand in sshCustomAuth logs on', async () => {
    const t = makeTunnel(sshd, { password: '' });
    t.sshAuthMode = SshAuthMode.Custom;
    const seen: string[] = [];
    passwordByHand(t, TEST_PASSWORD, seen);
    const from = sshd.log().length;
    await t.sshLogon();
    expect(t.connected).toBe(true);
    await t.sshLogoff();
    expect(seen).toEqual(['6']); // SERVICE_ACCEPT, then our request succeeded
    await sshd.waitForLog(/Accepted password for revtuntest/, from);
  });

  it('a wrong password: the handler sees the failure, gives up, and the logon fails with 1032', async () => {
    const t = makeTunnel(sshd, { password: '' });
    t.sshAuthMode = SshAuthMode.Custom;
    const seen: string[] = [];
    passwordByHand(t, 'not the password', seen);
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 1032, message: expect.stringContaining('gave up') });
    expect(seen[0]).toBe('6');
    expect(seen[1]).toMatch(/^failure:.*password/);
  });

  it('a handler that writes a message outside user authentication is refused (1032)', async () => {
    const t = makeTunnel(sshd, { password: '' });
    t.sshAuthMode = SshAuthMode.Custom;
    t.on('sshCustomAuth', (e) => {
      e.packet = t.encodePacket(t.setSshParam(new Uint8Array(0), 'b', '1')); // DISCONNECT
    });
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 1032, message: expect.stringContaining('not a user authentication message') });
  });

  it('amCustom without an sshCustomAuth handler is refused before connecting (10022)', async () => {
    const t = makeTunnel(sshd, { password: '' });
    t.sshAuthMode = SshAuthMode.Custom;
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 10022 });
  });
});
