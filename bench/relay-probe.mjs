// Issue 15's measurements before a native data plane is built: what a napi ThreadsafeFunction
// (TSFN) hop costs, and what a native relay thread costs per round trip, per connection and per
// GiB, next to a Node relay (a.pipe(b)) and to OpenSSH / revtun through a loopback sshd.
//
// Part 1 (TSFN probe), in a child process of its own: ping-pong round trips (a native thread
// posts through a TSFN, JS answers with a synchronous call that writes an eventfd the thread
// waits on), a stream of 64-byte items posted 1, 8, 64 or 512 per TSFN call (as one Buffer, or
// as an Array of Buffers), the cost of a trivial synchronous call and of one that writes an
// eventfd (with and without a thread waiting on it), and TSFN creation.
//
// Part 2 (relay probe): tools between the same local service (tunnel.mjs's protocol) and the
// same load generator, each a fresh process per scenario:
//   node-pipe                    Node accepts, connects, a.pipe(b) and b.pipe(a)
//   native-process-thread        Node accepts and connects, probe.node's one relay thread moves the bytes
//   native-thread-per-connection the same with one relay thread per connection
//   native-connect               Node accepts; the one relay thread connects to the service itself
//   OpenSSH ssh -R, revtun (native)  through a loopback sshd, started as bench/tunnel.mjs starts them
// The relay tools listen on the "remote" port themselves: client -> relay -> service, where the
// SSH tools have client -> sshd -> tunnel process -> service. Only the relay / tunnel process's
// CPU is counted: for the relay tools getrusage(RUSAGE_SELF) of the child (asked over stdin; it
// includes ended threads), for the SSH tools the run time of all its threads (schedstat) as in
// tunnel.mjs; both are the kernel's precise run time.
//
// usage: node bench/relay-probe.mjs [--quick] [--runs N] [--json file] [--tsfn-only | --relay-only | --selftest]
//        (build first: bench/native-probe/build.sh and `npm run build`; root for the sshd rows)
// BENCH_TOOLS=node-pipe,native and BENCH_SCENARIOS="round trip" pick tools and scenarios by substring;
// BENCH_PLACEMENT=same|cross pins the processes (see `placed`).

import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const root = resolve(import.meta.dirname, '..');
const probePath = join(import.meta.dirname, 'native-probe/probe.node');
const argv = process.argv.slice(2);
const MiB = 1024 * 1024;

// ======================================================================= part 1: TSFN probe

async function tsfnChild(quick) {
  const probe = createRequire(import.meta.url)(probePath);
  const PING = quick ? 2000 : 20000;
  const ITEMS = quick ? 32768 : 262144;
  const CALLS = quick ? 200000 : 2000000;
  const WAKES = quick ? 20000 : 200000;
  const out = {};

  // CPU is sampled here, in JS, where the other thread (the probe's) is blocked waiting: a
  // thread running on the other core at the moment of a sample is counted only up to its last
  // scheduler tick, which would blur the short rows.
  const cpuMicros = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const pingPong = (n, warmup, probeCpu = -1) => {
    let calls = 0;
    let cpu0 = 0;
    let cpu1 = 0;
    return new Promise((done) =>
      probe.pingPong(
        n,
        warmup,
        probeCpu,
        () => {
          if (calls === warmup) cpu0 = cpuMicros();
          if (calls === warmup + n - 1) cpu1 = cpuMicros();
          calls++;
          probe.pong();
        },
        (r) => {
          probe.joinProbe();
          done({ ...r, jsProcessCpuMicros: ((cpu1 - cpu0) * n) / (n - 1) });
        },
      ),
    );
  };
  // Where the scheduler puts the two threads decides the cost (see PROBE.md): measured as it
  // falls, then with both threads on CPU 0, then with JS on CPU 0 and the probe thread on CPU 1.
  out.pingPong = {};
  for (const [placement, jsCpu, probeCpu] of [
    ['unpinned', -1, -1],
    ['same core', 0, 0],
    ['cross core', 0, 1],
  ]) {
    probe.pinCurrentThread(jsCpu);
    const r = await pingPong(PING, PING / 10, probeCpu);
    probe.pinCurrentThread(-1);
    if (r.error) throw new Error(`ping-pong: ${r.error}`);
    out.pingPong[placement] = r;
  }

  out.stream = [];
  for (const asArray of [false, true]) {
    for (const batch of [1, 8, 64, 512]) {
      let seen = 0;
      let sum = 0;
      let cpu1 = 0;
      let t1 = 0n;
      const cpu0 = cpuMicros();
      const t0 = process.hrtime.bigint();
      const s = await new Promise((done) =>
        probe.stream(
          ITEMS,
          batch,
          asArray,
          (v) => {
            // Touch every item (its sequence number), as a consumer parsing it would.
            if (asArray) {
              for (const item of v) sum += item.readUInt32LE(0);
              seen += v.length;
            } else {
              for (let o = 0; o < v.length; o += 64) sum += v.readUInt32LE(o);
              seen += v.length / 64;
            }
            if (seen === ITEMS) {
              cpu1 = cpuMicros();
              t1 = process.hrtime.bigint();
              probe.pong();
            }
          },
          (result) => {
            probe.joinProbe();
            done(result);
          },
        ),
      );
      if (s.error) throw new Error(`stream: ${s.error}`);
      if (sum !== (ITEMS * (ITEMS - 1)) / 2) throw new Error('stream: items lost or reordered');
      out.stream.push({ asArray, ...s, jsProcessCpuMicros: cpu1 - cpu0, jsWallNanos: Number(t1 - t0) });
    }
  }

  const timeCalls = (n, f) => {
    for (let i = 0; i < n / 10; i++) f(); // warm-up, optimised by the time the timed loop runs
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    const nanos = Number(process.hrtime.bigint() - t0) / n;
    const cpu = process.cpuUsage(cpu0);
    return { calls: n, nanos, cpuNanos: ((cpu.user + cpu.system) * 1000) / n };
  };
  out.calls = {};
  out.calls.emptyJs = timeCalls(CALLS, () => {});
  out.calls.noop = timeCalls(CALLS, () => probe.noop());
  probe.startWaiter(false);
  out.calls.eventfdWrite = timeCalls(WAKES, () => probe.wake());
  probe.stopWaiter();
  probe.startWaiter(true);
  out.calls.eventfdWake = timeCalls(WAKES, () => probe.wake());
  out.calls.eventfdWake.waiter = probe.stopWaiter();
  out.tsfnCreateReleaseNanos = probe.tsfnCreateRelease(() => {}, quick ? 200 : 2000);
  out.threadSpawnJoin = probe.threadSpawnJoin(quick ? 200 : 2000);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function runTsfnChild(quick) {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [import.meta.filename, '--tsfn-child', ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c) => (text += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return fail(new Error(`TSFN probe exited with ${code}`));
      done(JSON.parse(text));
    });
  });
}

// ======================================================================= part 2: the relay child

/**
 * A relay process: listens on `listenPort`, and for each connection connects to the service and
 * relays, the Node way or through probe.node. Speaks a line protocol on stdin/stdout:
 * "cpu" -> its CPU so far and peak RSS; "fdcheck" -> what its epoll sets hold; "quit" -> stops.
 */
async function relayChild(mode, listenPort, servicePort) {
  const probe = mode === 'node-pipe' ? null : createRequire(import.meta.url)(probePath);
  const adopt = mode === 'native-process-thread' ? probe?.adopt : probe?.adoptThread;
  let adoptErrors = 0;
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (a) => {
    if (mode === 'native-connect') {
      // The relay thread opens the service connection itself: no Node socket on that side.
      a.setNoDelay(true);
      try {
        probe.adoptConnect(a._handle.fd, servicePort);
      } catch {
        adoptErrors++;
      }
      a.destroy();
      return;
    }
    const b = net.connect({ port: servicePort, host: '127.0.0.1', allowHalfOpen: true });
    a.setNoDelay(true);
    b.setNoDelay(true);
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    b.once('connect', () => {
      if (!probe) {
        a.pipe(b);
        b.pipe(a);
        return;
      }
      // Neither socket has read anything yet: `a` was accepted paused, and `b` starts its
      // first read only after the 'connect' listeners. From here the dups carry the connections.
      try {
        adopt(a._handle.fd, b._handle.fd);
      } catch {
        adoptErrors++;
      }
      a.destroy();
      b.destroy();
    });
  });
  server.listen(listenPort, '127.0.0.1', () => process.stdout.write('ready\n'));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'cpu') {
      const u = process.resourceUsage();
      process.stdout.write(`${JSON.stringify({ cpuMicros: u.userCPUTime + u.systemCPUTime, userMicros: u.userCPUTime, systemMicros: u.systemCPUTime, maxRssKiB: u.maxRSS })}\n`);
    } else if (line === 'stats') {
      process.stdout.write(`${JSON.stringify(probe ? { ...probe.relayStats(), adoptErrors } : {})}\n`);
    } else if (line === 'fdcheck') {
      process.stdout.write(`${JSON.stringify(epollCheck())}\n`);
    } else if (line === 'quit') {
      server.close();
      const stats = probe ? { ...probe.shutdown(), adoptErrors } : {};
      process.stdout.write(`${JSON.stringify(stats)}\n`);
      break;
    }
  }
  process.exit(0);
}

/**
 * The process's epoll sets from /proc/self/fdinfo: for each, how many descriptors it watches
 * and how many of those are stale (the fd number closed, or now another file), which is what
 * a registration outliving a closed-but-dup'd descriptor would look like.
 */
function epollCheck() {
  const sets = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:[eventpoll]') continue;
    let watched = 0;
    let stale = 0;
    let info = '';
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    for (const m of info.matchAll(/^tfd:\s+(\d+).*ino:([0-9a-f]+)/gm)) {
      watched++;
      try {
        // A socket's or pipe's link names its inode in decimal, fdinfo in hex; anonymous
        // inodes (eventfd, epoll) share one inode and are not compared.
        const number = /:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${m[1]}`));
        if (number && BigInt(number[1]) !== BigInt(`0x${m[2]}`)) stale++;
      } catch {
        stale++; // the fd number is closed
      }
    }
    sets.push({ fd: Number(fd), watched, stale });
  }
  return sets;
}

// ======================================================================= part 2: the harness

const quick = argv.includes('--quick');
const runs = argv.includes('--runs') ? Number(argv[argv.indexOf('--runs') + 1]) : 1;
const jsonOut = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : null;
const BULK = quick ? 64 * MiB : 512 * MiB;
const ROUND_TRIPS = quick ? 300 : 2000;
const CONNECTIONS = quick ? 50 : 400;
const STREAMS = 32;
const block = randomBytes(MiB);

// ---- the local service: tunnel.mjs's protocol (first byte E echo, S short reply, U send N bytes, D sink)
const sinks = new Map();
const service = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.once('readable', function first() {
    const head = socket.read(9);
    if (head === null) return socket.once('readable', first);
    const command = String.fromCharCode(head[0]);
    const arg = Number(head.readBigUInt64BE(1));
    if (command === 'E') socket.pipe(socket);
    else if (command === 'S') socket.end('ok');
    else if (command === 'U') sendPattern(socket, arg);
    else if (command === 'D') {
      const hash = createHash('sha256');
      let count = 0;
      socket.on('data', (chunk) => {
        hash.update(chunk);
        count += chunk.length;
      });
      socket.on('end', () => {
        sinks.get(arg)?.({ hash: hash.digest('hex'), count });
        socket.end();
      });
    } else socket.destroy();
  });
  socket.on('error', () => {});
});

function sendPattern(socket, total) {
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const chunk = block.subarray(0, Math.min(block.length, total - sent));
      sent += chunk.length;
      if (!socket.write(chunk)) return socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
}

const hashes = new Map();
function expectedHash(total) {
  if (!hashes.has(total)) {
    const hash = createHash('sha256');
    for (let sent = 0; sent < total; sent += block.length) hash.update(block.subarray(0, Math.min(block.length, total - sent)));
    hashes.set(total, hash.digest('hex'));
  }
  return hashes.get(total);
}

function header(command, arg) {
  const b = Buffer.alloc(9);
  b[0] = command.charCodeAt(0);
  b.writeBigUInt64BE(BigInt(arg), 1);
  return b;
}

function connect(port) {
  return new Promise((done, fail) => {
    const socket = net.connect(port, '127.0.0.1', () => done(socket));
    socket.setNoDelay(true);
    socket.once('error', fail);
  });
}

let nextSink = 1;
async function download(port, total) {
  const id = nextSink++;
  const result = new Promise((done) => sinks.set(id, done));
  const socket = await connect(port);
  socket.write(header('D', id));
  await new Promise((done) => {
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const chunk = block.subarray(0, Math.min(block.length, total - sent));
        sent += chunk.length;
        if (!socket.write(chunk)) return socket.once('drain', pump);
      }
      socket.end();
      done();
    };
    pump();
  });
  const { hash, count } = await result;
  // The service's end() must come back through the relay's other half-close.
  await new Promise((done) => {
    socket.on('data', () => {});
    socket.on('end', done);
    socket.on('error', done);
  });
  sinks.delete(id);
  socket.destroy();
  if (count !== total || hash !== expectedHash(total)) throw new Error(`download corrupted: ${count} bytes`);
}

async function upload(port, total) {
  const socket = await connect(port);
  socket.write(header('U', total));
  const hash = createHash('sha256');
  let count = 0;
  socket.on('data', (chunk) => {
    hash.update(chunk);
    count += chunk.length;
  });
  await new Promise((done, fail) => {
    socket.on('end', done);
    socket.on('error', (e) => fail(new Error(`upload: ${e.message} after ${count} bytes`)));
  });
  socket.destroy();
  if (count !== total || hash.digest('hex') !== expectedHash(total)) throw new Error(`upload corrupted: ${count} bytes`);
}

async function roundTrips(port, n) {
  const socket = await connect(port);
  socket.write(header('E', 0));
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await new Promise((done) => {
      socket.once('data', done);
      socket.write('x');
    });
  }
  const micros = Number(process.hrtime.bigint() - started) / 1000 / n;
  socket.destroy();
  return micros;
}

async function shortConnections(port, n) {
  for (let i = 0; i < n; i++) {
    const socket = await connect(port);
    socket.write(header('S', 0));
    await new Promise((done) => {
      socket.on('data', () => {});
      socket.on('end', done);
      socket.on('error', done);
    });
    socket.destroy();
  }
}

// ---- the processes measured
const CLOCK_NS = 1e9;
function threadCpuSeconds(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between listing and reading
    }
  }
  return ns / CLOCK_NS;
}

/** utime and stime of all the process's threads, ended ones included, in clock ticks. */
function statTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

function procStatus(pid, key) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}:`));
  return Number(line.split(/\s+/)[1]);
}

function exited(child) {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
}

async function stopChild(child) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited(child);
  clearTimeout(timer);
}

/**
 * BENCH_PLACEMENT: "unpinned" (default) lets the scheduler place everything; "same" puts the
 * harness (client and service), sshd and the measured process on CPU 0; "cross" keeps the
 * harness and sshd on CPU 0 and puts the measured process on CPU 1. On this VM a wake-up
 * across cores costs far more than one on the same core, and unpinned runs land either way.
 */
const placement = process.env.BENCH_PLACEMENT ?? 'unpinned';
function placed(command, args) {
  if (placement === 'unpinned') return [command, args];
  return ['taskset', ['-c', placement === 'same' ? '0' : '1', command, ...args]];
}

/** A relay child (node-pipe or native-*): starts it, asks it for CPU over stdin. */
async function startRelay(mode, servicePort) {
  const { freePort } = await import('../dist/demo/sshd.js');
  const port = await freePort();
  const child = spawn(...placed(process.execPath, [import.meta.filename, '--child', mode, String(port), String(servicePort)]), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = () =>
    new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`${mode}: no answer\n${stderr}`)), 10_000);
      waiting.push((l) => {
        clearTimeout(timer);
        done(l);
      });
    });
  const ready = await nextLine();
  if (ready !== 'ready') throw new Error(`${mode}: ${ready}\n${stderr}`);
  child.stdin.on('error', () => {}); // the child has gone: `ask` times out instead
  let stopping = null;
  const ask = async (what) => {
    const answer = nextLine();
    child.stdin.write(`${what}\n`);
    return JSON.parse(await answer);
  };
  return {
    port,
    pid: child.pid,
    cpuSeconds: async () => (await ask('cpu')).cpuMicros / 1e6,
    rssMiB: () => procStatus(child.pid, 'VmHWM') / 1024,
    threads: () => procStatus(child.pid, 'Threads'),
    fdcheck: () => ask('fdcheck'),
    stats: () => ask('stats'),
    stop: () =>
      (stopping ??= (async () => {
        let stats = {};
        try {
          stats = await ask('quit');
        } catch {}
        await stopChild(child);
        return stats;
      })()),
  };
}

/** OpenSSH or revtun through the loopback sshd, with tunnel.mjs's arguments. */
async function startSshTunnel(kind, ctx, servicePort) {
  const { freePort } = await import('../dist/demo/sshd.js');
  const remotePort = await freePort();
  const cipher = 'aes128-gcm@openssh.com';
  const sshArgs = ['-N', '-T', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes'];
  const target = ['-i', ctx.key.privatePath, '-p', String(ctx.sshd.port), '-o', `Ciphers=${cipher}`, '-R', `127.0.0.1:${remotePort}:127.0.0.1:${servicePort}`, `root@${ctx.sshd.host}`];
  const [command, args, env] = kind === 'openssh' ? ['ssh', [...sshArgs, ...target], {}] : [process.execPath, [join(root, 'dist/cli/main.js'), ...sshArgs, ...target], { REVTUN_CRYPTO: 'native' }];
  const child = spawn(...placed(command, args), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`${kind} exited with ${child.exitCode}\n${stderr}`);
    if (attempt === 500) {
      await stopChild(child);
      throw new Error(`${kind}: forwarding never came up\n${stderr}`);
    }
    try {
      (await connect(remotePort)).destroy();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    port: remotePort,
    pid: child.pid,
    cpuSeconds: async () => threadCpuSeconds(child.pid),
    rssMiB: () => procStatus(child.pid, 'VmHWM') / 1024,
    threads: () => procStatus(child.pid, 'Threads'),
    stop: async () => {
      await stopChild(child);
      return {};
    },
  };
}

const TOOLS = [
  { name: 'node-pipe', start: (ctx, sp) => startRelay('node-pipe', sp) },
  { name: 'native-process-thread', start: (ctx, sp) => startRelay('native-process-thread', sp) },
  { name: 'native-thread-per-connection', start: (ctx, sp) => startRelay('native-thread-per-connection', sp) },
  { name: 'native-connect (process thread)', start: (ctx, sp) => startRelay('native-connect', sp) },
  { name: 'OpenSSH ssh -R', ssh: true, start: (ctx, sp) => startSshTunnel('openssh', ctx, sp) },
  { name: 'revtun (native)', ssh: true, start: (ctx, sp) => startSshTunnel('revtun', ctx, sp) },
];

const SCENARIOS = [
  { name: 'upload', run: (port) => upload(port, BULK), bytes: BULK },
  { name: 'download', run: (port) => download(port, BULK), bytes: BULK },
  { name: '1-byte round trip', warmup: (port) => roundTrips(port, ROUND_TRIPS * 2), run: async (port) => ({ micros: await roundTrips(port, ROUND_TRIPS) }), count: ROUND_TRIPS },
  { name: 'sequential connections', warmup: (port) => shortConnections(port, CONNECTIONS * 2), run: (port) => shortConnections(port, CONNECTIONS), count: CONNECTIONS },
  { name: `${STREAMS} parallel streams`, run: (port) => Promise.all(Array.from({ length: STREAMS }, () => download(port, BULK / STREAMS))), bytes: BULK },
];

/** One tool, one scenario, in a fresh process. */
async function measure(tool, scenario, ctx, servicePort) {
  const proc = await tool.start(ctx, servicePort);
  let stats = {};
  try {
    if (scenario.warmup) await scenario.warmup(proc.port);
    const cpu0 = await proc.cpuSeconds();
    const ticks0 = statTicks(proc.pid);
    const t0 = process.hrtime.bigint();
    const extra = (await scenario.run(proc.port)) ?? {};
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = (await proc.cpuSeconds()) - cpu0;
    const ticks1 = statTicks(proc.pid);
    const ticks = ticks1.user - ticks0.user + ticks1.system - ticks0.system;
    const row = { seconds, cpu, rssMiB: proc.rssMiB(), threads: proc.threads(), ...extra };
    if (scenario.bytes) {
      row.MiBps = scenario.bytes / MiB / seconds;
      row.cpuPerGiB = cpu / (scenario.bytes / 1024 / MiB);
      // The user share, from /proc/<pid>/stat's clock ticks (coarse, so for the bulk rows only).
      row.userShare = ticks ? (ticks1.user - ticks0.user) / ticks : null;
    } else {
      row.cpuMicros = (cpu / scenario.count) * 1e6;
      if (!extra.micros) row.perSecond = scenario.count / seconds;
    }
    if (proc.fdcheck) row.epoll = await proc.fdcheck();
    return row;
  } finally {
    stats = await proc.stop();
    if (stats.pairsAdopted !== undefined) {
      if (stats.pairsFailed || stats.adoptErrors || stats.threadsJoined !== stats.threadsStarted) throw new Error(`${tool.name}: relay stats ${JSON.stringify(stats)}`);
    }
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** "median (±spread%)" where spread is (max - min) / median over the runs. */
function fmt(values, digits = 0) {
  const m = median(values);
  const spread = values.length > 1 ? ` ±${(((Math.max(...values) - Math.min(...values)) / m) * 50).toFixed(0)}%` : '';
  return `${m.toFixed(digits)}${spread}`;
}

function printTsfn(all) {
  const lines = [];
  lines.push('### TSFN ping-pong (post from a native thread -> JS callback -> sync call writes an eventfd -> thread wakes)', '');
  lines.push('| threads placed | round trips | p50 µs | mean µs | p90 µs | p99 µs | process CPU µs / round trip | probe thread CPU µs / round trip |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const placement of Object.keys(all[0].pingPong)) {
    const pp = all.map((r) => r.pingPong[placement]);
    const col = (f, d = 1) => fmt(pp.map(f), d);
    lines.push(
      `| ${placement} | ${pp[0].roundTrips} | ${col((r) => r.p50Nanos / 1000)} | ${col((r) => r.meanNanos / 1000)} | ${col((r) => r.p90Nanos / 1000)} | ${col((r) => r.p99Nanos / 1000)} | ${col((r) => r.jsProcessCpuMicros / r.roundTrips, 2)} | ${col((r) => r.threadCpuMicros / r.roundTrips, 2)} |`,
    );
  }
  lines.push('', '### TSFN streaming: 64-byte items, B per TSFN call (the thread never waits; the queue is unbounded)', '');
  lines.push('| delivered as | B | items | wall ns / item | CPU ns / item | CPU µs / hop | producer CPU ns / item |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  for (let i = 0; i < all[0].stream.length; i++) {
    const rows = all.map((r) => r.stream[i]);
    const s = rows[0];
    lines.push(
      `| ${s.asArray ? 'Array of Buffers' : 'one Buffer'} | ${s.batch} | ${s.items} | ${fmt(rows.map((r) => r.jsWallNanos / r.items))} | ${fmt(rows.map((r) => (r.jsProcessCpuMicros * 1000) / r.items))} | ${fmt(
        rows.map((r) => r.jsProcessCpuMicros / r.hops),
        2,
      )} | ${fmt(rows.map((r) => (r.producerCpuMicros * 1000) / r.items))} |`,
    );
  }
  lines.push('', '### Synchronous JS -> native calls', '');
  lines.push('| call | ns per call (wall) | CPU ns per call (process) |');
  lines.push('|---|---:|---:|');
  const names = {
    emptyJs: 'empty JS function (loop floor)',
    noop: 'noop() (napi-rs, no arguments)',
    eventfdWrite: 'wake(): eventfd write, nobody waiting',
    eventfdWake: 'wake(): eventfd write, a thread in epoll_wait on it',
  };
  for (const [key, label] of Object.entries(names)) {
    lines.push(`| ${label} | ${fmt(all.map((r) => r.calls[key].nanos))} | ${fmt(all.map((r) => r.calls[key].cpuNanos))} |`);
  }
  const w = all.map((r) => r.calls.eventfdWake);
  lines.push(
    '',
    `With a waiter: wake-ups per 100 writes ${fmt(w.map((x) => (x.waiter.wakeups / x.calls) * 100))} (the other writes found it awake), ${fmt(
      w.map((x) => x.waiter.threadCpuMicros / Math.max(1, x.waiter.wakeups)),
      2,
    )} µs of waiter CPU per wake-up.`,
  );
  lines.push(
    `TSFN create + release (main thread, the handle's close is deferred to the loop): ${fmt(
      all.map((r) => r.tsfnCreateReleaseNanos / 1000),
      2,
    )} µs.`,
  );
  lines.push(
    `Thread spawn + join (256 KiB stack; the thread creates and closes an epoll set and an eventfd; the caller waits in join): ${fmt(
      all.map((r) => r.threadSpawnJoin.nanos / 1000),
      1,
    )} µs wall, ${fmt(
      all.map((r) => r.threadSpawnJoin.processCpuNanos / 1000),
      1,
    )} µs CPU.`,
  );
  return lines.join('\n');
}

function printRelay(all) {
  const lines = [];
  const byKey = new Map();
  for (const run of all) for (const r of run) byKey.set(`${r.tool}|${r.scenario}`, [...(byKey.get(`${r.tool}|${r.scenario}`) ?? []), r]);
  const rows = (scenario) => [...byKey.entries()].filter(([k]) => k.endsWith(`|${scenario}`)).map(([k, v]) => [k.split('|')[0], v]);
  for (const s of SCENARIOS) {
    const list = rows(s.name);
    if (!list.length) continue;
    const base = list.find(([t]) => t === 'OpenSSH ssh -R')?.[1];
    const ratio = (v, key) => (base ? `${(median(v.map((r) => r[key])) / median(base.map((r) => r[key]))).toFixed(2)}x` : '-');
    lines.push('', `### ${s.name}`, '');
    if (s.bytes) {
      lines.push('| tool | MiB/s | CPU-s / GiB | user share | CPU ÷ OpenSSH | peak RSS MiB |', '|---|---:|---:|---:|---:|---:|');
      for (const [t, v] of list)
        lines.push(
          `| ${t} | ${fmt(v.map((r) => r.MiBps))} | ${fmt(
            v.map((r) => r.cpuPerGiB),
            2,
          )} | ${v.every((r) => r.userShare !== null) ? `${(median(v.map((r) => r.userShare)) * 100).toFixed(0)}%` : '-'} | ${ratio(v, 'cpuPerGiB')} | ${fmt(v.map((r) => r.rssMiB))} |`,
        );
    } else if (s.name.includes('round trip')) {
      lines.push('| tool | µs / round trip | ÷ OpenSSH | CPU µs / round trip | CPU ÷ OpenSSH |', '|---|---:|---:|---:|---:|');
      for (const [t, v] of list)
        lines.push(
          `| ${t} | ${fmt(
            v.map((r) => r.micros),
            1,
          )} | ${ratio(v, 'micros')} | ${fmt(
            v.map((r) => r.cpuMicros),
            1,
          )} | ${ratio(v, 'cpuMicros')} |`,
        );
    } else {
      lines.push('| tool | connections/s | CPU µs / connection | CPU ÷ OpenSSH | peak RSS MiB |', '|---|---:|---:|---:|---:|');
      for (const [t, v] of list) lines.push(`| ${t} | ${fmt(v.map((r) => r.perSecond))} | ${fmt(v.map((r) => r.cpuMicros))} | ${ratio(v, 'cpuMicros')} | ${fmt(v.map((r) => r.rssMiB))} |`);
    }
  }
  return lines.join('\n');
}

/**
 * --selftest: what the relay must get right besides speed, for both native modes: a reader
 * that stops (backpressure: the relay may not buffer without bound), a peer that resets, and
 * shutdown() with a pair still open (closed, threads joined).
 */
async function selftest() {
  await new Promise((r) => service.listen(0, '127.0.0.1', r));
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  try {
    for (const mode of ['native-process-thread', 'native-thread-per-connection', 'native-connect']) {
      const relay = await startRelay(mode, service.address().port);
      try {
        // 1. Backpressure: ask for 256 MiB and read nothing for a second.
        const total = 256 * MiB;
        const rss0 = procStatus(relay.pid, 'VmRSS') / 1024;
        const socket = await connect(relay.port);
        socket.pause();
        socket.write(header('U', total));
        await sleep(1000);
        const moved = (await relay.stats()).bytes;
        const rss1 = procStatus(relay.pid, 'VmRSS') / 1024;
        const hash = createHash('sha256');
        let count = 0;
        socket.on('data', (c) => {
          hash.update(c);
          count += c.length;
        });
        socket.resume();
        await new Promise((done) => socket.on('end', done));
        socket.destroy();
        const intact = count === total && hash.digest('hex') === expectedHash(total);
        console.log(
          `${mode}: stalled reader: ${(moved / MiB).toFixed(1)} MiB moved in 1 s of 256 MiB, relay RSS ${rss0.toFixed(1)} -> ${rss1.toFixed(1)} MiB; after resuming ${intact ? 'all 256 MiB intact' : `CORRUPTED (${count} bytes)`}`,
        );
        if (!intact || moved > 64 * MiB) throw new Error(`${mode}: backpressure failed`);

        // 2. A reset from the client in the middle of a download.
        const before = await relay.stats();
        const victim = await connect(relay.port);
        victim.write(header('D', 999999));
        victim.write(block);
        await sleep(100);
        victim.resetAndDestroy();
        let after = before;
        for (let i = 0; i < 50 && after.pairsFailed + after.pairsClosed === before.pairsFailed + before.pairsClosed; i++) {
          await sleep(20);
          after = await relay.stats();
        }
        console.log(`${mode}: client reset mid-transfer: pair ${after.pairsFailed > before.pairsFailed ? 'failed and closed' : after.pairsClosed > before.pairsClosed ? 'closed' : 'STILL OPEN'}`);
        if (after.pairsFailed + after.pairsClosed === before.pairsFailed + before.pairsClosed) throw new Error(`${mode}: a reset pair stayed open`);

        // 3. shutdown() with a pair open.
        const open = await connect(relay.port);
        open.write(header('E', 0));
        await new Promise((done) => {
          open.once('data', done);
          open.write('x');
        });
        const closed = new Promise((done) => open.on('close', done));
        open.on('error', () => {});
        open.on('data', () => {});
        const stats = await relay.stop();
        await Promise.race([closed, sleep(2000)]);
        console.log(`${mode}: shutdown() with a pair open: ${JSON.stringify(stats)}; client socket ${open.destroyed ? 'closed' : 'STILL OPEN'}`);
        if (!stats.pairsAborted || stats.threadsJoined !== stats.threadsStarted || !open.destroyed) throw new Error(`${mode}: shutdown failed`);
      } finally {
        await relay.stop();
      }
    }
  } finally {
    service.close();
  }
}

async function main() {
  if (argv.includes('--selftest')) return selftest();
  const tsfnOnly = argv.includes('--tsfn-only');
  const relayOnly = argv.includes('--relay-only');
  const only = process.env.BENCH_TOOLS?.split(',');
  const onlyScenarios = process.env.BENCH_SCENARIOS?.split(',');
  const tools = TOOLS.filter((t) => !only || only.some((o) => t.name.includes(o)));
  if (placement !== 'unpinned') {
    if (!['same', 'cross'].includes(placement)) throw new Error(`BENCH_PLACEMENT=${placement}: unpinned, same or cross`);
    // This thread (the client and the service) and what it spawns from here on (sshd) to CPU 0.
    createRequire(import.meta.url)(probePath).pinCurrentThread(0);
  }
  const tsfnRuns = [];
  const relayRuns = [];
  let ctx = null;
  if (!tsfnOnly) {
    await new Promise((r) => service.listen(0, '127.0.0.1', r));
    if (tools.some((t) => t.ssh)) {
      const { generateKey, startLoopbackSshd } = await import('../dist/demo/sshd.js');
      const dir = mkdtempSync(join(tmpdir(), 'revtun-relay-probe-'));
      const key = generateKey(dir, 'id_ed25519', 'ed25519');
      const sshd = await startLoopbackSshd({ users: ['root'], authorizedKeys: [key.publicLine], config: ['Ciphers aes128-gcm@openssh.com', 'LogLevel ERROR'] });
      ctx = { key, sshd };
    }
  }
  try {
    for (let run = 1; run <= runs; run++) {
      if (!relayOnly) {
        const t = await runTsfnChild(quick);
        tsfnRuns.push(t);
        console.error(
          `run ${run} TSFN ping-pong p50 ${Object.entries(t.pingPong)
            .map(([k, v]) => `${k} ${(v.p50Nanos / 1000).toFixed(1)}`)
            .join(', ')} µs, stream B=1 ${(t.stream[0].wallNanos / t.stream[0].items).toFixed(0)} ns/item, B=512 ${(t.stream[3].wallNanos / t.stream[3].items).toFixed(0)} ns/item`,
        );
      }
      if (tsfnOnly) continue;
      const results = [];
      for (const tool of tools) {
        for (const scenario of SCENARIOS.filter((s) => !onlyScenarios || onlyScenarios.some((o) => s.name.includes(o)))) {
          const r = await measure(tool, scenario, ctx, service.address().port);
          results.push({ run, tool: tool.name, scenario: scenario.name, ...r });
          const { epoll, ...shown } = r;
          const stale = epoll?.reduce((n, e) => n + e.stale, 0);
          console.error(
            `run ${run} ${tool.name.padEnd(29)} ${scenario.name.padEnd(24)} ${JSON.stringify(shown, (k, v) => (typeof v === 'number' ? Number(v.toPrecision(4)) : v))}${stale ? ` STALE epoll entries: ${stale}` : ''}`,
          );
        }
      }
      relayRuns.push(results);
    }
  } finally {
    await ctx?.sshd.stop();
    service.close();
  }
  const text = [
    `runs: ${runs}${quick ? ' (--quick)' : ''}; placement ${placement}; bulk ${BULK / MiB} MiB, ${ROUND_TRIPS} round trips, ${CONNECTIONS} connections, ${STREAMS} streams; figures are medians, ±x% is half the min-max range`,
  ];
  if (tsfnRuns.length) text.push('', '## TSFN probe', '', printTsfn(tsfnRuns));
  if (relayRuns.length) text.push('', '## Relay probe', printRelay(relayRuns));
  console.log(text.join('\n'));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ quick, runs, placement, bulk: BULK, roundTrips: ROUND_TRIPS, connections: CONNECTIONS, tsfn: tsfnRuns, relay: relayRuns }, null, 1));
}

if (argv[0] === '--child') await relayChild(argv[1], Number(argv[2]), Number(argv[3]));
else if (argv[0] === '--tsfn-child') await tsfnChild(argv.includes('--quick'));
else await main();
