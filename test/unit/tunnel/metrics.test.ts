// The health rule and the byte totals behind the counters, without a connection.

import { describe, expect, it } from 'vitest';
import { tunnelHealth } from '../../../ts/tunnel/metrics.js';
import { TrafficTotals } from '../../../ts/tunnel/traffic.js';

describe('tunnelHealth', () => {
  it('is healthy only connected with every expected forwarding up', () => {
    expect(tunnelHealth(true, false, 2, 2)).toEqual({ healthy: true, reason: 'ok: connected, 2 of 2 forwardings up' });
    expect(tunnelHealth(true, false, 1, 2)).toEqual({ healthy: false, reason: 'connected, but only 1 of 2 forwardings up' });
    expect(tunnelHealth(false, true, 0, 2)).toEqual({ healthy: false, reason: 'not connected (reconnecting)' });
    expect(tunnelHealth(false, false, 0, 0)).toEqual({ healthy: false, reason: 'not connected' });
  });
});

describe('TrafficTotals', () => {
  it('keeps what ended connections moved when the next one starts at zero', () => {
    const totals = new TrafficTotals();
    const first = { channelBytes: { sent: 10, received: 5 } };
    expect(totals.read(first)).toEqual({ sent: 10, received: 5 });
    first.channelBytes = { sent: 30, received: 7 };
    expect(totals.read(null)).toEqual({ sent: 30, received: 7 }); // between connections
    const second = { channelBytes: { sent: 1, received: 2 } };
    expect(totals.read(second)).toEqual({ sent: 31, received: 9 });
    expect(totals.read(second)).toEqual({ sent: 31, received: 9 });
  });
});
