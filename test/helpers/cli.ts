// Runs the built revtun command (dist/cli/main.js) as a child process and watches its stderr;
// finds the processes a `revtun -f` left in the background through /proc.

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { resolve } from 'node:path';

export const CLI = resolve(__dirname, '../../dist/cli/main.js');

export interface Run {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the first match of `pattern` in stderr (earlier output included). */
  waitFor: (pattern: RegExp) => Promise<RegExpMatchArray>;
  exit: Promise<number>;
  /** Resolves once it has exited and its stdout and stderr pipes are closed (by everyone holding them). */
  closed: Promise<void>;
}

/** Kills (SIGKILL) the runs in `runs` that are still going and waits for each to exit; empties the list. */
export async function stopRuns(runs: Run[]): Promise<void> {
  for (const run of runs.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
    await run.exit;
  }
}

/** Starts revtun with `args`; `env` is added to this process's environment. */
export function runRevtun(args: string[], env: NodeJS.ProcessEnv = {}, as: { uid: number; gid: number } | Record<never, never> = {}): Run {
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
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
    stderr: () => stderr,
    exit,
    closed,
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const m = stderr.match(pattern);
        if (m) return resolve(m);
        waiters.push({ pattern, resolve, reject });
      }),
  };
}

/** The PIDs of running revtun processes whose arguments include `marker` (a path unique to a test). */
export function revtunProcesses(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // it exited meanwhile
    }
    if (argv.includes(CLI) && argv.some((arg) => arg.includes(marker))) pids.push(Number(name));
  }
  return pids;
}

/** What /proc says about a process: its session, and what its standard input is. */
export function processFacts(pid: number): { sessionId: number; stdin: string } {
  // The command name in parentheses may hold spaces: fields are counted after its closing one.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { sessionId: Number(fields[3]), stdin: readlinkSync(`/proc/${pid}/fd/0`) };
}
