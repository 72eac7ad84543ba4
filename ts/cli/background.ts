// `revtun -f`: going to the background once the forwardings are up, as `ssh -f` with
// ExitOnForwardFailure does. Node cannot fork, and the connection lives in this process's
// memory, so the foreground process starts a second revtun with the same arguments in a new
// session (no controlling terminal, standard input and output on /dev/null) and stays until
// the child reports, on a socket pair at file descriptor 3, that its forwardings are up (exit
// 0) or until it exits (with its status, after printing its error). Until then the parent
// prints the child's messages and answers its password and passphrase questions from the
// terminal or SSH_ASKPASS, so that they are asked before revtun leaves the terminal, as ssh
// asks them. Messages are JSON lines: child → parent {line} {ask} {up}; parent → child {answer}.

import { spawn } from 'node:child_process';
import { closeSync, read, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { askSecret } from './ask-secret.js';

/** Set in the child's environment (and removed from it at once) with the channel's descriptor. */
const CHILD_MARK = 'REVTUN_BACKGROUND_CHANNEL';
const CHANNEL_FD = 3;
/** The longest message either side accepts: a line of diagnostics or an answer is far shorter. */
const MAX_MESSAGE_BYTES = 1 << 20;

type ChildMessage = { line: string } | { ask: string } | { up: true };

/** The child's end: this process was started by a foreground `revtun -f`. */
export class ForegroundParent {
  private open = true;
  /** The question being asked: the next waits for its answer (one line each, in order). */
  private asking: Promise<unknown> = Promise.resolve();

  /** The parent's channel if this process is a -f child, else null. */
  static take(): ForegroundParent | null {
    if (process.env[CHILD_MARK] !== String(CHANNEL_FD)) return null;
    delete process.env[CHILD_MARK]; // not for ProxyCommand, SSH_ASKPASS or Match exec
    // The parent stops reading standard error when it exits; a late write there must not crash us.
    process.stderr.on('error', () => undefined);
    return new ForegroundParent();
  }

  /** A message for the parent to print. */
  line(text: string): void {
    this.send({ line: text });
  }

  /**
   * Has the parent ask the question and resolves with the answer; undefined when the parent
   * cannot ask, or has already gone (after `up`). The channel is read off the event loop (a
   * thread of libuv's pool waits on it), so this process runs on while the person types.
   */
  ask(prompt: string): Promise<string | undefined> {
    const answer = this.asking.then(() => this.askNow(prompt));
    this.asking = answer;
    return answer;
  }

  private async askNow(prompt: string): Promise<string | undefined> {
    if (!this.send({ ask: prompt })) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    const buffer = Buffer.alloc(4096);
    for (;;) {
      const n = await new Promise<number>((resolve) => {
        try {
          read(CHANNEL_FD, buffer, 0, buffer.length, null, (error, bytes) => resolve(error ? 0 : bytes));
        } catch {
          resolve(0);
        }
      });
      if (n === 0) {
        this.close();
        return undefined;
      }
      chunks.push(Buffer.from(buffer.subarray(0, n)));
      total += n;
      // The parent writes exactly one line per question, so nothing follows the newline.
      if (buffer.subarray(0, n).includes(0x0a)) break;
      if (total > MAX_MESSAGE_BYTES) {
        this.close();
        return undefined;
      }
    }
    try {
      const reply = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { answer?: unknown };
      return typeof reply.answer === 'string' ? reply.answer : undefined;
    } catch {
      return undefined;
    }
  }

  /** The forwardings are up: the parent exits 0 and this process carries on alone. */
  up(): void {
    this.send({ up: true });
    this.close();
  }

  private send(message: ChildMessage): boolean {
    if (!this.open) return false;
    try {
      writeSync(CHANNEL_FD, `${JSON.stringify(message)}\n`);
      return true;
    } catch {
      this.close(); // the parent was killed: carry on without it
      return false;
    }
  }

  private close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      closeSync(CHANNEL_FD);
    } catch {
      /* already gone */
    }
  }
}

/**
 * The parent's side: starts the child with `argv` and resolves with the status to exit with
 * (0 once the child is in the background, else the child's own status, 255 if it died).
 */
export function runInBackground(argv: string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
    detached: true, // setsid: no controlling terminal, no SIGHUP or ^C from this one
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, [CHILD_MARK]: String(CHANNEL_FD) },
  });
  const channel = child.stdio[CHANNEL_FD] as Socket;
  // Only Node's own last words (an uncaught error) come this way; messages use the channel.
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  return new Promise<number>((resolve) => {
    let settled = false;
    const forwardSignal = (signal: NodeJS.Signals) => child.kill(signal);
    const onInt = () => forwardSignal('SIGINT');
    const onTerm = () => forwardSignal('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const finish = (status: number) => {
      if (settled) return;
      settled = true;
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(status);
    };
    let pending = '';
    const handle = (message: ChildMessage) => {
      if ('line' in message) process.stderr.write(message.line);
      else if ('ask' in message) {
        // The child waits for this line; the parent's loop keeps relaying its output meanwhile.
        void askSecret(message.ask).then((answer) => {
          if (!channel.destroyed) channel.write(`${JSON.stringify({ answer: answer ?? null })}\n`);
        });
      } else if ('up' in message) {
        // Let go of everything that ties us to the child, so that this process can exit.
        channel.destroy();
        child.stderr!.destroy();
        child.unref();
        finish(0);
      }
    };
    channel.setEncoding('utf8');
    channel.on('data', (text: string) => {
      pending += text;
      for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n')) {
        const raw = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        let message: ChildMessage;
        try {
          message = JSON.parse(raw) as ChildMessage;
        } catch {
          continue;
        }
        if (!settled) handle(message);
      }
      if (pending.length > MAX_MESSAGE_BYTES) pending = '';
    });
    channel.on('error', () => undefined);
    child.once('error', (error) => {
      process.stderr.write(`revtun: cannot start the background process: ${error.message}\n`);
      finish(255);
    });
    // 'close': the child has exited and every message it sent has been read and printed.
    child.once('close', (code) => finish(code ?? 255));
  });
}
