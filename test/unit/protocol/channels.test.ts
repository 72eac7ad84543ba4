// The channel multiplexer (ts/protocol/channels.ts, RFC 4254 §4-§5) through the client core
// against the in-memory TestServer: what we send respects the server's window and maximum
// packet, EOF and CLOSE go out only after the queued data, the server's window adjusts and
// messages are checked, global requests are answered and matched in order. (How the window we
// grant is paced is inbound-credit.test.ts.)

import { describe, expect, it } from 'vitest';
import { ChannelData, ChannelSuccess, ChannelWindowAdjust, GlobalRequest, MSG } from '../../../ts/protocol/messages.js';
import { Code } from '../../../ts/protocol/errors.js';
import { Writer } from '../../../ts/protocol/wire.js';
import { Pair, TestServer } from '../../helpers/peer.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';

/** Logged on, port 5555 forwarded, and the server's channel 7 accepted as our channel 0. */
function withChannel(window = 1 << 20, maxPacket = 32768) {
  const pair = new Pair(new TestServer()).start();
  expect(pair.forward()).toBe(5555);
  pair.server.send(forwardedOpen(7, 5555, window, maxPacket));
  pair.run();
  const open = pair.events.find((e) => e.type === 'channelOpenRequest');
  if (open?.type !== 'channelOpenRequest') throw new Error('no open request');
  expect(pair.client.acceptChannel(open.channel).ok).toBe(true);
  pair.run();
  return { pair, id: open.channel };
}

/** The server's messages of one kind since index `from`, decoded. */
const dataSent = (pair: Pair, from = 0) =>
  pair.server.receivedPayloads
    .slice(from)
    .filter((p) => p[0] === MSG.CHANNEL_DATA)
    .map((p) => ChannelData.decode(p));
const adjust = (recipientChannel: number, bytesToAdd: number) => ChannelWindowAdjust.encode({ recipientChannel, bytesToAdd });

describe('sending within the server’s window and packet size', () => {
  it('splits at the maximum packet, stops at the window, queues the rest, and sends it as the window opens', () => {
    const { pair, id } = withChannel(1000, 300);
    const from = pair.server.receivedPayloads.length;
    expect(pair.client.sendData(id, new Uint8Array(2500).fill(9))).toEqual({ ok: true, value: 1500 });
    pair.run();
    expect(dataSent(pair, from).map((m) => [m.recipientChannel, m.data.length])).toEqual([
      [7, 300],
      [7, 300],
      [7, 300],
      [7, 100],
    ]);
    expect(pair.client.channel(id)!.outgoingBytes).toBe(1500);
    pair.server.send(adjust(0, 1500));
    pair.run();
    const all = dataSent(pair, from);
    expect(all.reduce((sum, m) => sum + m.data.length, 0)).toBe(2500);
    expect(all.every((m) => m.data.length <= 300)).toBe(true);
    expect(pair.client.channel(id)).toMatchObject({ outgoingBytes: 0, bytesSent: 2500 });
  });

  it('EOF and a flushing close wait for the queued data; CLOSE from the server ends the channel and frees its id', () => {
    const { pair, id } = withChannel(100, 32768);
    const from = pair.server.receivedPayloads.length;
    pair.client.sendData(id, new Uint8Array(250));
    expect(pair.client.closeChannel(id, true).ok).toBe(true);
    pair.run();
    expect(pair.server.received.slice(-1)).toEqual([MSG.CHANNEL_DATA]); // 100 out, 150 waiting: no EOF, no CLOSE yet
    pair.server.send(adjust(0, 1000));
    pair.run();
    const after = pair.server.receivedPayloads.slice(from).map((p) => p[0]);
    expect(after).toEqual([MSG.CHANNEL_DATA, MSG.CHANNEL_DATA, MSG.CHANNEL_EOF, MSG.CHANNEL_CLOSE]);
    expect(pair.has('channelClosed')).toBe(false); // until the server's CLOSE
    pair.server.send(new Writer().byte(MSG.CHANNEL_CLOSE).uint32(id).finish());
    pair.run();
    expect(pair.events.filter((e) => e.type === 'channelClosed')).toEqual([{ type: 'channelClosed', channel: id, bytesSent: 250, bytesReceived: 0 }]);
    // The id is free: the next forwarded connection gets it.
    pair.server.send(forwardedOpen(8));
    pair.run();
    expect(pair.events.filter((e) => e.type === 'channelOpenRequest').at(-1)).toMatchObject({ channel: id });
  });

  it('a close without flushing drops what is queued and sends CLOSE at once', () => {
    const { pair, id } = withChannel(10, 32768);
    const from = pair.server.receivedPayloads.length;
    pair.client.sendData(id, new Uint8Array(5000));
    expect(pair.client.closeChannel(id, false).ok).toBe(true);
    pair.server.send(adjust(0, 10000));
    pair.run();
    expect(pair.server.receivedPayloads.slice(from).map((p) => p[0])).toEqual([MSG.CHANNEL_DATA, MSG.CHANNEL_CLOSE]);
    expect(dataSent(pair, from).map((m) => m.data.length)).toEqual([10]);
  });
});

describe('what the server sends on a channel', () => {
  it('a window adjust past 2^32 - 1 ends with 1023', () => {
    const { pair } = withChannel(0xfffffff0);
    pair.server.send(adjust(0, 0x10));
    pair.run();
    expect(pair.closedWith?.code).toBe(Code.InvalidChannelMessage);
    expect(pair.closedWith?.message).toBe('window adjust overflows the 32-bit window');
  });

  it('data after the server’s EOF ends with 1022', () => {
    const { pair } = withChannel();
    pair.server.send(new Writer().byte(MSG.CHANNEL_EOF).uint32(0).finish());
    pair.server.send(ChannelData.encode({ recipientChannel: 0, data: new Uint8Array(1) }));
    pair.run();
    expect(pair.events.filter((e) => e.type === 'channelEof')).toHaveLength(1);
    expect(pair.closedWith?.code).toBe(Code.InvalidChannelData);
    expect(pair.closedWith?.message).toBe('channel data after EOF');
  });

  it('extended data counts against the window we granted and is not delivered', () => {
    const { pair } = withChannel();
    pair.server.send(new Writer().byte(MSG.CHANNEL_EXTENDED_DATA).uint32(0).uint32(1).string(new Uint8Array(100)).finish());
    pair.run();
    expect(pair.has('channelData')).toBe(false);
    expect(pair.closedWith).toBeUndefined();
    // 64 KiB window (clientOptions' maxWindow): 100 + 64 KiB is beyond it.
    pair.server.send(
      new Writer()
        .byte(MSG.CHANNEL_EXTENDED_DATA)
        .uint32(0)
        .uint32(1)
        .string(new Uint8Array(64 * 1024))
        .finish(),
    );
    pair.run();
    expect(pair.closedWith?.code).toBe(Code.InvalidChannelData);
  });

  it('a channel request is an event; the application’s reply goes to the server’s channel number', () => {
    const { pair, id } = withChannel();
    pair.server.send(new Writer().byte(MSG.CHANNEL_REQUEST).uint32(0).string('keepalive@openssh.com').boolean(true).finish());
    pair.run();
    expect(pair.events.find((e) => e.type === 'channelRequest')).toMatchObject({ channel: id, requestType: 'keepalive@openssh.com', wantReply: true });
    expect(pair.client.replyChannelRequest(id, true).ok).toBe(true);
    pair.run();
    expect(ChannelSuccess.decode(pair.server.receivedPayloads.at(-1)!)).toEqual({ recipientChannel: 7 });
  });

  it('messages for a channel that is not open end with 1021; an open reply for one we are not opening with 1023', () => {
    for (const message of [adjust(5, 1), ChannelData.encode({ recipientChannel: 5, data: new Uint8Array(1) }), new Writer().byte(MSG.CHANNEL_EOF).uint32(5).finish()]) {
      const { pair } = withChannel();
      pair.server.send(message);
      pair.run();
      expect(pair.closedWith?.code, `message ${message[0]}`).toBe(Code.InvalidChannelId);
    }
    // Channel 0 is open, not opening: a confirmation for it is out of place.
    const { pair } = withChannel();
    pair.server.send(new Writer().byte(MSG.CHANNEL_OPEN_CONFIRMATION).uint32(0).uint32(1).uint32(1000).uint32(1000).finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(Code.InvalidChannelMessage);
    expect(pair.closedWith?.message).toBe('channel open reply for channel 0, which we are not opening');
  });

  it('a connection-layer number with no meaning (85) ends with 1024', () => {
    const { pair } = withChannel();
    pair.server.send(new Uint8Array([85]));
    pair.run();
    expect(pair.closedWith?.code).toBe(Code.Unimplemented);
  });
});

describe('global requests (RFC 4254 §4)', () => {
  it('the server’s requests are refused when they want a reply, and ignored when not', () => {
    const { pair } = withChannel();
    const from = pair.server.received.length;
    pair.server.send(GlobalRequest.encode({ name: 'hostkeys-00@openssh.com', wantReply: false, data: new Uint8Array(0) }));
    pair.server.send(GlobalRequest.encode({ name: 'keepalive@openssh.com', wantReply: true, data: new Uint8Array(0) }));
    pair.run();
    expect(pair.server.received.slice(from)).toEqual([MSG.REQUEST_FAILURE]);
    expect(pair.closedWith).toBeUndefined();
  });

  it('our requests’ replies are matched in the order the requests went out, with the success data', () => {
    const { pair } = withChannel();
    const server = pair.server;
    server.onConnection = () => undefined; // the test answers
    const replies: string[] = [];
    pair.client.globalRequest('first@example.org', new Uint8Array(0), (ok, data) => replies.push(`first ${ok} ${Buffer.from(data).toString('hex')}`));
    pair.client.globalRequest('second@example.org', new Uint8Array(0), (ok) => replies.push(`second ${ok}`));
    pair.run();
    server.send(new Writer().byte(MSG.REQUEST_SUCCESS).uint32(42).finish());
    server.send(new Uint8Array([MSG.REQUEST_FAILURE]));
    pair.run();
    expect(replies).toEqual(['first true 0000002a', 'second false']);
    server.send(new Uint8Array([MSG.REQUEST_FAILURE]));
    pair.run();
    expect(pair.closedWith?.code).toBe(Code.ProtocolError); // a third reply has no request
  });
});
