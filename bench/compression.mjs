// `node bench/compression.mjs` (after `npm run build`; `npm run bench -- --compression` runs it too):
// throughput, CPU and bytes on the wire of one forwarded connection through the library with
// compression none and zlib@openssh.com, for log-like text and for random data, in both
// directions, against a loopback sshd with Compression yes. Writes its section of
// bench/RESULTS.md (between the compression markers) and prints the rows.
//
// CPU is this process's user + system time per MiB moved: the tunnel, the local service and the
// client of the forwarded port all run here, the same for both settings, so the difference
// between the two rows of a pair is what compression costs. sshd's CPU is not counted.

import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { generateKey, startLoopbackSshd } from '../dist/demo/sshd.js';
import { SSHReverseTunnel, SshAuthMode } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const MiB = 1024 * 1024;
const size = (quick ? 8 : 32) * MiB;

/** Log lines: timestamps, words and numbers that change on every line (about 5:1 with zlib). */
function logText(bytes) {
  const words = ['GET', '/api/v1/items', 'HTTP/1.1', '200', 'OK', 'user', 'session', 'opened', 'closed', 'forwarded', 'port', 'from'];
  const parts = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const line = `${new Date(1_700_000_000_000 + i * 997).toISOString()} ${words[(i * 5) % words.length]} ${words[(i * 7) % words.length]} id=${(i * 2654435761) >>> 0}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

async function writeAll(socket, data) {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    if (!socket.write(data.subarray(at, at + 64 * 1024))) await new Promise((r) => socket.once('drain', r));
  }
  socket.end();
}

function drainHashed(socket) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    socket.on('data', (c) => hash.update(c));
    socket.once('end', () => resolve(hash.digest('hex')));
    socket.once('error', reject);
  });
}

const dir = mkdtempSync(join(tmpdir(), 'revtun-bench-compression-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
const sshd = await startLoopbackSshd({ users: ['root'], authorizedKeys: [key.publicLine], config: ['Compression yes', 'Ciphers aes128-gcm@openssh.com', 'LogLevel ERROR'] });

/** One transfer of `data`: "upload" goes local service → tunnel → sshd (we deflate), "download" the reverse (we inflate). */
async function transfer(compression, direction, data) {
  const t = new SSHReverseTunnel();
  t.sshHost = sshd.host;
  t.sshPort = sshd.port;
  t.sshUser = 'root';
  t.sshAuthMode = SshAuthMode.PublicKey;
  t.sshCertStore = key.privatePath;
  t.config('SSHAcceptAnyServerHostKey=True');
  t.sshCompressionAlgorithms = compression;
  const logs = [];
  t.on('log', (e) => logs.push(e.message));
  let accepted;
  const done = new Promise((resolve) => {
    accepted = resolve;
  });
  const service = net.createServer({ allowHalfOpen: true }, (socket) => {
    if (direction === 'upload') void writeAll(socket, data);
    accepted(drainHashed(socket));
  });
  await new Promise((r) => service.listen(0, '127.0.0.1', r));
  await t.sshLogon();
  const port = await t.requestForwarding('127.0.0.1', 0, '127.0.0.1', service.address().port);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise((r) => client.once('connect', r));
  let received;
  if (direction === 'upload') {
    received = await drainHashed(client);
    client.end();
    await done;
  } else {
    const [, hash] = await Promise.all([writeAll(client, data), done]);
    received = hash;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  client.destroy();
  await t.sshLogoff();
  service.close();
  if (received !== createHash('sha256').update(data).digest('hex')) throw new Error(`${compression} ${direction}: data changed in transit`);
  const summary = logs.map((l) => l.match(/^compress (outgoing|incoming): raw data (\d+), compressed (\d+)/)).filter(Boolean);
  const line = summary.find((m) => m[1] === (direction === 'upload' ? 'outgoing' : 'incoming'));
  const wireRatio = line ? Number(line[3]) / Number(line[2]) : 1;
  return { MiBps: data.length / MiB / seconds, cpuMsPerMiB: (used.user + used.system) / 1000 / (data.length / MiB), wireRatio };
}

const rows = [];
try {
  for (const [kind, data] of [
    ['text', logText(size)],
    ['random', randomBytes(size)],
  ]) {
    for (const direction of ['upload', 'download']) {
      for (const compression of ['none', 'zlib@openssh.com']) {
        await transfer(compression, direction, data.subarray(0, MiB)); // warm-up
        const r = await transfer(compression, direction, data);
        rows.push({ kind, direction, compression, ...r });
        console.error(
          `${kind.padEnd(7)} ${direction.padEnd(9)} ${compression.padEnd(17)} ${r.MiBps.toFixed(1)} MiB/s  ${r.cpuMsPerMiB.toFixed(1)} CPU-ms/MiB  wire ${(r.wireRatio * 100).toFixed(1)}%`,
        );
      }
    }
  }
} finally {
  await sshd.stop();
}

/** Throughput over a link of `linkMiBps`: the wire carries wireRatio of each byte, the CPU caps the rest. */
const overLink = (r, linkMiBps) => Math.min(r.MiBps, linkMiBps / r.wireRatio);
const f = (n, d = 1) => n.toFixed(d);
const section = [
  '<!-- compression:start -->',
  '## Compression: none vs zlib@openssh.com',
  '',
  `Recorded by \`node bench/compression.mjs${quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)} (${cpus()[0].model}, ${cpus().length} cores, Node ${process.versions.node}): one forwarded`,
  `connection through the library to a loopback sshd with Compression yes, ${size / MiB} MiB of log-like text or random bytes, checked with`,
  'SHA-256. "upload" is local service → tunnel → sshd (revtun deflates), "download" the reverse (revtun inflates). CPU is the whole',
  'benchmark process per MiB (tunnel, local service and client alike), so compare the two rows of a pair. "wire" is the compressed',
  'payload as a share of the plain payload. The last two columns are what the loopback numbers give over a slower link: the',
  'smaller of the CPU-bound rate and the link rate divided by the wire share.',
  '',
  '| data | direction | compression | MiB/s (loopback) | CPU-ms per MiB | wire | MiB/s over 10 Mbit/s | MiB/s over 1 Gbit/s |',
  '|---|---|---|---:|---:|---:|---:|---:|',
  ...rows.map(
    (r) =>
      `| ${r.kind} | ${r.direction} | ${r.compression} | ${f(r.MiBps)} | ${f(r.cpuMsPerMiB)} | ${f(r.wireRatio * 100)}% | ${f(overLink(r, 10 / 8 / 1.048576), 2)} | ${f(overLink(r, 1000 / 8 / 1.048576))} |`,
  ),
  '<!-- compression:end -->',
].join('\n');
const results = join(import.meta.dirname, 'RESULTS.md');
const old = existsSync(results) ? readFileSync(results, 'utf8') : '# Benchmark results\n';
const marked = /<!-- compression:start -->[\s\S]*<!-- compression:end -->/;
writeFileSync(results, marked.test(old) ? old.replace(marked, section) : `${old.trimEnd()}\n\n${section}\n`);
console.error(`wrote the compression section of ${results}`);
