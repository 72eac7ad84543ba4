// The client core against an in-memory server that misbehaves on purpose: every hostile or
// out-of-place input must end in a clean close with the documented code, never a crash.

import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../ts/protocol/wire.js';
import { ChannelOpenFailure, ChannelOpenFailureReason, KexInit, MSG, Unimplemented } from '../../../ts/protocol/messages.js';
import { Pair, TestServer } from '../../helpers/peer.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';
import type { Outcome } from '../../../ts/protocol/client.js';
import type { Grant } from '../../../ts/protocol/forwarding.js';

const ignore = () => new Writer().byte(MSG.IGNORE).string('x').finish();

/** A pair logged on, with the server's forwarding of port 5555 granted. */
function authenticated(server = new TestServer(), options = {}) {
  const pair = new Pair(server, options).start();
  expect(pair.has('authenticated')).toBe(true);
  expect(pair.forward()).toBe(5555);
  return pair;
}

/** Every CHANNEL_OPEN_FAILURE the server received, decoded (RFC 4254 §5.1), oldest first. */
function openFailures(pair: Pair) {
  return pair.server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_OPEN_FAILURE).map((p) => ChannelOpenFailure.decode(p));
}

/** The RFC 4254 §5.1 refusal of the server's channel `sender`, with its reason code and text. */
function refusal(sender: number, reason: number, description: string) {
  return { recipientChannel: sender, reason, description, language: new Uint8Array(0) };
}

/** The value of a successful command. */
function sent<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

describe('handshake', () => {
  it('reaches authentication with strict kex against the in-memory server', () => {
    const pair = authenticated(new TestServer({ strict: true }));
    expect(pair.client.strictKexNegotiated).toBe(true);
    expect(pair.server.received.slice(0, 3)).toEqual([MSG.KEXINIT, 30, MSG.NEWKEYS]);
  });

  it('reaches authentication and forwards with every byte delivered separately', () => {
    const pair = new Pair(new TestServer({ strict: true }));
    pair.byteAtATime = true;
    pair.start();
    expect(pair.has('authenticated')).toBe(true);
    let port = 0;
    pair.client.requestForwarding('', 0, (outcome) => {
      if (outcome.ok) port = outcome.grant.boundPort;
    });
    pair.run();
    expect(port).toBe(5555);
    expect(pair.closedWith).toBeUndefined();
  });

  it('works with diffie-hellman-group14-sha256', () => {
    const pair = authenticated(new TestServer(), {
      algorithms: { kex: ['diffie-hellman-group14-sha256'], hostKey: ['ssh-ed25519'], cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256'], compression: ['none'] },
    });
    expect(pair.client.negotiatedAlgorithms?.kex).toBe('diffie-hellman-group14-sha256');
  });

  it('a host key the application refuses ends with 1030 before any auth message', () => {
    const pair = new Pair(new TestServer(), { verifyHostKey: () => false }).start();
    expect(pair.closedWith?.code).toBe(1030);
    expect(pair.server.received).not.toContain(MSG.SERVICE_REQUEST);
    expect(pair.server.received).not.toContain(MSG.USERAUTH_REQUEST);
  });

  it('a bad host key signature ends with 1031', () => {
    const pair = new Pair(
      new TestServer({
        signature: (s) => {
          const c = s.slice();
          c[c.length - 1]! ^= 1;
          return c;
        },
      }),
    ).start();
    expect(pair.closedWith?.code).toBe(1031);
    expect(pair.server.received).not.toContain(MSG.USERAUTH_REQUEST);
  });

  it('an all-zero curve25519 value ends with 1038', () => {
    const pair = new Pair(new TestServer({ serverPublic: () => new Uint8Array(32) })).start();
    expect(pair.closedWith?.code).toBe(1038);
  });

  it('a DH value of 1 ends with 1034', () => {
    const pair = new Pair(new TestServer({ dhF: () => new Uint8Array([1]) }), {
      algorithms: { kex: ['diffie-hellman-group14-sha256'], hostKey: ['ssh-ed25519'], cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256'], compression: ['none'] },
    }).start();
    expect(pair.closedWith?.code).toBe(1034);
  });

  it('no common cipher ends with 1003 naming both lists', () => {
    const pair = new Pair(new TestServer({ kexInit: { ciphersClientToServer: ['aes256-cbc'], ciphersServerToClient: ['aes256-cbc'] } })).start();
    expect(pair.closedWith?.code).toBe(1003);
    expect(pair.closedWith?.message).toMatch(/aes256-cbc/);
  });

  it('strict kex: a packet before KEXINIT ends with 1027', () => {
    const pair = new Pair(new TestServer({ strict: true, beforeKexInit: [ignore()] })).start();
    expect(pair.closedWith?.code).toBe(1027);
    expect(pair.closedWith?.message).toMatch(/first packet/);
  });

  it('without strict kex the same IGNORE is harmless', () => {
    authenticated(new TestServer({ beforeKexInit: [ignore()] }), { strictKex: 0 });
  });

  it('UseStrictKeyExchange=3 refuses a server without strict kex', () => {
    const pair = new Pair(new TestServer(), { strictKex: 3 }).start();
    expect(pair.closedWith?.code).toBe(1003);
  });

  describe('UseStrictKeyExchange=2 against a server without strict kex', () => {
    const algorithms = (cipher: string[], mac: string[]) => ({ kex: ['curve25519-sha256'], hostKey: ['ssh-ed25519'], cipher, mac, compression: ['none'] });
    const clientKexInit = (pair: Pair) => KexInit.decode(pair.server.receivedPayloads.find((p) => p[0] === MSG.KEXINIT)!);

    it('leaves chacha20-poly1305 out of the offer and goes on with an unaffected cipher (it used to fail with 1003)', () => {
      const server = new TestServer({
        kexInit: { ciphersClientToServer: ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'], ciphersServerToClient: ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'] },
      });
      const pair = new Pair(server, { strictKex: 2, algorithms: algorithms(['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'], ['hmac-sha2-256']) }).start();
      expect(pair.closedWith).toBeUndefined();
      expect(pair.has('authenticated')).toBe(true);
      expect(clientKexInit(pair).ciphersClientToServer).toEqual(['aes128-gcm@openssh.com']);
    });

    it('leaves the EtM MACs out when a CBC cipher would be chosen', () => {
      const server = new TestServer({ kexInit: { ciphersClientToServer: ['aes128-cbc'], ciphersServerToClient: ['aes128-cbc'] } });
      const pair = new Pair(server, { strictKex: 2, algorithms: algorithms(['aes128-cbc'], ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-256']) });
      try {
        pair.start();
      } catch {
        // The in-memory server keys itself for AES-GCM only; the offer it received is what counts here.
      }
      expect(clientKexInit(pair).macsClientToServer).toEqual(['hmac-sha2-256']);
    });

    it('offers everything to a server that has strict kex', () => {
      const server = new TestServer({ strict: true });
      const pair = new Pair(server, { strictKex: 2, algorithms: algorithms(['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'], ['hmac-sha2-256']) }).start();
      expect(clientKexInit(pair).ciphersClientToServer).toEqual(['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com']);
      expect(pair.closedWith).toBeUndefined();
    });
  });

  it('a connection-layer message before authentication ends with 1027', () => {
    const pair = new Pair(new TestServer({ afterNewKeys: [new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string('x').finish()] })).start();
    expect(pair.closedWith?.code).toBe(1027);
  });

  it('a wrong password ends with 1032 naming what the server allows', () => {
    const pair = new Pair(new TestServer(), { auth: { username: 'u', methods: ['password'], password: 'nope', publicKeySignatureAlgorithms: [], repeatMethods: false } }).start();
    expect(pair.closedWith?.code).toBe(1032);
    expect(pair.closedWith?.message).toMatch(/still allows: password/);
  });

  it('the server version line is checked against the pattern (1002)', () => {
    const pair = new Pair(new TestServer(), { acceptServerVersion: () => false }).start();
    expect(pair.closedWith?.code).toBe(1002);
  });
});

describe('after authentication', () => {
  it('DISCONNECT from the server surfaces its reason as 1001', () => {
    const pair = authenticated();
    pair.server.send(new Writer().byte(MSG.DISCONNECT).uint32(11).string('going down\u0007for maintenance').string('').finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1001);
    expect(pair.closedWith?.message).toMatch(/going down for maintenance/); // control characters stripped
  });

  it('an unknown message number is answered with UNIMPLEMENTED and its sequence number', () => {
    const pair = authenticated();
    // Two unknown packets with an IGNORE between them: each reply must name its own packet's
    // sequence number, not a constant, the last packet's, or one off.
    const firstSequence = pair.server.transport.sendSequence;
    pair.server.send(new Uint8Array([200, 1, 2]));
    pair.server.send(ignore());
    const secondSequence = pair.server.transport.sendSequence;
    pair.server.send(new Uint8Array([201]));
    const repliesBefore = pair.server.receivedPayloads.length;
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    const replies = pair.server.receivedPayloads.slice(repliesBefore).map((p) => Unimplemented.decode(p));
    expect(replies).toEqual([{ sequence: firstSequence }, { sequence: secondSequence }]);
    expect(secondSequence).toBe(firstSequence + 2);
  });

  it('a global reply with no request outstanding ends with 1027', () => {
    const pair = authenticated();
    pair.server.send(new Uint8Array([MSG.REQUEST_SUCCESS]));
    pair.run();
    expect(pair.closedWith?.code).toBe(1027);
  });

  it('trailing bytes in a message end with 1027', () => {
    const pair = authenticated();
    pair.server.send(new Writer().byte(MSG.IGNORE).string('x').byte(0).finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1027);
  });

  it('an open for a port we never forwarded is refused; the connection stays', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7, 6666));
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN_FAILURE);
    expect(openFailures(pair)).toEqual([refusal(7, ChannelOpenFailureReason.AdministrativelyProhibited, 'no such forwarding was requested')]);
    expect(pair.has('channelOpenRequest')).toBe(false);
  });

  it('a forwarded-streamlocal open is offered only for a socket path we asked for, until cancelled', () => {
    const pair = authenticated();
    const streamLocalOpen = (sender: number, path: string, reserved = true) => {
      const w = new Writer()
        .byte(MSG.CHANNEL_OPEN)
        .string('forwarded-streamlocal@openssh.com')
        .uint32(sender)
        .uint32(1 << 20)
        .uint32(32768)
        .string(path);
      return (reserved ? w.string('') : w).finish();
    };
    let grant: Grant | null = null;
    sent(pair.client.requestStreamLocalForwarding('/run/app.sock', (outcome) => (grant = outcome.ok ? outcome.grant : null)));
    pair.run();
    expect(grant).toEqual({ address: '/run/app.sock', requestedPort: 0, boundPort: 0, streamLocal: true });
    // Another path, and a forwarded-tcpip open for "port 0", do not match the socket's grant.
    pair.server.send(streamLocalOpen(7, '/run/other.sock'));
    pair.server.send(forwardedOpen(8, 0));
    pair.run();
    expect(pair.server.received.slice(-2)).toEqual([MSG.CHANNEL_OPEN_FAILURE, MSG.CHANNEL_OPEN_FAILURE]);
    const prohibited = (sender: number) => refusal(sender, ChannelOpenFailureReason.AdministrativelyProhibited, 'no such forwarding was requested');
    expect(openFailures(pair)).toEqual([prohibited(7), prohibited(8)]);
    expect(pair.has('channelOpenRequest')).toBe(false);
    // The path we asked for, with the reserved string and without it (other servers may omit it).
    pair.server.send(streamLocalOpen(9, '/run/app.sock'));
    pair.server.send(streamLocalOpen(10, '/run/app.sock', false));
    pair.run();
    const opens = pair.events.filter((e) => e.type === 'channelOpenRequest');
    expect(opens).toHaveLength(2);
    expect(opens[0]).toMatchObject({ service: 'forwarded-streamlocal@openssh.com', connectedAddress: '/run/app.sock', connectedPort: 0, originAddress: '', originPort: 0 });
    let cancelled = false;
    sent(pair.client.cancelForwarding(grant!, (ok) => (cancelled = ok)));
    pair.run();
    expect(cancelled).toBe(true);
    const cancel = new Reader(pair.server.receivedPayloads.at(-1)!, 1);
    expect([cancel.utf8(), cancel.boolean(), cancel.utf8()]).toEqual(['cancel-streamlocal-forward@openssh.com', true, '/run/app.sock']);
    pair.server.send(streamLocalOpen(11, '/run/app.sock'));
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN_FAILURE);
    expect(openFailures(pair).at(-1)).toEqual(prohibited(11));
    expect(pair.closedWith).toBeUndefined();
  });

  it('a session channel open is refused as an unknown type', () => {
    const pair = authenticated();
    pair.server.send(new Writer().byte(MSG.CHANNEL_OPEN).string('session').uint32(3).uint32(1000).uint32(1000).finish());
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN_FAILURE);
    // SSH_OPEN_UNKNOWN_CHANNEL_TYPE (3), addressed to the server's channel 3, naming the type.
    expect(openFailures(pair)).toEqual([refusal(3, ChannelOpenFailureReason.UnknownChannelType, 'channel type session is not accepted')]);
    expect(pair.closedWith).toBeUndefined();
  });

  it('an open whose maximum packet is below 64 bytes is refused for resource shortage', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(4, 5555, 1 << 20, 63));
    pair.run();
    expect(openFailures(pair)).toEqual([refusal(4, ChannelOpenFailureReason.ResourceShortage, 'maximum packet size too small')]);
    expect(pair.has('channelOpenRequest')).toBe(false);
    expect(pair.closedWith).toBeUndefined();
  });

  it('data beyond the window we granted ends with 1022', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7));
    pair.run();
    const open = pair.events.find((e) => e.type === 'channelOpenRequest');
    expect(open).toBeDefined();
    pair.client.acceptChannel(0);
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN_CONFIRMATION);
    // The window is 64 KiB; send two 32 KiB packets (fine) and one more byte (not).
    for (let i = 0; i < 2; i++)
      pair.server.send(
        new Writer()
          .byte(MSG.CHANNEL_DATA)
          .uint32(0)
          .string(new Uint8Array(32 * 1024))
          .finish(),
      );
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string(new Uint8Array(1)).finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1022);
  });

  it('a window adjust past 2^32 - 1 ends with 1023', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7, 5555, 0xffff0000));
    pair.run();
    pair.client.acceptChannel(0);
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(0x10000).finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1023);
  });

  it('data for a channel that does not exist ends with 1021', () => {
    const pair = authenticated();
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(42).string('x').finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1021);
  });

  it('consumed data is returned to the server as window, in half-window steps', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7));
    pair.run();
    pair.client.acceptChannel(0);
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string(new Uint8Array(20000)).finish());
    pair.run();
    pair.client.consume(0, 20000);
    pair.run();
    expect(pair.server.received.at(-1)).not.toBe(MSG.CHANNEL_WINDOW_ADJUST); // under half the window
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string(new Uint8Array(20000)).finish());
    pair.run();
    pair.client.consume(0, 20000);
    pair.run();
    const adjust = pair.server.receivedPayloads.at(-1)!;
    expect(adjust[0]).toBe(MSG.CHANNEL_WINDOW_ADJUST);
    expect(Buffer.from(adjust).readUInt32BE(5)).toBe(40000);
  });

  it('with many channels open, each window shrinks to its share of 8 windows and is refilled only to it', () => {
    const window = 1024 * 1024;
    const pair = authenticated(new TestServer(), { channels: { maxWindow: window, maxPacket: 32 * 1024 } });
    const grantedWindow = () => Buffer.from(pair.server.receivedPayloads.at(-1)!).readUInt32BE(9);
    // Up to 8 channels each get the whole window.
    for (let i = 0; i < 8; i++) {
      pair.server.send(forwardedOpen(100 + i));
      pair.run();
      pair.client.acceptChannel(i);
      pair.run();
      expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN_CONFIRMATION);
      expect(grantedWindow()).toBe(window);
    }
    // The 16th open gets half a window: 16 channels share 8 windows.
    for (let i = 8; i < 16; i++) {
      pair.server.send(forwardedOpen(100 + i));
      pair.run();
      pair.client.acceptChannel(i);
      pair.run();
    }
    expect(grantedWindow()).toBe(window / 2);
    // Channel 0 was granted a whole window before; it keeps what it has, and once the server
    // has used and we have consumed it, it is refilled to its share only.
    for (let sent = 0; sent < window; sent += 32 * 1024) {
      pair.server.send(
        new Writer()
          .byte(MSG.CHANNEL_DATA)
          .uint32(0)
          .string(new Uint8Array(32 * 1024))
          .finish(),
      );
    }
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    pair.client.consume(0, window);
    pair.run();
    const adjust = pair.server.receivedPayloads.at(-1)!;
    expect(adjust[0]).toBe(MSG.CHANNEL_WINDOW_ADJUST);
    expect(Buffer.from(adjust).readUInt32BE(5)).toBe(window / 2);
    // Beyond that share the server may not send: one more byte past it ends the connection.
    for (let sent = 0; sent < window / 2; sent += 32 * 1024) {
      pair.server.send(
        new Writer()
          .byte(MSG.CHANNEL_DATA)
          .uint32(0)
          .string(new Uint8Array(32 * 1024))
          .finish(),
      );
    }
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string(new Uint8Array(1)).finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1022);
  });

  it('outgoing data waits for window and is sent as the server grants it', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7, 5555, 1000, 600));
    pair.run();
    pair.client.acceptChannel(0);
    pair.client.sendData(0, new Uint8Array(2500));
    pair.run();
    const sizes = () => pair.server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_DATA).map((p) => Buffer.from(p).readUInt32BE(5));
    expect(sizes()).toEqual([600, 400]);
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(5000).finish());
    pair.run();
    expect(sizes()).toEqual([600, 400, 600, 600, 300]);
  });

  it('data queued for window is a copy: the caller may reuse its buffer at once', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7, 5555, 1000, 600));
    pair.run();
    pair.client.acceptChannel(0);
    const mine = new Uint8Array(2500).fill(0x41);
    pair.client.sendData(0, mine);
    mine.fill(0x42); // reused for something else before the window opens
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(5000).finish());
    pair.run();
    const sent = Buffer.concat(pair.server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_DATA).map((p) => p.subarray(9)));
    expect(sent.length).toBe(2500);
    expect(sent.every((x) => x === 0x41)).toBe(true);
  });

  it('with a high-water mark of 1, send reports full once anything waits, and writable once the queue is empty', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7, 5555, 1000, 600));
    pair.run();
    pair.client.acceptChannel(0, 1);
    pair.run();
    const mark = pair.events.length; // accepting announced the channel writable once
    const writable = () => pair.events.slice(mark).some((e) => e.type === 'channelWritable');
    let queued = -1;
    queued = sent(pair.client.sendData(0, new Uint8Array(800)));
    expect(queued).toBe(0); // all within the window
    queued = sent(pair.client.sendData(0, new Uint8Array(800)));
    expect(queued).toBe(600);
    pair.run();
    expect(writable()).toBe(false);
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(500).finish());
    pair.run();
    expect(writable()).toBe(false); // 100 bytes still wait
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(500).finish());
    pair.run();
    expect(writable()).toBe(true);
  });

  it('takeInputPinned is set by any received message but channel data and window adjusts', () => {
    const pair = authenticated();
    pair.client.takeInputPinned();
    pair.server.send(forwardedOpen(7));
    pair.run();
    expect(pair.client.takeInputPinned()).toBe(true); // the open's fields may be views
    expect(pair.client.takeInputPinned()).toBe(false); // reading clears it
    pair.client.acceptChannel(0);
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string(new Uint8Array(100)).finish());
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(100).finish());
    pair.run();
    expect(pair.has('channelData')).toBe(true);
    expect(pair.client.takeInputPinned()).toBe(false);
    pair.server.send(ignore());
    pair.run();
    expect(pair.client.takeInputPinned()).toBe(true);
  });

  it("keysExchanged tells the initial exchange, our re-key and the server's apart", () => {
    const pair = authenticated();
    const exchanges = () => pair.events.filter((e) => e.type === 'keysExchanged').map((e) => e.type === 'keysExchanged' && { initial: e.initial, startedBy: e.startedBy });
    expect(exchanges()).toEqual([{ initial: true, startedBy: 'us' }]);
    expect(pair.client.rekey().ok).toBe(true);
    pair.run();
    pair.server.rekey();
    pair.run();
    expect(exchanges()).toEqual([
      { initial: true, startedBy: 'us' },
      { initial: false, startedBy: 'us' },
      { initial: false, startedBy: 'server' },
    ]);
  });

  it('a server-initiated re-exchange holds channel data until the new keys are in use', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7));
    pair.run();
    pair.client.acceptChannel(0);
    pair.run();
    pair.server.rekey(); // a fresh KEXINIT from the server
    const before = pair.server.received.length;
    // Queue data while only the server's KEXINIT has arrived.
    pair.client.receive(
      pair.server.out.splice(0).reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0)),
      pair.now,
    );
    pair.client.sendData(0, new Uint8Array(100));
    pair.run();
    const sequence = pair.server.received.slice(before);
    expect(sequence.indexOf(MSG.KEXINIT)).toBeLessThan(sequence.indexOf(MSG.NEWKEYS));
    expect(sequence.indexOf(MSG.NEWKEYS)).toBeLessThan(sequence.indexOf(MSG.CHANNEL_DATA));
    expect(pair.closedWith).toBeUndefined();
  });
});

describe('keep-alive (virtual clock)', () => {
  it('probes after the interval; answered probes keep the connection', () => {
    const pair = authenticated(new TestServer(), { keepAliveInterval: 10, keepAliveCountMax: 2 });
    const due = pair.client.nextTimeout()!;
    expect(due).toBe(pair.now + 10_000);
    for (let i = 1; i <= 5; i++) {
      pair.now = due + i * 10_000;
      pair.client.handleTimeout(pair.now);
      pair.run();
    }
    const probes = pair.server.receivedPayloads.filter((p) => p[0] === MSG.GLOBAL_REQUEST && Buffer.from(p).includes('keepalive@openssh.com'));
    expect(probes.length).toBe(5);
    expect(pair.closedWith).toBeUndefined();
  });

  it('closes with 1039 after SSHKeepAliveCountMax unanswered probes', () => {
    const server = new TestServer();
    const pair = authenticated(server, { keepAliveInterval: 10, keepAliveCountMax: 2 });
    server.onConnection = () => undefined; // never answers
    for (let i = 0; i < 3 && !pair.closedWith; i++) {
      pair.now = pair.client.nextTimeout()!;
      pair.client.handleTimeout(pair.now);
      pair.run();
    }
    expect(pair.closedWith?.code).toBe(1039);
    expect(pair.server.received.at(-1)).toBe(MSG.DISCONNECT);
  });

  it('reports no keepAliveAnswered for probes still unanswered when the 1039 close fails them', () => {
    const server = new TestServer();
    const pair = authenticated(server, { keepAliveInterval: 10, keepAliveCountMax: 2 });
    server.onConnection = () => undefined; // never answers
    for (let i = 0; i < 3 && !pair.closedWith; i++) {
      pair.now = pair.client.nextTimeout()!;
      pair.client.handleTimeout(pair.now);
      pair.run();
    }
    expect(pair.closedWith?.code).toBe(1039);
    expect(pair.events.filter((e) => e.type === 'keepAliveAnswered')).toEqual([]);
  });

  it('reports the round trip of an answered probe, measured from its sending to the answer', () => {
    const pair = authenticated(new TestServer(), { keepAliveInterval: 10, keepAliveCountMax: 2 });
    const sentAt = pair.client.nextTimeout()!;
    pair.now = sentAt;
    pair.client.handleTimeout(pair.now);
    // The probe reaches the server, whose answer arrives 250 ms later.
    for (const bytes of pair.client.pollTransmit() ?? []) pair.server.receive(bytes);
    pair.now = sentAt + 250;
    pair.run();
    expect(pair.events.filter((e) => e.type === 'keepAliveAnswered')).toEqual([{ type: 'keepAliveAnswered', roundTripMs: 250 }]);
  });

  it('does nothing before the deadline', () => {
    const pair = authenticated(new TestServer(), { keepAliveInterval: 10, keepAliveCountMax: 2 });
    const before = pair.server.received.length;
    pair.client.handleTimeout(pair.client.nextTimeout()! - 1);
    pair.run();
    expect(pair.server.received.length).toBe(before);
  });
});

describe('limits', () => {
  it('refuses channel opens beyond MAX_CHANNELS with resource shortage; the connection stays', async () => {
    const { MAX_CHANNELS } = await import('../../../ts/protocol/channels.js');
    const pair = authenticated();
    for (let i = 0; i < MAX_CHANNELS + 1; i++) pair.server.send(forwardedOpen(i));
    pair.run();
    expect(openFailures(pair)).toEqual([refusal(MAX_CHANNELS, ChannelOpenFailureReason.ResourceShortage, `too many open channels (${MAX_CHANNELS})`)]);
    expect(pair.events.filter((e) => e.type === 'channelOpenRequest')).toHaveLength(MAX_CHANNELS);
    expect(pair.closedWith).toBeUndefined();
  });

  it('UNIMPLEMENTED in answer to a global request fails that request; later replies still match', () => {
    const server = new TestServer();
    const pair = authenticated(server);
    const answers: string[] = [];
    let mode: 'unimplemented' | 'normal' = 'unimplemented';
    server.onConnection = (payload) => {
      if (payload[0] !== MSG.GLOBAL_REQUEST) return;
      const sequence = pair.server.transport.receiveSequence - 1;
      if (mode === 'unimplemented') server.send(new Writer().byte(MSG.UNIMPLEMENTED).uint32(sequence).finish());
      else server.send(new Uint8Array([MSG.REQUEST_SUCCESS]));
    };
    pair.client.globalRequest('first@example.com', new Uint8Array(0), (ok) => answers.push(`first ${ok}`));
    pair.run();
    mode = 'normal';
    pair.client.globalRequest('second@example.com', new Uint8Array(0), (ok) => answers.push(`second ${ok}`));
    pair.run();
    expect(answers).toEqual(['first false', 'second true']);
    expect(pair.closedWith).toBeUndefined();
  });

  it('UNIMPLEMENTED from the server is logged, not fatal', () => {
    const pair = authenticated();
    pair.server.send(new Writer().byte(MSG.UNIMPLEMENTED).uint32(7).finish());
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(pair.events.some((e) => e.type === 'log' && e.message.includes('did not implement our packet 7'))).toBe(true);
  });
});

describe('DefaultChannelIdleTimeout (virtual clock)', () => {
  function openChannel(pair: Pair) {
    pair.server.send(forwardedOpen(7));
    pair.run();
    pair.client.acceptChannel(0);
    pair.run();
  }

  it('closes a channel with no data either way for the timeout; activity postpones it', () => {
    const pair = authenticated(new TestServer(), { channels: { maxWindow: 64 * 1024, maxPacket: 32 * 1024, idleTimeout: 30 } });
    openChannel(pair);
    const opened = pair.now;
    expect(pair.client.nextTimeout()).toBe(opened + 30_000);
    // Data at t+20s moves the deadline to t+50s.
    pair.now = opened + 20_000;
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string('ping').finish());
    pair.run();
    pair.client.handleTimeout(opened + 30_000);
    pair.run();
    expect(pair.server.received).not.toContain(MSG.CHANNEL_CLOSE);
    expect(pair.client.nextTimeout()).toBe(opened + 50_000);
    pair.client.handleTimeout(opened + 50_000);
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_CLOSE);
    expect(pair.closedWith).toBeUndefined();
  });

  it('without the setting, channels never time out', () => {
    const pair = authenticated();
    openChannel(pair);
    expect(pair.client.nextTimeout()).toBeNull();
  });
});

describe('re-keying and closing, as RFC 4253 §7.1 and RFC 4254 §5.3 require', () => {
  /** What the server received between the first KEXINIT in `received` and the NEWKEYS after it. */
  function duringOwnRekey(received: number[]): number[] {
    const start = received.indexOf(MSG.KEXINIT);
    expect(start).toBeGreaterThanOrEqual(0);
    const end = received.indexOf(MSG.NEWKEYS, start);
    expect(end).toBeGreaterThan(start);
    return received.slice(start + 1, end);
  }

  it('no channel data leaves between our own KEXINIT and NEWKEYS when sending crosses the re-key threshold', () => {
    const pair = authenticated(new TestServer(), { rekeyBytes: 16 * 1024 });
    pair.server.send(forwardedOpen(7, 5555, 1 << 20, 8192));
    pair.run();
    pair.client.acceptChannel(0);
    pair.run();
    const sizeBefore = pair.server.received.length;
    sent(pair.client.sendData(0, new Uint8Array(256 * 1024).fill(7)));
    pair.run();
    const after = pair.server.received.slice(sizeBefore);
    expect(duringOwnRekey(after).filter((id) => id === MSG.CHANNEL_DATA)).toEqual([]);
    // Everything still arrives once the new keys are in place.
    const dataBytes = pair.server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_DATA).reduce((sum, p) => sum + Buffer.from(p).readUInt32BE(5), 0);
    expect(dataBytes).toBe(256 * 1024);
    expect(pair.closedWith).toBeUndefined();
  });

  it('no channel data leaves between our KEXINIT and NEWKEYS when the application starts a re-key with data queued', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7, 5555, 1000, 1000));
    pair.run();
    pair.client.acceptChannel(0);
    pair.run();
    const before = pair.server.received.length;
    sent(pair.client.sendData(0, new Uint8Array(5000))); // 1000 go out, 4000 wait for window
    expect(pair.client.rekey().ok).toBe(true);
    // The window opens while the key exchange is still running.
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(4000).finish());
    pair.run();
    const received = pair.server.received.slice(before);
    expect(duringOwnRekey(received).filter((id) => id === MSG.CHANNEL_DATA)).toEqual([]);
    expect(received.slice(received.indexOf(MSG.NEWKEYS))).toContain(MSG.CHANNEL_DATA);
    expect(pair.closedWith).toBeUndefined();
  });

  it('a window adjust, data and EOF that cross our CLOSE are ignored, not a protocol error', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7));
    pair.run();
    pair.client.acceptChannel(0);
    pair.run();
    expect(pair.client.closeChannel(0, false).ok).toBe(true);
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_CLOSE);
    // The server had sent these before it saw our CLOSE.
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(0).uint32(1000).finish());
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(0).string(new Uint8Array(100)).finish());
    pair.server.send(new Writer().byte(MSG.CHANNEL_EOF).uint32(0).finish());
    pair.server.send(new Writer().byte(MSG.CHANNEL_REQUEST).uint32(0).string('exit-status').boolean(true).uint32(0).finish());
    pair.run();
    // The request is not answered: nothing may follow our CLOSE on the channel.
    expect(pair.client.replyChannelRequest(0, false).ok).toBe(true);
    const closeAt = pair.server.received.lastIndexOf(MSG.CHANNEL_CLOSE);
    pair.run();
    expect(pair.server.received.slice(closeAt + 1)).toEqual([]);
    pair.server.send(new Writer().byte(MSG.CHANNEL_CLOSE).uint32(0).finish());
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    expect(pair.events.filter((e) => e.type === 'channelClosed')).toHaveLength(1);
    expect(pair.events.some((e) => e.type === 'channelData' && e.channel === 0 && e.data.length === 100)).toBe(false);
    // The channel id is free again and a new connection is served.
    pair.server.send(forwardedOpen(8));
    pair.run();
    expect(pair.client.acceptChannel(0).ok).toBe(true);
  });

  it('keep-alive settings changed while connected apply to the live connection', () => {
    const pair = authenticated(new TestServer(), { keepAliveInterval: 0 });
    expect(pair.client.nextTimeout()).toBeNull();
    pair.client.updateSettings({ keepAliveInterval: 10, keepAliveCountMax: 1, maxWindow: 64 * 1024, idleTimeout: 0 });
    const due = pair.client.nextTimeout();
    expect(due).toBe(pair.now + 10_000);
    pair.client.handleTimeout(due!);
    pair.run();
    expect(pair.server.receivedPayloads.at(-1)![0]).toBe(MSG.GLOBAL_REQUEST);
  });

  it('a larger MaxWindowSize set while connected is granted at the next refill', () => {
    const pair = authenticated(new TestServer(), { channels: { maxWindow: 64 * 1024, maxPacket: 32 * 1024 } });
    pair.server.send(forwardedOpen(7));
    pair.run();
    pair.client.acceptChannel(0);
    pair.client.updateSettings({ keepAliveInterval: 0, keepAliveCountMax: 3, maxWindow: 256 * 1024, idleTimeout: 0 });
    pair.server.send(
      new Writer()
        .byte(MSG.CHANNEL_DATA)
        .uint32(0)
        .string(new Uint8Array(32 * 1024))
        .finish(),
    );
    pair.run();
    pair.client.consume(0, 32 * 1024);
    pair.run();
    const adjust = pair.server.receivedPayloads.at(-1)!;
    expect(adjust[0]).toBe(MSG.CHANNEL_WINDOW_ADJUST);
    expect(Buffer.from(adjust).readUInt32BE(5)).toBe(256 * 1024 - 32 * 1024); // refilled to the new size
  });

  it('commands on a closed connection fail as values instead of throwing', () => {
    const pair = authenticated();
    pair.server.send(forwardedOpen(7));
    pair.run();
    pair.client.acceptChannel(0);
    pair.server.send(new Writer().byte(MSG.DISCONNECT).uint32(11).string('bye').string('').finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1001);
    for (const outcome of [
      pair.client.sendData(0, new Uint8Array(10)),
      pair.client.sendEof(0),
      pair.client.closeChannel(0, true),
      pair.client.acceptChannel(0),
      pair.client.requestForwarding('', 0, () => undefined),
      pair.client.rekey(),
    ]) {
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.error.code).toBe(212);
    }
    expect(() => pair.client.consume(0, 10)).not.toThrow();
  });
});
