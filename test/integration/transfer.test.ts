// Data through the tunnel against a real OpenSSH sshd: event mode and local forwarding mode,
// 64 MiB each way with SHA-256 checks, half-close in both directions.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { connect, listen, receiveHashed, sendHashed } from '../helpers/streams.js';

const MiB = 1024 * 1024;
let sshd: Sshd;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

describe('local forwarding mode', () => {
  it('moves 64 MiB each way at once with matching SHA-256 and half-close both ways', async () => {
    let targetReceived: Promise<{ bytes: number; sha256: string }> | undefined;
    let targetSent: Promise<string> | undefined;
    const target = await listen((socket) => {
      targetReceived = receiveHashed(socket);
      targetSent = sendHashed(socket, 64 * MiB);
    });
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    expect(port).toBeGreaterThan(0);
    expect(tunnel.config('ForwardedPort')).toBe(String(port));

    const client = await connect(port);
    const clientReceived = receiveHashed(client);
    const clientSent = await sendHashed(client, 64 * MiB);
    const down = await clientReceived;
    expect(down.bytes).toBe(64 * MiB);
    expect(down.sha256).toBe(await targetSent!);
    const up = await targetReceived!;
    expect(up.bytes).toBe(64 * MiB);
    expect(up.sha256).toBe(clientSent);

    client.destroy();
    await tunnel.sshLogoff();
    expect(tunnel.connected).toBe(false);
    await target.close();
  });
});

describe('event mode', () => {
  it('moves 64 MiB each way through the channel events and sendChannelData', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);

    // The events' buffers are kept, not hashed on the spot: they must stay intact after
    // the handler returns, although the tunnel reuses its read buffers.
    const upChunks: Uint8Array[] = [];
    const opened = new Promise<number>((resolve) => tunnel.on('sshChannelOpened', (e) => resolve(e.channelId)));
    const upDone = new Promise<void>((resolve) => tunnel.on('sshChannelEOF', () => resolve()));
    const closed = new Promise<number>((resolve) => tunnel.on('sshChannelClosed', (e) => resolve(e.channelId)));
    let allBuffers = true;
    tunnel.on('sshChannelData', (e) => {
      allBuffers &&= Buffer.isBuffer(e.channelData);
      upChunks.push(e.channelData);
    });
    const requests: string[] = [];
    tunnel.on('sshChannelOpenRequest', (e) => requests.push(`${e.service} ${e.connectedPort} ${e.originAddress}`));

    const client = await connect(port);
    const clientReceived = receiveHashed(client);
    const clientSent = sendHashed(client, 64 * MiB);
    const channel = await opened;
    expect(requests).toEqual([`forwarded-tcpip ${port} 127.0.0.1`]);
    expect(tunnel.sshChannels.map((c) => c.channelId)).toEqual([channel]);

    // Send 64 MiB back, honouring backpressure via the returned promise. One buffer is
    // refilled for every block: what the tunnel still queues must be its own copy.
    const downHash = createHash('sha256');
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 1024; i++) {
      block.writeUInt32BE(i, 0);
      block.fill(i & 0xff, 4);
      downHash.update(block);
      await tunnel.sendChannelData(channel, block);
    }
    // Closing a channel ends both directions, so wait for the client's EOF first.
    await upDone;
    await tunnel.closeChannel(channel);
    const upHash = createHash('sha256');
    for (const chunk of upChunks) upHash.update(chunk);
    expect(upChunks.reduce((n, c) => n + c.length, 0)).toBe(64 * MiB);
    expect(allBuffers).toBe(true); // also where a packet spanned two reads
    expect(upHash.digest('hex')).toBe(await clientSent);
    const down = await clientReceived;
    expect(down.bytes).toBe(64 * MiB);
    expect(down.sha256).toBe(downHash.digest('hex'));
    expect(await closed).toBe(channel);
    expect(tunnel.sshChannels).toEqual([]);
    client.destroy();
    await tunnel.sshLogoff();
  });
});

describe('ChannelDataEOL and MaxChannelDataLength', () => {
  it('deliver line records with the EOL flag, cut long lines, and flush the rest at EOF', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);
    tunnel.on('sshChannelOpened', (e) => {
      tunnel.config(`ChannelDataEOL[${e.channelId}]=\n`);
      tunnel.config(`MaxChannelDataLength[${e.channelId}]=16`);
    });
    const records: string[] = [];
    tunnel.on('sshChannelData', (e) => {
      const flag = tunnel.config(`ChannelDataEOLFound[${e.channelId}]`);
      expect(flag).toBe(e.channelDataEOLFound ? 'True' : 'False');
      records.push(`${Buffer.from(e.channelData).toString()}|${e.channelDataEOLFound}`);
    });
    const eof = new Promise<void>((resolve) => tunnel.on('sshChannelEOF', () => resolve()));
    const client = await connect(port);
    client.write('first line\nsecond ');
    client.write('line\n0123456789abcdefXYZ\nno newline');
    client.end();
    await eof;
    expect(records).toEqual(['first line\n|true', 'second line\n|true', '0123456789abcdef|false', 'XYZ\n|true', 'no newline|false']);
    client.destroy();
    await tunnel.sshLogoff();
  });

  it('a data handler that throws every time still lets 8 MiB through a 256 KiB window, the process lives, and the error is reported (was a stalled channel: the window credit never left)', async () => {
    const tunnel = makeTunnel(sshd, { config: ['MaxWindowSize=262144'] });
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    const errors: string[] = [];
    tunnel.on('error', (e) => errors.push(e.description));
    let bytes = 0;
    tunnel.on('sshChannelData', (e) => {
      bytes += e.channelData.length;
      throw new Error('the application failed on this record');
    });
    const eof = new Promise<void>((resolve) => tunnel.on('sshChannelEOF', () => resolve()));
    const client = await connect(port);
    await sendHashed(client, 8 * MiB);
    client.end();
    await eof;
    process.off('uncaughtException', onUncaught);
    expect(bytes).toBe(8 * MiB);
    expect(uncaught).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/the application failed on this record/);
    expect(tunnel.connected).toBe(true);
    client.destroy();
    await tunnel.sshLogoff();
  });

  it('ChannelDataEOLFound[id] answers only for the channel being delivered', async () => {
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);
    tunnel.on('sshChannelOpened', (e) => tunnel.config(`ChannelDataEOL[${e.channelId}]=\n`));
    const answers: string[] = [];
    tunnel.on('sshChannelData', (e) => answers.push(`${tunnel.config(`ChannelDataEOLFound[${e.channelId}]`)}/${tunnel.config(`ChannelDataEOLFound[${e.channelId + 1}]`)}`));
    const eof = new Promise<void>((resolve) => tunnel.on('sshChannelEOF', () => resolve()));
    const client = await connect(port);
    client.end('line\n');
    await eof;
    expect(answers).toEqual(['True/']);
    expect(tunnel.config('ChannelDataEOLFound[0]')).toBe(''); // outside the event
    client.destroy();
    await tunnel.sshLogoff();
  });
});

describe('RecordLength and MaxLineLength', () => {
  it('RecordLength cuts fixed records, and a handler that changes it cuts the next record by the new length', async () => {
    const tunnel = makeTunnel(sshd, { config: ['RecordLength=4'] });
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);
    const records: string[] = [];
    tunnel.on('sshChannelData', (e) => {
      records.push(Buffer.from(e.channelData).toString());
      if (records.length === 2) tunnel.config('RecordLength=6');
    });
    const eof = new Promise<void>((resolve) => tunnel.on('sshChannelEOF', () => resolve()));
    const client = await connect(port);
    client.end('aaaabbbbccccccddddddee');
    await eof;
    expect(records).toEqual(['aaaa', 'bbbb', 'cccccc', 'dddddd', 'ee']);
    client.destroy();
    await tunnel.sshLogoff();
  });

  it('MaxLineLength bounds the lines of a channel that has ChannelDataEOL but no MaxChannelDataLength', async () => {
    const tunnel = makeTunnel(sshd, { config: ['MaxLineLength=256'] });
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);
    tunnel.on('sshChannelOpened', (e) => tunnel.config(`ChannelDataEOL[${e.channelId}]=\n`));
    const records: [number, boolean][] = [];
    tunnel.on('sshChannelData', (e) => records.push([e.channelData.length, e.channelDataEOLFound]));
    const eof = new Promise<void>((resolve) => tunnel.on('sshChannelEOF', () => resolve()));
    const client = await connect(port);
    client.end(`${'x'.repeat(300)}\nshort\n`);
    await eof;
    expect(records).toEqual([
      [256, false],
      [45, true],
      [6, true],
    ]);
    client.destroy();
    await tunnel.sshLogoff();
  });
});
