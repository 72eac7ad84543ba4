// The socket driver (ts/net/driver.ts) with the real SshClientCore against the in-memory
// TestServer, joined by a real TCP connection on loopback (or, where the test must hold
// writes back, by a Duplex whose writes complete only when the test says so): it logs on,
// turns the socket's backpressure into the core's, survives an event handler that throws,
// ends on a socket error with the documented code, and runs the core's timer.

import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { SocketDriver } from '../../../ts/net/driver.js';
import { SshClientCore, type ClientEvent, type ClientOptions } from '../../../ts/protocol/client.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { ChannelData, GlobalRequest, MSG } from '../../../ts/protocol/messages.js';
import { clientOptions, TestServer } from '../../helpers/peer.js';
import { forwardedOpen } from '../../helpers/scripted-server.js';
import { pollUntil } from '../../helpers/kernel.js';
import { credentialAnswerer, isPromise } from '../../../ts/protocol/auth-answer.js';

/** The Session's part: answers the core's credential requests from the options (the password). */
function answerCredentials(core: SshClientCore, options: ClientOptions): (event: ClientEvent) => void {
  const answer = credentialAnswerer(options.auth);
  return (event) => {
    if (event.type !== 'credentialRequest') return;
    const given = answer(event.request);
    if (isPromise(given)) throw new Error('the test password answers at once');
    core.answerCredential(event.request.id, given);
  };
}

const MiB = 1024 * 1024;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** Feeds what arrives on `socket` to the TestServer and writes its answers back. */
function serve(server: TestServer, socket: net.Socket): void {
  const pump = () => {
    for (const bytes of server.out.splice(0)) socket.write(bytes);
  };
  socket.on('data', (chunk) => {
    server.receive(chunk);
    pump();
  });
  socket.on('error', () => undefined);
  const send = server.send.bind(server);
  server.send = (payload) => {
    send(payload);
    pump();
  };
  server.start();
  pump();
}

interface Driven {
  core: SshClientCore;
  driver: SocketDriver;
  server: TestServer;
  events: ClientEvent[];
  failures: { event: ClientEvent; error: unknown }[];
  client: net.Socket;
  serverSocket: net.Socket;
}

/** A core driven over a loopback TCP connection to a TestServer. */
async function overLoopback(
  options: Partial<ClientOptions> = {},
  onEvent?: (event: ClientEvent) => void,
  server = new TestServer(),
  reportFailure?: (event: ClientEvent, error: unknown) => void,
): Promise<Driven> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => listener.close());
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined); // the driver's own listener reports it to the core
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const serverSocket = await accepted;
  cleanups.push(() => {
    client.destroy();
    serverSocket.destroy();
  });
  serve(server, serverSocket);
  const full = clientOptions(options);
  const core = new SshClientCore(full);
  const answer = answerCredentials(core, full);
  const events: ClientEvent[] = [];
  const failures: { event: ClientEvent; error: unknown }[] = [];
  const driver = new SocketDriver(core, client, {
    onEvent: (event) => {
      events.push(event);
      answer(event);
      onEvent?.(event);
    },
    onEventFailed: (event, error) => {
      failures.push({ event, error });
      reportFailure?.(event, error);
    },
  });
  driver.start();
  return { core, driver, server, events, failures, client, serverSocket };
}

const has = (events: ClientEvent[], type: ClientEvent['type']) => events.some((e) => e.type === type);
const closedWith = (events: ClientEvent[]) => {
  const closed = events.find((e) => e.type === 'closed');
  return closed?.type === 'closed' ? closed : undefined;
};

/** Asks for a forwarding of port 0 through the driver; resolves with the port granted. */
async function forward(d: Driven): Promise<number> {
  let port = 0;
  expect(d.core.requestForwarding('', 0, (outcome) => (port = outcome.ok ? outcome.grant.boundPort : -1)).ok).toBe(true);
  d.driver.flush();
  return pollUntil(() => port || undefined, 'the forwarding reply');
}

describe('SocketDriver over a loopback TCP connection', () => {
  it('logs on and gets a forwarding granted', async () => {
    const d = await overLoopback();
    await pollUntil(() => has(d.events, 'authenticated'), 'authentication');
    expect(await forward(d)).toBe(5555);
    expect(d.driver.bytesMoved).toBeGreaterThan(0);
    expect(closedWith(d.events)).toBeUndefined();
  });

  it('an event handler that throws is reported once per event, and the connection carries on', async () => {
    const thrown = new Error('handler bug');
    const d = await overLoopback({}, (event) => {
      if (event.type === 'status') throw thrown;
    });
    await pollUntil(() => has(d.events, 'authenticated'), 'authentication after throwing handlers');
    expect(await forward(d)).toBe(5555);
    const statuses = d.events.filter((e) => e.type === 'status');
    expect(statuses.length).toBeGreaterThan(2);
    expect(d.failures).toEqual(statuses.map((event) => ({ event, error: thrown })));
    expect(closedWith(d.events)).toBeUndefined();
  });

  it('a handler whose failure report throws as well does not stop the events behind it', async () => {
    const always = () => {
      throw new Error('always');
    };
    const d = await overLoopback({}, always, new TestServer(), always);
    await pollUntil(() => has(d.events, 'authenticated'), 'authentication');
    expect(await forward(d)).toBe(5555);
  });

  it('a socket error closes the core with the socket code (ECONNRESET: 10054), from the peer', async () => {
    const d = await overLoopback();
    await pollUntil(() => has(d.events, 'authenticated'), 'authentication');
    d.client.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    const closed = await pollUntil(() => closedWith(d.events), 'the closed event');
    expect(closed.error).toBeInstanceOf(SshError);
    expect(closed.error).toMatchObject({ code: Code.ConnectionReset, origin: 'peer' });
    expect(closed.error?.message).toContain('read ECONNRESET');
    expect(d.core.isClosed).toBe(true);
    expect(d.events.filter((e) => e.type === 'closed')).toHaveLength(1); // the 'close' that follows adds none
  });

  it('the server closing the TCP connection without DISCONNECT ends with 1120', async () => {
    const d = await overLoopback();
    await pollUntil(() => has(d.events, 'authenticated'), 'authentication');
    d.serverSocket.end();
    const closed = await pollUntil(() => closedWith(d.events), 'the closed event');
    expect(closed.error?.code).toBe(Code.ConnectionDropped);
    await pollUntil(() => d.client.destroyed || undefined, 'the client socket closed');
  });

  it('runs the core’s timer: keep-alives go out unasked, and unanswered ones end the connection (1039)', async () => {
    const server = new TestServer();
    const d = await overLoopback({ keepAliveInterval: 1, keepAliveCountMax: 2 }, undefined, server);
    await pollUntil(() => has(d.events, 'authenticated'), 'authentication');
    // From now on the server reads our keep-alives and never answers them.
    const keepAlives: string[] = [];
    server.onConnection = (payload) => {
      if (payload[0] === MSG.GLOBAL_REQUEST) keepAlives.push(GlobalRequest.decode(payload).name);
    };
    const closed = await pollUntil(() => closedWith(d.events), 'the keep-alive limit', { tries: 1000 });
    expect(closed.error?.code).toBe(Code.KeepAliveLimit);
    expect(keepAlives.length).toBeGreaterThanOrEqual(2);
    expect(keepAlives.every((name) => name === 'keepalive@openssh.com')).toBe(true);
    // At the keep-alive limit the driver does not wait for the server: the socket goes at once.
    await pollUntil(() => d.client.destroyed || undefined, 'the client socket destroyed');
  });
});

/**
 * A transport whose writes complete only while `open`: what the driver writes while it is
 * shut stays in the stream's buffer (its writableLength), as in a socket whose peer stopped
 * reading, and 'drain' comes when it opens.
 */
class GatedDuplex extends Duplex {
  open = true;
  private readonly held: (() => void)[] = [];

  constructor(private readonly server: TestServer) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    const deliver = () => {
      this.server.receive(chunk);
      this.pumpServer();
      done();
    };
    if (this.open) deliver();
    else this.held.push(deliver);
  }

  override _read(): void {}

  pumpServer(): void {
    for (const bytes of this.server.out.splice(0)) this.push(bytes);
  }

  release(): void {
    this.open = true;
    for (const deliver of this.held.splice(0)) deliver();
  }
}

describe('SocketDriver backpressure', () => {
  it('holds channel data in the core while the socket is full, and sends it all after drain', async () => {
    const server = new TestServer();
    const stream = new GatedDuplex(server);
    const options = clientOptions();
    const core = new SshClientCore(options);
    const answer = answerCredentials(core, options);
    const events: ClientEvent[] = [];
    const driver = new SocketDriver(core, stream, {
      onEvent: (event) => {
        events.push(event);
        answer(event);
      },
    });
    cleanups.push(() => stream.destroy());
    server.start();
    driver.start();
    stream.pumpServer();
    await pollUntil(() => has(events, 'authenticated'), 'authentication');
    let granted = 0;
    expect(core.requestForwarding('', 0, (outcome) => (granted = outcome.ok ? outcome.grant.boundPort : -1)).ok).toBe(true);
    driver.flush();
    expect(await pollUntil(() => granted || undefined, 'the forwarding reply')).toBe(5555);
    // A channel the server gives a window far larger than what is sent, so only the socket limits.
    server.send(forwardedOpen(7, 5555, 0x7fffffff, 32768));
    stream.pumpServer();
    const open = await pollUntil(() => events.find((e) => e.type === 'channelOpenRequest'), 'the forwarded open');
    if (open.type !== 'channelOpenRequest') throw new Error('unreachable');
    expect(core.acceptChannel(open.channel).ok).toBe(true);
    driver.flush();

    stream.open = false;
    const first = core.sendData(open.channel, new Uint8Array(2 * MiB).fill(1));
    driver.flush();
    // All framed and handed to the stream: nothing queued in the channel, the stream over its high water.
    expect(first).toEqual({ ok: true, value: 0 });
    expect(stream.writableLength).toBeGreaterThan(MiB);
    const second = core.sendData(open.channel, new Uint8Array(2 * MiB).fill(2));
    driver.flush();
    // Blocked: the second batch waits in the channel instead of piling up in the stream.
    expect(second).toEqual({ ok: true, value: 2 * MiB });
    expect(core.channel(open.channel)!.outgoingBytes).toBe(2 * MiB);
    const held = stream.writableLength;
    expect(held).toBeLessThan(3 * MiB);

    stream.release();
    const received = () =>
      server.receivedPayloads
        .filter((p) => p[0] === MSG.CHANNEL_DATA)
        .map((p) => ChannelData.decode(p).data)
        .reduce((sum, data) => sum + data.length, 0);
    await pollUntil(() => received() === 4 * MiB || undefined, 'all 4 MiB at the server');
    expect(core.channel(open.channel)!.outgoingBytes).toBe(0);
    // In order: the first batch's bytes, then the second's.
    const bytes = Buffer.concat(server.receivedPayloads.filter((p) => p[0] === MSG.CHANNEL_DATA).map((p) => ChannelData.decode(p).data));
    expect(bytes.indexOf(2)).toBe(2 * MiB);
    expect(closedWith(events)).toBeUndefined();
  });
});
