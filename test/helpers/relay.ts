// A user-space TCP relay that a test puts between a client (revtun) and a server (sshd) and
// then breaks on purpose: stall, blackhole, flip one bit, reset, refuse, retarget. It stands in
// for the network because this kernel has neither sch_netem nor iptables, and network
// namespaces are off limits: the kernel on each side sees a healthy loopback connection, and
// what each peer sees beyond that is whatever the relay chooses to pass on.
//
// Every control takes effect synchronously and every wait is a promise settled by a socket
// event, so a test never has to sleep to know the relay has done what it was told.

import * as net from 'node:net';

/** Which way bytes travel: from the client to the server, or back. */
export type Direction = 'toServer' | 'toClient';

export interface RelayTarget {
  host: string;
  port: number;
}

/**
 * How a refused connection ends: `close` sends FIN at once, `reset` sends RST, and `hang`
 * accepts it and never answers (the relay reads and discards what the client sends), which is
 * the nearest a user-space relay gets to a SYN that goes unanswered.
 */
export type RefusalMode = 'close' | 'reset' | 'hang';

export interface ByteCounts {
  toServer: number;
  toClient: number;
}

export interface RelayStats {
  /** Every TCP connection accepted, refused ones included. */
  accepted: number;
  /** Connections ended or held at once because `refuse` was on. */
  refused: number;
  /** Connections with at least one of their sockets not yet closed. */
  open: number;
  /** Bytes passed on to the far side, over all connections. */
  forwarded: ByteCounts;
  /** Bytes read and dropped (blackholed or hung connections). */
  discarded: ByteCounts;
}

/** What `corruptNext` did. */
export interface CorruptedByte {
  /** The connection's id (its index in `relay.connections`). */
  connection: number;
  /** The byte's offset in that connection's stream in that direction. */
  offset: number;
  before: number;
  after: number;
}

interface PendingCorruption {
  direction: Direction;
  /** Forwarded bytes still to let through untouched. */
  remaining: number;
  mask: number;
  resolve: (result: CorruptedByte) => void;
  reject: (error: Error) => void;
}

interface Waiter {
  condition: (stats: RelayStats) => boolean;
  resolve: (stats: RelayStats) => void;
  reject: (error: Error) => void;
}

const DIRECTIONS: readonly Direction[] = ['toServer', 'toClient'];

/** One accepted connection and, unless it was refused, its connection to the target. */
export class RelayConnection {
  /** Its index in `relay.connections`. */
  readonly id: number;
  /** The client's source port: the remote port of the accepted socket. */
  readonly clientPort: number;
  /** Where it was (or would have been) relayed to. */
  readonly target: RelayTarget;
  readonly refused: boolean;
  readonly forwarded: ByteCounts = { toServer: 0, toClient: 0 };
  readonly discarded: ByteCounts = { toServer: 0, toClient: 0 };
  /** Settles once both sockets (or the one socket of a refused connection) have closed. */
  readonly closed: Promise<void>;
  /** The client sent FIN or RST (whether or not the relay passed it on), or the relay closed its socket. */
  clientGone = false;
  /** The same for the server side; true at once for refused connections, which have none. */
  serverGone: boolean;

  private readonly server: net.Socket | null;
  private serverConnected = false;
  private isBlackholed = false;
  private resetting = false;
  private isClosed = false;
  private readonly backpressured: Record<Direction, boolean> = { toServer: false, toClient: false };
  /** FINs received and not yet passed on (held by a stall). */
  private readonly pendingEnd: Record<Direction, boolean> = { toServer: false, toClient: false };
  private markClosed!: () => void;

  /** @internal Built by the relay for each accepted socket. */
  constructor(
    private readonly relay: Relay,
    id: number,
    private readonly client: net.Socket,
    target: RelayTarget,
    refusal: RefusalMode | null,
  ) {
    this.id = id;
    this.clientPort = client.remotePort ?? 0;
    this.target = target;
    this.refused = refusal !== null;
    this.serverGone = this.refused;
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    client.pause();
    client.on('error', () => undefined); // the 'close' that follows is what counts
    client.on('data', (chunk: Buffer) => this.onData('toServer', chunk));
    client.on('end', () => this.onEnd('toServer'));
    if (refusal === null) {
      this.server = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
      this.server.pause();
      this.server.on('error', () => undefined);
      this.server.on('data', (chunk: Buffer) => this.onData('toClient', chunk));
      this.server.on('end', () => this.onEnd('toClient'));
      this.server.once('connect', () => {
        this.serverConnected = true;
        this.updateReading();
      });
      this.server.once('close', (hadError) => this.onClose('server', hadError));
      client.once('close', (hadError) => this.onClose('client', hadError));
      return;
    }
    this.server = null;
    client.once('close', () => {
      this.clientGone = true;
      this.finish();
    });
    if (refusal === 'reset') {
      client.resetAndDestroy();
    } else if (refusal === 'close') {
      // FIN at once; then drain what the client already sent, so that closing with unread
      // bytes in the receive queue does not turn the FIN into an RST.
      client.end();
      client.resume();
      client.on('end', () => client.destroy());
    } else {
      this.isBlackholed = true;
      this.updateReading();
    }
  }

  get blackholed(): boolean {
    return this.isBlackholed;
  }

  /** True until both sockets have closed. */
  get open(): boolean {
    return !this.isClosed;
  }

  /** Bytes read from one side and held in Node's buffer, not yet passed on (under `stall`). */
  get held(): ByteCounts {
    return { toServer: this.client.readableLength, toClient: this.server?.readableLength ?? 0 };
  }

  /**
   * From now on reads and drops every byte both ways and passes on no FIN or RST: both peers
   * see an open connection that has gone silent. A side that closes is closed quietly on the
   * relay's end only. There is no way back; `reset` ends such a connection.
   */
  blackhole(): void {
    if (this.isClosed) return;
    this.isBlackholed = true;
    this.updateReading();
  }

  /** Sends RST both ways at once and resolves once both sockets have closed. */
  reset(): Promise<void> {
    this.resetting = true;
    for (const socket of [this.client, this.server]) {
      if (!socket || socket.destroyed) continue;
      // resetAndDestroy on a socket still connecting would wait for the connection just to
      // reset it; destroying it aborts the connect instead.
      if (socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
    return this.closed;
  }

  /** @internal Called by the relay whenever `stall`/`resume` change what may flow. */
  updateReading(): void {
    for (const direction of DIRECTIONS) {
      const from = direction === 'toServer' ? this.client : this.server;
      if (!from || from.destroyed) continue;
      const read = this.isBlackholed || (this.serverConnected && !this.relay.stallsWay(direction) && !this.backpressured[direction]);
      if (read) from.resume();
      else from.pause();
    }
    this.passOnEnds();
  }

  /** @internal Destroys both sockets without RST (relay.close). */
  destroy(): Promise<void> {
    this.client.destroy();
    this.server?.destroy();
    return this.closed;
  }

  private onData(direction: Direction, chunk: Buffer): void {
    const to = direction === 'toServer' ? this.server : this.client;
    if (this.isBlackholed || !to || to.destroyed || to.writableEnded) {
      this.discarded[direction] += chunk.length;
      this.relay.count('discarded', direction, chunk.length);
      return;
    }
    const offset = this.forwarded[direction];
    const data = this.relay.corrupt(direction, chunk, this.id, offset);
    this.forwarded[direction] += data.length;
    if (!to.write(data)) {
      this.backpressured[direction] = true;
      this.updateReading();
      to.once('drain', () => {
        this.backpressured[direction] = false;
        this.updateReading();
      });
    }
    this.relay.count('forwarded', direction, data.length);
  }

  /** A FIN from one side: passed on (once not stalled), unless the link is blackholed. */
  private onEnd(direction: Direction): void {
    const from = direction === 'toServer' ? this.client : this.server;
    if (direction === 'toServer') this.clientGone = true;
    else this.serverGone = true;
    if (this.isBlackholed) from?.destroy();
    else this.pendingEnd[direction] = true;
    this.passOnEnds();
    this.relay.changed();
  }

  private passOnEnds(): void {
    // A paused socket still reports the peer's FIN once its buffer is empty (Node reads the
    // EOF and ends the stream regardless), so a stall holds the FIN here instead.
    if (this.isBlackholed) return;
    for (const direction of DIRECTIONS) {
      if (!this.pendingEnd[direction] || this.relay.stallsWay(direction)) continue;
      this.pendingEnd[direction] = false;
      (direction === 'toServer' ? this.server : this.client)?.end();
    }
  }

  private onClose(side: 'client' | 'server', hadError: boolean): void {
    if (side === 'client') this.clientGone = true;
    else this.serverGone = true;
    const other = side === 'client' ? this.server : this.client;
    // An RST (or a failed connect to the target) on one side becomes an RST on the other, as
    // when a router in between passes it on. A clean close needs nothing: both FINs have already
    // been passed on by then.
    if (hadError && !this.isBlackholed && !this.resetting && other && !other.destroyed) {
      if (other.connecting) other.destroy();
      else other.resetAndDestroy();
    }
    if (this.client.destroyed && (!this.server || this.server.destroyed)) this.finish();
    this.relay.changed();
  }

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.markClosed();
    this.relay.changed();
  }
}

/**
 * A relay on 127.0.0.1 between clients and a target server. Controls act on the connections
 * open at the moment except where said otherwise; `stall` and `refuse` are relay-wide states
 * that also apply to connections accepted while they are on.
 */
export class Relay {
  readonly host = '127.0.0.1';
  /** Every connection accepted so far, in order (refused ones included). */
  readonly connections: RelayConnection[] = [];

  private target: RelayTarget;
  private readonly stalledWays = new Set<Direction>();
  private refusal: RefusalMode | null = null;
  private isClosing = false;
  private readonly totals: Pick<RelayStats, 'forwarded' | 'discarded'> = {
    forwarded: { toServer: 0, toClient: 0 },
    discarded: { toServer: 0, toClient: 0 },
  };
  private corruptions: PendingCorruption[] = [];
  private readonly waiters = new Set<Waiter>();

  /** @internal Use startRelay. */
  constructor(
    private readonly server: net.Server,
    readonly port: number,
    target: RelayTarget,
  ) {
    this.target = { ...target };
    server.on('connection', (socket) => this.accept(socket));
  }

  /** True between `stall()` and `resume()`. */
  get stalled(): boolean {
    return this.stalledWays.size > 0;
  }

  /** @internal Whether bytes going `direction` are held. */
  stallsWay(direction: Direction): boolean {
    return this.stalledWays.has(direction);
  }

  stats(): RelayStats {
    return {
      accepted: this.connections.length,
      refused: this.connections.filter((c) => c.refused).length,
      open: this.connections.filter((c) => c.open).length,
      forwarded: { ...this.totals.forwarded },
      discarded: { ...this.totals.discarded },
    };
  }

  /**
   * Stops forwarding both ways on every connection, current and new, by no longer reading
   * either socket. A paused socket reads on until Node's readable buffer reaches its
   * high-water mark, so each socket holds at most that plus one read (64 KiB) in memory; the
   * rest waits in the kernel's receive queue and TCP flow control stops the sender. FINs
   * wait too. Sockets stay open. With a `direction`, only bytes going that way are held.
   */
  stall(direction?: Direction): void {
    for (const way of direction ? [direction] : DIRECTIONS) this.stalledWays.add(way);
    for (const connection of this.connections) connection.updateReading();
  }

  /** Undoes `stall`: held bytes and FINs are passed on in order. */
  resume(): void {
    this.stalledWays.clear();
    for (const connection of this.connections) connection.updateReading();
  }

  /**
   * Turns every open connection into a dead link: bytes both ways are read and dropped, and no
   * FIN or RST is passed on, so each peer sees a connection that is open and silent (what a
   * network that went away looks like, where TCP keepalive is not on). Connections accepted
   * later are relayed normally; `refuse(true, 'hang')` makes them dead too.
   */
  blackhole(): void {
    for (const connection of this.connections) connection.blackhole();
  }

  /**
   * Flips one bit (the lowest unless `bit` is given) of one byte: the byte that comes after
   * `skip` more forwarded bytes in `direction`, whichever connection carries it. Resolves once
   * the flipped byte has been written to the far side.
   */
  corruptNext(direction: Direction, options: { skip?: number; bit?: number } = {}): Promise<CorruptedByte> {
    const skip = options.skip ?? 0;
    const bit = options.bit ?? 0;
    if (!Number.isInteger(skip) || skip < 0) throw new RangeError(`skip must be a non-negative integer, not ${skip}`);
    if (!Number.isInteger(bit) || bit < 0 || bit > 7) throw new RangeError(`bit must be 0-7, not ${bit}`);
    if (this.isClosing) return Promise.reject(new Error('the relay is closed'));
    return new Promise((resolve, reject) => this.corruptions.push({ direction, remaining: skip, mask: 1 << bit, resolve, reject }));
  }

  /** Sends RST both ways on every open connection; resolves once they have all closed. */
  async reset(): Promise<void> {
    await Promise.all(this.connections.filter((c) => c.open).map((c) => c.reset()));
  }

  /** While on, each new connection is ended at once as `mode` says (FIN by default). */
  refuse(on: boolean, mode: RefusalMode = 'close'): void {
    this.refusal = on ? mode : null;
  }

  /** Where connections accepted from now on are relayed to; open ones keep their target. */
  retarget(target: RelayTarget): void {
    this.target = { ...target };
  }

  /**
   * Resolves with the stats as soon as `condition` holds for them, checked now and after every
   * change (a connection, a chunk, a close). Rejects if the relay is closed first.
   */
  waitFor(condition: (stats: RelayStats) => boolean): Promise<RelayStats> {
    const now = this.stats();
    if (condition(now)) return Promise.resolve(now);
    if (this.isClosing) return Promise.reject(new Error('the relay is closed'));
    return new Promise((resolve, reject) => this.waiters.add({ condition, resolve, reject }));
  }

  /** Resolves with the n-th connection once n connections have been accepted in total. */
  async waitForConnections(n: number): Promise<RelayConnection> {
    await this.waitFor((s) => s.accepted >= n);
    return this.connections[n - 1]!;
  }

  /** Stops listening, destroys every connection and rejects whatever is still waiting. */
  async close(): Promise<void> {
    this.isClosing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all(this.connections.map((c) => c.destroy()));
    await closed;
    const error = new Error('the relay was closed');
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
    for (const corruption of this.corruptions) corruption.reject(error);
    this.corruptions = [];
  }

  /** @internal Adds to the totals and wakes the waiters. */
  count(kind: 'forwarded' | 'discarded', direction: Direction, bytes: number): void {
    this.totals[kind][direction] += bytes;
    this.changed();
  }

  /** @internal Applies pending corruptions to a chunk about to be forwarded. */
  corrupt(direction: Direction, chunk: Buffer, connection: number, streamOffset: number): Buffer {
    let data = chunk;
    const done: { corruption: PendingCorruption; result: CorruptedByte }[] = [];
    for (const corruption of this.corruptions) {
      if (corruption.direction !== direction) continue;
      if (corruption.remaining >= data.length) {
        corruption.remaining -= data.length;
        continue;
      }
      if (data === chunk) data = Buffer.from(chunk); // the chunk may be a view of a shared buffer
      const index = corruption.remaining;
      const before = data[index]!;
      data[index] = before ^ corruption.mask;
      done.push({ corruption, result: { connection, offset: streamOffset + index, before, after: data[index]! } });
    }
    if (done.length > 0) {
      this.corruptions = this.corruptions.filter((c) => !done.some((d) => d.corruption === c));
      // Settled after the caller's write: promise callbacks run later than this synchronous code.
      for (const { corruption, result } of done) corruption.resolve(result);
    }
    return data;
  }

  /** @internal Re-checks the waiters after any change. */
  changed(): void {
    if (this.waiters.size === 0) return;
    const stats = this.stats();
    for (const waiter of this.waiters) {
      if (!waiter.condition(stats)) continue;
      this.waiters.delete(waiter);
      waiter.resolve(stats);
    }
  }

  private accept(socket: net.Socket): void {
    if (this.isClosing) {
      socket.destroy();
      return;
    }
    const connection = new RelayConnection(this, this.connections.length, socket, this.target, this.refusal);
    this.connections.push(connection);
    this.changed();
  }
}

/** Starts a relay on 127.0.0.1 in front of `target`, on `port` (default: an ephemeral one). */
export async function startRelay(target: RelayTarget, port = 0): Promise<Relay> {
  // pauseOnConnect: nothing is read from a client before its target connection exists.
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return new Relay(server, (server.address() as net.AddressInfo).port, target);
}
