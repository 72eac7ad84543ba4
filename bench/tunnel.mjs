// Side-by-side tunnel benchmark: the revtun CLI, OpenSSH's `ssh -N -R` and the `ssh2` npm
// package, each as the tunnel process between the same loopback sshd and the same local
// service. For each tool and scenario a fresh tunnel process is started; its CPU time
// (utime+stime from /proc) is read around the scenario and its peak RSS (VmHWM) at the end.
//
// Scenarios: 1 GiB upload and download (SHA-256 checked) per cipher, 1-byte round trips,
// sequential short connections, and 32 parallel streams. Directions are the tunnel process's:
// "upload" is local service -> tunnel -> sshd -> remote client, "download" the reverse.
//
// usage: node bench/tunnel.mjs [--quick] [--json file]     (needs root for sshd, and a build)
// For investigating one case: BENCH_TOOLS=native,OpenSSH and BENCH_SCENARIOS="download aes" pick
// rows by substring, BENCH_REPEAT=3 keeps the median of three runs of each row, BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the revtun
// process, BENCH_DEBUG=1 shows its -vv log and sshd's,
// BENCH_PERF=DIR records `perf record -g` of the tunnel process during each measured scenario.

import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKey, freePort, startLoopbackSshd } from '../dist/demo/sshd.js';

const root = resolve(import.meta.dirname, '..');
const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const MiB = 1024 * 1024;
const BULK = quick ? 128 * MiB : 1024 * MiB;
const ROUND_TRIPS = quick ? 500 : 2000;
const CONNECTIONS = quick ? 100 : 400;
const STREAMS = 32;
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1));
const PER_STREAM = BULK / STREAMS;
const CLOCK_TICK = 100; // USER_HZ on Linux
const block = randomBytes(MiB);

// ---- the local service behind the tunnel: the first byte of each connection says what to do
const sinks = new Map(); // id -> resolve(hash) for downloads
const service = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.once('readable', function first() {
    const head = socket.read(9);
    if (head === null) return socket.once('readable', first);
    const command = String.fromCharCode(head[0]);
    const arg = Number(head.readBigUInt64BE(1));
    if (command === 'E') {
      socket.pipe(socket);
    } else if (command === 'S') {
      socket.end('ok');
    } else if (command === 'U') {
      sendPattern(socket, arg);
    } else if (command === 'D') {
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
    } else {
      socket.destroy();
    }
  });
  socket.on('error', () => {});
});

/** Writes `total` bytes of the repeating random block, respecting backpressure; returns its SHA-256. */
function sendPattern(socket, total) {
  const hash = createHash('sha256');
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      const chunk = block.subarray(0, Math.min(block.length, total - sent));
      sent += chunk.length;
      hash.update(chunk);
      if (!socket.write(chunk)) return socket.once('drain', pump);
    }
    socket.end();
  };
  pump();
  return hash;
}

function expectedHash(total) {
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; sent += block.length) hash.update(block.subarray(0, Math.min(block.length, total - sent)));
  return hash.digest('hex');
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

// ---- scenarios, run from the "remote client" side (connecting to sshd's forwarded port)
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

// ---- tunnel processes
function cpuTimes(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) / CLOCK_TICK, system: Number(fields[12]) / CLOCK_TICK, faults: Number(fields[7]) };
}

/** CPU seconds of all the process's threads, to the nanosecond (schedstat), for rows too short for clock ticks. */
function threadCpuSeconds(pid) {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between listing and reading
    }
  }
  return ns / 1e9;
}

/** CPU nanoseconds per thread name (comm: "node", "revtun-relay", "libuv-worker", ...), for BENCH_THREADS. */
function threadCpuByName(pid) {
  const byName = new Map();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      byName.set(name, (byName.get(name) ?? 0) + ns);
    } catch {
      // the thread ended between listing and reading
    }
  }
  return byName;
}

function peakRssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return Number(line.split(/\s+/)[1]) / 1024;
}

function toolCommand(tool, sshd, keyPath, remotePort, localPort, cipher) {
  const sshArgs = ['-N', '-T', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ExitOnForwardFailure=yes'];
  const target = ['-i', keyPath, '-p', String(sshd.port), '-o', `Ciphers=${cipher}`, '-R', `127.0.0.1:${remotePort}:127.0.0.1:${localPort}`, `root@${sshd.host}`];
  switch (tool.kind) {
    case 'openssh':
      return ['ssh', [...sshArgs, ...target], {}];
    case 'revtun':
      return [
        process.execPath,
        [...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), join(root, 'dist/cli/main.js'), ...sshArgs, ...(process.env.BENCH_DEBUG ? ['-vv'] : []), ...target],
        { REVTUN_CRYPTO: tool.provider, ...tool.env },
      ];
    case 'ssh2':
      return [process.execPath, [join(root, 'bench/ssh2-tunnel.mjs'), sshd.host, String(sshd.port), 'root', keyPath, String(remotePort), String(localPort), cipher], {}];
  }
}

async function waitForForwarding(port, child) {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (child.exitCode !== null) throw new Error(`tunnel process exited with ${child.exitCode}`);
    try {
      const socket = await connect(port);
      socket.destroy();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20)); // a benchmark harness may poll; tests never do
    }
  }
  throw new Error('forwarding never came up');
}

/**
 * `warmup` runs first and is not counted (neither time nor CPU). Without it the short
 * scenarios measure a JavaScript tunnel before its code is optimised: its CPU per round trip
 * settles only after several thousand round trips (about half of what the first thousand
 * cost), which a long-running tunnel leaves behind in its first seconds. Every tool gets the
 * same warm-up.
 */
async function withTunnel(tool, sshd, keyPath, cipher, scenario, warmup = async () => {}) {
  const remotePort = await freePort();
  const [command, args, env] = toolCommand(tool, sshd, keyPath, remotePort, service.address().port, cipher);
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', process.env.BENCH_DEBUG ? 'inherit' : 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr?.on('data', (c) => (stderr += c));
  try {
    await waitForForwarding(remotePort, child);
    await warmup(remotePort);
    const before = cpuTimes(child.pid);
    const threadsBefore = threadCpuSeconds(child.pid);
    const namesBefore = process.env.BENCH_THREADS ? threadCpuByName(child.pid) : null;
    const perf = process.env.BENCH_PERF ? await attachPerf(child.pid, `${process.env.BENCH_PERF}/${tool.name.replace(/\W+/g, '_')}-${runCount++}.data`) : null;
    const started = process.hrtime.bigint();
    const extra = await scenario(remotePort);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await perf?.();
    const after = cpuTimes(child.pid);
    const threadCpu = threadCpuSeconds(child.pid) - threadsBefore;
    if (namesBefore) {
      // BENCH_THREADS=1: where the tunnel process's CPU went, per thread name (ms).
      const spent = [...threadCpuByName(child.pid)].map(([name, ns]) => `${name} ${((ns - (namesBefore.get(name) ?? 0)) / 1e6).toFixed(1)}`);
      process.stderr.write(`${tool.name} threads (ms): ${spent.join(', ')}\n`);
    }
    const user = after.user - before.user;
    const system = after.system - before.system;
    return { seconds, cpu: user + system, user, system, threadCpu, faults: after.faults - before.faults, rss: peakRssMiB(child.pid), ...extra };
  } catch (error) {
    throw new Error(`${tool.name}: ${error.message}\n${stderr}`);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  }
}

let runCount = 0;

/**
 * BENCH_PERF=DIR: `perf record -g` on the tunnel process (every thread) for the measured
 * scenario only; returns the stop. Its sampling costs CPU: the figures of such a run are not
 * comparable with others.
 */
async function attachPerf(pid, file) {
  const perf = spawn('perf', ['record', '-F', '999', '-g', '-p', String(pid), '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  await new Promise((resolve, reject) => {
    perf.stderr.on('data', (c) => (said += c));
    perf.once('error', reject);
    // perf is attached once the process's threads are opened; it says nothing until then.
    setTimeout(resolve, 500); // a benchmark harness may wait; tests never do
  });
  return () =>
    new Promise((resolve) => {
      perf.once('exit', () => {
        process.stderr.write(`perf: ${file}\n${said}`);
        resolve();
      });
      perf.kill('SIGINT');
    });
}

/**
 * Runs a scenario BENCH_REPEAT times (default 1) and keeps the run with the median `by`
 * (CPU time unless told): single runs on a shared 2-core machine vary by 10-15%.
 */
async function medianRun(run, by = (r) => r.cpu) {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await run());
  runs.sort((a, b) => by(a) - by(b));
  return runs[(runs.length - 1) >> 1];
}

const TOOLS = [
  { name: 'OpenSSH ssh -R', kind: 'openssh' },
  { name: 'revtun (native)', kind: 'revtun', provider: 'native', env: { REVTUN_DATA_PLANE: 'js' } },
  // The native data plane (DataPlane=native): the addon's relay thread moves the forwarded bytes.
  { name: 'revtun (native plane)', kind: 'revtun', provider: 'native', env: { REVTUN_DATA_PLANE: 'native' } },
  { name: 'revtun (wasm)', kind: 'revtun', provider: 'wasm' },
  { name: 'revtun (node)', kind: 'revtun', provider: 'node' },
  // What a machine without the addon gets by default: the automatic provider over node:crypto and WASM.
  { name: 'revtun (auto, no addon)', kind: 'revtun', provider: '', env: { REVTUN_NATIVE: '0' } },
  { name: 'ssh2 (npm)', kind: 'ssh2' },
];

const only = process.env.BENCH_TOOLS?.split(',');

async function main() {
  await new Promise((r) => service.listen(0, '127.0.0.1', r));
  const dir = mkdtempSync(join(tmpdir(), 'revtun-bench-'));
  const key = generateKey(dir, 'id_ed25519', 'ed25519');
  const ciphers = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'];
  const sshd = await startLoopbackSshd({ users: ['root'], authorizedKeys: [key.publicLine], config: [`Ciphers ${ciphers.join(',')}`, process.env.BENCH_DEBUG ? 'LogLevel DEBUG1' : 'LogLevel ERROR'] });
  const results = [];
  const scenarios = process.env.BENCH_SCENARIOS?.split(',');
  const wanted = (name) => !scenarios || scenarios.some((s) => name.includes(s));
  const record = (tool, scenario, values) => {
    results.push({ tool: tool.name, scenario, ...values });
    console.error(`${tool.name.padEnd(18)} ${scenario.padEnd(32)} ${JSON.stringify(values)}`);
  };
  try {
    for (const tool of TOOLS.filter((t) => !only || only.some((o) => t.name.includes(o)))) {
      for (const cipher of ciphers) {
        const short = cipher.split('@')[0];
        for (const [direction, run] of [
          ['upload', upload],
          ['download', download],
        ]) {
          if (!wanted(`${direction} ${short}`)) continue;
          const r = await medianRun(() => withTunnel(tool, sshd, key.privatePath, cipher, (port) => run(port, BULK)));
          const gib = BULK / 1024 / MiB;
          record(tool, `${direction} ${short}`, {
            MiBps: BULK / MiB / r.seconds,
            cpuPerGiB: r.cpu / gib,
            userPerGiB: r.user / gib,
            systemPerGiB: r.system / gib,
            faultsPerMiB: r.faults / (BULK / MiB),
            rssMiB: r.rss,
          });
        }
      }
      const cipher = ciphers[0];
      if (wanted('round trip')) {
        const rtt = await medianRun(
          () =>
            withTunnel(
              tool,
              sshd,
              key.privatePath,
              cipher,
              async (port) => ({ micros: await roundTrips(port, ROUND_TRIPS) }),
              (port) => roundTrips(port, ROUND_TRIPS * 2),
            ),
          (r) => r.micros,
        );
        record(tool, '1-byte round trip', { micros: rtt.micros, cpuMicros: (rtt.threadCpu / ROUND_TRIPS) * 1e6 });
      }
      if (wanted('sequential connections')) {
        const conns = await medianRun(
          () =>
            withTunnel(
              tool,
              sshd,
              key.privatePath,
              cipher,
              (port) => shortConnections(port, CONNECTIONS),
              (port) => shortConnections(port, CONNECTIONS * 2),
            ),
          (r) => r.seconds,
        );
        record(tool, 'sequential connections', { perSecond: CONNECTIONS / conns.seconds, cpuMicros: (conns.threadCpu / CONNECTIONS) * 1e6 });
      }
      if (wanted(`${STREAMS} parallel streams`)) {
        const parallel = await medianRun(() => withTunnel(tool, sshd, key.privatePath, cipher, (port) => Promise.all(Array.from({ length: STREAMS }, () => download(port, PER_STREAM)))));
        const gib = BULK / 1024 / MiB;
        record(tool, `${STREAMS} parallel streams`, {
          MiBps: BULK / MiB / parallel.seconds,
          cpuPerGiB: parallel.cpu / gib,
          userPerGiB: parallel.user / gib,
          systemPerGiB: parallel.system / gib,
          rssMiB: parallel.rss,
        });
      }
    }
  } catch (error) {
    if (process.env.BENCH_DEBUG) console.error(sshd.log().slice(-4000));
    throw error;
  } finally {
    await sshd.stop();
    service.close();
  }
  const output = { bulkBytes: BULK, roundTrips: ROUND_TRIPS, connections: CONNECTIONS, streams: STREAMS, results };
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(output, null, 1));
  else console.log(JSON.stringify(output, null, 1));
}

await main();
