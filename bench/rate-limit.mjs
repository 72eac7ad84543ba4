// MaxTransferRate: the rate a tunnel achieves under a few limits, as a ratio to the limit,
// each way, through the same loopback OpenSSH sshd. Each row moves four seconds' worth of the
// limit through one forwarded connection (SHA-256 checked) and times it from the connection
// to the last byte; "largest 100 ms" is the most bytes seen by the far end in any 100 ms
// window, as a ratio to what the limit allows in 100 ms plus the burst: how smooth the flow
// looks from the far end.
//
// usage: node bench/rate-limit.mjs [--quick] [--json file]   (needs root for sshd, and a build)
// Writes bench/RATE-LIMIT.md.

import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateKey, startLoopbackSshd } from '../dist/demo/sshd.js';
import { SSHReverseTunnel, SshAuthMode } from '../dist/index.js';
import { burstFor } from '../dist/net/rate-limit.js';

const here = import.meta.dirname;
const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const KiB = 1024;
const LIMITS = quick ? [256 * KiB, 4096 * KiB] : [64 * KiB, 256 * KiB, 1024 * KiB, 4096 * KiB, 16384 * KiB];
const SECONDS = quick ? 2 : 4;

/** Sends `total` bytes with backpressure, half-closes, and resolves with their SHA-256. */
async function send(socket, total) {
  const hash = createHash('sha256');
  const block = randomBytes(64 * KiB);
  for (let sent = 0; sent < total;) {
    const chunk = block.subarray(0, Math.min(block.length, total - sent));
    hash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
  return hash.digest('hex');
}

/** Receives until the peer half-closes: the hash, and the arrival time of every chunk. */
function receive(socket) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    const arrivals = [];
    socket.on('data', (chunk) => {
      hash.update(chunk);
      arrivals.push([performance.now(), chunk.length]);
    });
    socket.once('end', () => resolve({ sha256: hash.digest('hex'), arrivals }));
    socket.once('error', reject);
  });
}

/** The most bytes that arrived within any `windowMs` span. */
function largestWindow(arrivals, windowMs) {
  let worst = 0;
  let sum = 0;
  let first = 0;
  for (let last = 0; last < arrivals.length; last++) {
    sum += arrivals[last][1];
    while (arrivals[last][0] - arrivals[first][0] > windowMs) sum -= arrivals[first++][1];
    worst = Math.max(worst, sum);
  }
  return worst;
}

function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** One row: `direction` 'in' (remote client → tunnel → local target) or 'out' (the reverse). */
async function measure(sshd, key, limit, direction) {
  const total = limit * SECONDS;
  let far;
  const target = net.createServer({ allowHalfOpen: true }, (socket) => {
    far = direction === 'in' ? receive(socket).then((r) => (socket.end(), r)) : send(socket, total);
  });
  await new Promise((resolve) => target.listen(0, '127.0.0.1', resolve));
  const t = new SSHReverseTunnel();
  t.sshHost = sshd.host;
  t.sshPort = sshd.port;
  t.sshUser = 'root';
  t.sshAuthMode = SshAuthMode.PublicKey;
  t.sshCertStore = key.privateText;
  t.config('SSHAcceptAnyServerHostKey=True');
  t.config(`MaxTransferRate=${limit}`);
  await t.sshLogon();
  try {
    const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.address().port);
    const started = performance.now();
    const client = await connect(port);
    let sent;
    let got;
    if (direction === 'in') {
      sent = await send(client, total);
      client.resume();
      await new Promise((resolve) => client.once('end', resolve));
      got = await far;
    } else {
      client.end();
      got = await receive(client);
      sent = await far;
    }
    const seconds = (got.arrivals.at(-1)[0] - started) / 1000;
    client.destroy();
    if (got.sha256 !== sent) throw new Error(`${direction} at ${limit}: the data arrived changed`);
    const achieved = total / seconds;
    const window = largestWindow(got.arrivals, 100);
    return { limit, direction, bytes: total, seconds, achieved, ratio: achieved / limit, largest100ms: window / (limit * 0.1 + burstFor(limit)) };
  } finally {
    await t.sshLogoff();
    await new Promise((resolve) => target.close(resolve));
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'revtun-bench-rate-'));
  const key = generateKey(dir, 'id_ed25519', 'ed25519');
  const sshd = await startLoopbackSshd({ users: ['root'], authorizedKeys: [key.publicLine], config: ['LogLevel ERROR'] });
  const rows = [];
  try {
    for (const limit of LIMITS) {
      for (const direction of ['in', 'out']) {
        const row = await measure(sshd, key, limit, direction);
        rows.push(row);
        console.error(
          `${String(limit / KiB).padStart(6)} KiB/s ${direction.padEnd(3)} achieved ${(row.achieved / KiB).toFixed(1)} KiB/s = ${row.ratio.toFixed(3)} of the limit; largest 100 ms ${row.largest100ms.toFixed(2)}`,
        );
      }
    }
  } finally {
    await sshd.stop();
  }
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ seconds: SECONDS, rows }, null, 2));
  const lines = [
    '# MaxTransferRate: achieved rate as a ratio to the limit',
    '',
    `Recorded by \`node bench/rate-limit.mjs${quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)} (${cpus()[0].model}, ${cpus().length} cores, Linux ${release()}, Node ${process.versions.node}),`,
    `through a loopback OpenSSH sshd; every process shares the same cores. Each row moves ${SECONDS} s worth of the limit through`,
    'one forwarded connection, timed from the connection to the last byte. "in" is remote client → sshd → revtun → local',
    'target, "out" the reverse. "largest 100 ms" is the most bytes that arrived in any 100 ms, ÷ (the limit × 0.1 s + the',
    "bucket's burst): near 1 is smooth. It is measured at the far end. Out, the bucket paces the encrypted bytes on the wire",
    'and the far end gets them a whole SSH packet (up to 32 KiB, MaxPacketSize) at a time, once all of it has arrived: at',
    '64 KiB/s one packet is half a second of the limit, hence the clumps there. In, the bucket paces the window credit',
    'given to the server, which then sends packets no larger than each grant (half a burst), so the flow is finer. Buffers',
    'behind sshd and the event loop add some more (the bucket itself never lets more through: test/unit/net/rate-limit.test.ts).',
    'Achieved ÷ limit can read a little above 1: the bucket starts with one burst saved up (burst + rate × time is the bound).',
    '',
    '| limit KiB/s | direction | achieved KiB/s | achieved ÷ limit | largest 100 ms |',
    '|---:|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.limit / KiB} | ${r.direction} | ${(r.achieved / KiB).toFixed(1)} | ${r.ratio.toFixed(3)} | ${r.largest100ms.toFixed(2)} |`),
    '',
  ];
  writeFileSync(join(here, 'RATE-LIMIT.md'), lines.join('\n'));
  console.error(`wrote ${join(here, 'RATE-LIMIT.md')}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
