// Real proxies on loopback for the proxy tests, each started with a config of its own and
// stopped by PID: tinyproxy (HTTP CONNECT with Basic auth), dante (SOCKS4 and SOCKS5),
// microsocks (SOCKS5 with a user name and password), and OpenSSH's own `ssh -D` (SOCKS4A:
// dante resolves no names for SOCKS4 clients). Readiness is a line the proxy logs, or for the
// ones that log nothing at start, the listening socket appearing in /proc/net/tcp.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './sshd.js';
import { pollUntil, tcpSockets } from './kernel.js';

export interface RunningProxy {
  port: number;
  /** What the proxy has logged so far. */
  log(): string;
  stop(): Promise<void>;
}

function run(command: string, args: string[], port: number, ready?: RegExp): Promise<RunningProxy> {
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 1_000_000) output = output.slice(-500_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proxy: RunningProxy = {
    port,
    log: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  const listening = () => tcpSockets().some((s) => s.state === 'LISTEN' && s.localPort === port);
  return new Promise<RunningProxy>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${command} exited with status ${code}: ${output}`)));
    child.once('error', reject);
    const waitForLog = ready
      ? new Promise<void>((done) => {
          const check = () => ready.test(output) && done();
          child.stdout!.on('data', check);
          child.stderr!.on('data', check);
        })
      : Promise.resolve();
    waitForLog.then(() => pollUntil(listening, `${command} to listen on ${port}`)).then(() => resolve(proxy), reject);
  });
}

/**
 * tinyproxy as an HTTP tunneling proxy; with `auth`, Basic authentication is required.
 * `directives` are more lines for its config: `ConnectPort N` (CONNECT to other ports is
 * refused with 403), `Upstream http host:port` (a proxy it goes through; 502 if it cannot).
 */
export async function startTinyproxy(auth?: { user: string; password: string }, directives: string[] = []): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'revtun-tinyproxy-'));
  const port = await freePort();
  const config = join(dir, 'tinyproxy.conf');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 60',
      'LogLevel Connect',
      'MaxClients 50',
      'Allow 127.0.0.1',
      'User nobody',
      'Group nogroup',
      ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []),
      ...directives,
    ].join('\n') + '\n',
  );
  return run('tinyproxy', ['-d', '-c', config], port, /Initializing tinyproxy/);
}

/** dante as a SOCKS4 and SOCKS5 proxy without authentication. */
export async function startDante(): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'revtun-dante-'));
  const port = await freePort();
  const config = join(dir, 'danted.conf');
  writeFileSync(
    config,
    [
      'logoutput: stderr',
      `internal: 127.0.0.1 port = ${port}`,
      'external: 127.0.0.1',
      'clientmethod: none',
      'socksmethod: none',
      'user.privileged: root',
      'user.unprivileged: nobody',
      'client pass {',
      '  from: 127.0.0.0/8 to: 0.0.0.0/0',
      '  log: connect error',
      '}',
      'socks pass {',
      '  from: 127.0.0.0/8 to: 0.0.0.0/0',
      '  command: connect',
      '  log: connect error',
      '}',
    ].join('\n') + '\n',
  );
  return run('/usr/sbin/danted', ['-f', config, '-N', '1', '-p', join(dir, 'danted.pid')], port, /running/);
}

/** microsocks as a SOCKS5 proxy that requires this user name and password. */
export async function startMicrosocks(auth: { user: string; password: string }): Promise<RunningProxy> {
  const port = await freePort();
  return run('microsocks', ['-i', '127.0.0.1', '-p', String(port), '-u', auth.user, '-P', auth.password], port);
}

/** OpenSSH's dynamic forwarding (`ssh -N -D`) through `sshd`: a SOCKS4, SOCKS4A and SOCKS5 proxy. */
export async function startSshDynamic(sshd: { host: string; port: number }, key: { privatePath: string }, user: string): Promise<RunningProxy> {
  const port = await freePort();
  return run(
    'ssh',
    [
      '-N',
      '-v',
      '-D',
      `127.0.0.1:${port}`,
      '-p',
      String(sshd.port),
      '-i',
      key.privatePath,
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      `${user}@${sshd.host}`,
    ],
    port,
    /Local forwarding listening on 127\.0\.0\.1 port \d+/,
  );
}
