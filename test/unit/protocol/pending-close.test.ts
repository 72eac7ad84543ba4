// Regression: closing a forwarded channel the application had not answered yet (its local
// target still connecting; a logoff closes every channel) sent OPEN_FAILURE and dropped the
// channel without a channelClosed event, so the session kept its forwarder (whose late
// connect could accept whatever channel next got the freed id) and logoff waited for a close
// that never came.

import { describe, expect, it } from 'vitest';
import { ChannelOpenFailure, ChannelOpenFailureReason, MSG } from '../../../ts/protocol/messages.js';
import { Pair, TestServer } from '../../helpers/peer.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';

function withPendingChannel() {
  const pair = new Pair(new TestServer()).start();
  expect(pair.forward()).toBe(5555);
  pair.server.send(forwardedOpen(7));
  pair.run();
  const open = pair.events.find((e) => e.type === 'channelOpenRequest');
  if (open?.type !== 'channelOpenRequest') throw new Error('no open request');
  return { pair, id: open.channel };
}

describe('closing a channel still awaiting the application', () => {
  it('refuses the open, ends the channel with a channelClosed event, and its view reads closed', () => {
    const { pair, id } = withPendingChannel();
    const view = pair.client.channel(id)!;
    expect(view.state).toBe('pendingAccept');
    expect(pair.client.closeChannel(id, true).ok).toBe(true);
    pair.run();
    expect(pair.server.received.at(-1)).toBe(MSG.CHANNEL_OPEN_FAILURE);
    // RFC 4254 §5.1: addressed to the server's channel 7, reason SSH_OPEN_CONNECT_FAILED.
    expect(ChannelOpenFailure.decode(pair.server.receivedPayloads.at(-1)!)).toMatchObject({
      recipientChannel: 7,
      reason: ChannelOpenFailureReason.ConnectFailed,
      description: 'closed by the application',
    });
    expect(pair.events.some((e) => e.type === 'channelClosed' && e.channel === id)).toBe(true);
    expect(view.state).toBe('closed'); // what logoff's wait looks at
    expect(pair.client.channel(id)).toBeUndefined();
  });
});
