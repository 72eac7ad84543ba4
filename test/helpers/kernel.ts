// What the kernel knows about loopback TCP sockets that no Node event reports: each socket's
// state (TIME_WAIT, FIN_WAIT2, ...) and its send and receive queues, read from /proc/net/tcp,
// and a bounded poll for tests that must wait for such a state. The fault tests use it to
// check, through real sockets, that bytes sit unread in a stalled relay and that no FIN or
// RST was sent where none should be.

import { readFileSync } from 'node:fs';

/** TCP states as /proc/net/tcp numbers them (include/net/tcp_states.h). */
const STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'] as const;

export type TcpState = Exclude<(typeof STATES)[number], ''> | `UNKNOWN(${number})`;

/** One row of /proc/net/tcp (IPv4; the harness only uses 127.0.0.1). */
export interface TcpSocketEntry {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: TcpState;
  /** Bytes written but not yet acknowledged by the peer. */
  sendQueue: number;
  /** Bytes received but not yet read by the process that owns the socket. */
  receiveQueue: number;
}

/** "0100007F:1F90" → ["127.0.0.1", 8080]: the address is printed as a host-order u32 (little-endian here). */
function parseEndpoint(text: string): [string, number] {
  const [addressHex, portHex] = text.split(':') as [string, string];
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(Number.parseInt(addressHex, 16));
  return [[...bytes].join('.'), Number.parseInt(portHex, 16)];
}

/** Every IPv4 TCP socket of this network namespace, including TIME_WAIT ones no process owns. */
export function tcpSockets(): TcpSocketEntry[] {
  const lines = readFileSync('/proc/net/tcp', 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const fields = line.trim().split(/\s+/);
    const [localAddress, localPort] = parseEndpoint(fields[1]!);
    const [remoteAddress, remotePort] = parseEndpoint(fields[2]!);
    const stateNumber = Number.parseInt(fields[3]!, 16);
    const [sendHex, receiveHex] = fields[4]!.split(':') as [string, string];
    return {
      localAddress,
      localPort,
      remoteAddress,
      remotePort,
      state: STATES[stateNumber] || `UNKNOWN(${stateNumber})`,
      sendQueue: Number.parseInt(sendHex, 16),
      receiveQueue: Number.parseInt(receiveHex, 16),
    } as TcpSocketEntry;
  });
}

/** The socket whose local and remote ports are these (on loopback the pair is unique). */
export function tcpSocket(localPort: number, remotePort: number): TcpSocketEntry | undefined {
  return tcpSockets().find((s) => s.localPort === localPort && s.remotePort === remotePort);
}

/**
 * Calls `check` until it returns something other than undefined/false, pausing `pauseMs`
 * between tries, and fails after `tries` of them. Only for kernel states that no event
 * announces (a TIME_WAIT entry appearing, a process becoming a zombie); anything with an
 * event waits for the event instead.
 */
export async function pollUntil<T>(check: () => T | undefined | false, what: string, options: { tries?: number; pauseMs?: number } = {}): Promise<T> {
  const tries = options.tries ?? 500;
  for (let attempt = 0; attempt < tries; attempt++) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 10));
  }
  throw new Error(`gave up waiting for ${what} after ${tries} tries`);
}
