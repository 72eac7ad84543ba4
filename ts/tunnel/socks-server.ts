// The server side of a SOCKS handshake, for reverse dynamic forwarding (ssh -R port): SOCKS5
// (RFC 1928) with the no-authentication method only and the CONNECT command only, for IPv4,
// domain-name and IPv6 destinations; SOCKS4 CONNECT and its 4A extension (the destination
// as a name). Sans-IO: bytes in, a decision and the reply bytes out; the caller connects
// and sends the final reply (socksReply) once it knows how the connect went.
//
// Hand-written because the npm SOCKS servers do not fit: socksv5, simple-socks and socks4
// are net.Server subclasses that own the socket, @pondwader/socks5-server takes a Duplex but
// does its own piping, and none of them speaks SOCKS4, 4A and 5 together. A channel's data
// must reach the local socket through LocalForwarder, with its window accounting, so only
// the parsing is wanted, and it is small.
//
// Validation is strict: anything that is not a well-formed request of the kinds above ends
// the handshake, with the reply the protocol has for it when there is one. Input is bounded:
// what is buffered between pushes never exceeds the largest valid message.

/** Reply codes of RFC 1928 §6 (SOCKS4 has only "rejected or failed", 91, for all of them). */
export const Socks5Reply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
} as const;
export type Socks5ReplyCode = (typeof Socks5Reply)[keyof typeof Socks5Reply];

const SOCKS4_GRANTED = 0x5a;
const SOCKS4_REJECTED = 0x5b;
const NO_AUTHENTICATION = 0x00;
const NO_ACCEPTABLE_METHODS = 0xff;
const CONNECT = 0x01;

/** The longest SOCKS4 user id or 4A host name taken, without its NUL. */
const MAX_SOCKS4_FIELD = 255;

export interface SocksRequest {
  version: 4 | 5;
  /** A dotted IPv4 address, an IPv6 address, or a host name to resolve here. */
  host: string;
  port: number;
}

export type HandshakeStep =
  /** Bytes to send now (the SOCKS5 method selection), if any; then wait for more input. */
  | { kind: 'needMore'; send: Uint8Array | null }
  /**
   * A complete CONNECT request. `send` is what must go out before the final reply; `rest`
   * is what the client sent after the request (pipelined data for the destination).
   */
  | { kind: 'connect'; send: Uint8Array | null; request: SocksRequest; rest: Uint8Array }
  /** The handshake failed: send `send` (the protocol's refusal, if it has one) and close. */
  | { kind: 'fail'; send: Uint8Array | null; reason: string };

type State = 'expectVersion' | 'expectSocks5Request' | 'done';

/** Returned by a parser that needs more bytes than it has. */
const INCOMPLETE = null;

type Parsed = { kind: 'ok'; consumed: number; request?: SocksRequest; send?: Uint8Array; socks5Greeted?: true } | { kind: 'fail'; reason: string; send?: Uint8Array };

/** The final reply to a CONNECT: success, or the failure code the connect error maps to. */
export function socksReply(version: 4 | 5, code: Socks5ReplyCode): Uint8Array {
  // The bound address and port are left as zeros, as OpenSSH does: clients do not use them
  // for CONNECT, and the remote side has no business learning local addresses.
  if (version === 4) return Uint8Array.of(0x00, code === Socks5Reply.Succeeded ? SOCKS4_GRANTED : SOCKS4_REJECTED, 0, 0, 0, 0, 0, 0);
  return Uint8Array.of(0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0);
}

/** The SOCKS5 reply code for a failed local connect (Node's error codes). */
export function replyForConnectError(code: string | undefined): Socks5ReplyCode {
  switch (code) {
    case 'ECONNREFUSED':
      return Socks5Reply.ConnectionRefused;
    case 'ENETUNREACH':
      return Socks5Reply.NetworkUnreachable;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
    case 'ENOTFOUND': // the name does not resolve
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
      return Socks5Reply.HostUnreachable;
    case 'EACCES':
    case 'EPERM':
      return Socks5Reply.NotAllowed;
    default:
      return Socks5Reply.GeneralFailure;
  }
}

/**
 * A host name as SOCKS4A and SOCKS5 carry it: letters, digits, '-', '.', '_' (and ':' for an
 * IPv6 literal some clients send as a name). Anything else (control bytes, NUL, '/', spaces)
 * is refused rather than handed to the resolver.
 */
function validHostName(bytes: Uint8Array): string | null {
  if (bytes.length === 0 || bytes.length > 255) return null;
  for (const b of bytes) {
    const ok = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x3a;
    if (!ok) return null;
  }
  return String.fromCharCode(...bytes);
}

/** An IPv6 address in its canonical text (RFC 5952: "::1"), as log lines and PermitRemoteOpen show it. */
function ipv6Text(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** SOCKS4 and 4A: VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOST NUL when DSTIP is 0.0.0.x, x > 0]. */
function parseSocks4(b: Uint8Array): Parsed | typeof INCOMPLETE {
  if (b.length < 8) return INCOMPLETE;
  const refuse = (reason: string): Parsed => ({ kind: 'fail', reason, send: socksReply(4, Socks5Reply.GeneralFailure) });
  const userEnd = b.indexOf(0, 8);
  if (userEnd < 0) return b.length - 8 > MAX_SOCKS4_FIELD ? refuse('SOCKS4 user id too long') : INCOMPLETE;
  if (userEnd - 8 > MAX_SOCKS4_FIELD) return refuse('SOCKS4 user id too long');
  if (b[1] !== CONNECT) return refuse(`SOCKS4 command ${b[1]} is not supported (only CONNECT)`);
  const port = (b[2]! << 8) | b[3]!;
  if (port === 0) return refuse('SOCKS4 request for port 0');
  const [a, c, d, e] = [b[4]!, b[5]!, b[6]!, b[7]!];
  if (a === 0 && c === 0 && d === 0) {
    if (e === 0) return refuse('SOCKS4 request for 0.0.0.0');
    const hostStart = userEnd + 1;
    const hostEnd = b.indexOf(0, hostStart);
    if (hostEnd < 0) return b.length - hostStart > MAX_SOCKS4_FIELD ? refuse('SOCKS4A host name too long') : INCOMPLETE;
    const host = validHostName(b.subarray(hostStart, hostEnd));
    if (host === null) return refuse('SOCKS4A host name is empty, too long or not a host name');
    return { kind: 'ok', consumed: hostEnd + 1, request: { version: 4, host, port } };
  }
  return { kind: 'ok', consumed: userEnd + 1, request: { version: 4, host: `${a}.${c}.${d}.${e}`, port } };
}

/** SOCKS5 greeting: VER NMETHODS METHODS; only "no authentication" is offered back. */
function parseSocks5Greeting(b: Uint8Array): Parsed | typeof INCOMPLETE {
  if (b.length < 2) return INCOMPLETE;
  const count = b[1]!;
  if (count === 0) return { kind: 'fail', reason: 'SOCKS5 greeting offers no methods', send: Uint8Array.of(0x05, NO_ACCEPTABLE_METHODS) };
  if (b.length < 2 + count) return INCOMPLETE;
  if (!b.subarray(2, 2 + count).includes(NO_AUTHENTICATION)) {
    return { kind: 'fail', reason: 'the SOCKS5 client does not offer "no authentication"', send: Uint8Array.of(0x05, NO_ACCEPTABLE_METHODS) };
  }
  return { kind: 'ok', consumed: 2 + count, send: Uint8Array.of(0x05, NO_AUTHENTICATION), socks5Greeted: true };
}

/** SOCKS5 request: VER CMD RSV ATYP DST.ADDR DST.PORT(2). */
function parseSocks5Request(b: Uint8Array): Parsed | typeof INCOMPLETE {
  if (b.length < 5) return INCOMPLETE;
  const refuse = (reason: string, code: Socks5ReplyCode): Parsed => ({ kind: 'fail', reason, send: socksReply(5, code) });
  if (b[0] !== 0x05) return { kind: 'fail', reason: `SOCKS5 request with version ${b[0]}` };
  if (b[2] !== 0x00) return refuse('SOCKS5 request with a non-zero reserved byte', Socks5Reply.GeneralFailure);
  const type = b[3]!;
  const addressLength = type === 0x01 ? 4 : type === 0x04 ? 16 : type === 0x03 ? 1 + b[4]! : -1;
  if (addressLength < 0) return refuse(`SOCKS5 address type ${type} is not supported`, Socks5Reply.AddressTypeNotSupported);
  // The command is checked once the whole request is in, so the reply cannot cross its tail.
  const end = 4 + addressLength + 2;
  if (b.length < end) return INCOMPLETE;
  if (b[1] !== CONNECT) return refuse(`SOCKS5 command ${b[1]} is not supported (only CONNECT)`, Socks5Reply.CommandNotSupported);
  const address = b.subarray(4, 4 + addressLength);
  let host: string | null;
  if (type === 0x01) host = address.join('.');
  else if (type === 0x04) host = ipv6Text(address);
  else host = validHostName(address.subarray(1));
  if (host === null) return refuse('SOCKS5 domain name is empty or not a host name', Socks5Reply.GeneralFailure);
  const port = (b[end - 2]! << 8) | b[end - 1]!;
  if (port === 0) return refuse('SOCKS5 request for port 0', Socks5Reply.GeneralFailure);
  return { kind: 'ok', consumed: end, request: { version: 5, host, port } };
}

function concat(parts: Uint8Array[]): Uint8Array | null {
  if (parts.length === 0) return null;
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One channel's SOCKS handshake. Feed it the channel's data with push() until it decides. */
export class SocksHandshake {
  private state: State = 'expectVersion';
  /** Bytes of an incomplete message, copied (never more than the largest valid message). */
  private pending: Uint8Array = new Uint8Array(0);

  push(data: Uint8Array): HandshakeStep {
    if (this.state === 'done') return { kind: 'fail', send: null, reason: 'SOCKS handshake already finished' };
    let input = data;
    if (this.pending.length > 0) {
      input = new Uint8Array(this.pending.length + data.length);
      input.set(this.pending);
      input.set(data, this.pending.length);
    }
    const send: Uint8Array[] = [];
    for (;;) {
      const parsed = this.parseNext(input);
      if (parsed === INCOMPLETE) {
        // Each parser refuses a message longer than the protocol allows before it gets
        // here, so what is kept is a few hundred bytes at most.
        this.pending = input.slice();
        return { kind: 'needMore', send: concat(send) };
      }
      if (parsed.send) send.push(parsed.send);
      if (parsed.kind === 'fail') {
        this.finish();
        return { kind: 'fail', send: concat(send), reason: parsed.reason };
      }
      input = input.subarray(parsed.consumed);
      if (parsed.request) {
        this.finish();
        return { kind: 'connect', send: concat(send), request: parsed.request, rest: input };
      }
      if (parsed.socks5Greeted) this.state = 'expectSocks5Request';
    }
  }

  private parseNext(input: Uint8Array): Parsed | typeof INCOMPLETE {
    if (this.state === 'expectSocks5Request') return parseSocks5Request(input);
    if (input.length === 0) return INCOMPLETE;
    if (input[0] === 0x05) return parseSocks5Greeting(input);
    if (input[0] === 0x04) return parseSocks4(input);
    return { kind: 'fail', reason: `not a SOCKS4 or SOCKS5 request (first byte 0x${input[0]!.toString(16).padStart(2, '0')})` };
  }

  private finish(): void {
    this.state = 'done';
    this.pending = new Uint8Array(0);
  }
}
