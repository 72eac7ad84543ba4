// Channels the client opens (RFC 4254 §5.1) of type direct-tcpip (§7.2), as a jump host
// needs: the open message, confirmation and refusal, the server's window and packet size,
// a close before the answer, and answers the server has no business sending.

import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../ts/protocol/wire.js';
import { MSG } from '../../../ts/protocol/messages.js';
import { Pair, TestServer } from '../../helpers/peer.js';
import type { Outcome } from '../../../ts/protocol/client.js';

function loggedOn(): Pair {
  const pair = new Pair(new TestServer()).start();
  expect(pair.has('authenticated')).toBe(true);
  return pair;
}

function value<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/** The last CHANNEL_OPEN the server received, decoded. */
function lastOpen(pair: Pair) {
  const payload = [...pair.server.receivedPayloads].reverse().find((p) => p[0] === MSG.CHANNEL_OPEN)!;
  const r = new Reader(payload, 1);
  return {
    type: r.utf8(),
    sender: r.uint32(),
    window: r.uint32(),
    maxPacket: r.uint32(),
    host: r.utf8(),
    port: r.uint32(),
    originAddress: r.utf8(),
    originPort: r.uint32(),
  };
}

const confirmation = (recipient: number, sender: number, window: number, maxPacket: number) =>
  new Writer().byte(MSG.CHANNEL_OPEN_CONFIRMATION).uint32(recipient).uint32(sender).uint32(window).uint32(maxPacket).finish();

/** The CHANNEL_DATA payloads the server received, as text. */
function dataReceived(pair: Pair): string[] {
  return pair.server.receivedPayloads
    .filter((p) => p[0] === MSG.CHANNEL_DATA)
    .map((p) => {
      const r = new Reader(p, 1);
      r.uint32();
      return Buffer.from(r.string()).toString();
    });
}

describe('direct-tcpip channels the client opens', () => {
  it("sends host, port and originator; once confirmed, data flows both ways within the server's window and packet size", () => {
    const pair = loggedOn();
    const id = value(pair.client.openDirectTcpip('target.internal', 2222, { address: '127.0.0.1', port: 65535 }));
    pair.run();
    const open = lastOpen(pair);
    expect(open).toMatchObject({ type: 'direct-tcpip', sender: id, maxPacket: 32 * 1024, host: 'target.internal', port: 2222, originAddress: '127.0.0.1', originPort: 65535 });
    expect(pair.client.channel(id)?.state).toBe('opening');
    expect(pair.has('channelOpened')).toBe(false);

    // A 10-byte window: of 'hello world!', 10 bytes go out and 2 wait for more window.
    pair.server.send(confirmation(id, 77, 10, 64));
    pair.run();
    expect(pair.events.filter((e) => e.type === 'channelOpened' || e.type === 'channelWritable').map((e) => e.type)).toEqual(['channelOpened', 'channelWritable']);
    expect(value(pair.client.sendData(id, Buffer.from('hello world!')))).toBe(2);
    pair.run();
    expect(dataReceived(pair).join('')).toBe('hello worl');
    pair.server.send(new Writer().byte(MSG.CHANNEL_WINDOW_ADJUST).uint32(id).uint32(100).finish());
    pair.run();
    expect(dataReceived(pair).join('')).toBe('hello world!');
    // Every packet names the server's channel number.
    for (const p of pair.server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_DATA)) expect(new Reader(p, 1).uint32()).toBe(77);

    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(id).string('from the target').finish());
    pair.run();
    const data = pair.events.find((e) => e.type === 'channelData');
    expect(data && data.type === 'channelData' && Buffer.from(data.data).toString()).toBe('from the target');
    expect(pair.closedWith).toBeUndefined();
  });

  it('a refusal is a channelOpenFailed event with the reason and a printable description, and the id is free again', () => {
    const pair = loggedOn();
    const id = value(pair.client.openDirectTcpip('10.0.0.1', 22, { address: '127.0.0.1', port: 0 }));
    pair.run();
    pair.server.send(new Writer().byte(MSG.CHANNEL_OPEN_FAILURE).uint32(id).uint32(2).string('connect failed:\x1b[31m refused').string('').finish());
    pair.run();
    const failed = pair.events.find((e) => e.type === 'channelOpenFailed');
    expect(failed).toEqual({ type: 'channelOpenFailed', channel: id, reason: 2, description: 'connect failed: [31m refused' });
    expect(pair.client.channel(id)).toBeUndefined();
    expect(pair.closedWith).toBeUndefined();
    expect(value(pair.client.openDirectTcpip('10.0.0.1', 22, { address: '127.0.0.1', port: 0 }))).toBe(id);
  });

  it('closed before the server answered: no data goes out, and CLOSE follows the confirmation at once', () => {
    const pair = loggedOn();
    const id = value(pair.client.openDirectTcpip('h', 1, { address: '127.0.0.1', port: 0 }));
    expect(pair.client.sendData(id, Buffer.from('x')).ok).toBe(false); // not open yet
    value(pair.client.closeChannel(id, true));
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN);
    pair.server.send(confirmation(id, 5, 1000, 1000));
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_CLOSE);
    expect(pair.has('channelOpened')).toBe(false);
    pair.server.send(new Writer().byte(MSG.CHANNEL_CLOSE).uint32(id).finish());
    pair.run();
    expect(pair.events.some((e) => e.type === 'channelClosed' && e.channel === id)).toBe(true);
    expect(pair.closedWith).toBeUndefined();
  });

  it('a confirmation with a maximum packet under 64 bytes fails the open and closes the channel', () => {
    const pair = loggedOn();
    const id = value(pair.client.openDirectTcpip('h', 1, { address: '127.0.0.1', port: 0 }));
    pair.run();
    pair.server.send(confirmation(id, 5, 1000, 16));
    pair.run();
    expect(pair.events.find((e) => e.type === 'channelOpenFailed')).toMatchObject({ channel: id, reason: 4 });
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_CLOSE);
    expect(pair.has('channelOpened')).toBe(false);
  });

  it('a confirmation for a channel we are not opening ends with 1023', () => {
    const pair = loggedOn();
    pair.server.send(confirmation(3, 5, 1000, 1000));
    pair.run();
    expect(pair.closedWith?.code).toBe(1023);
  });

  it('a second confirmation for the same channel ends with 1023', () => {
    const pair = loggedOn();
    const id = value(pair.client.openDirectTcpip('h', 1, { address: '127.0.0.1', port: 0 }));
    pair.server.send(confirmation(id, 5, 1000, 1000));
    pair.run();
    expect(pair.closedWith).toBeUndefined();
    pair.server.send(confirmation(id, 6, 1000, 1000));
    pair.run();
    expect(pair.closedWith?.code).toBe(1023);
  });

  it('data on a channel still being opened ends with 1021', () => {
    const pair = loggedOn();
    const id = value(pair.client.openDirectTcpip('h', 1, { address: '127.0.0.1', port: 0 }));
    pair.run();
    pair.server.send(new Writer().byte(MSG.CHANNEL_DATA).uint32(id).string('early').finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1021);
  });

  it('a refusal for a channel we never opened ends with 1023', () => {
    const pair = loggedOn();
    pair.server.send(new Writer().byte(MSG.CHANNEL_OPEN_FAILURE).uint32(9).uint32(2).string('no').string('').finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1023);
  });

  it('cannot be opened before logon', () => {
    const pair = new Pair(new TestServer());
    const outcome = pair.client.openDirectTcpip('h', 1, { address: '127.0.0.1', port: 0 });
    expect(outcome.ok).toBe(false);
  });
});
