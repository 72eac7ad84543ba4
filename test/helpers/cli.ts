// Runs the built revtun command (dist/cli/main.js) as a child process and watches its stderr.

import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve(__dirname, '../../dist/cli/main.js');

export interface Run {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the first match of `pattern` in stderr (earlier output included). */
  waitFor: (pattern: RegExp) => Promise<RegExpMatchArray>;
  exit: Promise<number>;
}

/** Starts revtun with `args`; `env` is added to this process's environment. */
export function runRevtun(args: string[], env: NodeJS.ProcessEnv = {}, as: { uid: number; gid: number } | {} = {}): Run {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...as });
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = stderr.match(w.pattern);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    check();
  });
  const exit = new Promise<number>((resolve) =>
    child.once('exit', (code) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`revtun exited (${code}) before printing ${w.pattern}; stderr:\n${stderr}`));
      resolve(code ?? -1);
    }),
  );
  return {
    child,
    stderr: () => stderr,
    exit,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const m = stderr.match(pattern);
        if (m) return resolve(m);
        waiters.push({ pattern, resolve, reject });
      }),
  };
}

