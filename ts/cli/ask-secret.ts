// Asking the person at the keyboard for a password or passphrase, as ssh does: SSH_ASKPASS when
// SSH_ASKPASS_REQUIRE forces it or there is no terminal, else /dev/tty with echo off. A `-f`
// child has no terminal: it has its foreground parent ask (background.ts), so that the
// question is put before revtun leaves the terminal, as ssh puts it.

import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** The longest answer read from the terminal; a secret is far shorter. */
const MAX_SECRET_BYTES = 4096;

/**
 * Synchronous, because authentication asks only at the moment it needs an answer and waits
 * for it. Returns undefined when there is no way to ask.
 */
export function askSecret(prompt: string): string | undefined {
  const askpass = process.env.SSH_ASKPASS;
  const require = process.env.SSH_ASKPASS_REQUIRE ?? '';
  if (askpass && require !== 'never' && (require === 'force' || !process.stdin.isTTY)) {
    try {
      return execFileSync(askpass, [prompt], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  }
  let tty: number;
  try {
    tty = openSync('/dev/tty', 'r+');
  } catch {
    return undefined;
  }
  try {
    writeSync(tty, prompt);
    execFileSync('stty', ['-echo'], { stdio: [tty, 'ignore', 'ignore'] });
    const bytes: number[] = [];
    const one = Buffer.alloc(1);
    while (readSync(tty, one, 0, 1, null) === 1 && one[0] !== 0x0a && bytes.length < MAX_SECRET_BYTES) bytes.push(one[0]!);
    return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
  } catch {
    return undefined;
  } finally {
    try {
      execFileSync('stty', ['echo'], { stdio: [tty, 'ignore', 'ignore'] });
      writeSync(tty, '\n');
    } catch {
      /* the terminal went away */
    }
    closeSync(tty);
  }
}
