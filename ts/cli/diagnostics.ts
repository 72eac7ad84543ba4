// Where the command's messages go (what -v prints, warnings, errors, "Allocated port"): standard
// error; the file given with -E instead (opened for appending, as ssh -E opens it, mode 0600
// when created); or, in a -f child that is still in the foreground, to the parent that prints
// them. Once a -f child is in the background there is no terminal left, and without -E its
// messages go nowhere, as ssh -f sends them to /dev/null. Nothing here throws: messages are
// written from socket callbacks.

import { openSync, writeSync } from 'node:fs';
import { strerror } from '../tunnel/keyfile.js';

export class Diagnostics {
  private logFile: number | null = null;
  private forward: ((line: string) => void) | null = null;
  private discard = false;

  /** -E: append to `path` from now on. Throws the words ssh prints when it cannot open it. */
  openLogFile(path: string): void {
    try {
      this.logFile = openSync(path, 'a', 0o600);
    } catch (error) {
      throw new Error(`Couldn't open logfile ${path}: ${strerror((error as NodeJS.ErrnoException).code ?? 'EIO')}`);
    }
  }

  /** A -f child before it goes to the background: its parent prints what it would print. */
  sendTo(forward: (line: string) => void): void {
    this.forward = forward;
  }

  /** The -f child is in the background: the -E file, if any, is all that is left. */
  detach(): void {
    this.forward = null;
    this.discard = true;
  }

  /** One message; a trailing newline is added when it has none. */
  write(text: string): void {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    if (this.logFile !== null) {
      try {
        writeSync(this.logFile, line);
      } catch {
        // A full disk or a revoked file: there is nowhere else to say so (ssh, too, goes on).
      }
      return;
    }
    if (this.forward) this.forward(line);
    else if (!this.discard) process.stderr.write(line);
  }
}
