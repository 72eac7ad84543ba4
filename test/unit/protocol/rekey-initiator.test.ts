// Who started each key exchange: the keysExchanged event's `startedBy` and the core's
// `rekeys` counters. The integration tests count re-exchanges by these instead of by log
// lines, so each case here pins one way an exchange can start (RFC 4253 §9).

import { describe, expect, it } from 'vitest';
import { Pair, TestServer } from '../../helpers/peer.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';
import type { ClientEvent } from '../../../ts/protocol/client.js';

type KeysExchanged = Extract<ClientEvent, { type: 'keysExchanged' }>;

function exchanges(pair: Pair): Pick<KeysExchanged, 'initial' | 'startedBy'>[] {
  return pair.events.filter((e): e is KeysExchanged => e.type === 'keysExchanged').map(({ initial, startedBy }) => ({ initial, startedBy }));
}

function loggedOn(options = {}) {
  const pair = new Pair(new TestServer(), options).start();
  expect(pair.has('authenticated')).toBe(true);
  return pair;
}

describe('who started a key exchange', () => {
  it('the first exchange is ours and is not counted as a re-exchange', () => {
    const pair = loggedOn();
    expect(exchanges(pair)).toEqual([{ initial: true, startedBy: 'us' }]);
    expect(pair.client.rekeys).toEqual({ byUs: 0, byServer: 0 });
  });

  it('with UseStrictKeyExchange=2 the first exchange is the server’s: ours waited for its KEXINIT', () => {
    const pair = loggedOn({ strictKex: 2 });
    expect(exchanges(pair)).toEqual([{ initial: true, startedBy: 'server' }]);
  });

  it('a KEXINIT from the server counts as the server’s, rekey() as ours, each once', () => {
    const pair = loggedOn();
    pair.server.rekey();
    pair.run();
    expect(pair.client.rekeys).toEqual({ byUs: 0, byServer: 1 });
    expect(pair.client.rekey().ok).toBe(true);
    pair.run();
    expect(pair.client.rekeys).toEqual({ byUs: 1, byServer: 1 });
    pair.server.rekey();
    pair.run();
    expect(exchanges(pair).slice(1)).toEqual([
      { initial: false, startedBy: 'server' },
      { initial: false, startedBy: 'us' },
      { initial: false, startedBy: 'server' },
    ]);
    expect(pair.client.rekeys).toEqual({ byUs: 1, byServer: 2 });
    expect(pair.closedWith).toBeUndefined();
  });

  it('our byte threshold starts re-exchanges of ours only', () => {
    const pair = loggedOn({ rekeyBytes: 16 * 1024 });
    expect(pair.forward()).toBe(5555);
    pair.server.send(forwardedOpen(7));
    pair.run();
    expect(pair.client.acceptChannel(0).ok).toBe(true);
    pair.run();
    for (let i = 0; i < 4; i++) {
      expect(pair.client.sendData(0, new Uint8Array(20 * 1024)).ok).toBe(true);
      pair.run();
    }
    const { byUs, byServer } = pair.client.rekeys;
    expect(byUs).toBeGreaterThanOrEqual(2);
    expect(byServer).toBe(0);
  });

  it('KEXINITs that cross (ours from rekey(), the server’s sent before it saw ours) make one exchange, counted as ours', () => {
    const pair = loggedOn();
    expect(pair.client.rekey().ok).toBe(true);
    pair.server.rekey();
    pair.run();
    expect(pair.client.rekeys).toEqual({ byUs: 1, byServer: 0 });
    expect(pair.closedWith).toBeUndefined();
  });

  it('the counters are a snapshot: changing the copy changes nothing', () => {
    const pair = loggedOn();
    const counts = pair.client.rekeys;
    counts.byUs = 99;
    expect(pair.client.rekeys).toEqual({ byUs: 0, byServer: 0 });
  });
});
