// MaxTransferRate for what the server sends: the connection layer paces the window credit it
// gives (InboundCredit) with the inbound token bucket, on virtual time. What the server may
// send is what it was given: its initial window plus every WINDOW_ADJUST. So the bound tested
// is on the credit: by virtual time t, at most one step (the first window, paid for as a debt)
// plus burst + rate × t. The bucket and the connection layer are the real ones; only the
// server is a script that sends as much as its window allows.

import { describe, expect, it } from 'vitest';
import { ConnectionLayer, type ChannelEvent, type InboundCredit } from '../../../ts/protocol/channels.js';
import { ChannelData, ChannelWindowAdjust, ChannelOpenConfirmation } from '../../../ts/protocol/messages.js';
import { MSG } from '../../../ts/protocol/messages.js';
import { TokenBucket, burstFor } from '../../../ts/net/rate-limit.js';
import { virtualScheduler, type VirtualScheduler } from '../../helpers/clock.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';

const MAX_WINDOW = 2 * 1024 * 1024;

/** The connection layer with a bucket-backed InboundCredit wired as the socket driver wires it. */
function paced(clock: VirtualScheduler, rate: number) {
  const bucket = new TokenBucket(clock);
  bucket.setRate(rate);
  const sent: Uint8Array[] = [];
  const events: ChannelEvent[] = [];
  let wakes = 0;
  const layer = new ConnectionLayer(
    { maxWindow: MAX_WINDOW, maxPacket: 32768 },
    {
      send: (payload) => sent.push(payload.slice()),
      sendChannelData: () => undefined,
      canSendData: () => true,
      emit: (event) => events.push(event),
      isForwardingKnown: () => true,
      isSocketForwardingKnown: () => true,
      now: () => clock.now(),
    },
  );
  const credit: InboundCredit = {
    available: () => bucket.available(),
    take: (bytes) => bucket.take(bytes),
    step: () => bucket.burstSize / 2,
    wait: (bytes) =>
      bucket.whenAvailable(bytes, () => {
        wakes++;
        layer.grantWithheld();
      }),
  };
  layer.setInboundCredit(credit);
  /** Credit given to the server so far, per server-side channel id (its recipient id is ours). */
  const creditOf = (): Map<number, number> => {
    const totals = new Map<number, number>();
    for (const payload of sent) {
      if (payload[0] === MSG.CHANNEL_OPEN_CONFIRMATION) {
        const m = ChannelOpenConfirmation.decode(payload);
        totals.set(m.recipientChannel, (totals.get(m.recipientChannel) ?? 0) + m.initialWindow);
      } else if (payload[0] === MSG.CHANNEL_WINDOW_ADJUST) {
        const m = ChannelWindowAdjust.decode(payload);
        totals.set(m.recipientChannel, (totals.get(m.recipientChannel) ?? 0) + m.bytesToAdd);
      }
    }
    return totals;
  };
  /** The server opens a forwarded channel (its id `sender`) and the application accepts it. */
  const openChannel = (sender: number): number => {
    layer.handle(MSG.CHANNEL_OPEN, forwardedOpen(sender));
    const open = events.filter((e) => e.type === 'channelOpenRequest').at(-1)!;
    if (open.type !== 'channelOpenRequest') throw new Error('no open request');
    layer.accept(open.channel);
    return open.channel;
  };
  /** The server sends all the credit it has not used on channel `sender` (ours: `local`), and the application consumes it at once. */
  const used = new Map<number, number>();
  const serverSends = (sender: number, local: number): number => {
    const owed = (creditOf().get(sender) ?? 0) - (used.get(sender) ?? 0);
    for (let left = owed; left > 0;) {
      const n = Math.min(left, 32768);
      layer.handle(MSG.CHANNEL_DATA, ChannelData.encode({ recipientChannel: local, data: new Uint8Array(n) }));
      layer.consume(local, n);
      left -= n;
    }
    used.set(sender, (used.get(sender) ?? 0) + owed);
    return owed;
  };
  return { layer, bucket, creditOf, openChannel, serverSends, wakes: () => wakes };
}

/** Lets the next bucket wait pass on the virtual clock (its callback runs in a microtask). */
async function passWait(clock: VirtualScheduler): Promise<number> {
  const ms = await clock.nextWait();
  clock.pass();
  await Promise.resolve();
  await Promise.resolve();
  return ms;
}

describe('MaxTransferRate inbound: window credit paced by the tokens', () => {
  it('a server that always sends all its window is given at most a step plus burst + rate × t, and still gets the rate', async () => {
    const rate = 100_000;
    const clock = virtualScheduler();
    const t = paced(clock, rate);
    const start = clock.time;
    const local = t.openChannel(7);
    // The first window is what the bucket held, not MaxWindowSize.
    expect(t.creditOf().get(7)).toBe(burstFor(rate));
    let received = 0;
    while (clock.time - start < 5000) {
      received += t.serverSends(7, local);
      const credit = t.creditOf().get(7)!;
      expect(credit).toBeLessThanOrEqual(burstFor(rate) / 2 + burstFor(rate) + (rate * (clock.time - start)) / 1000);
      await passWait(clock);
    }
    received += t.serverSends(7, local);
    // Five virtual seconds at the rate: within a burst of 500 000 bytes.
    expect(received).toBeGreaterThan(5 * rate - burstFor(rate));
    expect(received).toBeLessThanOrEqual(5 * rate + 2 * burstFor(rate));
  });

  it('a channel that consumes nothing is not given more than MaxWindowSize, and owes nothing', async () => {
    const clock = virtualScheduler();
    const t = paced(clock, 10 * 1024 * 1024);
    t.openChannel(7);
    for (let i = 0; i < 20 && clock.pending > 0; i++) await passWait(clock);
    expect(t.creditOf().get(7)).toBe(MAX_WINDOW);
    expect(clock.pending).toBe(0); // nothing waits for tokens once the window is full
  });

  it('three channels owed credit share the tokens: none is starved (a full bucket pays two steps)', async () => {
    const rate = 50_000;
    const clock = virtualScheduler();
    const t = paced(clock, rate);
    const channels = [1, 2, 3].map((sender) => ({ sender, local: t.openChannel(sender), got: 0 }));
    for (let i = 0; i < 300; i++) {
      for (const ch of channels) ch.got += t.serverSends(ch.sender, ch.local);
      await passWait(clock);
    }
    const total = channels.reduce((sum, ch) => sum + ch.got, 0);
    for (const ch of channels) expect(ch.got, `channel ${ch.sender}`).toBeGreaterThan(0.25 * total);
  });

  it('lifting the limit (rate 0) gives an owed channel its whole window at once', async () => {
    const clock = virtualScheduler();
    const t = paced(clock, 10_000);
    const local = t.openChannel(7);
    t.serverSends(7, local);
    expect(clock.pending).toBe(1); // owed, waiting for tokens
    t.bucket.setRate(0);
    await Promise.resolve();
    expect(t.creditOf().get(7)! - burstFor(10_000)).toBe(MAX_WINDOW);
    expect(clock.pending).toBe(0);
  });

  it('without a limit the first window is MaxWindowSize and credit comes back in half-window steps, as before', () => {
    const clock = virtualScheduler();
    const t = paced(clock, 0);
    const local = t.openChannel(7);
    expect(t.creditOf().get(7)).toBe(MAX_WINDOW);
    t.serverSends(7, local); // the whole window, consumed at once
    expect(t.creditOf().get(7)).toBe(2 * MAX_WINDOW);
    expect(t.wakes()).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('a closed channel owed credit is dropped: no WINDOW_ADJUST for it after its CLOSE', async () => {
    const clock = virtualScheduler();
    const t = paced(clock, 10_000);
    const local = t.openChannel(7);
    t.serverSends(7, local);
    const before = t.creditOf().get(7);
    t.layer.close(local);
    await passWait(clock);
    expect(t.creditOf().get(7)).toBe(before);
  });
});
