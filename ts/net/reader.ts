// Socket reads into memory we keep and reuse (net.Socket's `onread` option), instead of a
// fresh Buffer per read pushed through a Readable stream. Reads are larger, nothing is
// allocated per read while the consumer lets go of each chunk, and the next read lands right
// after the unconsumed tail of the last one, so an SSH packet that spans two reads is still
// decrypted where it lies.

import type { OnReadOpts } from 'node:net';

/** What a reader hands its chunks to. */
export interface ChunkConsumer {
  /** Takes a chunk; it may be read, or decrypted in place, until `settle` is called. */
  take(chunk: Buffer): void;
  /**
   * Called after each `take`: how many bytes at the end of the last chunk are still queued
   * unread (they must stay valid), and whether anything may still refer to the bytes before
   * them (then their memory is never written again).
   */
  settle(): { backlog: number; pinned: boolean };
  /** Moves the `backlog` queued bytes to the start of `target` and reads them from there. */
  moveBacklog(target: Buffer): void;
}

/** Reads go to a buffer of this size... */
const READ_BUFFER = 256 * 1024;
/** ...and move to a fresh start once less than this is left at its end. */
const MIN_READ = 64 * 1024;

/** Keeps one socket's read buffer and decides, after each read, where the next one goes. */
export class SocketReader {
  private buffer = Buffer.allocUnsafe(READ_BUFFER);
  /** Bytes [0, end) of `buffer` have been read into. */
  private end = 0;
  /** Something outside the consumer may refer to bytes before `end`. */
  private pinned = false;
  private consumer: ChunkConsumer | null = null;
  /** Chunks that arrived before a consumer was attached (copies). */
  private early: Buffer[] = [];

  /** The `onread` option for net.connect. */
  readonly onread: OnReadOpts = {
    buffer: () => this.next(),
    callback: (bytes, buffer) => {
      this.received(buffer as Buffer, bytes);
      return true;
    },
  };

  attach(consumer: ChunkConsumer): void {
    this.consumer = consumer;
    const early = this.early;
    this.early = [];
    // These copies are the consumer's to keep; the lent buffer's state is unchanged.
    for (const chunk of early) {
      consumer.take(chunk);
      consumer.settle();
    }
  }

  private received(buffer: Buffer, bytes: number): void {
    // `buffer` is the view next() returned, starting at `end`.
    const chunk = buffer.subarray(0, bytes);
    const consumer = this.consumer;
    if (!consumer) {
      this.early.push(Buffer.from(chunk)); // the same spot takes the next read
      return;
    }
    this.end += bytes;
    consumer.take(chunk);
    const { backlog, pinned } = consumer.settle();
    if (pinned) this.pinned = true;
    if (backlog === 0 && !this.pinned) this.end = 0; // all consumed: start over
    if (this.buffer.length - this.end >= MIN_READ) return;
    // Too little room left: the backlog moves to the start of a buffer nobody else refers to.
    if (this.pinned || backlog + MIN_READ > this.buffer.length) {
      this.buffer = Buffer.allocUnsafe(Math.max(READ_BUFFER, backlog + MIN_READ));
      this.pinned = false;
    }
    if (backlog > 0) consumer.moveBacklog(this.buffer);
    this.end = backlog;
  }

  /** Where the next read lands: right after what is still queued. */
  private next(): Buffer {
    return this.buffer.subarray(this.end);
  }
}
