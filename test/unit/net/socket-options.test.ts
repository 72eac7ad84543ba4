import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { applySocketOptions, readSocketOptions, settingsNeedingAddon, socketDescriptor, socketOptionProviderMissing, wholeSeconds, type SocketOptionSettings } from '../../../ts/net/socket-options.js';

const DEFAULTS: SocketOptionSettings = { keepAlive: true, keepAliveTime: 0, keepAliveInterval: 0, inBufferSize: 0, outBufferSize: 0 };

/** A connected loopback pair: the client end, and a function closing both. */
async function loopbackPair(): Promise<{ client: net.Socket; close: () => Promise<void> }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => void accepted.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  return {
    client,
    close: async () => {
      client.destroy();
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const saved = process.env['REVTUN_CRYPTO'];
afterEach(() => {
  if (saved === undefined) delete process.env['REVTUN_CRYPTO'];
  else process.env['REVTUN_CRYPTO'] = saved;
});

describe('socket options (native addon, real loopback sockets)', () => {
  it('only non-default values need the addon', () => {
    expect(settingsNeedingAddon(DEFAULTS)).toEqual([]);
    expect(settingsNeedingAddon({ ...DEFAULTS, keepAliveTime: 5000 })).toEqual([]); // net.Socket sets that
    expect(settingsNeedingAddon({ ...DEFAULTS, inBufferSize: 1, keepAliveInterval: 1 })).toEqual(['KeepAliveInterval', 'InBufferSize']);
  });

  it('on a runtime whose sockets expose no descriptor (Deno) an option the addon sets is refused, with that reason', () => {
    process.env['REVTUN_CRYPTO'] = 'native';
    expect(socketOptionProviderMissing('InBufferSize', { node: '20.0.0', deno: '2.9.6' })).toEqual(
      expect.objectContaining({ code: 10022, message: 'InBufferSize cannot be set on Deno 2.9.6: its sockets expose no descriptor to set it on' }),
    );
    expect(socketOptionProviderMissing('InBufferSize', { node: '20.0.0', bun: '1.4.5' })).toBeNull(); // Bun's sockets have one
  });

  it('keep-alive times become whole seconds, at least one', () => {
    expect(wholeSeconds(1)).toBe(1);
    expect(wholeSeconds(1000)).toBe(1);
    expect(wholeSeconds(1001)).toBe(2);
  });

  it('a transport without a socket descriptor has none; a connected socket has one', async () => {
    expect(socketDescriptor(new PassThrough())).toBeNull();
    expect(socketDescriptor(new net.Socket())).toBeNull(); // not connected: no handle yet
    const { client, close } = await loopbackPair();
    try {
      expect(socketDescriptor(client)).toBeGreaterThan(2);
    } finally {
      await close();
    }
    expect(socketDescriptor(client)).toBeNull(); // closed
    expect(readSocketOptions(client)).toBeNull();
  });

  it('sets and reads back every option on a connected socket', async () => {
    process.env['REVTUN_CRYPTO'] = 'native';
    expect(socketOptionProviderMissing('InBufferSize')).toBeNull();
    const { client, close } = await loopbackPair();
    try {
      applySocketOptions(client, { keepAlive: true, keepAliveTime: 500, keepAliveInterval: 2500, inBufferSize: 70000, outBufferSize: 60000 });
      expect(readSocketOptions(client)).toEqual({
        receiveBuffer: 140000, // Linux doubles what it is asked (socket(7))
        sendBuffer: 120000,
        keepAlive: true,
        keepAliveIdle: 1, // 500 ms: at least a second
        keepAliveInterval: 3, // 2.5 s rounded up
        keepAliveCount: 10, // what libuv sets with an idle time
        linger: false, // never set: Linger and LingerTime are done at close (close.ts)
        lingerSeconds: 0,
      });
      applySocketOptions(client, { ...DEFAULTS, keepAlive: false });
      expect(readSocketOptions(client)).toMatchObject({ keepAlive: false, linger: false });
      applySocketOptions(client, DEFAULTS);
      expect(readSocketOptions(client)).toMatchObject({ keepAlive: true, linger: false, lingerSeconds: 0 });
    } finally {
      await close();
    }
  });

  it('without the addon a non-default value cannot be applied, and says why', async () => {
    process.env['REVTUN_CRYPTO'] = 'node';
    expect(socketOptionProviderMissing('OutBufferSize')?.message).toBe(
      "OutBufferSize cannot be set: the native addon is not in use (REVTUN_CRYPTO=node), and Node's sockets cannot set this option without it",
    );
    const { client, close } = await loopbackPair();
    try {
      applySocketOptions(client, { ...DEFAULTS, keepAliveTime: 4000 }); // net.Socket's own: fine
      expect(() => applySocketOptions(client, { ...DEFAULTS, outBufferSize: 65536 })).toThrow(
        expect.objectContaining({ code: 10022, message: expect.stringContaining('OutBufferSize cannot be applied') }),
      );
      expect(readSocketOptions(client)).toBeNull();
    } finally {
      await close();
    }
  });
});
