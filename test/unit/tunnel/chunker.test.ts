import { describe, expect, it } from 'vitest';
import { ChannelChunker, ChannelRecords, type RecordCut } from '../../../ts/tunnel/chunker.js';

const text = (records: Iterable<{ data: Uint8Array; eolFound: boolean }>) => [...records].map((r) => `${Buffer.from(r.data).toString()}|${r.eolFound}`);

function eolChunker(eol: string, maxLength: number): ChannelChunker {
  const cut: RecordCut = { eol: Buffer.from(eol), maxLength };
  return new ChannelChunker(() => cut);
}

describe('ChannelChunker', () => {
  it('cuts at the EOL (kept), at the maximum length, and across pushes', () => {
    const c = eolChunker('\r\n', 8);
    expect(text(c.push(Buffer.from('ab\r\ncd')))).toEqual(['ab\r\n|true']);
    expect(text(c.push(Buffer.from('\r')))).toEqual([]);
    expect(text(c.push(Buffer.from('\n0123456789')))).toEqual(['cd\r\n|true', '01234567|false']);
    expect(c.flush()).toMatchObject({ eolFound: false });
    expect(c.flush()).toBeNull();
  });

  it('an EOL that would end past the maximum length does not count', () => {
    const c = eolChunker('\n', 4);
    expect(text(c.push(Buffer.from('abcd\n')))).toEqual(['abcd|false', '\n|true']);
  });

  it('loses no byte whatever the split', () => {
    const input = Buffer.from('alpha\nbeta\ngamma-delta-epsilon\nz');
    for (let split = 0; split <= input.length; split++) {
      const c = eolChunker('\n', 6);
      const records = [...c.push(input.subarray(0, split)), ...c.push(input.subarray(split))];
      const rest = c.flush();
      const joined = Buffer.concat([...records.map((r) => r.data), ...(rest ? [rest.data] : [])]);
      expect(joined.equals(input)).toBe(true);
    }
  });

  it('asks for the cut before each record, so a change made between records applies to the next', () => {
    let length = 2;
    const c = new ChannelChunker(() => ({ eol: null, maxLength: length }));
    const seen: string[] = [];
    for (const record of c.push(Buffer.from('aabbbbcc'))) {
      seen.push(Buffer.from(record.data).toString());
      length = 4; // as a handler setting RecordLength inside the event would
    }
    expect(seen).toEqual(['aa', 'bbbb']);
    expect(c.holding).toBe(true);
    length = 0; // records off: what waits goes out with the next data, as it is
    expect(text(c.push(Buffer.from('d')))).toEqual(['ccd|true']);
  });
});

describe('ChannelRecords', () => {
  const utf8 = (text: string) => new TextEncoder().encode(text);
  const defaults = (recordLength = 0, maxLineLength = 2048) => ({ recordLength: () => recordLength, maxLineLength: () => maxLineLength, encoder: () => utf8 });

  it('passes data through untouched without any record setting, and validates the length', () => {
    const r = new ChannelRecords(defaults());
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\nb|true']);
    r.configure('MaxChannelDataLength', 1, '100');
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\nb|true']); // a length without an EOL cuts nothing
    r.configure('ChannelDataEOL', 1, '\n');
    expect(r.configure('MaxChannelDataLength', 1, null)).toBe('100');
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\n|true']);
    expect(() => r.configure('MaxChannelDataLength', 1, 'lots')).toThrow(expect.objectContaining({ code: 10022 }));
    r.forget(1);
    expect(r.configure('ChannelDataEOL', 1, null)).toBe('');
  });

  it('bounds a ChannelDataEOL record by MaxLineLength when MaxChannelDataLength is 0', () => {
    const r = new ChannelRecords(defaults(0, 256));
    r.configure('ChannelDataEOL', 3, '\n');
    const records = [...r.push(3, Buffer.alloc(600, 'x'))];
    expect(records.map((x) => [x.data.length, x.eolFound])).toEqual([
      [256, false],
      [256, false],
    ]);
    expect(r.flush(3)?.data.length).toBe(88);
  });

  it('cuts every channel without an EOL into RecordLength records; a channel EOL wins', () => {
    const r = new ChannelRecords(defaults(3));
    r.configure('ChannelDataEOL', 2, ';');
    expect(text(r.push(1, Buffer.from('abcdefg')))).toEqual(['abc|true', 'def|true']);
    expect(text(r.push(2, Buffer.from('ab;cdefg')))).toEqual(['ab;|true']);
    expect(r.flush(1)?.data).toEqual(Buffer.from('g'));
  });

  it('an EOL the code page cannot write is refused and the old one stays (regression: it read back as set)', () => {
    const ascii = (text: string) => {
      if (/[^\x00-\x7f]/.test(text)) throw Object.assign(new Error('no byte'), { code: 434 });
      return new TextEncoder().encode(text);
    };
    const r = new ChannelRecords({ recordLength: () => 0, maxLineLength: () => 2048, encoder: () => ascii });
    r.configure('ChannelDataEOL', 1, '\n');
    expect(() => r.configure('ChannelDataEOL', 1, '§')).toThrow(expect.objectContaining({ code: 434 }));
    expect(r.configure('ChannelDataEOL', 1, null)).toBe('\n');
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\n|true']);
  });

  it('keeps the bytes a channel holds when its settings change (regression: they were dropped)', () => {
    const r = new ChannelRecords(defaults());
    r.configure('ChannelDataEOL', 1, '\n');
    r.configure('MaxChannelDataLength', 1, '100');
    expect(text(r.push(1, Buffer.from('held')))).toEqual([]);
    r.configure('ChannelDataEOL', 1, ';');
    expect(text(r.push(1, Buffer.from(' on;')))).toEqual(['held on;|true']);
  });
});
