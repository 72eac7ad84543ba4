// A client for ssh-agent (draft-miller-ssh-agent, "SSH Agent Protocol"): listing the
// identities an agent holds (§4.4) and asking it to sign (§4.5), with the rsa-sha2 flags
// (§4.5.1) that pick SHA-256 or SHA-512 for an RSA key. The agent is reached over a Unix
// socket (SSH_AUTH_SOCK). Requests go one at a time, as the protocol answers them in order;
// frames are bounded (a hostile or broken agent cannot make us buffer without limit) and every
// request has a deadline. Nothing here throws out of a socket callback: failures reject the
// request waiting for them.

import * as net from 'node:net';
import { Reader, Writer } from '../protocol/wire.js';
import { SshError, Code, socketErrorCode } from '../protocol/errors.js';
import { signatureAlgorithmSpec } from '../protocol/key-types.js';

/** Message numbers of draft-miller-ssh-agent §5.1. */
const AGENT = {
  FAILURE: 5,
  SUCCESS: 6,
  REQUEST_IDENTITIES: 11,
  IDENTITIES_ANSWER: 12,
  SIGN_REQUEST: 13,
  SIGN_RESPONSE: 14,
  EXTENSION_FAILURE: 28,
} as const;

/** The largest message we take from an agent (OpenSSH's own agent limit). */
export const MAX_AGENT_MESSAGE = 256 * 1024;

/** More identities than any real agent holds: a list beyond this is refused. */
const MAX_IDENTITIES = 1024;

export interface AgentIdentity {
  /** The SSH public key blob (a certificate blob for a certificate the agent holds). */
  publicKey: Uint8Array;
  /** The blob's own type name: ssh-ed25519, ssh-rsa, ssh-ed25519-cert-v01@openssh.com, ... */
  keyType: string;
  comment: string;
}

interface Pending {
  expect: number;
  what: string;
  resolve: (body: Reader) => void;
  reject: (error: SshError) => void;
  timer: NodeJS.Timeout | undefined;
}

/** A timer, or none for 0 (no deadline: an agent that asks its user to confirm takes its time). */
function deadline(ms: number, fire: () => void): NodeJS.Timeout | undefined {
  return ms > 0 ? setTimeout(fire, ms) : undefined;
}

export class AgentClient {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly pending: Pending[] = [];
  private failure: SshError | null = null;

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
    readonly path: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.fail(agentError(socketErrorCode(error.code), `the agent's socket failed: ${error.message}`)));
    socket.on('close', () => this.fail(agentError(Code.ConnectionDropped, 'the agent closed the connection')));
  }

  /** Connects to the agent listening on `path` (SSH_AUTH_SOCK); `timeoutMs` 0 waits as long as it takes. */
  static connect(path: string, timeoutMs = 10_000): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ path });
      const timer = deadline(timeoutMs, () => {
        socket.destroy();
        reject(agentError(Code.Timeout, `no answer from the agent at ${path} within ${timeoutMs} ms`));
      });
      socket.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(agentError(socketErrorCode(error.code), `cannot reach the agent at ${path}: ${error.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new AgentClient(socket, timeoutMs, path));
      });
    });
  }

  /** The identities the agent holds, in its order (a locked agent lists none). */
  async identities(): Promise<AgentIdentity[]> {
    const r = await this.request(new Writer().byte(AGENT.REQUEST_IDENTITIES).finish(), AGENT.IDENTITIES_ANSWER, 'listing identities');
    return parseReply('identities answer', () => {
      const count = r.uint32();
      if (count > MAX_IDENTITIES) throw agentError(Code.ProtocolError, `the agent lists ${count} identities; at most ${MAX_IDENTITIES} are accepted`);
      const out: AgentIdentity[] = [];
      for (let i = 0; i < count; i++) {
        const publicKey = r.string().slice();
        const comment = r.utf8();
        out.push({ publicKey, keyType: new Reader(publicKey).utf8(), comment: printable(comment) });
      }
      r.done('agent identities answer');
      return out;
    });
  }

  /**
   * Asks the agent to sign `data` with the identity whose blob is `publicKey`, using
   * `algorithm` (for an RSA key, rsa-sha2-256 or rsa-sha2-512 set the matching flag). Resolves
   * with the SSH signature blob; rejects with 1013 when the agent refuses (a key it does not
   * hold, a locked agent, a confirmation the user declined).
   */
  async sign(publicKey: Uint8Array, data: Uint8Array, algorithm: string): Promise<Uint8Array> {
    const request = new Writer(64 + publicKey.length + data.length)
      .byte(AGENT.SIGN_REQUEST)
      .string(publicKey)
      .string(data)
      .uint32(signatureAlgorithmSpec(algorithm)?.agentSignFlag ?? 0) // §4.5.1 flags
      .finish();
    const r = await this.request(request, AGENT.SIGN_RESPONSE, `signing with ${algorithm}`);
    return parseReply('sign response', () => {
      const signature = r.string().slice();
      r.done('agent sign response');
      const signedWith = new Reader(signature).utf8();
      if (signedWith !== algorithm) {
        throw agentError(Code.CannotSign, `the agent signed with ${signedWith} where ${algorithm} was asked for`);
      }
      return signature;
    });
  }

  close(): void {
    this.socket.destroy();
    this.fail(agentError(Code.BadState, 'the agent connection was closed'));
  }

  private request(message: Uint8Array, expect: number, what: string): Promise<Reader> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = deadline(this.timeoutMs, () => {
        // Answers come in order: after a lost answer, the next one would be taken for the wrong request.
        this.socket.destroy();
        this.fail(agentError(Code.Timeout, `the agent did not answer (${what}) within ${this.timeoutMs} ms`));
      });
      this.pending.push({ expect, what, resolve, reject, timer });
      const frame = Buffer.allocUnsafe(4 + message.length);
      frame.writeUInt32BE(message.length, 0);
      frame.set(message, 4);
      this.socket.write(frame);
    });
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (length === 0 || length > MAX_AGENT_MESSAGE) {
        this.socket.destroy();
        this.fail(agentError(Code.ProtocolError, `the agent sent a ${length}-byte message (the limit is ${MAX_AGENT_MESSAGE})`));
        return;
      }
      if (this.buffered.length < 4 + length) return;
      const message = this.buffered.subarray(4, 4 + length);
      this.buffered = this.buffered.subarray(4 + length);
      this.answer(message);
    }
  }

  private answer(message: Buffer): void {
    const pending = this.pending.shift();
    if (!pending) {
      this.socket.destroy();
      this.fail(agentError(Code.ProtocolError, 'the agent sent a message nobody asked for'));
      return;
    }
    clearTimeout(pending.timer);
    const type = message[0]!;
    if (type === pending.expect) return pending.resolve(new Reader(message, 1));
    if (type === AGENT.FAILURE || type === AGENT.EXTENSION_FAILURE) {
      return pending.reject(agentError(pending.expect === AGENT.SIGN_RESPONSE ? Code.CannotSign : Code.ProtocolError, `the agent refused (${pending.what})`));
    }
    pending.reject(agentError(Code.ProtocolError, `the agent answered ${pending.what} with message ${type}`));
  }

  private fail(error: SshError): void {
    this.failure ??= error;
    for (const pending of this.pending.splice(0)) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
  }
}

function agentError(code: number, message: string): SshError {
  return new SshError(code, message, 'local');
}

/** Runs a reply parser; a truncated or malformed reply is the agent's fault, and says so. */
function parseReply<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof SshError && error.message.startsWith('the agent')) throw error;
    throw agentError(Code.ProtocolError, `the agent sent a malformed ${what}: ${(error as Error).message}`);
  }
}

/** A comment is the agent's (or whoever added the key's) text: keep it to one printable line. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 256);
}
