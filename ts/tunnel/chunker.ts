// ChannelDataEOL / MaxChannelDataLength: in event mode, a channel's incoming bytes can be cut
// into records that end at an EOL string (kept at the end of the record, so no byte is lost)
// or at MaxChannelDataLength bytes when no EOL turns up first. Whatever is left when the
// channel ends is delivered as a last, unterminated record.

import { SshError, Code } from '../protocol/errors.js';

/** Records are held in memory until complete, so their length is capped. */
export const MAX_RECORD_LENGTH = 16 * 1024 * 1024;

export interface Record {
  data: Uint8Array;
  eolFound: boolean;
}

export class ChannelChunker {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly eol: Uint8Array,
    private readonly maxLength: number,
  ) {}

  /** Adds received bytes; returns the complete records they finish. */
  push(data: Uint8Array): Record[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : Buffer.from(data);
    const records: Record[] = [];
    let start = 0;
    for (;;) {
      const rest = this.pending.subarray(start);
      const at = rest.indexOf(this.eol);
      const end = at >= 0 ? at + this.eol.length : -1;
      if (end >= 0 && end <= this.maxLength) {
        records.push({ data: rest.subarray(0, end), eolFound: true });
        start += end;
      } else if (rest.length >= this.maxLength) {
        records.push({ data: rest.subarray(0, this.maxLength), eolFound: false });
        start += this.maxLength;
      } else {
        break;
      }
    }
    this.pending = this.pending.subarray(start);
    return records;
  }

  /** The unterminated remainder, if any (the channel is ending). */
  flush(): Record | null {
    if (this.pending.length === 0) return null;
    const data = this.pending;
    this.pending = Buffer.alloc(0);
    return { data, eolFound: false };
  }
}

interface RecordSpec {
  eol: string;
  maxLength: number;
  chunker?: ChannelChunker;
}

/** The per-channel ChannelDataEOL[id] / MaxChannelDataLength[id] settings and their chunkers. */
export class ChannelRecords {
  private readonly specs = new Map<number, RecordSpec>();

  /** Reads (value null) or sets one of the two settings for a channel id. */
  configure(setting: 'ChannelDataEOL' | 'MaxChannelDataLength', channel: number, value: string | null): string {
    const spec = this.specs.get(channel) ?? { eol: '', maxLength: 0 };
    if (value === null) return setting === 'ChannelDataEOL' ? spec.eol : String(spec.maxLength);
    if (setting === 'ChannelDataEOL') {
      spec.eol = value;
    } else {
      const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
      if (!Number.isSafeInteger(n) || n > MAX_RECORD_LENGTH) {
        throw new SshError(Code.BadArgument, `MaxChannelDataLength: "${value}" is not a length from 0 to ${MAX_RECORD_LENGTH}`, 'local');
      }
      spec.maxLength = n;
    }
    delete spec.chunker; // applies to data that arrives from now on
    this.specs.set(channel, spec);
    return '';
  }

  /** The records `data` completes; without both settings, the data itself with eolFound true. */
  push(channel: number, data: Uint8Array): Record[] {
    const spec = this.specs.get(channel);
    if (!spec || spec.eol === '' || spec.maxLength <= 0) return [{ data, eolFound: true }];
    spec.chunker ??= new ChannelChunker(new TextEncoder().encode(spec.eol), spec.maxLength);
    return spec.chunker.push(data);
  }

  /** What is left for a channel that is ending. */
  flush(channel: number): Record | null {
    return this.specs.get(channel)?.chunker?.flush() ?? null;
  }

  forget(channel: number): void {
    this.specs.delete(channel);
  }

  /** The connection ended: its channel ids, and what was waiting on them, are gone. */
  forgetAll(): void {
    this.specs.clear();
  }
}
