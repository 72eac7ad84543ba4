// CodePage: how the tunnel turns the application's text into bytes where the documented API
// takes a string for channel data (sendChannelData with a string, ChannelDataEOL). The SSH
// protocol's own strings (user names, passwords, prompts) are UTF-8 whatever CodePage says,
// as RFC 4252 §5 and RFC 4256 §3 require.
//
// Encodings come from the WHATWG Encoding Standard that TextDecoder implements in Node, Bun
// and Deno; TextEncoder there writes UTF-8 only, so a single-byte code page is encoded through
// the inverse of its decoding table (256 entries, built once). A code page the standard lacks,
// or a multi-byte one (Shift-JIS, GBK…, which only decode here), is refused by name.

import { SshError, Code } from '../protocol/errors.js';

/** Documented code page identifiers, by the WHATWG label of the same encoding. */
const WHATWG_LABELS: Record<number, string> = {
  866: 'ibm866',
  874: 'windows-874',
  1250: 'windows-1250',
  1251: 'windows-1251',
  1252: 'windows-1252',
  1253: 'windows-1253',
  1254: 'windows-1254',
  1255: 'windows-1255',
  1256: 'windows-1256',
  1257: 'windows-1257',
  1258: 'windows-1258',
  10000: 'macintosh',
  10007: 'x-mac-cyrillic',
  20866: 'koi8-r',
  21866: 'koi8-u',
  28592: 'iso-8859-2',
  28593: 'iso-8859-3',
  28594: 'iso-8859-4',
  28595: 'iso-8859-5',
  28596: 'iso-8859-6',
  28597: 'iso-8859-7',
  28598: 'iso-8859-8',
  28605: 'iso-8859-15',
  38598: 'iso-8859-8-i',
};

/** Multi-byte code pages the standard decodes but no runtime here encodes. */
const DECODE_ONLY: Record<number, string> = {
  932: 'Shift_JIS',
  936: 'GBK',
  949: 'EUC-KR',
  950: 'Big5',
  20932: 'EUC-JP',
  20936: 'GB2312',
  50220: 'ISO-2022-JP',
  50221: 'ISO-2022-JP',
  50222: 'ISO-2022-JP',
  51932: 'EUC-JP',
  51936: 'GB2312',
  51949: 'EUC-KR',
  54936: 'GB18030',
};

export type TextEncoderFn = (text: string) => Uint8Array;

const utf8 = new TextEncoder();
const encoders = new Map<number, TextEncoderFn>();

/**
 * windows-1252's bytes 0x80-0x9F (the WHATWG index; the rest is Latin-1). Node 20's TextDecoder
 * reads the label as Latin-1 and gets these wrong (0x80 comes out as U+0080, not €), so the
 * table is given here rather than read from the decoder.
 */
const WINDOWS_1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d, 0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122,
  0x161, 0x203a, 0x153, 0x9d, 0x17e, 0x178,
];

/** What each of the 256 bytes decodes to in a single-byte code page. */
function decodingTable(label: string): string {
  if (label === 'windows-1252') {
    return String.fromCharCode(...Array.from({ length: 256 }, (_, i) => (i >= 0x80 && i < 0xa0 ? WINDOWS_1252_HIGH[i - 0x80]! : i)));
  }
  return new TextDecoder(label).decode(Uint8Array.from({ length: 256 }, (_, i) => i));
}

/** An encoder for a single-byte code page from its decoding table: each character to the byte that decodes to it. */
function tableEncoder(codePage: number, label: string): TextEncoderFn {
  const decoded = decodingTable(label);
  const byteOf = new Map<number, number>();
  // Every byte of a single-byte code page decodes to one BMP character (or U+FFFD, unmapped).
  // Bytes 0x00-0x7F are ASCII in all of them (Encoding Standard §9); ICU's ibm866 disagrees for
  // three control characters, so the low half is taken as ASCII rather than from the decoder.
  for (let i = 0; i < 0x80; i++) byteOf.set(i, i);
  for (let i = 0x80; i < 256; i++) if (decoded[i] !== '\ufffd' && !byteOf.has(decoded.charCodeAt(i))) byteOf.set(decoded.charCodeAt(i), i);
  return byteEncoder(codePage, label, (c) => byteOf.get(c));
}

function byteEncoder(codePage: number, name: string, byteOf: (codeUnit: number) => number | undefined): TextEncoderFn {
  return (text) => {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const byte = byteOf(text.charCodeAt(i));
      if (byte === undefined) {
        const unit = text.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0');
        throw new SshError(Code.CodePageConversion, `character U+${unit} at position ${i} has no byte in code page ${codePage} (${name})`, 'local');
      }
      out[i] = byte;
    }
    return out;
  };
}

function buildEncoder(codePage: number): TextEncoderFn {
  switch (codePage) {
    case 65001:
      return (text) => utf8.encode(text);
    case 1200:
      return (text) => new Uint8Array(Buffer.from(text, 'utf16le'));
    case 1201:
      return (text) => new Uint8Array(Buffer.from(text, 'utf16le').swap16());
    case 28591:
      // WHATWG reads the "iso-8859-1" label as windows-1252; Latin-1 itself is code point = byte.
      return byteEncoder(codePage, 'ISO 8859-1', (c) => (c < 0x100 ? c : undefined));
    case 20127:
      return byteEncoder(codePage, 'US-ASCII', (c) => (c < 0x80 ? c : undefined));
  }
  const label = WHATWG_LABELS[codePage];
  if (label) return tableEncoder(codePage, label);
  if (DECODE_ONLY[codePage]) {
    throw new SshError(Code.BadArgument, `CodePage ${codePage} (${DECODE_ONLY[codePage]}) is a multi-byte code page that can be decoded but not encoded here; use 65001 (UTF-8)`, 'local');
  }
  throw new SshError(
    Code.BadArgument,
    `CodePage ${codePage} is not available: revtun encodes UTF-8 (65001), UTF-16 (1200, 1201), US-ASCII (20127) and the single-byte code pages of the WHATWG Encoding Standard (${Object.keys(WHATWG_LABELS).join(', ')}, 28591)`,
    'local',
  );
}

/** The encoder for a code page; 10022 naming the code page when there is none. */
export function encoderFor(codePage: number): TextEncoderFn {
  let encoder = encoders.get(codePage);
  if (!encoder) {
    encoder = buildEncoder(codePage);
    encoders.set(codePage, encoder);
  }
  return encoder;
}
