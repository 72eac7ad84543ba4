// Socket reads into memory we keep and reuse (net.Socket's `onread` option), instead of a
// fresh Buffer per read pushed through a Readable stream. Reads are larger, nothing is
// allocated per read while the consumer lets go of each chunk, and the next read lands right
// after the unconsumed tail of the last one, so an SSH packet that spans two reads is still
// decrypted where it lies.
//
// A consumer that must keep some bytes past its callback either holds the buffer (and lets
// go when done: the buffer is then reused) or pins it (it is never written again and is left
// to the garbage collector).

import type { OnReadOpts } from 'node:net';

/** What a reader hands its chunks to. */
export interface ChunkConsumer {
  /** Takes a chunk; it may be read, or decrypted in place, until `settle` is called. */
  take(chunk: Buffer): void;
  /**
   * Called after each `take`: how many bytes at the end of the last chunk are still queued
   * unread (they must stay valid), and whether anything may refer to the bytes before them
   * for good (then that memory is never written again).
   */
  settle(): { backlog: number; pinned: boolean };
  /** Moves the `backlog` queued bytes to the start of `target` and reads them from there. */
  moveBacklog(target: Buffer): void;
}

/** Reads go to a buffer of this size... */
const READ_BUFFER = 256 * 1024;
/** ...and move to a fresh start once less than this is left at its end. */
const MIN_READ = 64 * 1024;
/** Buffers let go of by their holders wait here for reuse. */
const SPARE_BUFFERS = 4;

interface ReadBuffer {
  readonly bytes: Buffer;
  /** Holders that still refer to some of it. */
  holds: number;
  /** Referred to for good: never reused. */
  pinned: boolean;
  /** No longer the buffer reads go to. */
  retired: boolean;
}

/** Keeps one socket's read buffers and decides, after each read, where the next one goes. */
export class SocketReader {
  private current: ReadBuffer = SocketReader.fresh(READ_BUFFER);
  private readonly spare: ReadBuffer[] = [];
  /** Bytes [0, end) of the current buffer have been read into. */
  private end = 0;
  private consumer: ChunkConsumer | null = null;
  /** Chunks that arrived before a consumer was attached (copies). */
  private early: Buffer[] = [];

  /** The `onread` option for net.connect. */
  readonly onread: OnReadOpts = {
    buffer: () => {
      return this.current.bytes.subarray(this.end);
    },
    callback: (bytes, buffer) => {
      this.received(buffer as Buffer, bytes);
      return true;
    },
  };

  private static fresh(size: number): ReadBuffer {
    return { bytes: Buffer.allocUnsafe(size), holds: 0, pinned: false, retired: false };
  }

  attach(consumer: ChunkConsumer): void {
    this.consumer = consumer;
    const early = this.early;
    this.early = [];
    // These copies are the consumer's to keep; the read buffer's state is unchanged.
    for (const chunk of early) {
      consumer.take(chunk);
      consumer.settle();
    }
  }

  /**
   * Keeps the memory of the chunk being handled from being reused until the returned
   * function is called (once; later calls do nothing).
   */
  hold(): () => void {
    const buffer = this.current;
    buffer.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      buffer.holds--;
      if (buffer.retired && buffer.holds === 0 && !buffer.pinned && this.spare.length < SPARE_BUFFERS) this.spare.push(buffer);
    };
  }

  /** How many buffers wait for reuse (for tests). */
  get spareBuffers(): number {
    return this.spare.length;
  }

  private received(buffer: Buffer, bytes: number): void {
    // `buffer` is the view the `buffer` option returned, starting at `end`.
    const chunk = buffer.subarray(0, bytes);
    const consumer = this.consumer;
    if (!consumer) {
      this.early.push(Buffer.from(chunk)); // the same spot takes the next read
      return;
    }
    this.end += bytes;
    consumer.take(chunk);
    const { backlog, pinned } = consumer.settle();
    const current = this.current;
    if (pinned) current.pinned = true;
    const free = current.holds === 0 && !current.pinned;
    if (backlog === 0 && free) this.end = 0; // all consumed and let go of: start over
    if (current.bytes.length - this.end >= MIN_READ) return;
    // Too little room left: the backlog moves to the start of a buffer nobody refers to.
    if (!free || backlog + MIN_READ > current.bytes.length) {
      current.retired = true;
      this.current = this.takeSpare(backlog + MIN_READ) ?? SocketReader.fresh(Math.max(READ_BUFFER, backlog + MIN_READ));
    }
    if (backlog > 0) consumer.moveBacklog(this.current.bytes);
    this.end = backlog;
  }

  private takeSpare(needed: number): ReadBuffer | null {
    const index = this.spare.findIndex((b) => b.bytes.length >= needed);
    if (index < 0) return null;
    const [buffer] = this.spare.splice(index, 1);
    buffer!.retired = false;
    return buffer!;
  }
}
