// Asking the person at the keyboard for a password or passphrase, as ssh does: SSH_ASKPASS when
// SSH_ASKPASS_REQUIRE forces it or there is no terminal, else /dev/tty with echo off. A `-f`
// child has no terminal: it has its foreground parent ask (background.ts), so that the
// question is put before revtun leaves the terminal, as ssh puts it.
//
// Asynchronous: the event loop keeps running while the person types (keep-alives, other
// forwardings, a signal to give up), where a blocking read of the terminal stopped them all.
// The terminal's echo is switched off with stty, keeping its line editing (backspace, ^U) as
// ssh's readpassphrase keeps it, and its settings are put back as they were however the prompt
// ends: an answer, end of input, SIGINT/SIGTERM/SIGHUP (the signal then goes on to do what it
// would have done), or the process exiting.

import { execFile, execFileSync, spawn } from 'node:child_process';
import { openSync, write } from 'node:fs';
import { ReadStream } from 'node:tty';

/** The longest answer read from the terminal or SSH_ASKPASS; a secret is far shorter. */
const MAX_SECRET_BYTES = 4096;

const PROMPT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Runs stty with the terminal as its standard input; its output (stty -g), or null when it failed. */
function sttyOn(tty: number, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    let output = '';
    try {
      const child = spawn('stty', args, { stdio: [tty, 'pipe', 'ignore'] });
      child.stdout?.setEncoding('utf8').on('data', (text: string) => (output += text));
      child.once('error', () => resolve(null));
      child.once('close', (code) => resolve(code === 0 ? output.trim() : null));
    } catch {
      resolve(null);
    }
  });
}

/** SSH_ASKPASS's answer: its standard output without the final newline; undefined if it fails. */
function askPass(program: string, prompt: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      const child = execFile(program, [prompt], { encoding: 'utf8', maxBuffer: MAX_SECRET_BYTES }, (error, stdout) => resolve(error ? undefined : stdout.replace(/\r?\n$/, '')));
      child.stdin?.end(); // the program reads nothing from us
      child.stderr?.pipe(process.stderr); // its messages are the user's to see
    } catch {
      resolve(undefined);
    }
  });
}

/** One line from the terminal (without its newline), or undefined at end of input or past the limit. */
function readLine(input: ReadStream, stop: Promise<void>): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (value: string | undefined) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onEnd);
      input.pause();
      for (const c of chunks) c.fill(0); // the answer lives on only in the string handed back
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      const newline = chunk.indexOf(0x0a);
      chunks.push(Buffer.from(newline >= 0 ? chunk.subarray(0, newline) : chunk));
      total += newline >= 0 ? newline : chunk.length;
      if (total > MAX_SECRET_BYTES) return done(undefined);
      if (newline >= 0) done(Buffer.concat(chunks).toString('utf8').replace(/\r$/, ''));
    };
    const onEnd = () => done(undefined);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onEnd);
    void stop.then(() => done(undefined));
  });
}

/**
 * Asks for a secret and resolves with the answer, or undefined when there is no way to ask
 * (no terminal, no SSH_ASKPASS), the asking failed, or a signal ended it. Never rejects.
 */
export async function askSecret(prompt: string): Promise<string | undefined> {
  const askpass = process.env.SSH_ASKPASS;
  const require = process.env.SSH_ASKPASS_REQUIRE ?? '';
  if (askpass && require !== 'never' && (require === 'force' || !process.stdin.isTTY)) return askPass(askpass, prompt);
  let tty: number;
  try {
    tty = openSync('/dev/tty', 'r+'); // opening a terminal does not wait
  } catch {
    return undefined;
  }
  const saved = await sttyOn(tty, ['-g']);
  let input: ReadStream;
  try {
    input = new ReadStream(tty); // owns the descriptor from here: destroying it closes it
  } catch {
    return undefined;
  }
  // Put back what was there (echo on when stty -g gave nothing), once, however the prompt ends.
  let restored = false;
  const restoreNow = () => {
    if (restored) return;
    restored = true;
    try {
      execFileSync('stty', [saved ?? 'echo'], { stdio: [tty, 'ignore', 'ignore'] });
    } catch {
      /* the terminal went away */
    }
  };
  let interrupt: () => void = () => undefined;
  const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    restoreNow();
    interrupt();
    // Nobody else listens: the signal does what it would have done without this prompt.
    removeHandlers();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const handlers = PROMPT_SIGNALS.map((signal) => [signal, () => onSignal(signal)] as const);
  const removeHandlers = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    process.off('exit', restoreNow);
  };
  for (const [signal, handler] of handlers) process.on(signal, handler);
  process.on('exit', restoreNow); // synchronous, as 'exit' handlers must be
  try {
    if ((await sttyOn(tty, ['-echo'])) === null) return undefined;
    await new Promise<void>((resolve) => write(tty, prompt, () => resolve()));
    return await readLine(input, interrupted);
  } finally {
    if (!restored) {
      restored = true;
      await sttyOn(tty, [saved ?? 'echo']);
    }
    removeHandlers();
    await new Promise<void>((resolve) => write(tty, '\n', () => resolve()));
    input.destroy();
  }
}
