import { describe, expect, it } from 'vitest';
import { replyForConnectError, SocksHandshake, socksReply, Socks5Reply, type HandshakeStep } from '../../../ts/tunnel/socks-server.js';

const bytes = (...parts: (number[] | string | Uint8Array)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

const socks5Greeting = bytes([0x05, 0x01, 0x00]);
const socks5Domain = (name: string, port: number) => bytes([0x05, 0x01, 0x00, 0x03, name.length], name, [port >> 8, port & 0xff]);
const socks4a = (name: string, port: number, user = 'me') => bytes([0x04, 0x01, port >> 8, port & 0xff, 0, 0, 0, 1], user, [0], name, [0]);

/** Feeds `input` one byte at a time; returns every step's output joined and the last step. */
function feedBytewise(input: Uint8Array): { sent: Buffer; last: HandshakeStep; steps: number } {
  const handshake = new SocksHandshake();
  const sent: Buffer[] = [];
  let last: HandshakeStep = { kind: 'needMore', send: null };
  let steps = 0;
  for (let i = 0; i < input.length; i++) {
    last = handshake.push(input.subarray(i, i + 1));
    steps++;
    if (last.send) sent.push(Buffer.from(last.send));
    if (last.kind !== 'needMore') break;
  }
  return { sent: Buffer.concat(sent), last, steps };
}

describe('SOCKS server handshake', () => {
  it.each([
    ['SOCKS5, IPv4', bytes(socks5Greeting, [0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x1f, 0x90]), { version: 5, host: '127.0.0.1', port: 8080 }],
    ['SOCKS5, domain', bytes(socks5Greeting, socks5Domain('example.org', 443)), { version: 5, host: 'example.org', port: 443 }],
    ['SOCKS5, IPv6', bytes(socks5Greeting, [0x05, 0x01, 0x00, 0x04, ...new Array<number>(15).fill(0), 1, 0, 80]), { version: 5, host: '::1', port: 80 }],
    ['SOCKS4', bytes([0x04, 0x01, 0x00, 0x50, 10, 1, 2, 3], 'user', [0]), { version: 4, host: '10.1.2.3', port: 80 }],
    ['SOCKS4A', socks4a('localhost', 3000), { version: 4, host: 'localhost', port: 3000 }],
  ])('%s, fed a byte at a time, decides on the last byte of the request', (_name, input, request) => {
    const { last, sent, steps } = feedBytewise(input);
    expect(last).toMatchObject({ kind: 'connect', request });
    expect(steps).toBe(input.length);
    if (request.version === 5)
      expect([...sent]).toEqual([0x05, 0x00]); // the method selection, nothing more
    else expect(sent.length).toBe(0);
  });

  it('hands back what the client pipelined after the request, in one push', () => {
    const step = new SocksHandshake().push(bytes(socks5Greeting, socks5Domain('localhost', 80), 'GET / HTTP/1.0\r\n\r\n'));
    expect(step.kind).toBe('connect');
    if (step.kind !== 'connect') return;
    expect([...step.send!]).toEqual([0x05, 0x00]);
    expect(Buffer.from(step.rest).toString()).toBe('GET / HTTP/1.0\r\n\r\n');
    const four = new SocksHandshake().push(bytes(socks4a('h', 1), 'tail'));
    expect(four.kind === 'connect' && Buffer.from(four.rest).toString()).toBe('tail');
  });

  it('keeps pipelined bytes that arrive with the last byte of a split request', () => {
    const handshake = new SocksHandshake();
    const request = bytes(socks5Greeting, socks5Domain('localhost', 80));
    expect(handshake.push(request.subarray(0, 7)).kind).toBe('needMore');
    const step = handshake.push(bytes(request.subarray(7), 'data'));
    expect(step.kind === 'connect' && Buffer.from(step.rest).toString()).toBe('data');
  });

  it.each([
    ['a first byte that is no SOCKS version (an HTTP request)', bytes('GET / HTTP/1.1\r\n'), null, /first byte 0x47/],
    ['SOCKS5 without the no-authentication method', bytes([0x05, 0x01, 0x02]), [0x05, 0xff], /no authentication/],
    ['SOCKS5 with no methods', bytes([0x05, 0x00]), [0x05, 0xff], /no methods/],
    ['SOCKS5 BIND', bytes(socks5Greeting, [0x05, 0x02, 0x00, 0x01, 127, 0, 0, 1, 0, 80]), [0x05, 0x00, ...socksReply(5, Socks5Reply.CommandNotSupported)], /command 2/],
    ['SOCKS5 UDP ASSOCIATE', bytes(socks5Greeting, [0x05, 0x03, 0x00, 0x01, 127, 0, 0, 1, 0, 80]), [0x05, 0x00, ...socksReply(5, Socks5Reply.CommandNotSupported)], /command 3/],
    ['SOCKS5 address type 2', bytes(socks5Greeting, [0x05, 0x01, 0x00, 0x02, 1, 2, 3, 4, 0, 80]), [0x05, 0x00, ...socksReply(5, Socks5Reply.AddressTypeNotSupported)], /address type 2/],
    ['SOCKS5 request with version 4', bytes(socks5Greeting, [0x04, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0, 80]), [0x05, 0x00], /version 4/],
    ['SOCKS5 reserved byte set', bytes(socks5Greeting, [0x05, 0x01, 0x01, 0x01, 127, 0, 0, 1, 0, 80]), [0x05, 0x00, ...socksReply(5, Socks5Reply.GeneralFailure)], /reserved/],
    ['SOCKS5 empty domain', bytes(socks5Greeting, [0x05, 0x01, 0x00, 0x03, 0, 0, 80]), [0x05, 0x00, ...socksReply(5, Socks5Reply.GeneralFailure)], /domain/],
    ['SOCKS5 domain with a NUL and a slash', bytes(socks5Greeting, socks5Domain('a\0/b', 80)), [0x05, 0x00, ...socksReply(5, Socks5Reply.GeneralFailure)], /domain/],
    ['SOCKS5 port 0', bytes(socks5Greeting, socks5Domain('localhost', 0)), [0x05, 0x00, ...socksReply(5, Socks5Reply.GeneralFailure)], /port 0/],
    ['SOCKS4 BIND', bytes([0x04, 0x02, 0x00, 0x50, 10, 1, 2, 3, 0]), [...socksReply(4, Socks5Reply.GeneralFailure)], /command 2/],
    ['SOCKS4 to 0.0.0.0', bytes([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 0, 0]), [...socksReply(4, Socks5Reply.GeneralFailure)], /0\.0\.0\.0/],
    ['SOCKS4A host with a space', socks4a('evil host', 80), [...socksReply(4, Socks5Reply.GeneralFailure)], /host name/],
  ])('refuses %s, with the reply the protocol has for it', (_name, input, reply, reason) => {
    const { last, sent } = feedBytewise(input);
    expect(last.kind).toBe('fail');
    expect(last.kind === 'fail' && last.reason).toMatch(reason);
    expect(reply === null ? sent.length : [...sent]).toEqual(reply === null ? 0 : reply);
  });

  it('refuses oversized fields without buffering more than a valid message could hold', () => {
    // A SOCKS4 user id that never ends: refused once it passes 255 bytes, a byte at a time.
    const endless = bytes([0x04, 0x01, 0x00, 0x50, 10, 1, 2, 3], 'u'.repeat(10_000));
    const { last, steps } = feedBytewise(endless);
    expect(last.kind === 'fail' && last.reason).toMatch(/user id too long/);
    expect(steps).toBe(8 + 256);
    // The same in one push of 1 MiB, and a SOCKS4A host name that never ends.
    expect(new SocksHandshake().push(bytes([0x04, 0x01, 0x00, 0x50, 10, 1, 2, 3], 'u'.repeat(1 << 20))).kind).toBe('fail');
    const longHost = feedBytewise(bytes([0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1], 'me', [0], 'h'.repeat(5000)));
    expect(longHost.last.kind === 'fail' && longHost.last.reason).toMatch(/host name too long/);
  });

  it('a truncated request stays undecided (the channel decides what EOF means)', () => {
    const handshake = new SocksHandshake();
    expect(handshake.push(bytes(socks5Greeting, [0x05, 0x01, 0x00, 0x03, 20], 'short'))).toMatchObject({ kind: 'needMore' });
  });

  it('maps connect errors to SOCKS5 reply codes, and SOCKS4 to granted or rejected', () => {
    expect(replyForConnectError('ECONNREFUSED')).toBe(Socks5Reply.ConnectionRefused);
    expect(replyForConnectError('ENOTFOUND')).toBe(Socks5Reply.HostUnreachable);
    expect(replyForConnectError('ENETUNREACH')).toBe(Socks5Reply.NetworkUnreachable);
    expect(replyForConnectError(undefined)).toBe(Socks5Reply.GeneralFailure);
    expect([...socksReply(5, Socks5Reply.Succeeded)]).toEqual([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    expect([...socksReply(4, Socks5Reply.Succeeded)]).toEqual([0, 0x5a, 0, 0, 0, 0, 0, 0]);
    expect([...socksReply(4, Socks5Reply.ConnectionRefused)]).toEqual([0, 0x5b, 0, 0, 0, 0, 0, 0]);
  });
});
