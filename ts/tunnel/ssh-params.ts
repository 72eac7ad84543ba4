// The documented packet helpers (encodePacket, decodePacket, getSshParam, getSshParamBytes,
// setSshParam), for reading and writing SSH payloads by hand in sshCustomAuth handlers (and
// channel requests). Field types are the documented ones: s (text string), sb (binary string
// as hex), m (mpint, decimal or 0x-hex), i (uint32), l (uint64), b (byte), f (boolean as
// True/False). Fields are found by well-known name for the messages listed in FIELDS, or by a
// type list: "%s,f" reads a string then a boolean after the message number and gives the last.
// Every read is bounds-checked: a short or malformed payload is an error, never a wrong value.

import { Reader, Writer, fromUtf8 } from '../protocol/wire.js';
import { MSG } from '../protocol/messages.js';
import { SshError, Code } from '../protocol/errors.js';

type FieldType = 's' | 'sb' | 'm' | 'i' | 'l' | 'b' | 'f';
const FIELD_TYPES = new Set<FieldType>(['s', 'sb', 'm', 'i', 'l', 'b', 'f']);

/** Fields after the message number, by message (and, for channel requests, by request type). */
const FIELDS: Record<number, [string, FieldType][]> = {
  [MSG.SERVICE_ACCEPT]: [['ServiceName', 's']],
  [MSG.USERAUTH_REQUEST]: [
    ['UserName', 's'],
    ['ServiceName', 's'],
    ['MethodName', 's'],
  ],
  [MSG.USERAUTH_FAILURE]: [
    ['AuthMethods', 's'],
    ['PartialSuccess', 'f'],
  ],
  [MSG.USERAUTH_BANNER]: [
    ['Message', 's'],
    ['LanguageTag', 's'],
  ],
  // 60: PK_OK in publickey, INFO_REQUEST in keyboard-interactive; the keyboard-interactive names.
  [MSG.USERAUTH_INFO_REQUEST]: [
    ['Name', 's'],
    ['Instruction', 's'],
    ['LanguageTag', 's'],
    ['NumPrompts', 'i'],
  ],
  [MSG.USERAUTH_INFO_RESPONSE]: [['NumResponses', 'i']],
  [MSG.CHANNEL_REQUEST]: [
    ['ChannelId', 'i'],
    ['RequestType', 's'],
    ['WantsReply', 'f'],
  ],
};

const CHANNEL_REQUEST_FIELDS: Record<string, [string, FieldType][]> = {
  'pty-req': [
    ['TerminalType', 's'],
    ['TerminalWidthCharacters', 'i'],
    ['TerminalHeightRows', 'i'],
    ['TerminalWidthPixels', 'i'],
    ['TerminalHeightPixels', 'i'],
    ['TerminalModes', 'sb'],
  ],
  'x11-req': [
    ['SingleConnection', 'f'],
    ['X11AuthProtocol', 's'],
    ['X11AuthCookie', 's'],
    ['X11ScreenNumber', 'i'],
  ],
  env: [
    ['VariableName', 's'],
    ['VariableValue', 's'],
  ],
  exec: [['Command', 's']],
  subsystem: [['Subsystem', 's']],
  'window-change': [
    ['TerminalWidthCharacters', 'i'],
    ['TerminalHeightRows', 'i'],
    ['TerminalWidthPixels', 'i'],
    ['TerminalHeightPixels', 'i'],
  ],
  'xon-xoff': [['ClientCanDo', 'f']],
  signal: [['SignalName', 's']],
  'exit-status': [['ExitStatus', 'i']],
  'exit-signal': [
    ['SignalName', 's'],
    ['CoreDumped', 'f'],
    ['ErrorMessage', 's'],
    ['LanguageTag', 's'],
  ],
};

function badArgument(message: string): SshError {
  return new SshError(Code.BadArgument, message, 'local');
}

/** Hex, as the documentation writes packets (upper case). */
export function encodePacket(packet: Uint8Array): string {
  return Buffer.from(packet.buffer, packet.byteOffset, packet.length).toString('hex').toUpperCase();
}

export function decodePacket(encoded: string): Uint8Array {
  const text = encoded.trim();
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw badArgument('decodePacket: not a hex-encoded packet');
  return new Uint8Array(Buffer.from(text, 'hex'));
}

function parseInteger(value: string, what: string, max: bigint): bigint {
  const text = value.trim();
  if (!/^(0x[0-9a-fA-F]+|\d+)$/.test(text)) throw badArgument(`setSshParam: '${value}' is not ${what}`);
  const n = BigInt(text);
  if (n > max) throw badArgument(`setSshParam: ${value} is too large for ${what}`);
  return n;
}

/** Appends one field to `payload` (a new array; `payload` is left as it was). */
export function setSshParam(payload: Uint8Array, fieldType: string, fieldValue: string): Uint8Array {
  const w = new Writer(payload.length + 64 + fieldValue.length * 3).raw(payload);
  switch (fieldType) {
    case 's':
      w.string(fieldValue);
      break;
    case 'sb':
      w.string(decodePacket(fieldValue));
      break;
    case 'm': {
      const n = parseInteger(fieldValue, 'a non-negative integer', 1n << 16384n);
      let hex = n.toString(16);
      if (hex.length % 2) hex = `0${hex}`;
      w.mpint(n === 0n ? new Uint8Array(0) : new Uint8Array(Buffer.from(hex, 'hex')));
      break;
    }
    case 'i':
      w.uint32(Number(parseInteger(fieldValue, 'a 32-bit integer', 0xffffffffn)));
      break;
    case 'l':
      w.uint64(parseInteger(fieldValue, 'a 64-bit integer', 0xffffffffffffffffn));
      break;
    case 'b':
      w.byte(Number(parseInteger(fieldValue, 'a byte', 255n)));
      break;
    case 'f': {
      const v = fieldValue.trim().toLowerCase();
      if (v !== 'true' && v !== 'false') throw badArgument(`setSshParam: '${fieldValue}' is not True or False`);
      w.boolean(v === 'true');
      break;
    }
    default:
      throw badArgument(`setSshParam: unknown field type '${fieldType}' (s, sb, m, i, l, b, f)`);
  }
  return w.finish().slice();
}

/** Reads one field of `type`, as raw bytes (strings, mpints) or its text form. */
function readField(r: Reader, type: FieldType): { text: string; bytes: Uint8Array } {
  switch (type) {
    case 's': {
      const bytes = r.string().slice();
      return { text: fromUtf8(bytes), bytes };
    }
    case 'sb': {
      const bytes = r.string().slice();
      return { text: encodePacket(bytes), bytes };
    }
    case 'm': {
      const bytes = r.mpint().slice();
      return { text: bytes.length ? BigInt(`0x${Buffer.from(bytes).toString('hex')}`).toString() : '0', bytes };
    }
    case 'i': {
      const n = r.uint32();
      return { text: String(n), bytes: new Uint8Array(new Writer(4).uint32(n).finish()) };
    }
    case 'l': {
      const n = r.uint64();
      return { text: n.toString(), bytes: new Uint8Array(new Writer(8).uint64(n).finish()) };
    }
    case 'b': {
      const n = r.byte();
      return { text: String(n), bytes: new Uint8Array([n]) };
    }
    case 'f': {
      const v = r.boolean();
      return { text: v ? 'True' : 'False', bytes: new Uint8Array([v ? 1 : 0]) };
    }
  }
}

/** The types to read after the message number and which of them is wanted (the last). */
function fieldPath(payload: Uint8Array, field: string): FieldType[] {
  if (field.startsWith('%')) {
    const types = field
      .slice(1)
      .split(',')
      .map((t) => t.trim());
    if (types.length === 0 || types.some((t) => !FIELD_TYPES.has(t as FieldType))) throw badArgument(`getSshParam: bad field list '${field}'`);
    return types as FieldType[];
  }
  if (field === 'MessageType') return [];
  const id = payload[0];
  if (id === undefined) throw badArgument('getSshParam: empty payload');
  let fields = FIELDS[id] ?? [];
  if (id === MSG.CHANNEL_REQUEST) {
    // The request type decides what follows the common fields.
    const r = new Reader(payload, 1);
    r.uint32();
    const requestType = r.utf8();
    fields = [...fields, ...(CHANNEL_REQUEST_FIELDS[requestType] ?? [])];
  }
  if (id === MSG.USERAUTH_INFO_REQUEST) {
    const r = new Reader(payload, 1);
    r.string();
    r.string();
    r.string();
    const count = Math.min(r.uint32(), 64);
    for (let n = 1; n <= count; n++) fields = [...fields, [`Prompt${n}`, 's'], [`Echo${n}`, 'f']];
  }
  const index = fields.findIndex(([name]) => name.toLowerCase() === field.toLowerCase());
  if (index < 0) throw badArgument(`getSshParam: message ${id} has no field '${field}' (use a %type list for other fields)`);
  return fields.slice(0, index + 1).map(([, type]) => type);
}

function readParam(payload: Uint8Array, field: string): { text: string; bytes: Uint8Array } {
  if (payload.length === 0) throw badArgument('getSshParam: empty payload');
  try {
    const path = fieldPath(payload, field);
    if (path.length === 0) return { text: String(payload[0]), bytes: payload.subarray(0, 1).slice() };
    const r = new Reader(payload, 1);
    let value: { text: string; bytes: Uint8Array } = { text: '', bytes: new Uint8Array(0) };
    for (const type of path) value = readField(r, type);
    return value;
  } catch (error) {
    if (error instanceof SshError && error.code === Code.BadArgument) throw error;
    throw badArgument(`getSshParam: the payload has no '${field}' (${(error as Error).message})`);
  }
}

/** A field's value in setSshParam's text form (MessageType: the message number). */
export function getSshParam(payload: Uint8Array, field: string): string {
  return readParam(payload, field).text;
}

/** A field's raw bytes: a string's content, an mpint's magnitude, an integer's big-endian bytes. */
export function getSshParamBytes(payload: Uint8Array, field: string): Uint8Array {
  return readParam(payload, field).bytes;
}
