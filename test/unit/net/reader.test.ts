import { describe, expect, it } from 'vitest';
import { SocketReader, type ChunkConsumer } from '../../../ts/net/reader.js';

const KiB = 1024;

/** Drives a reader the way net.Socket does: ask for a buffer, read into it, call back. */
function socketFor(reader: SocketReader) {
  const generate = reader.onread.buffer as () => Uint8Array;
  let buffer = generate();
  return {
    /** "Reads" `bytes` of `fill` and returns where they landed. */
    read(bytes: number, fill = 0xab): Uint8Array {
      expect(buffer.length).toBeGreaterThanOrEqual(bytes);
      buffer.fill(fill, 0, bytes);
      const landed = buffer.subarray(0, bytes);
      reader.onread.callback(bytes, buffer);
      buffer = generate();
      return landed;
    },
  };
}

/** A consumer that keeps `backlog` bytes queued and reports `pinned`, as told. */
interface TestConsumer {
  backlog: number;
  pinned: boolean;
  taken: Buffer[];
  moved: { target: Buffer; backlog: number }[];
  impl: ChunkConsumer;
}

function consumer(): TestConsumer {
  const c: TestConsumer = {
    backlog: 0,
    pinned: false,
    taken: [] as Buffer[],
    moved: [] as { target: Buffer; backlog: number }[],
    impl: {
      take: (chunk: Buffer) => void c.taken.push(chunk),
      settle: () => ({ backlog: c.backlog, pinned: c.pinned }),
      moveBacklog: (target: Buffer) => void c.moved.push({ target, backlog: c.backlog }),
    } satisfies ChunkConsumer,
  };
  return c;
}

describe('socket reader', () => {
  it('reuses the same memory for every read while the consumer lets go of each chunk', () => {
    const reader = new SocketReader();
    const c = consumer();
    reader.attach(c.impl);
    const socket = socketFor(reader);
    const first = socket.read(64 * KiB);
    for (let i = 0; i < 5; i++) {
      const next = socket.read(100 * KiB);
      expect(next.buffer).toBe(first.buffer);
      expect(next.byteOffset).toBe(first.byteOffset);
    }
    expect(c.moved).toEqual([]);
  });

  it('puts the next read right after bytes still queued, and moves them to the start when room runs out', () => {
    const reader = new SocketReader();
    const c = consumer();
    reader.attach(c.impl);
    const socket = socketFor(reader);
    c.backlog = 1000;
    const a = socket.read(100 * KiB);
    const b = socket.read(100 * KiB); // lands right after a
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + a.length);
    // 200 KiB of 256 used: less than 64 KiB left, so the 1000 queued bytes move to the start.
    expect(c.moved.length).toBe(1);
    expect(c.moved[0]!.target.buffer).toBe(a.buffer);
    const d = socket.read(10 * KiB);
    expect(d.buffer).toBe(a.buffer);
    expect(d.byteOffset).toBe(c.moved[0]!.target.byteOffset + 1000);
  });

  it('never writes again into memory the consumer says is still referred to', () => {
    const reader = new SocketReader();
    const c = consumer();
    reader.attach(c.impl);
    const socket = socketFor(reader);
    c.pinned = true;
    const kept = socket.read(150 * KiB, 0x11);
    c.pinned = false;
    const next = socket.read(50 * KiB, 0x22); // fits after it; the reader does not start over
    expect(next.buffer).toBe(kept.buffer);
    expect(next.byteOffset).toBe(kept.byteOffset + kept.length);
    // Room ran out: the next read goes to a buffer of its own.
    const later = socket.read(200 * KiB, 0x33);
    expect(later.buffer).not.toBe(kept.buffer);
    expect(kept.every((x) => x === 0x11)).toBe(true);
    // The new buffer is not pinned: it is reused from its start.
    expect(socket.read(10 * KiB).byteOffset).toBe(later.byteOffset);
  });

  it('moves a backlog too large for the buffer into a larger one', () => {
    const reader = new SocketReader();
    const c = consumer();
    reader.attach(c.impl);
    const socket = socketFor(reader);
    c.backlog = 250 * KiB; // most of a large packet is still to come
    socket.read(250 * KiB);
    expect(c.moved.length).toBe(1);
    expect(c.moved[0]!.target.length).toBeGreaterThanOrEqual(250 * KiB + 64 * KiB);
  });

  it('copies reads that arrive before a consumer is attached and hands them over in order', () => {
    const reader = new SocketReader();
    const socket = socketFor(reader);
    socket.read(10, 0x01);
    socket.read(20, 0x02); // lands where the first did: that one was copied
    const c = consumer();
    reader.attach(c.impl);
    expect(c.taken.map((t) => [t.length, t[0]])).toEqual([
      [10, 0x01],
      [20, 0x02],
    ]);
    socket.read(5, 0x03);
    expect(c.taken[0]!.every((x) => x === 0x01)).toBe(true);
  });

  it('a held buffer is not reused until let go of; then it waits as a spare and is reused', () => {
    const reader = new SocketReader();
    const c = consumer();
    reader.attach(c.impl);
    const socket = socketFor(reader);
    let release: () => void = () => undefined;
    c.impl.take = (chunk) => {
      c.taken.push(chunk);
      release = reader.hold(); // e.g. a local socket that could not write it all at once
    };
    const held = socket.read(200 * KiB, 0x11); // 56 KiB left: the next read moves on
    c.impl.take = (chunk) => void c.taken.push(chunk);
    const next = socket.read(10 * KiB, 0x22);
    expect(next.buffer).not.toBe(held.buffer);
    expect(held.every((x) => x === 0x11)).toBe(true);
    expect(reader.spareBuffers).toBe(0);
    release();
    release(); // a second call changes nothing
    expect(reader.spareBuffers).toBe(1);
    // Fill the current buffer up; once it is pinned and full, the spare takes over.
    c.pinned = true;
    socket.read(200 * KiB);
    c.pinned = false;
    expect(reader.spareBuffers).toBe(0);
    expect(socket.read(10 * KiB).buffer).toBe(held.buffer);
  });
});
