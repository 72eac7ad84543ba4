// The documented packet helpers: every field type written and read back, well-known names for
// channel requests and user authentication messages, %type lists, and bad input refused.

import { describe, expect, it } from 'vitest';
import { decodePacket, encodePacket, getSshParam, getSshParamBytes, setSshParam } from '../../../ts/tunnel/ssh-params.js';
import { Writer } from '../../../ts/protocol/wire.js';

describe('packet helpers', () => {
  it('writes each field type and reads it back with a %type list', () => {
    let p: Uint8Array = new Uint8Array(0);
    p = setSshParam(p, 'b', '98');
    p = setSshParam(p, 's', 'héllo');
    p = setSshParam(p, 'sb', 'A1B23C');
    p = setSshParam(p, 'm', '0x80');
    p = setSshParam(p, 'i', '4294967295');
    p = setSshParam(p, 'l', '18446744073709551615');
    p = setSshParam(p, 'b', '0x7f');
    p = setSshParam(p, 'f', 'True');
    expect(getSshParam(p, 'MessageType')).toBe('98');
    expect(getSshParam(p, '%s')).toBe('héllo');
    expect(getSshParam(p, '%s,sb')).toBe('A1B23C');
    expect(getSshParam(p, '%s,sb,m')).toBe('128');
    expect(Buffer.from(getSshParamBytes(p, '%s,sb,m'))).toEqual(Buffer.from([0x80]));
    expect(getSshParam(p, '%s,sb,m,i')).toBe('4294967295');
    expect(getSshParam(p, '%s,sb,m,i,l')).toBe('18446744073709551615');
    expect(getSshParam(p, '%s,sb,m,i,l,b')).toBe('127');
    expect(getSshParam(p, '%s,sb,m,i,l,b,f')).toBe('True');
    // mpint 0x80 is written with a leading zero byte, as RFC 4251 §5 requires.
    expect(encodePacket(setSshParam(new Uint8Array(0), 'm', '128'))).toBe('000000020080');
  });

  it('reads channel requests and user authentication messages by well-known name', () => {
    const exit = new Writer().byte(98).uint32(7).string('exit-status').boolean(false).uint32(3).finish();
    expect(getSshParam(exit, 'ChannelId')).toBe('7');
    expect(getSshParam(exit, 'RequestType')).toBe('exit-status');
    expect(getSshParam(exit, 'WantsReply')).toBe('False');
    expect(getSshParam(exit, 'ExitStatus')).toBe('3');
    const failure = new Writer().byte(51).string('publickey,password').boolean(true).finish();
    expect(getSshParam(failure, 'AuthMethods')).toBe('publickey,password');
    expect(getSshParam(failure, 'PartialSuccess')).toBe('True');
    const info = new Writer().byte(60).string('').string('').string('').uint32(2).string('Code: ').boolean(false).string('PIN: ').boolean(true).finish();
    expect(getSshParam(info, 'NumPrompts')).toBe('2');
    expect(getSshParam(info, 'Prompt2')).toBe('PIN: ');
    expect(getSshParam(info, 'Echo2')).toBe('True');
  });

  it('round-trips hex, and refuses what is not hex', () => {
    const bytes = new Uint8Array([0, 1, 0xab, 0xff]);
    expect(encodePacket(bytes)).toBe('0001ABFF');
    expect(Buffer.from(decodePacket('0001abff'))).toEqual(Buffer.from(bytes));
    expect(() => decodePacket('abc')).toThrow(/hex/);
    expect(() => decodePacket('zz')).toThrow(/hex/);
  });

  it('refuses unknown types, out-of-range values, missing fields and truncated payloads with 10022', () => {
    expect(() => setSshParam(new Uint8Array(0), 'x', '1')).toThrow(expect.objectContaining({ code: 10022 }));
    expect(() => setSshParam(new Uint8Array(0), 'b', '256')).toThrow(expect.objectContaining({ code: 10022 }));
    expect(() => setSshParam(new Uint8Array(0), 'i', '-1')).toThrow(expect.objectContaining({ code: 10022 }));
    expect(() => setSshParam(new Uint8Array(0), 'f', 'maybe')).toThrow(expect.objectContaining({ code: 10022 }));
    const failure = new Writer().byte(51).string('password').finish(); // PartialSuccess missing
    expect(() => getSshParam(failure, 'PartialSuccess')).toThrow(expect.objectContaining({ code: 10022 }));
    expect(() => getSshParam(failure, 'NoSuchField')).toThrow(/no field 'NoSuchField'/);
    expect(() => getSshParam(new Uint8Array(0), 'MessageType')).toThrow(expect.objectContaining({ code: 10022 }));
  });
});
