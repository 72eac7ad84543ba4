// A throwaway OpenSSH sshd on loopback, for the demo, the benchmarks and the tests: its own
// host keys, authorized_keys and config in a temporary directory, an ephemeral port, and
// readiness taken from sshd's own "Server listening" line.
//
// The fault tests also stop and start it on the same port, replace its host keys, change who
// may log on, and kill the per-connection processes while the listener stays up. Those
// processes are found as descendants of the listener in /proc (sshd forks one per connection,
// and that one forks again for the session), and only those are ever signalled.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';

export interface KeyPair {
  privatePath: string;
  privateText: string;
  publicLine: string;
}

/** Generates a key pair with ssh-keygen; `format` picks the private key encoding. */
export function generateKey(dir: string, name: string, type: 'ed25519' | 'ecdsa' | 'rsa' | 'dsa', options: { bits?: number; passphrase?: string; format?: 'openssh' | 'PEM' | 'PKCS8' } = {}): KeyPair {
  const path = join(dir, name);
  const args = ['-q', '-t', type, '-f', path, '-N', options.passphrase ?? '', '-C', name];
  if (options.bits) args.push('-b', String(options.bits));
  if (options.format && options.format !== 'openssh') args.push('-m', options.format);
  execFileSync('ssh-keygen', args, { stdio: 'ignore' });
  return { privatePath: path, privateText: readFileSync(path, 'utf8'), publicLine: readFileSync(`${path}.pub`, 'utf8').trim() };
}

/** A loopback TCP port nothing listens on now, for a test or demo server to take. */
export async function freePort(): Promise<number> {
  // Below Linux's ephemeral range (32768-60999): a port the kernel hands out meanwhile (an
  // outgoing connection's, a port-0 listener's such as a remote forwarding's) can then never
  // be this one, which a server binds only after this check. Seen on CI with three test files
  // at a time: a forwarding's port-0 listener and a fresh sshd ended up on the same number.
  for (let attempt = 0; attempt < 64; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canListen(port)) return port;
  }
  return listenOnce(0);
}

/** Whether 127.0.0.1:`port` can be listened on now. */
function canListen(port: number): Promise<boolean> {
  return listenOnce(port).then(
    () => true,
    () => false,
  );
}

/** Listens on 127.0.0.1:`port` (0: any), closes, and returns the port. */
function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

export const SSHD_PATH = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p)) ?? 'sshd';

export interface LoopbackSshdOptions {
  /** Users whose authorized_keys file holds `authorizedKeys`. */
  users: string[];
  authorizedKeys: string[];
  /**
   * Extra sshd_config lines. A keyword given here replaces the default line for it (sshd
   * itself keeps the first value it reads and would ignore a later one without a word);
   * lines from the first `Match` on are appended as they are. A LogLevel below INFO is raised
   * to INFO, since readiness is read from an INFO line.
   */
  config?: string[];
  usePam?: boolean;
  /** Size of the ECDSA host key (256 by default). */
  ecdsaBits?: 256 | 384 | 521;
  /** The address to listen on (127.0.0.1 by default). */
  listenAddress?: string;
  /** Run sshd inside this network namespace (`ip netns exec`), for hosts only a jump host reaches. */
  netns?: string;
  /** Extra environment for sshd (KRB5_KTNAME and KRB5_CONFIG for GSSAPI). */
  env?: Record<string, string>;
}

export type HostKeyLines = Record<'ed25519' | 'ecdsa' | 'rsa', string>;

export interface StopOptions {
  /**
   * Leave the per-connection processes running, as `systemctl restart ssh` does on Debian:
   * their sessions outlive the listener. By default they are killed with it.
   */
  keepSessions?: boolean;
}

export interface LoopbackSshd {
  readonly host: string;
  /** Fixed for the object's life: every start listens here again. */
  readonly port: number;
  readonly dir: string;
  /** The public host keys the server presents (since its last start). */
  readonly hostKeys: HostKeyLines;
  /** The listening sshd (changes with each start); each connection is served by a child of it. */
  readonly pid: number;
  readonly running: boolean;
  /** What sshd has logged so far, over all its starts (it logs to stderr). */
  log(): string;
  /** Resolves with the first match of `pattern` in the log after offset `from` (a `log().length` taken earlier). */
  waitForLog(pattern: RegExp, from?: number): Promise<RegExpMatchArray>;
  /** Starts sshd again after `stop`, on the same port, with the current keys and config. */
  start(): Promise<void>;
  /** Stops the listener (and, unless told otherwise, every session) and waits for it to exit. */
  stop(options?: StopOptions): Promise<void>;
  /** `stop` then `start`. */
  restart(options?: StopOptions): Promise<void>;
  /**
   * PIDs of the processes serving connections: the listener's descendants and those of
   * sessions kept over a stop. A snapshot: just after a logon sshd may still be replacing a
   * connection's pre-authentication process by its session process.
   */
  sessionPids(): number[];
  /**
   * Signals every session process (or those of `only` and their descendants), never the
   * listener: all of them frozen first, so that none forks a successor out of reach. With
   * SIGKILL, resolves once they have exited; SIGSTOP leaves them frozen (a hung server whose
   * kernel still answers TCP) until `killSessions('SIGCONT')`. Returns the PIDs signalled.
   */
  killSessions(signal?: NodeJS.Signals, options?: { only?: number[] }): Promise<number[]>;
  /** Generates new host keys, presented from the next start on; returns their public lines. */
  replaceHostKeys(): HostKeyLines;
  /** Rewrites `user`'s authorized_keys; sshd reads it at each authentication attempt. */
  setAuthorizedKeys(user: string, lines: string[]): void;
  /** Replaces the extra config lines (as in `LoopbackSshdOptions.config`) from the next start on. */
  setConfig(lines: string[]): void;
}

/** Generates the three host keys, with a suffix per generation so that no file is overwritten. */
function generateHostKeys(dir: string, generation: number, ecdsaBits: number): Record<keyof HostKeyLines, KeyPair> {
  const suffix = generation === 0 ? '' : `_${generation}`;
  return {
    ed25519: generateKey(dir, `host_ed25519${suffix}`, 'ed25519'),
    ecdsa: generateKey(dir, `host_ecdsa${suffix}`, 'ecdsa', { bits: ecdsaBits }),
    rsa: generateKey(dir, `host_rsa${suffix}`, 'rsa', { bits: 2048 }),
  };
}

const keywordOf = (line: string) => line.trim().split(/\s+/)[0]!.toLowerCase();

/** Defaults first, with each keyword the extra lines set taken out of them; see LoopbackSshdOptions.config. */
export function mergeSshdConfig(defaults: string[], extra: string[]): string[] {
  const firstMatch = extra.findIndex((line) => keywordOf(line) === 'match');
  const global = firstMatch === -1 ? extra : extra.slice(0, firstMatch);
  const overridden = new Set(global.filter((line) => line.trim()).map(keywordOf));
  const lines = [...defaults.filter((line) => !overridden.has(keywordOf(line))), ...extra];
  return lines.map((line) => (keywordOf(line) === 'loglevel' && /^\s*\S+\s+(QUIET|FATAL|ERROR)\s*$/i.test(line) ? 'LogLevel INFO' : line));
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  state: string;
  /** Clock ticks after boot; with the PID it names a process even if the PID is reused. */
  startTime: string;
}

/** The fields of /proc/<pid>/stat that matter here, or null once the process is gone. */
function processInfo(pid: number): ProcessInfo | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name is in parentheses and may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(fields[1]), state: fields[0]!, startTime: fields[19]! };
}

/** Every live (non-zombie) process below `roots`, found by scanning /proc once. */
function descendantsOf(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = processInfo(Number(entry));
    if (!info || info.state === 'Z') continue;
    const list = children.get(info.ppid) ?? [];
    list.push(info.pid);
    children.set(info.ppid, list);
  }
  const found: number[] = [];
  const queue = [...roots];
  // Bounded by the number of processes: a PID is reached at most once in a tree.
  while (queue.length > 0 && found.length < 100_000) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

const isGone = (pid: number, startTime?: string) => {
  const info = processInfo(pid);
  return !info || info.state === 'Z' || (startTime !== undefined && info.startTime !== startTime);
};

/**
 * Waits for processes to exit (a zombie has exited). No event reports another process's
 * exit, so this polls /proc, boundedly.
 */
export async function waitForExit(pids: number[], what = 'processes to exit'): Promise<void> {
  const known = pids.map((pid) => ({ pid, startTime: processInfo(pid)?.startTime }));
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (known.every(({ pid, startTime }) => isGone(pid, startTime))) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(
    `timed out waiting for ${what}: ${known
      .filter(({ pid, startTime }) => !isGone(pid, startTime))
      .map((k) => k.pid)
      .join(', ')}`,
  );
}

/** Sends a signal; false if the process is already gone. */
function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/**
 * Waits for a process to reach a state ('T': stopped), or to be gone; kill() returns before either.
 * Waiting for 'T', uninterruptible sleep ('D') counts too: a process there runs no code of its
 * own until it wakes, and then stops at once for the SIGSTOP it has pending. It may never wake
 * while we wait: a parent in vfork() sleeps in 'D' until its child execs, and that child may be
 * one of the processes just stopped.
 */
async function waitForState(pid: number, state: string): Promise<void> {
  // Up to 10 s: a thousand 1 ms polls were not always enough on a loaded machine (the CPU
  // shared with a test suite and its servers), and this only waits for the kernel.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const info = processInfo(pid);
    if (!info || info.state === state || info.state === 'Z' || info.state === 'X' || (state === 'T' && info.state === 'D')) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`process ${pid} did not reach state ${state}`);
}

class LoopbackSshdProcess implements LoopbackSshd {
  readonly host: string;
  hostKeys: HostKeyLines;
  private child: ChildProcess | null = null;
  private lastPid = 0;
  private output = '';
  /** Characters dropped from the front of `output` to bound its size. */
  private dropped = 0;
  private readonly logListeners = new Set<() => void>();
  private keys: Record<keyof HostKeyLines, KeyPair>;
  private keyGeneration = 0;
  private extraConfig: string[];
  /** Sessions left running by stop({ keepSessions }), named by PID and start time. */
  private orphans: { pid: number; startTime: string }[] = [];
  private readonly authDir: string;
  private readonly configPath: string;

  constructor(
    private readonly options: LoopbackSshdOptions,
    readonly dir: string,
    readonly port: number,
  ) {
    this.host = options.listenAddress ?? '127.0.0.1';
    this.keys = generateHostKeys(dir, 0, options.ecdsaBits ?? 256);
    this.hostKeys = this.publicLines();
    this.extraConfig = [...(options.config ?? [])];
    this.authDir = join(dir, 'authorized_keys');
    this.configPath = join(dir, 'sshd_config');
    mkdirSync(this.authDir);
    for (const user of options.users) this.setAuthorizedKeys(user, options.authorizedKeys);
  }

  get pid(): number {
    return this.child?.pid ?? this.lastPid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  log(): string {
    return this.output;
  }

  waitForLog(pattern: RegExp, from = 0): Promise<RegExpMatchArray> {
    const start = this.dropped + from; // absolute, so that trimming the log does not shift it
    return new Promise((resolve) => {
      const check = () => {
        const match = this.output.slice(Math.max(0, start - this.dropped)).match(pattern);
        if (!match) return false;
        this.logListeners.delete(check);
        resolve(match);
        return true;
      };
      if (!check()) this.logListeners.add(check);
    });
  }

  async start(): Promise<void> {
    if (this.child) throw new Error(`sshd is already running (pid ${this.child.pid})`);
    writeFileSync(this.configPath, this.config().join('\n') + '\n');
    const argv = [SSHD_PATH, '-D', '-e', '-f', this.configPath];
    // `ip netns exec` execs sshd in place, so the child's PID is still the listener's.
    const [command, ...args] = this.options.netns ? ['ip', 'netns', 'exec', this.options.netns, ...argv] : argv;
    const env = this.options.env ? { ...process.env, ...this.options.env } : process.env;
    const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    this.child = child;
    this.lastPid = child.pid ?? 0;
    const from = this.output.length;
    child.stderr!.on('data', (chunk: Buffer) => this.append(chunk.toString()));
    child.once('exit', () => {
      if (this.child === child) this.child = null;
    });
    try {
      await new Promise<void>((resolve, reject) => {
        // The listening line comes before anything a connection logs, so the first one after
        // this start's offset is this start's.
        this.waitForLog(/Server listening on/, from).then(() => resolve(), reject);
        child.once('exit', (code, signal) => reject(new Error(`sshd exited with ${signal ?? `status ${code}`}: ${this.output.slice(from)}`)));
        child.once('error', reject);
      });
    } catch (error) {
      this.child = null;
      throw error;
    }
  }

  async stop(options: StopOptions = {}): Promise<void> {
    const child = this.child;
    if (!child) {
      if (!options.keepSessions) await this.killSessions('SIGKILL');
      return;
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Freeze the listener first, so that no connection it accepts between listing the sessions
    // and its exit goes unnoticed (its children are reparented once it exits, and could no
    // longer be found below it). SIGTERM then ends it as `systemctl stop` would.
    try {
      process.kill(child.pid!, 'SIGSTOP');
    } catch {
      await exited; // it died on its own and its exit is being reported
      return;
    }
    await waitForState(child.pid!, 'T');
    if (options.keepSessions) {
      for (const pid of descendantsOf([child.pid!])) {
        const info = processInfo(pid);
        if (info && info.ppid === child.pid) this.orphans.push({ pid, startTime: info.startTime });
      }
    } else {
      await this.killSessions('SIGKILL');
    }
    process.kill(child.pid!, 'SIGTERM');
    process.kill(child.pid!, 'SIGCONT');
    await exited;
  }

  async restart(options: StopOptions = {}): Promise<void> {
    await this.stop(options);
    await this.start();
  }

  sessionPids(): number[] {
    this.orphans = this.orphans.filter(({ pid, startTime }) => !isGone(pid, startTime));
    const orphanRoots = this.orphans.map((o) => o.pid);
    const roots = this.child ? [this.child.pid!, ...orphanRoots] : orphanRoots;
    return [...orphanRoots, ...descendantsOf(roots)];
  }

  async killSessions(signal: NodeJS.Signals = 'SIGKILL', options: { only?: number[] } = {}): Promise<number[]> {
    const wanted = (): number[] => {
      const all = this.sessionPids();
      if (!options.only) return all;
      const chosen = new Set([...options.only, ...descendantsOf(options.only)]);
      return all.filter((pid) => chosen.has(pid)); // session processes only, whatever was passed
    };
    // Freeze first, then signal. Right after a logon sshd is still replacing the connection's
    // pre-authentication process by the session's: a process forked between listing and
    // killing would escape as an orphan holding the connection. Stopped processes cannot fork,
    // so listing again after freezing what was found is complete once nothing new turns up.
    const frozen: number[] = [];
    for (let round = 0; round < 20; round++) {
      const fresh = wanted().filter((pid) => !frozen.includes(pid));
      if (fresh.length === 0) break;
      for (const pid of fresh) if (signalProcess(pid, 'SIGSTOP')) frozen.push(pid);
      for (const pid of fresh) await waitForState(pid, 'T');
    }
    const signalled = frozen.filter((pid) => signalProcess(pid, signal));
    // Any other signal stays pending in a stopped process until it continues; SIGSTOP is
    // meant to leave them frozen.
    if (signal !== 'SIGKILL' && signal !== 'SIGSTOP') for (const pid of frozen) signalProcess(pid, 'SIGCONT');
    if (signal === 'SIGKILL') await waitForExit(signalled, 'killed sshd sessions to exit');
    return signalled;
  }

  replaceHostKeys(): HostKeyLines {
    this.keyGeneration += 1;
    this.keys = generateHostKeys(this.dir, this.keyGeneration, this.options.ecdsaBits ?? 256);
    return this.publicLines();
  }

  setAuthorizedKeys(user: string, lines: string[]): void {
    writeFileSync(join(this.authDir, user), lines.map((line) => line + '\n').join(''), { mode: 0o644 });
  }

  setConfig(lines: string[]): void {
    this.extraConfig = [...lines];
  }

  private config(): string[] {
    this.hostKeys = this.publicLines();
    const usePam = this.options.usePam ?? false;
    const defaults = [
      `Port ${this.port}`,
      `ListenAddress ${this.host}`,
      ...Object.values(this.keys).map((k) => `HostKey ${k.privatePath}`),
      `PidFile ${join(this.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${this.authDir}/%u`,
      // StrictModes no also lets sshd read authorized_keys files that setAuthorizedKeys rewrites.
      'StrictModes no',
      `UsePAM ${usePam ? 'yes' : 'no'}`,
      'PasswordAuthentication yes',
      `KbdInteractiveAuthentication ${usePam ? 'yes' : 'no'}`,
      'PubkeyAuthentication yes',
      'PermitRootLogin yes',
      'AllowTcpForwarding yes',
      'GatewayPorts no',
      'MaxStartups 1000',
      'MaxAuthTries 10',
      'LogLevel VERBOSE',
    ];
    return mergeSshdConfig(defaults, this.extraConfig);
  }

  private publicLines(): HostKeyLines {
    return { ed25519: this.keys.ed25519.publicLine, ecdsa: this.keys.ecdsa.publicLine, rsa: this.keys.rsa.publicLine };
  }

  private append(text: string): void {
    this.output += text;
    if (this.output.length > 1_000_000) {
      this.dropped += this.output.length - 500_000;
      this.output = this.output.slice(-500_000);
    }
    for (const listener of [...this.logListeners]) listener();
  }
}

/** Creates the directory, keys and authorized_keys, and starts sshd on a free port. */
export async function startLoopbackSshd(options: LoopbackSshdOptions): Promise<LoopbackSshd> {
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'revtun-sshd-'));
  chmodSync(dir, 0o755);
  const sshd = new LoopbackSshdProcess(options, dir, await freePort());
  await sshd.start();
  return sshd;
}
