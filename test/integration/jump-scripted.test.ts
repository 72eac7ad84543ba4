// A jump host that misbehaves on cue (the in-memory TestServer behind TCP): the next hop's
// channel is confirmed, ended and closed in one write, as when the target accepts and drops the
// connection at once. The chain must fail at once and close every hop, not wait for a timeout
// with the hop's connection left open.

import { afterAll, describe, expect, it } from 'vitest';
import { Writer } from '../../ts/protocol/wire.js';
import { MSG } from '../../ts/protocol/messages.js';
import { startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';
import { PASSWORD } from '../helpers/peer.js';
import { SSHReverseTunnel } from '../../ts/index.js';

const servers: ScriptedServer[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

describe('a jump host whose next-hop channel closes in the read that confirms it', () => {
  it('fails the logon at once with the reason, and the connection to the jump host is closed', async () => {
    const server = await startScriptedServer({
      channelOpen: (c, clientChannel) => {
        c.server.send(
          new Writer()
            .byte(MSG.CHANNEL_OPEN_CONFIRMATION)
            .uint32(clientChannel)
            .uint32(9)
            .uint32(1 << 20)
            .uint32(32768)
            .finish(),
        );
        c.server.send(new Writer().byte(MSG.CHANNEL_EOF).uint32(clientChannel).finish());
        c.server.send(new Writer().byte(MSG.CHANNEL_CLOSE).uint32(clientChannel).finish());
      },
    });
    servers.push(server);
    const t = new SSHReverseTunnel();
    t.sshHost = 'target.internal';
    t.sshPort = 22;
    t.sshUser = 'u';
    t.sshPassword = 'not sent anywhere';
    t.config('SSHAcceptAnyServerHostKey=true');
    t.timeout = 60; // the old code waited all of it
    t.jumpHosts = [{ host: '127.0.0.1', port: server.port, user: 'u', password: PASSWORD, verifyHostKey: () => true }];
    const closed = new Promise<void>((resolve) => {
      const watch = () => {
        const c = server.connections[0];
        if (!c) return setImmediate(watch);
        if (c.socket.destroyed) return resolve();
        c.socket.once('close', () => resolve());
      };
      watch();
    });
    await expect(t.sshLogon()).rejects.toMatchObject({ code: 1120, message: expect.stringContaining('closed as soon as it opened') });
    await closed; // the hop's session was aborted: its socket closes
  });
});
