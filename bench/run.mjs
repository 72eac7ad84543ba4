// `npm run bench`: runs the provider micro-benchmark and the side-by-side tunnel benchmark,
// then writes bench/RESULTS.md with this machine's details and every figure also as a ratio
// to OpenSSH (`openssl speed` for the micro-benchmark). `--quick` shrinks the sizes; `--compression`
// also runs bench/compression.mjs (none vs zlib@openssh.com) and records its section;
// `--crypto-only` runs the micro-benchmark alone and keeps the tunnel section already recorded.

import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, totalmem, release } from 'node:os';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;
const quick = process.argv.includes('--quick');
const cryptoOnly = process.argv.includes('--crypto-only');
const extra = quick ? ['--quick'] : [];
const cryptoJson = join(here, '.crypto.json');
const tunnelJson = join(here, '.tunnel.json');

execFileSync(process.execPath, [join(here, 'crypto.mjs'), ...extra, '--json', cryptoJson], { stdio: 'inherit' });
// Each tunnel row is the median of three runs (one with --quick): single runs vary by 10-15% here.
const repeat = process.env.BENCH_REPEAT ?? (quick ? '1' : '3');
if (!cryptoOnly) {
  execFileSync(process.execPath, [join(here, 'tunnel.mjs'), ...extra, '--json', tunnelJson], { stdio: 'inherit', env: { ...process.env, BENCH_REPEAT: repeat } });
  // MaxTransferRate's achieved rates: a file of their own (bench/RATE-LIMIT.md).
  execFileSync(process.execPath, [join(here, 'rate-limit.mjs'), ...extra], { stdio: 'inherit' });
}
const crypto = JSON.parse(readFileSync(cryptoJson, 'utf8'));
const tunnel = cryptoOnly ? null : JSON.parse(readFileSync(tunnelJson, 'utf8'));
const { BACKEND_ORDER, DEFAULT_ORDER } = await import('../dist/crypto/auto.js');
const resultsPath = join(here, 'RESULTS.md');
let previous = '';
try {
  previous = readFileSync(resultsPath, 'utf8');
} catch {}

// `ssh -V` prints to stderr, `openssl version` to stdout: take whichever has the text.
const version = (cmd, args) => {
  const run = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${run.stdout ?? ''}${run.stderr ?? ''}`.trim().split('\n')[0] || 'unknown';
};
const ssh2Version = JSON.parse(readFileSync(join(here, '../node_modules/ssh2/package.json'), 'utf8')).version;
const f = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '-');

const lines = [];
lines.push('# Benchmark results', '');
lines.push(
  `Recorded by \`npm run bench${quick || cryptoOnly ? ' --' : ''}${quick ? ' --quick' : ''}${cryptoOnly ? ' --crypto-only' : ''}\` on ${new Date().toISOString().slice(0, 10)}. Regenerate with the same command; numbers move by`,
);
lines.push(`a few percent between runs on a shared machine, so compare ratios taken in one run.${cryptoOnly ? '' : ` Each tunnel row is the median of ${repeat} run(s).`}`, '');
lines.push('## Machine', '');
lines.push(`- CPU: ${cpus()[0].model}, ${cpus().length} cores; ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Linux ${release()}`);
lines.push(`- Node ${process.versions.node}; ${version('ssh', ['-V'])}; ${version('openssl', ['version'])}; ssh2 ${ssh2Version}`);
lines.push('- Every process (sshd, the tunnel process and the load generator) runs on the same 2 cores, over loopback.', '');

lines.push('## Packet crypto: MB/s sealing / opening whole packets', '');
lines.push('Measured with `revtun speed` (`benchmarkCrypto`): whole packets sealed and opened in place, the packet size being');
lines.push('its bytes on the wire. `openssl speed -evp` of the same primitive (no SSH framing, no MAC for the non-AEAD rows) is');
lines.push('the yardstick; "native ÷ openssl" compares native sealing with it, "simd ÷ scalar" the two WASM builds. UMAC,');
lines.push('Blowfish, CAST-128 and RC4 have no OpenSSL counterpart here.', '');
lines.push('| algorithm | packet | native | wasm simd128 | wasm scalar | node | openssl speed | native ÷ openssl | simd ÷ scalar |');
lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
const pair = (r) => (r ? `${f(r.seal)} / ${f(r.open)}` : 'not offered');
for (const row of crypto.rows) {
  const cells = [row.native, row['wasm-simd'], row['wasm-scalar'], row.node].map(pair);
  lines.push(
    `| ${row.algorithm} | ${row.size / 1024} KiB | ${cells.join(' | ')} | ${f(row.openssl)} | ${ratio(row.native?.seal, row.openssl)} | ${ratio(row['wasm-simd']?.seal, row['wasm-scalar']?.seal)} |`,
  );
}
lines.push('');

// The automatic provider's order (ts/crypto/auto.ts) against this run: per family, the backends
// that offer its representative pair, fastest sealer first at 16 KiB (wasm = the SIMD build).
lines.push('## The automatic provider’s backend order, checked', '');
lines.push('`BACKEND_ORDER` in `ts/crypto/auto.ts` against the 16 KiB seal figures above (wasm = the SIMD build).', '');
lines.push('| family | measured on | table | measured (MB/s) | agrees |', '|---|---|---|---|---|');
const families = [
  ...BACKEND_ORDER.map((entry) => ({ family: entry.family, order: entry.order, match: (a) => entry.ciphers.test(a.split(' + ')[0]) })),
  { family: 'the rest (default)', order: DEFAULT_ORDER, match: (a) => !BACKEND_ORDER.some((e) => e.ciphers.test(a.split(' + ')[0])) },
];
for (const { family, order, match } of families) {
  const row = crypto.rows.find((r) => r.size === 16 * 1024 && match(r.algorithm));
  if (!row) continue;
  const seal = { native: row.native?.seal, wasm: row['wasm-simd']?.seal, node: row.node?.seal };
  const offered = order.filter((name) => seal[name] !== undefined);
  const measured = [...offered].sort((a, b) => seal[b] - seal[a]);
  const agrees = offered.join() === measured.join();
  lines.push(`| ${family} | ${row.algorithm} | ${offered.join(' > ')} | ${measured.map((name) => `${name} ${f(seal[name])}`).join(' > ')} | ${agrees ? 'yes' : '**no**'} |`);
}
lines.push('');

if (tunnel) {
  lines.push('## Tunnel: side by side with the same sshd', '');
  lines.push(`Bulk transfers move ${tunnel.bulkBytes / 2 ** 20} MiB through one forwarded connection, checked with SHA-256; "upload" is`);
  lines.push('local service → tunnel process → sshd, "download" the reverse. CPU is the tunnel process\'s user + system time per');
  lines.push(
    `GiB; peak RSS is its VmHWM; CPU per round trip and per connection adds up all its threads' run time (schedstat). Round trips: ${tunnel.roundTrips} one-byte echoes on one connection. Connections: ${tunnel.connections}`,
  );
  lines.push(
    `sequential short request/response connections. Both follow an uncounted warm-up of twice as many (a JavaScript tunnel takes several thousand round trips to reach its optimised code), the same for every tool. Parallel: ${tunnel.streams} connections at once, ${tunnel.bulkBytes / tunnel.streams / 2 ** 20} MiB each.`,
    '',
  );
  const openssh = (scenario) => tunnel.results.find((r) => r.tool.startsWith('OpenSSH') && r.scenario === scenario);
  const scenarios = [...new Set(tunnel.results.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const base = openssh(scenario);
    const rows = tunnel.results.filter((r) => r.scenario === scenario);
    lines.push(`### ${scenario}`, '');
    if ('micros' in base) {
      lines.push('| tool | µs per round trip | ÷ OpenSSH | tunnel CPU µs per round trip | CPU ÷ OpenSSH |', '|---|---:|---:|---:|---:|');
      for (const r of rows) lines.push(`| ${r.tool} | ${f(r.micros)} | ${ratio(r.micros, base.micros)} | ${f(r.cpuMicros)} | ${ratio(r.cpuMicros, base.cpuMicros)} |`);
    } else if ('perSecond' in base) {
      lines.push('| tool | connections/s | ÷ OpenSSH | tunnel CPU µs per connection | CPU ÷ OpenSSH |', '|---|---:|---:|---:|---:|');
      for (const r of rows) lines.push(`| ${r.tool} | ${f(r.perSecond)} | ${ratio(r.perSecond, base.perSecond)} | ${f(r.cpuMicros)} | ${ratio(r.cpuMicros, base.cpuMicros)} |`);
    } else {
      lines.push('| tool | MiB/s | CPU-s/GiB (user+sys) | CPU ÷ OpenSSH | peak RSS MiB |', '|---|---:|---:|---:|---:|');
      for (const r of rows) {
        const split = r.userPerGiB !== undefined ? ` (${f(r.userPerGiB, 2)}+${f(r.systemPerGiB, 2)})` : '';
        lines.push(`| ${r.tool} | ${f(r.MiBps)} | ${f(r.cpuPerGiB, 2)}${split} | ${ratio(r.cpuPerGiB, base.cpuPerGiB)} | ${f(r.rssMiB)} |`);
      }
    }
    lines.push('');
  }
} else {
  // --crypto-only: the tunnel section as it was last recorded.
  const recorded = previous.match(/## Tunnel: side by side with the same sshd[\s\S]*?(?=<!-- compression:start -->|$)/)?.[0];
  if (recorded) {
    const [heading, ...rest] = recorded.trimEnd().split('\n');
    lines.push(heading, '', '_Kept from the last full `npm run bench`: this run (`--crypto-only`) measured packet crypto alone._', ...rest, '');
  }
}
// The compression section is bench/compression.mjs's: keep the one recorded, or record it anew with --compression.
const compressionSection = previous.match(/<!-- compression:start -->[\s\S]*<!-- compression:end -->/)?.[0];
if (compressionSection) lines.push(compressionSection, '');
writeFileSync(resultsPath, lines.join('\n'));
console.error(`wrote ${resultsPath}`);
if (process.argv.includes('--compression')) execFileSync(process.execPath, [join(here, 'compression.mjs'), ...extra], { stdio: 'inherit' });
