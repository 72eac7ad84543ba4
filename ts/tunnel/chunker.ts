// Event-mode records: a channel's incoming bytes can be cut into records that end at its
// ChannelDataEOL string (kept at the end of the record, so no byte is lost) or at
// MaxChannelDataLength bytes (MaxLineLength when that is 0) when no EOL turns up first; or,
// for channels without an EOL, into fixed RecordLength records. Whatever is left when the
// channel ends is delivered as a last, unterminated record.

import { SshError, Code } from '../protocol/errors.js';

/** Records are held in memory until complete, so their length is capped. */
export const MAX_RECORD_LENGTH = 16 * 1024 * 1024;

export interface Record {
  data: Uint8Array;
  eolFound: boolean;
}

/** How the next record is cut: at `eol` (when set) or at `maxLength` bytes; 0 = records are off. */
export interface RecordCut {
  eol: Uint8Array | null;
  maxLength: number;
}

const EMPTY = Buffer.alloc(0);

export class ChannelChunker {
  private pending: Buffer = EMPTY;

  /** `cut` is asked before each record, so a setting changed by a handler applies to the next one. */
  constructor(private readonly cut: () => RecordCut) {}

  /** True while bytes wait for the rest of their record. */
  get holding(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Adds received bytes and yields the records they complete, one at a time: the state is
   * kept between records, so a handler that changes RecordLength (as documented, even inside
   * the event) cuts the next record by the new length, and nothing is lost if it throws.
   */
  *push(data: Uint8Array): Generator<Record, void, undefined> {
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : Buffer.from(data);
    for (let record = this.next(); record; record = this.next()) yield record;
  }

  private next(): Record | null {
    const { eol, maxLength } = this.cut();
    const rest = this.pending;
    if (rest.length === 0) return null;
    if (maxLength <= 0) {
      // Records were turned off while bytes waited: they go out as they are, as unchunked data does.
      this.pending = EMPTY;
      return { data: rest, eolFound: true };
    }
    if (eol) {
      const at = rest.indexOf(eol);
      const end = at >= 0 ? at + eol.length : -1;
      if (end >= 0 && end <= maxLength) {
        this.pending = rest.subarray(end);
        return { data: rest.subarray(0, end), eolFound: true };
      }
    }
    if (rest.length < maxLength) return null;
    this.pending = rest.subarray(maxLength);
    // A fixed-length record (no EOL) reports True, as data delivered without an EOL setting does.
    return { data: rest.subarray(0, maxLength), eolFound: eol === null };
  }

  /** The unterminated remainder, if any (the channel is ending). */
  flush(): Record | null {
    if (this.pending.length === 0) return null;
    const data = this.pending;
    this.pending = EMPTY;
    return { data, eolFound: false };
  }
}

interface RecordSpec {
  eol: string;
  /** The EOL in bytes, and the encoder (CodePage) that made them. */
  eolBytes: Uint8Array | null;
  encodedBy: ((text: string) => Uint8Array) | null;
  maxLength: number;
}

/** The tunnel-wide settings records fall back on (RecordLength, MaxLineLength). */
export interface RecordDefaults {
  /** RecordLength: fixed-length records for every channel without a ChannelDataEOL of its own; 0 = off. */
  recordLength(): number;
  /** MaxLineLength: the longest record a ChannelDataEOL channel holds when MaxChannelDataLength is 0. */
  maxLineLength(): number;
  /** CodePage's encoder, which turns a ChannelDataEOL string into the bytes it matches. */
  encoder(): (text: string) => Uint8Array;
}

/**
 * The per-channel ChannelDataEOL[id] / MaxChannelDataLength[id] settings, the tunnel-wide
 * RecordLength and MaxLineLength, and the chunker of each channel that needs one. A channel's
 * own EOL wins over RecordLength; an EOL with MaxChannelDataLength 0 is bounded by MaxLineLength.
 */
export class ChannelRecords {
  private readonly specs = new Map<number, RecordSpec>();
  private readonly chunkers = new Map<number, ChannelChunker>();

  constructor(private readonly defaults: RecordDefaults) {}

  /** Reads (value null) or sets one of the two settings for a channel id. */
  configure(setting: 'ChannelDataEOL' | 'MaxChannelDataLength', channel: number, value: string | null): string {
    const spec: RecordSpec = this.specs.get(channel) ?? { eol: '', eolBytes: null, encodedBy: null, maxLength: 0 };
    if (value === null) return setting === 'ChannelDataEOL' ? spec.eol : String(spec.maxLength);
    if (setting === 'ChannelDataEOL') {
      const encoder = this.defaults.encoder();
      // Encoded first: an EOL CodePage cannot write (434) leaves the setting as it was.
      spec.eolBytes = value === '' ? null : encoder(value);
      spec.eol = value;
      spec.encodedBy = encoder;
    } else {
      const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
      if (!Number.isSafeInteger(n) || n > MAX_RECORD_LENGTH) {
        throw new SshError(Code.BadArgument, `MaxChannelDataLength: "${value}" is not a length from 0 to ${MAX_RECORD_LENGTH}`, 'local');
      }
      spec.maxLength = n;
    }
    // Bytes already held stay held: the next record is cut by the new settings.
    this.specs.set(channel, spec);
    return '';
  }

  private cutFor(channel: number): RecordCut {
    const spec = this.specs.get(channel);
    if (spec?.eolBytes && spec.encodedBy !== this.defaults.encoder()) {
      // CodePage changed since the EOL was set: match the bytes it now stands for.
      spec.encodedBy = this.defaults.encoder();
      try {
        spec.eolBytes = spec.encodedBy(spec.eol);
      } catch {
        // The new code page has no bytes for the EOL: it keeps its old ones (this runs on the data path, and must not throw).
      }
    }
    if (spec?.eolBytes) return { eol: spec.eolBytes, maxLength: spec.maxLength > 0 ? spec.maxLength : this.defaults.maxLineLength() };
    return { eol: null, maxLength: this.defaults.recordLength() };
  }

  /** The records `data` completes; without any record setting, the data itself with eolFound true. */
  push(channel: number, data: Uint8Array): Iterable<Record> {
    let chunker = this.chunkers.get(channel);
    if (!chunker) {
      if (!this.specs.get(channel)?.eolBytes && this.defaults.recordLength() <= 0) return [{ data, eolFound: true }];
      chunker = new ChannelChunker(() => this.cutFor(channel));
      this.chunkers.set(channel, chunker);
    }
    return chunker.push(data);
  }

  /** What is left for a channel that is ending. */
  flush(channel: number): Record | null {
    return this.chunkers.get(channel)?.flush() ?? null;
  }

  forget(channel: number): void {
    this.specs.delete(channel);
    this.chunkers.delete(channel);
  }

  /** The connection ended, or reset(): its channel ids, their settings and what waited on them are gone. */
  forgetAll(): void {
    this.specs.clear();
    this.chunkers.clear();
  }
}
