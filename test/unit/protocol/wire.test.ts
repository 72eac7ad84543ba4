import { describe, expect, it } from 'vitest';
import { Reader, Writer, fromHex, toHex } from '../../../ts/protocol/wire.js';
import { SshError } from '../../../ts/protocol/errors.js';

describe('mpint (RFC 4251 §5 examples)', () => {
  const cases: [string, string][] = [
    ['', '00000000'],
    ['09a378f9b2e332a7', '0000000809a378f9b2e332a7'],
    ['80', '000000020080'],
    ['0000ff', '0000000200ff'],
  ];
  it.each(cases)('%s encodes as %s and decodes back', (magnitude, wire) => {
    expect(toHex(new Writer().mpint(fromHex(magnitude)).finish())).toBe(wire);
    const back = new Reader(fromHex(wire)).mpint();
    expect(toHex(back)).toBe(magnitude.replace(/^(00)+/, ''));
  });

  it('rejects a negative mpint from the peer', () => {
    expect(() => new Reader(fromHex('00000001ff')).mpint()).toThrow(SshError);
  });
});

describe('Reader', () => {
  it('round-trips every field type', () => {
    const bytes = new Writer().byte(7).boolean(true).uint32(0xdeadbeef).uint64(0x0123456789abcdefn).string('héllo').nameList(['a', 'b-c@d']).finish();
    const r = new Reader(bytes);
    expect(r.byte()).toBe(7);
    expect(r.boolean()).toBe(true);
    expect(r.uint32()).toBe(0xdeadbeef);
    expect(r.uint64()).toBe(0x0123456789abcdefn);
    expect(r.utf8()).toBe('héllo');
    expect(r.nameList()).toEqual(['a', 'b-c@d']);
    r.done('test');
  });

  it('rejects trailing bytes', () => {
    const r = new Reader(new Uint8Array([1, 2]));
    r.byte();
    expect(() => r.done('message')).toThrow(/1 trailing bytes/);
  });

  it('rejects a string whose length runs past the end', () => {
    expect(() => new Reader(fromHex('000000ff0102')).string()).toThrow(/truncated/);
  });

  it('rejects malformed name-lists and invalid UTF-8', () => {
    expect(() => new Reader(new Writer().string('a,,b').finish()).nameList()).toThrow(/name-list/);
    expect(() => new Reader(fromHex('00000002c328')).utf8()).toThrow(/UTF-8/);
  });
});
