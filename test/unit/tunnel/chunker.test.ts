import { describe, expect, it } from 'vitest';
import { ChannelChunker, ChannelRecords } from '../../../ts/tunnel/chunker.js';

const text = (records: { data: Uint8Array; eolFound: boolean }[]) => records.map((r) => `${Buffer.from(r.data).toString()}|${r.eolFound}`);

describe('ChannelChunker', () => {
  it('cuts at the EOL (kept), at the maximum length, and across pushes', () => {
    const c = new ChannelChunker(Buffer.from('\r\n'), 8);
    expect(text(c.push(Buffer.from('ab\r\ncd')))).toEqual(['ab\r\n|true']);
    expect(text(c.push(Buffer.from('\r')))).toEqual([]);
    expect(text(c.push(Buffer.from('\n0123456789')))).toEqual(['cd\r\n|true', '01234567|false']);
    expect(c.flush()).toMatchObject({ eolFound: false });
    expect(c.flush()).toBeNull();
  });

  it('an EOL that would end past the maximum length does not count', () => {
    const c = new ChannelChunker(Buffer.from('\n'), 4);
    expect(text(c.push(Buffer.from('abcd\n')))).toEqual(['abcd|false', '\n|true']);
  });

  it('loses no byte whatever the split', () => {
    const input = Buffer.from('alpha\nbeta\ngamma-delta-epsilon\nz');
    for (let split = 0; split <= input.length; split++) {
      const c = new ChannelChunker(Buffer.from('\n'), 6);
      const records = [...c.push(input.subarray(0, split)), ...c.push(input.subarray(split))];
      const rest = c.flush();
      const joined = Buffer.concat([...records.map((r) => r.data), ...(rest ? [rest.data] : [])]);
      expect(joined.equals(input)).toBe(true);
    }
  });
});

describe('ChannelRecords', () => {
  it('passes data through untouched until both settings are set, and validates the length', () => {
    const r = new ChannelRecords();
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\nb|true']);
    r.configure('ChannelDataEOL', 1, '\n');
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\nb|true']);
    r.configure('MaxChannelDataLength', 1, '100');
    expect(r.configure('MaxChannelDataLength', 1, null)).toBe('100');
    expect(text(r.push(1, Buffer.from('a\nb')))).toEqual(['a\n|true']);
    expect(() => r.configure('MaxChannelDataLength', 1, 'lots')).toThrow(expect.objectContaining({ code: 10022 }));
    r.forget(1);
    expect(r.configure('ChannelDataEOL', 1, null)).toBe('');
  });
});
