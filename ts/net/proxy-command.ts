// ProxyCommand, as ssh runs it: a shell command whose standard input and output carry the SSH
// connection (`nc %h %p`, a corporate connector, `ssh -W`). Its standard error goes to ours; it is
// killed when the connection ends, and its exit ends the connection.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { SshError, Code } from '../protocol/errors.js';

/**
 * Expands ssh's ProxyCommand tokens: %h the host to connect to, %p its port, %r the remote
 * user, %n the host as the user gave it, %% a percent sign. Any other token is an error, as in
 * ssh ("unknown key %x").
 */
export function expandProxyCommand(command: string, values: { host: string; port: number; user: string; originalHost: string }): string {
  return command.replace(/%(.)?/g, (_, token: string | undefined) => {
    switch (token) {
      case 'h':
        return values.host;
      case 'p':
        return String(values.port);
      case 'r':
        return values.user;
      case 'n':
        return values.originalHost;
      case '%':
        return '%';
      default:
        throw new SshError(Code.BadArgument, `ProxyCommand: unknown token %${token ?? ''}`, 'local');
    }
  });
}

/**
 * A ProxyCommand's pipes as one stream. SSH has no half-close at this level, so the command's
 * output ending is the connection's end, and a write to a command that has exited is not an
 * EPIPE of ours: its exit status says what happened. Destroying the stream kills the command.
 * (OpenBSD nc keeps its output open after its network side closed, so a server that goes away
 * behind nc is noticed by keep-alive, as with ssh.)
 */
class ProxyCommandStream extends Duplex {
  private exitReason: Error | null = null;
  private outputEnded = false;

  constructor(private readonly child: ChildProcessWithoutNullStreams) {
    super();
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    // Output ended: the connection is over. The exit status (if the command is exiting) says
    // why; a command still running is stopped, and then it only closed its output.
    child.stdout.once('end', () => {
      if (this.exitReason) return this.finishWith(this.exitReason);
      this.outputEnded = true;
      child.kill('SIGTERM');
    });
    child.stdin.on('error', () => undefined); // reported by the exit instead
    child.once('exit', (code, signalName) => {
      const stoppedByUs = this.outputEnded && signalName === 'SIGTERM';
      this.exitReason = new Error(stoppedByUs ? 'the ProxyCommand closed its output' : `the ProxyCommand exited (${signalName ? `signal ${signalName}` : `status ${code}`})`);
      if (child.stdout.readableEnded) this.finishWith(this.exitReason);
    });
  }

  private finishWith(reason: Error): void {
    if (!this.destroyed) this.destroy(reason);
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.child.stdin.destroyed) return done();
    this.child.stdin.write(chunk, () => done());
  }

  override _final(done: (error?: Error | null) => void): void {
    this.child.stdin.end(() => done());
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    done(error);
  }
}

/** Runs `command` under /bin/sh; resolves with its pipes as one stream once it has started. */
export function spawnProxyCommand(command: string, signal?: AbortSignal): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'] }) as unknown as ChildProcessWithoutNullStreams;
    const stream = new ProxyCommandStream(child);
    const onAbort = () => stream.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    // `on`, not `once`: a child that cannot be killed later emits 'error' again, and an
    // 'error' with no listener would throw out of the child-process callback.
    child.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new SshError(Code.ConnectionFailed, `cannot run ProxyCommand: ${error.message}`, 'local', { cause: error }));
    });
    child.once('spawn', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(stream);
    });
  });
}
