// Channels handed to the native data plane (ConnectionHooks.adopt), as the connection layer
// keeps them: the confirmation goes to the plane with the adoption, a plane that refuses
// leaves the channel awaiting acceptance (so it can still be refused), nothing is sent on an
// adopted channel by this layer, and the plane's report ends it.

import { describe, expect, it } from 'vitest';
import { ConnectionLayer, type Channel, type ChannelEvent } from '../../../ts/protocol/channels.js';
import { ChannelOpenConfirmation, MSG } from '../../../ts/protocol/messages.js';
import { SshError, Code } from '../../../ts/protocol/errors.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';

function layerWithPlane(refuse = false) {
  const sent: Uint8Array[] = [];
  const events: ChannelEvent[] = [];
  const adopted: { channel: number; confirmation: Uint8Array }[] = [];
  const closed: number[] = [];
  const layer = new ConnectionLayer(
    { maxWindow: 1 << 20, maxPacket: 32768 },
    {
      send: (payload) => sent.push(payload.slice()),
      sendChannelData: () => {
        throw new Error('no channel data may be framed here for an adopted channel');
      },
      canSendData: () => true,
      emit: (event) => events.push(event),
      isForwardingKnown: () => true,
      isSocketForwardingKnown: () => true,
      now: () => 0,
      adopt: (ch: Channel, confirmation: Uint8Array) => {
        if (refuse) throw new SshError(Code.ChannelOpenFailed, 'the plane is closed', 'local');
        adopted.push({ channel: ch.localId, confirmation });
      },
      closeAdopted: (id) => closed.push(id),
    },
  );
  layer.handle(MSG.CHANNEL_OPEN, forwardedOpen(7));
  const open = events.find((e) => e.type === 'channelOpenRequest');
  if (open?.type !== 'channelOpenRequest') throw new Error('no open request');
  return { layer, sent, events, adopted, closed, channel: open.channel };
}

describe('a channel adopted by the native data plane', () => {
  it('has its confirmation sent by the plane, with the window it was given, and none by this layer', () => {
    const t = layerWithPlane();
    t.layer.accept(t.channel, true);
    expect(t.sent).toEqual([]);
    expect(t.adopted).toHaveLength(1);
    const confirmation = ChannelOpenConfirmation.decode(t.adopted[0]!.confirmation);
    expect(confirmation.recipientChannel).toBe(7);
    expect(confirmation.initialWindow).toBe(1 << 20);
    expect(t.layer.view(t.channel)?.state).toBe('open');
    // Nothing is pumped or credited here for it.
    t.layer.consume(t.channel, 1000);
    t.layer.pumpAll();
    expect(t.sent).toEqual([]);
  });

  it('is closed through the plane, and ends with the counts the plane reports', () => {
    const t = layerWithPlane();
    t.layer.accept(t.channel, true);
    t.layer.close(t.channel, true);
    expect(t.closed).toEqual([t.channel]);
    expect(t.sent).toEqual([]);
    t.layer.finishAdopted(t.channel, 1234, 5678);
    expect(t.events.at(-1)).toEqual({ type: 'channelClosed', channel: t.channel, bytesSent: 1234, bytesReceived: 5678 });
    expect(t.layer.totalBytesSent).toBe(1234);
    expect(t.layer.view(t.channel)).toBeUndefined();
  });

  // Regression: accept() marked the channel open before the plane took it, so a plane that
  // refused left an open channel that no confirmation had been sent for and none could refuse.
  it('stays awaiting acceptance when the plane refuses it, and can then be refused', () => {
    const t = layerWithPlane(true);
    expect(() => t.layer.accept(t.channel, true)).toThrow(/the plane is closed/);
    expect(t.layer.view(t.channel)?.state).toBe('pendingAccept');
    t.layer.reject(t.channel, 2, 'cannot hand the connection to the data plane');
    expect(t.sent.map((p) => p[0])).toEqual([MSG.CHANNEL_OPEN_FAILURE]);
  });
});
