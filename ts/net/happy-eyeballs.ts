// Connecting to the first of several addresses that answers (RFC 8305 §5, "Happy Eyeballs"):
// the next attempt starts 250 ms after the previous one, or at once when it fails, and earlier
// attempts stay open alongside it; the first to connect wins and the rest are closed.
//
// Written here rather than left to Node's autoSelectFamily, which gives each attempt but the
// last only the delay and then abandons it (nodejs/node#54359): a server 300 ms away, or one
// lost SYN, then fails whenever the last address in the list is down. ssh waits for each
// address in turn; racing them keeps that patience without its delays.

import * as net from 'node:net';
import type { LookupAddress } from 'node:dns';
import { SocketReader } from './reader.js';

/** RFC 8305's recommended wait before the next address is tried alongside the first. */
export const ATTEMPT_DELAY_MS = 250;

export interface Attempts {
  addresses: readonly LookupAddress[];
  port: number;
  /** The local address to bind for an address of this family (none: the system chooses). */
  localAddressFor(family: number): string | undefined;
  /** A fixed local port cannot be bound twice at once: the attempts then run one after another. */
  localPort?: number;
  noDelay: boolean;
  keepAlive: boolean;
  keepAliveInitialDelay: number;
  signal?: AbortSignal;
  /** An attempt failed and, if another address is left, the next starts (for the log). */
  onAttemptFailed?: (address: string, error: Error) => void;
}

export interface Connected {
  socket: net.Socket;
  reader: SocketReader;
  address: string;
}

/** Why connecting failed: every attempt's error, the last one to fail first. */
export class AttemptsFailed extends Error {
  constructor(readonly errors: NodeJS.ErrnoException[]) {
    super(errors.map((e) => e.message).join('; '));
  }

  /** The errno of the attempt that failed last (the preferred address's may just have been slower). */
  get code(): string | undefined {
    return this.errors[this.errors.length - 1]?.code;
  }
}

export class Abandoned extends Error {}

export function connectFirst(attempts: Attempts): Promise<Connected> {
  return new Promise<Connected>((resolve, reject) => {
    const pending = new Map<net.Socket, SocketReader>();
    const errors: NodeJS.ErrnoException[] = [];
    let next = 0;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;

    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      attempts.signal?.removeEventListener('abort', onAbort);
    };
    const closeAll = (except?: net.Socket): void => {
      for (const socket of pending.keys()) {
        if (socket === except) continue;
        socket.removeAllListeners('connect');
        socket.on('error', () => undefined); // a loser may still report its failure
        socket.destroy();
      }
      pending.clear();
    };
    const onAbort = (): void => {
      if (settled) return;
      finish();
      closeAll();
      reject(new Abandoned('connecting was abandoned'));
    };

    const start = (): void => {
      clearTimeout(timer);
      if (settled || next >= attempts.addresses.length) return;
      const target = attempts.addresses[next++]!;
      const reader = new SocketReader();
      const localAddress = attempts.localAddressFor(target.family);
      let socket: net.Socket;
      try {
        socket = connectOne();
      } catch (error) {
        // net.connect throws for options it refuses; from the timer this must not escape.
        errors.push(error as NodeJS.ErrnoException);
        if (next < attempts.addresses.length) start();
        else if (pending.size === 0) {
          finish();
          reject(new AttemptsFailed(errors.reverse()));
        }
        return;
      }
      function connectOne(): net.Socket {
        return net.connect({
          onread: reader.onread,
          host: target.address,
          port: attempts.port,
          ...(localAddress ? { localAddress } : {}),
          ...(attempts.localPort ? { localPort: attempts.localPort } : {}),
          noDelay: attempts.noDelay,
          keepAlive: attempts.keepAlive,
          keepAliveInitialDelay: attempts.keepAliveInitialDelay,
        });
      }
      pending.set(socket, reader);
      socket.once('error', (error: NodeJS.ErrnoException) => {
        pending.delete(socket);
        socket.destroy();
        if (settled) return;
        errors.push(error);
        attempts.onAttemptFailed?.(target.address, error);
        if (next < attempts.addresses.length)
          start(); // a failure starts the next at once
        else if (pending.size === 0) {
          finish();
          reject(new AttemptsFailed(errors.reverse()));
        }
      });
      socket.once('connect', () => {
        if (settled) return;
        finish();
        pending.delete(socket);
        socket.removeAllListeners('error');
        closeAll();
        resolve({ socket, reader, address: socket.remoteAddress ?? target.address });
      });
      if (next < attempts.addresses.length && !attempts.localPort) {
        timer = setTimeout(start, ATTEMPT_DELAY_MS);
        timer.unref();
      }
    };

    attempts.signal?.addEventListener('abort', onAbort, { once: true });
    start();
  });
}
