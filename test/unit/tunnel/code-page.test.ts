// CodePage: the bytes sendChannelData(string) and ChannelDataEOL stand for. Every single-byte
// code page round-trips each byte TextDecoder maps; characters a page lacks, multi-byte pages
// and unknown identifiers are refused by name with 10022.

import { describe, expect, it } from 'vitest';
import { encoderFor } from '../../../ts/tunnel/code-page.js';

// windows-1252 is left out: Node 20's TextDecoder decodes it as Latin-1 (0x80 as U+0080, not
// €), so it is checked against the Encoding Standard's own values below instead.
const LABELS: [number, string][] = [
  [866, 'ibm866'],
  [874, 'windows-874'],
  [1250, 'windows-1250'],
  [1251, 'windows-1251'],
  [1253, 'windows-1253'],
  [1254, 'windows-1254'],
  [1255, 'windows-1255'],
  [1256, 'windows-1256'],
  [1257, 'windows-1257'],
  [1258, 'windows-1258'],
  [10000, 'macintosh'],
  [10007, 'x-mac-cyrillic'],
  [20866, 'koi8-r'],
  [21866, 'koi8-u'],
  [28592, 'iso-8859-2'],
  [28595, 'iso-8859-5'],
  [28597, 'iso-8859-7'],
  [28605, 'iso-8859-15'],
];

describe('encoderFor', () => {
  it('encodes UTF-8 by default and UTF-16 both ways', () => {
    expect(Buffer.from(encoderFor(65001)('€'))).toEqual(Buffer.from([0xe2, 0x82, 0xac]));
    expect(Buffer.from(encoderFor(1200)('A€'))).toEqual(Buffer.from([0x41, 0x00, 0xac, 0x20]));
    expect(Buffer.from(encoderFor(1201)('A€'))).toEqual(Buffer.from([0x00, 0x41, 0x20, 0xac]));
  });

  it.each(LABELS)('code page %i (%s) gives back every byte its decoder maps', (codePage, label) => {
    const encode = encoderFor(codePage);
    const decoder = new TextDecoder(label);
    for (let byte = 0x80; byte < 256; byte++) {
      const text = decoder.decode(Uint8Array.of(byte));
      if (text === '\ufffd') continue;
      const back = encode(text);
      expect(new TextDecoder(label).decode(back), `byte ${byte}`).toBe(text);
    }
  });

  it("writes ASCII as itself in every single-byte page (ICU decodes three of ibm866's control bytes otherwise)", () => {
    const ascii = String.fromCharCode(...Array.from({ length: 128 }, (_, i) => i));
    for (const [codePage] of [...LABELS, [1252, 'windows-1252'] as const]) {
      expect(Buffer.from(encoderFor(codePage)(ascii)).equals(Buffer.from(ascii, 'latin1')), String(codePage)).toBe(true);
    }
  });

  it('writes the familiar bytes: € in windows-1252, Ж in KOI8-R, é in Latin-1', () => {
    expect(Buffer.from(encoderFor(1252)('€uro'))).toEqual(Buffer.from([0x80, 0x75, 0x72, 0x6f]));
    expect(Buffer.from(encoderFor(1252)('ŠŸ\u0081é'))).toEqual(Buffer.from([0x8a, 0x9f, 0x81, 0xe9]));
    expect(Buffer.from(encoderFor(20866)('Ж'))).toEqual(Buffer.from([0xf6]));
    expect(Buffer.from(encoderFor(28591)('é'))).toEqual(Buffer.from([0xe9]));
    expect(Buffer.from(encoderFor(20127)('ok'))).toEqual(Buffer.from('ok'));
  });

  it('refuses a character the page lacks, a multi-byte page and an unknown one, naming each', () => {
    expect(() => encoderFor(20127)('é')).toThrow(expect.objectContaining({ code: 434, message: expect.stringMatching(/U\+00E9 at position 0 has no byte in code page 20127/) }));
    expect(() => encoderFor(1252)('Ж')).toThrow(expect.objectContaining({ code: 434 }));
    expect(() => encoderFor(932)).toThrow(expect.objectContaining({ code: 10022, message: expect.stringMatching(/932 \(Shift_JIS\) is a multi-byte code page/) }));
    expect(() => encoderFor(37)).toThrow(expect.objectContaining({ code: 10022, message: expect.stringMatching(/CodePage 37 is not available/) }));
  });
});
