// The fault relay itself, checked through real loopback sockets: each control does what it
// says, and where the claim is that something did *not* happen (no byte forwarded, no FIN
// passed on) the check is made against the kernel's own view of the sockets, so no test
// sleeps to see whether something turns up. The last part runs revtun and sshd through the
// relay: the stale-listener case the reconnection work has to live with.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type * as net from 'node:net';
import { startRelay, type Relay, type RelayConnection } from '../../helpers/relay.js';
import { pollUntil, tcpSocket } from '../../helpers/kernel.js';
import { connect, echoServer, listen, receiveHashed, roundTrip, sendHashed } from '../../helpers/streams.js';
import { freePort, startSshd, stopAll, waitForExit, type EchoServer, type Sshd } from '../../helpers/sshd.js';
import { makeTunnel } from '../../helpers/tunnel.js';
import { SshError } from '../../../ts/index.js';

/** A target that keeps its accepted sockets and everything each one has received. */
async function recordingServer() {
  const accepted: { socket: net.Socket; received: Buffer[]; length: number; ended: boolean }[] = [];
  const waiting = new Set<() => void>();
  const notify = () => {
    for (const check of [...waiting]) check();
  };
  const server = await listen((socket) => {
    const entry = { socket, received: [] as Buffer[], length: 0, ended: false };
    accepted.push(entry);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      entry.received.push(chunk);
      entry.length += chunk.length;
      notify();
    });
    socket.on('end', () => {
      entry.ended = true;
      notify();
    });
    notify();
  });
  /** Resolves once `condition` holds, re-checked after each event on any accepted socket. */
  const until = (condition: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!condition()) return;
        waiting.delete(check);
        resolve();
      };
      waiting.add(check);
      check();
    });
  const bytes = (i: number) => Buffer.concat(accepted[i]?.received ?? []);
  const length = (i: number) => accepted[i]?.length ?? 0;
  return { ...server, accepted, until, bytes, length };
}

/** Reads exactly n bytes. */
function readExactly(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < n) return;
      socket.off('data', onData);
      socket.off('error', reject);
      const all = Buffer.concat(chunks);
      if (have > n) socket.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('relaying', () => {
  let echo: EchoServer;
  let relay: Relay;
  beforeAll(async () => {
    echo = await echoServer();
    relay = await startRelay({ host: '127.0.0.1', port: echo.port });
  });
  afterAll(() => stopAll(relay, echo));

  it('copies bytes both ways, passes half-closes on, and counts', async () => {
    const client = await connect(relay.port);
    const received = receiveHashed(client);
    const sent = await sendHashed(client, 3 * 1024 * 1024); // ends with a half-close
    const { bytes, sha256: echoed } = await received; // the echo server half-closes back
    expect(bytes).toBe(3 * 1024 * 1024);
    expect(echoed).toBe(sent);
    const connection = await relay.waitForConnections(1);
    await connection.closed;
    expect(connection.forwarded).toEqual({ toServer: bytes, toClient: bytes });
    expect(relay.stats()).toMatchObject({ accepted: 1, refused: 0, open: 0, discarded: { toServer: 0, toClient: 0 } });
    client.destroy();
  });

  it('waitForConnections resolves on the n-th accepted connection, not before', async () => {
    const before = relay.stats().accepted;
    let second: RelayConnection | null = null;
    const waiting = relay.waitForConnections(before + 2).then((c) => (second = c));
    const a = await connect(relay.port);
    await relay.waitForConnections(before + 1);
    expect(second).toBeNull();
    const b = await connect(relay.port);
    await waiting;
    expect(second!.clientPort).toBe(b.localPort);
    expect(relay.connections[before]!.clientPort).toBe(a.localPort);
    a.destroy();
    b.destroy();
  });
});

describe('stall and resume', () => {
  /** A client and a recording target joined through a fresh relay, with one byte already through. */
  async function stalledPath() {
    const target = await recordingServer();
    const relay = await startRelay({ host: '127.0.0.1', port: target.port });
    const client = await connect(relay.port);
    const fromTarget: Buffer[] = [];
    const clientEvents: string[] = [];
    client.on('data', (c: Buffer) => fromTarget.push(c));
    client.on('end', () => clientEvents.push('end'));
    client.write('x');
    await target.until(() => target.length(0) === 1); // the path is up end to end
    relay.stall();
    const server = target.accepted[0]!.socket;
    return {
      target,
      relay,
      client,
      server,
      fromTarget,
      clientEvents,
      connection: relay.connections[0]!,
      // The relay's own sockets, as /proc/net/tcp names them.
      relayClientSide: { localPort: relay.port, remotePort: client.localPort! },
      relayServerSide: { localPort: server.remotePort!, remotePort: target.port },
    };
  }

  /** Bytes that reached the relay and were not passed on: the kernel's receive queue plus Node's buffer. */
  const heldAt = (side: { localPort: number; remotePort: number }, inNode: number) => (tcpSocket(side.localPort, side.remotePort)?.receiveQueue ?? NaN) + inNode;

  it('holds bytes both ways, all of them at the relay and none forwarded, until resume', async () => {
    const path = await stalledPath();
    // 16 KiB fits in a fresh loopback receive window, so every byte can reach the relay.
    const up = Buffer.alloc(16 * 1024, 0x55);
    const down = Buffer.alloc(16 * 1024, 0xaa);
    path.client.write(up);
    path.server.write(down);
    await pollUntil(() => heldAt(path.relayClientSide, path.connection.held.toServer) === up.length, 'the client bytes to reach the relay');
    await pollUntil(() => heldAt(path.relayServerSide, path.connection.held.toClient) === down.length, 'the server bytes to reach the relay');
    // Every byte is accounted for at the relay, so none can have gone on.
    expect(path.target.length(0)).toBe(1);
    expect(path.fromTarget).toEqual([]);
    expect(path.connection.forwarded).toEqual({ toServer: 1, toClient: 0 });

    const downArrived = new Promise<void>((resolve) => {
      const check = () => Buffer.concat(path.fromTarget).length >= down.length && resolve();
      path.client.on('data', check); // after the listener that collects fromTarget
    });
    path.relay.resume();
    await path.target.until(() => path.target.length(0) === 1 + up.length);
    expect(path.target.bytes(0).equals(Buffer.concat([Buffer.from('x'), up]))).toBe(true);
    await downArrived;
    expect(Buffer.concat(path.fromTarget).equals(down)).toBe(true);
    path.client.destroy();
    await stopAll(path.relay, path.target);
  });

  it('reads no more than a buffer while TCP flow control stops the sender', async () => {
    const path = await stalledPath();
    const total = 16 * 1024 * 1024; // more than the kernel buffers on both sides take
    const up = Buffer.alloc(total, 0x33);
    path.client.write(up);
    const sending = () => tcpSocket(path.client.localPort!, path.relay.port);
    // Reached once the relay's receive window has closed: the client's kernel holds unsent
    // bytes and its Node socket still has bytes the kernel would not take.
    await pollUntil(() => path.client.writableLength > 0 && (sending()?.sendQueue ?? 0) > 0 && heldAt(path.relayClientSide, 0) > 0, 'the sender to be pushed back on');
    expect(path.connection.held.toServer).toBeLessThanOrEqual(128 * 1024);
    expect(path.connection.forwarded.toServer).toBe(1);
    expect(path.target.length(0)).toBe(1);

    path.relay.resume();
    await path.target.until(() => path.target.length(0) === 1 + total);
    expect(sha256(path.target.bytes(0).subarray(1))).toBe(sha256(up));
    path.client.destroy();
    await stopAll(path.relay, path.target);
  });

  it('holds FINs both ways until resume', async () => {
    const path = await stalledPath();
    path.client.end();
    path.server.end();
    // The relay's kernel has both FINs (CLOSE_WAIT) ...
    await pollUntil(() => tcpSocket(path.relayClientSide.localPort, path.relayClientSide.remotePort)?.state === 'CLOSE_WAIT', "the client's FIN to reach the relay");
    await pollUntil(() => tcpSocket(path.relayServerSide.localPort, path.relayServerSide.remotePort)?.state === 'CLOSE_WAIT', "the server's FIN to reach the relay");
    // ... and the relay has passed neither on: its own ends of both connections are still
    // open for writing (a shutdown would have made them LAST_ACK).
    await path.relay.waitFor(() => path.connection.clientGone && path.connection.serverGone); // Node has read both EOFs
    expect(tcpSocket(path.relayClientSide.localPort, path.relayClientSide.remotePort)?.state).toBe('CLOSE_WAIT');
    expect(tcpSocket(path.relayServerSide.localPort, path.relayServerSide.remotePort)?.state).toBe('CLOSE_WAIT');
    expect(path.target.accepted[0]!.ended).toBe(false);
    expect(path.clientEvents).toEqual([]);

    path.relay.resume();
    await path.target.until(() => path.target.accepted[0]!.ended);
    await new Promise<void>((resolve) => (path.clientEvents.includes('end') ? resolve() : path.client.once('end', () => resolve())));
    await path.connection.closed;
    expect(path.relay.stats().open).toBe(0);
    await stopAll(path.relay, path.target);
  });

  it('applies to connections accepted while stalled', async () => {
    const echo = await echoServer();
    const relay = await startRelay({ host: '127.0.0.1', port: echo.port });
    relay.stall();
    const client = await connect(relay.port);
    const connection = await relay.waitForConnections(1);
    client.write('hello');
    await pollUntil(() => heldAt({ localPort: relay.port, remotePort: client.localPort! }, connection.held.toServer) === 5, 'the bytes to reach the relay');
    expect(connection.forwarded.toServer).toBe(0);
    const reply = readExactly(client, 5);
    relay.resume();
    expect((await reply).toString()).toBe('hello');
    client.destroy();
    await stopAll(relay, echo);
  });
});

describe('blackhole', () => {
  it('drops bytes both ways and passes on neither FIN nor RST, in either direction', async () => {
    const target = await recordingServer();
    const relay = await startRelay({ host: '127.0.0.1', port: target.port });

    // The server goes away: the client is not told.
    const client = await connect(relay.port);
    const fromTarget: Buffer[] = [];
    const clientEvents: string[] = [];
    client.on('data', (c: Buffer) => fromTarget.push(c));
    for (const event of ['end', 'error', 'close']) client.on(event, () => clientEvents.push(event));
    client.write('a');
    await target.until(() => target.length(0) === 1);
    const first = relay.connections[0]!;
    const server = target.accepted[0]!.socket;
    relay.blackhole();
    expect(first.blackholed).toBe(true);
    client.write(Buffer.alloc(1000, 1));
    server.write(Buffer.alloc(500, 2));
    await relay.waitFor((s) => s.discarded.toServer === 1000 && s.discarded.toClient === 500);
    server.end(); // the server's FIN and close
    await relay.waitFor(() => first.serverGone);
    // The relay's client-side socket is still established: it sent no FIN (that would be
    // FIN_WAIT1 at once) and no RST (the entry would be gone).
    expect(tcpSocket(relay.port, client.localPort!)?.state).toBe('ESTABLISHED');
    expect(tcpSocket(client.localPort!, relay.port)?.state).toBe('ESTABLISHED');
    client.write(Buffer.alloc(10, 3)); // and the client can still "send"
    await relay.waitFor((s) => s.discarded.toServer === 1010);
    expect(fromTarget).toEqual([]);
    expect(clientEvents).toEqual([]);
    expect(target.bytes(0).toString()).toBe('a');
    expect(first.forwarded).toEqual({ toServer: 1, toClient: 0 });

    // The client goes away: the server is not told.
    const second = await connect(relay.port);
    second.write('b');
    await target.until(() => target.length(1) === 1);
    const secondConnection = relay.connections[1]!;
    const secondServer = target.accepted[1]!.socket;
    secondConnection.blackhole();
    second.end();
    await relay.waitFor(() => secondConnection.clientGone);
    expect(tcpSocket(secondServer.remotePort!, target.port)?.state).toBe('ESTABLISHED');
    expect(tcpSocket(target.port, secondServer.remotePort!)?.state).toBe('ESTABLISHED');
    expect(target.accepted[1]!.ended).toBe(false);

    // Connections made after the blackhole are relayed normally.
    const third = await connect(relay.port);
    third.write('c');
    await target.until(() => target.bytes(2).toString() === 'c');
    expect(relay.connections[2]!.blackholed).toBe(false);

    // reset() still ends blackholed connections, and close() the rest.
    await relay.reset();
    expect(relay.stats().open).toBe(0);
    for (const s of [client, second, third]) s.destroy();
    await stopAll(relay, target);
  });
});

describe('corruptNext', () => {
  let echo: EchoServer;
  let relay: Relay;
  beforeAll(async () => {
    echo = await echoServer();
    relay = await startRelay({ host: '127.0.0.1', port: echo.port });
  });
  afterAll(() => stopAll(relay, echo));

  /** Sends `data` through the echo and returns what comes back. */
  async function exchange(client: net.Socket, data: Buffer): Promise<Buffer> {
    const reply = readExactly(client, data.length);
    client.write(data);
    return reply;
  }

  const differences = (a: Buffer, b: Buffer) => [...a].flatMap((byte, i) => (byte === b[i] ? [] : [{ index: i, xor: byte ^ b[i]! }]));

  it('flips one bit in one byte after `skip` bytes toward the server, exactly once', async () => {
    const client = await connect(relay.port);
    const zeros = Buffer.alloc(100);
    expect(differences(await exchange(client, zeros), zeros)).toEqual([]);
    const corrupted = relay.corruptNext('toServer', { skip: 10 });
    const echoed = await exchange(client, zeros);
    expect(differences(echoed, zeros)).toEqual([{ index: 10, xor: 0x01 }]);
    expect(await corrupted).toEqual({ connection: relay.connections.length - 1, offset: 110, before: 0, after: 1 });
    expect(differences(await exchange(client, zeros), zeros)).toEqual([]);
    client.destroy();
  });

  it('toward the client too, any bit, across chunks', async () => {
    const client = await connect(relay.port);
    const corrupted = relay.corruptNext('toClient', { skip: 70_000, bit: 7 });
    const data = Buffer.alloc(300_000, 0x0f); // several reads, so the byte is in a later chunk
    const echoed = await exchange(client, data);
    expect(differences(echoed, data)).toEqual([{ index: 70_000, xor: 0x80 }]);
    expect(await corrupted).toMatchObject({ offset: 70_000, before: 0x0f, after: 0x8f });
    client.destroy();
  });
});

describe('reset', () => {
  it('gives both peers ECONNRESET and resolves once the relay has closed both sockets', async () => {
    const target = await recordingServer();
    const relay = await startRelay({ host: '127.0.0.1', port: target.port });
    const client = await connect(relay.port);
    client.write('x');
    await target.until(() => target.length(0) === 1);
    const clientError = new Promise<string | undefined>((resolve) => client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
    const serverError = new Promise<string | undefined>((resolve) => target.accepted[0]!.socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
    await relay.reset();
    expect(relay.stats().open).toBe(0);
    expect(await clientError).toBe('ECONNRESET');
    expect(await serverError).toBe('ECONNRESET');
    await stopAll(relay, target);
  });

  it('an RST from one side is passed on as an RST, and a target that refuses resets the client', async () => {
    const target = await recordingServer();
    const relay = await startRelay({ host: '127.0.0.1', port: target.port });
    const client = await connect(relay.port);
    client.write('x');
    await target.until(() => target.length(0) === 1);
    const clientError = new Promise<string | undefined>((resolve) => client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)));
    target.accepted[0]!.socket.resetAndDestroy();
    expect(await clientError).toBe('ECONNRESET');

    relay.retarget({ host: '127.0.0.1', port: await freePort() }); // nothing listens there
    const orphan = await connect(relay.port);
    const error = await new Promise<string | undefined>((resolve) => {
      orphan.once('error', (e: NodeJS.ErrnoException) => resolve(e.code));
      orphan.resume();
    });
    expect(error).toBe('ECONNRESET');
    await stopAll(relay, target);
  });
});

describe('refuse', () => {
  it('closes, resets or holds new connections while on, and relays them again when off', async () => {
    const target = await recordingServer();
    const relay = await startRelay({ host: '127.0.0.1', port: target.port });

    relay.refuse(true);
    const closed = await connect(relay.port);
    closed.write('SSH-2.0-client\r\n'); // a client's first write races the relay's FIN; no RST either way
    const closedReply = await new Promise<{ data: number; error?: string }>((resolve) => {
      let data = 0;
      closed.on('data', (c: Buffer) => (data += c.length));
      closed.once('end', () => resolve({ data }));
      closed.once('error', (e: NodeJS.ErrnoException) => resolve({ data, error: e.code! }));
    });
    expect(closedReply).toEqual({ data: 0 });
    closed.end();

    relay.refuse(true, 'reset');
    const reset = await connect(relay.port).then(
      (s) => new Promise<string | undefined>((resolve) => s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code)).resume()),
      (e: NodeJS.ErrnoException) => e.code, // the RST may come before connect() reports
    );
    expect(reset).toBe('ECONNRESET');

    relay.refuse(true, 'hang');
    const hung = await connect(relay.port);
    const hungEvents: string[] = [];
    for (const event of ['data', 'end', 'error']) hung.on(event, () => hungEvents.push(event));
    hung.write('SSH-2.0-client\r\n');
    const hungConnection = await relay.waitForConnections(3);
    await relay.waitFor(() => hungConnection.discarded.toServer === 16);
    expect(tcpSocket(relay.port, hung.localPort!)?.state).toBe('ESTABLISHED');
    expect(hungEvents).toEqual([]);
    expect(hungConnection.open).toBe(true);

    relay.refuse(false);
    expect((await roundTripThrough(relay, target, 'hello')).toString()).toBe('hello');
    expect(relay.stats()).toMatchObject({ accepted: 4, refused: 3 });
    expect(target.accepted).toHaveLength(1); // the refused ones never reached it
    hung.destroy();
    await hungConnection.closed;
    await stopAll(relay, target);
  });
});

/** Writes `text` through the relay and returns what the recording target received on the newest connection. */
async function roundTripThrough(relay: Relay, target: Awaited<ReturnType<typeof recordingServer>>, text: string): Promise<Buffer> {
  const index = target.accepted.length;
  const client = await connect(relay.port);
  client.end(text);
  await target.until(() => target.accepted[index]?.ended === true);
  client.destroy();
  return target.bytes(index);
}

describe('retarget', () => {
  it('sends later connections to the new target and leaves open ones where they are', async () => {
    const a = await listen((s) => s.on('data', (c: Buffer) => s.write(`A:${c}`)));
    const b = await listen((s) => s.on('data', (c: Buffer) => s.write(`B:${c}`)));
    const relay = await startRelay({ host: '127.0.0.1', port: a.port });
    const first = await connect(relay.port);
    first.write('1');
    expect((await readExactly(first, 3)).toString()).toBe('A:1');
    relay.retarget({ host: '127.0.0.1', port: b.port });
    const second = await connect(relay.port);
    second.write('2');
    expect((await readExactly(second, 3)).toString()).toBe('B:2');
    second.destroy();
    first.write('3');
    expect((await readExactly(first, 3)).toString()).toBe('A:3');
    expect(relay.connections.map((c) => c.target.port)).toEqual([a.port, b.port]);
    first.destroy();
    await stopAll(relay, a, b);
  });
});

describe('close', () => {
  it('drops every connection and rejects what is still waiting', async () => {
    const echo = await echoServer();
    const relay = await startRelay({ host: '127.0.0.1', port: echo.port });
    const client = await connect(relay.port);
    await relay.waitForConnections(1);
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    client.on('error', () => undefined);
    const waiting = relay.waitForConnections(5);
    const corrupting = relay.corruptNext('toServer');
    await relay.close();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(corrupting).rejects.toThrow(/closed/);
    await ended;
    await expect(connect(relay.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await echo.close();
  });
});

describe('revtun and sshd through the relay', () => {
  let sshd: Sshd;
  let echo: EchoServer;
  beforeAll(async () => {
    // sshd gives up on a silent client after ClientAliveInterval * (ClientAliveCountMax + 1)
    // seconds, about 3 s here.
    sshd = await startSshd({ config: ['ClientAliveInterval 1', 'ClientAliveCountMax 2'] });
    echo = await echoServer();
  });
  afterAll(() => stopAll(echo, sshd));

  it('a reset drops the tunnel', async () => {
    const relay = await startRelay({ host: sshd.host, port: sshd.port });
    const tunnel = makeTunnel(sshd);
    tunnel.sshPort = relay.port;
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', echo.port);
    expect((await roundTrip(port, Buffer.from('through the relay'))).toString()).toBe('through the relay');
    const dropped = new Promise<number>((resolve) => tunnel.on('disconnected', (e) => resolve(e.statusCode)));
    await relay.reset();
    expect(await dropped).not.toBe(0);
    expect(tunnel.connected).toBe(false);
    await relay.close();
  });

  it('stale listener: a blackholed session keeps its forwarded port until sshd ClientAlive ends it', async () => {
    const relay = await startRelay({ host: sshd.host, port: sshd.port });
    const port = await freePort();
    const first = makeTunnel(sshd);
    first.sshPort = relay.port;
    await first.sshLogon();
    expect(await first.requestForwarding('127.0.0.1', port, '127.0.0.1', echo.port)).toBe(port);
    const firstSession = sshd.sessionPids();
    expect(firstSession.length).toBeGreaterThan(0);
    const logMark = sshd.log().length;

    relay.blackhole();
    // Freeze the first session's processes while the second asks, so that ClientAlive cannot
    // end the first session meanwhile however slow this machine is: the refusal below can
    // only come from the listener the first session still holds. (The kernel keeps a stopped
    // process's listening socket open.)
    await sshd.killSessions('SIGSTOP', { only: firstSession });
    const second = makeTunnel(sshd); // straight to sshd, as after a reconnect that bypasses the dead path
    await second.sshLogon();
    const refused = await second.requestForwarding('127.0.0.1', port, '127.0.0.1', echo.port).then(
      () => null,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(SshError);
    expect((refused as SshError).code).toBe(1098); // RequestFailure: the server said no
    // sshd says why: the port is taken.
    await sshd.waitForLog(new RegExp(`bind \\[127\\.0\\.0\\.1\\]:${port}: Address already in use`), logMark);
    await sshd.killSessions('SIGCONT', { only: firstSession });

    // sshd's ClientAlive check gives up on the silent session (it never answers the
    // keepalives); its process exits and the port is free.
    await sshd.waitForLog(/Timeout, client not responding/, logMark);
    await relay.waitFor(() => relay.connections[0]!.serverGone);
    await waitForExit(firstSession, 'the blackholed session to exit');
    expect(await second.requestForwarding('127.0.0.1', port, '127.0.0.1', echo.port)).toBe(port);
    expect((await roundTrip(port, Buffer.from('second session'))).toString()).toBe('second session');
    // The first tunnel never heard a thing: the blackhole passed on no FIN.
    expect(first.connected).toBe(true);

    await second.sshLogoff();
    const dropped = new Promise<void>((resolve) => first.on('disconnected', () => resolve()));
    await relay.reset();
    await dropped;
    await relay.close();
  });
});
