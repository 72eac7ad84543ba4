// Provider micro-benchmark: MB/s sealing and opening whole SSH packets, per algorithm and
// provider (native, the WASM core's SIMD and plain builds, node), at 1 KiB, 16 KiB and 32 KiB packets, printed beside
// `openssl speed` for the same primitive on this machine where OpenSSL has it. The measuring
// is revtun's own benchmarkCrypto (`revtun speed`); this script only lays the rows out the way
// bench/run.mjs reads them (one entry per algorithm and size, one column per provider).
//
// usage: node bench/crypto.mjs [--quick] [--json file]      (after npm run build)

import { writeFileSync } from 'node:fs';
import { benchmarkCrypto, resolveCryptoBenchmark } from '../dist/index.js';
import { OPENSSL_EVP, opensslSpeed } from '../dist/cli/speed.js';

const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const PROVIDERS = ['native', 'wasm-simd', 'wasm-scalar', 'node'];
// Named explicitly, so a provider that does not load stops the run instead of leaving a column empty.
const plan = resolveCryptoBenchmark({ providers: PROVIDERS, seconds: quick ? 0.15 : 0.5 });

const rows = [];
for (const algorithm of plan.algorithms) {
  for (const size of plan.sizes) {
    const { rows: measured } = await benchmarkCrypto({ providers: plan.providers, algorithms: [algorithm], sizes: [size], seconds: plan.seconds });
    const evp = OPENSSL_EVP[algorithm.cipher];
    const row = {
      algorithm: algorithm.mac ? `${algorithm.cipher} + ${algorithm.mac}` : algorithm.cipher,
      size,
      openssl: evp ? await opensslSpeed(evp, size, quick ? 1 : 2) : null,
    };
    for (const name of PROVIDERS) {
      const found = measured.find((m) => m.provider === name);
      row[name] = found ? { seal: found.sealMBps, open: found.openMBps } : null;
    }
    rows.push(row);
    const fmt = (r) => (r ? `${r.seal.toFixed(0)}/${r.open.toFixed(0)}` : '-');
    console.error(`${row.algorithm.padEnd(46)} ${String(size).padStart(6)}  ${PROVIDERS.map((name) => `${name} ${fmt(row[name]).padEnd(11)}`).join(' ')} openssl ${row.openssl?.toFixed(0) ?? '-'}`);
  }
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ unit: 'MB/s (seal/open)', rows }, null, 1));
else console.log(JSON.stringify(rows, null, 1));
