// `revtun speed`: the packet-crypto benchmark (../crypto/benchmark.ts) from the command line, as
// a table (MB/s sealing / opening per provider, one line per algorithm pair and packet size,
// with `openssl speed -evp` of the same primitive beside it when openssl is on PATH) or, with
// --json, one object per measurement. main.ts hands over when the first argument is `speed`.

import { execFile } from 'node:child_process';
import {
  BENCHMARK_MAX_SECONDS,
  BENCHMARK_PROVIDER_NAMES,
  benchmarkCrypto,
  DEFAULT_BENCHMARK_MAC,
  providerOffers,
  resolveCryptoBenchmark,
  type BenchmarkAlgorithm,
  type BenchmarkCryptoOptions,
  type BenchmarkProviderName,
  type BenchmarkRow,
} from '../crypto/benchmark.js';
import { SshError, Code } from '../protocol/errors.js';
import { UsageError } from './args.js';

/** `revtun speed`'s usage text (printed by -h and after a bad option). */
export const SPEED_USAGE = `usage: revtun speed [--json] [--providers list] [--algorithms list] [--sizes list] [--seconds n]
  --providers   ${BENCHMARK_PROVIDER_NAMES.join(',')} (default: the ones that load, wasm counted once;
                auto: each algorithm on the backend a tunnel would use)
  --algorithms  cipher for AEAD, cipher/mac otherwise (a cipher alone gets ${DEFAULT_BENCHMARK_MAC})
  --sizes       packet sizes on the wire, in bytes or with k for KiB (default 1k,16k,32k)
  --seconds     time per row and direction (default 0.5, at most ${BENCHMARK_MAX_SECONDS})
  --json        one JSON object per line instead of the table`;

/** `openssl speed -evp` names of the ciphers OpenSSL has (it has no UMAC, Blowfish/CAST in SSH's modes, or RC4 here). */
export const OPENSSL_EVP: Readonly<Record<string, string>> = {
  'aes128-gcm@openssh.com': 'aes-128-gcm',
  'aes256-gcm@openssh.com': 'aes-256-gcm',
  'chacha20-poly1305@openssh.com': 'chacha20-poly1305',
  'aes128-ctr': 'aes-128-ctr',
  'aes192-ctr': 'aes-192-ctr',
  'aes256-ctr': 'aes-256-ctr',
  'aes128-cbc': 'aes-128-cbc',
  'aes192-cbc': 'aes-192-cbc',
  'aes256-cbc': 'aes-256-cbc',
  '3des-cbc': 'des-ede3-cbc',
};

/** What `revtun speed`'s arguments ask for. */
export interface SpeedArgs {
  help: boolean;
  json: boolean;
  options: BenchmarkCryptoOptions;
}

function list(value: string): string[] {
  return value.split(',').map((item) => item.trim());
}

function parseSize(text: string): number {
  const m = /^(\d+)(k?)$/i.exec(text);
  if (!m) throw new UsageError(`bad packet size '${text}' (bytes, or k for KiB: 1k, 16k, 32768)`);
  return Number(m[1]) * (m[2] ? 1024 : 1);
}

function parseSeconds(text: string): number {
  if (!/^(\d+\.?\d*|\.\d+)$/.test(text)) throw new UsageError(`bad --seconds '${text}'`);
  return Number(text);
}

/** Reads `revtun speed`'s arguments (after the word `speed`); throws UsageError. */
export function parseSpeedArgs(argv: readonly string[]): SpeedArgs {
  const args: SpeedArgs = { help: false, json: false, options: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      args.help = true;
      continue;
    }
    if (arg === '--json') {
      args.json = true;
      continue;
    }
    const m = /^(--[a-z]+)(?:=(.*))?$/.exec(arg);
    const name = m?.[1];
    if (!m || !['--providers', '--algorithms', '--sizes', '--seconds'].includes(name!)) throw new UsageError(`unknown option '${arg}'`);
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option ${name} needs a value`);
      value = argv[++i]!;
    }
    switch (name) {
      case '--providers':
        args.options.providers = list(value) as BenchmarkProviderName[];
        break;
      case '--algorithms':
        args.options.algorithms = list(value);
        break;
      case '--sizes':
        args.options.sizes = list(value).map(parseSize);
        break;
      case '--seconds':
        args.options.seconds = parseSeconds(value);
        break;
    }
  }
  return args;
}

/**
 * MB/s (10^6 bytes per second) of `openssl speed -evp <evp> -bytes <size>`, or null when
 * openssl is missing, fails or prints something else. Runs asynchronously; never rejects.
 * `-mr` prints bytes per second (`+F:...:<rate>`), where the human output prints 1000s of them.
 */
export function opensslSpeed(evp: string, size: number, seconds: number): Promise<number | null> {
  const args = ['speed', '-mr', '-evp', evp, '-bytes', String(size), '-seconds', String(Math.max(1, Math.round(seconds)))];
  return new Promise((resolve) => {
    try {
      execFile('openssl', args, { encoding: 'utf8', timeout: 60_000 }, (error, stdout) => {
        const line = error ? undefined : stdout.split('\n').find((l) => l.startsWith('+F:'));
        const rate = line ? Number(line.slice(line.lastIndexOf(':') + 1)) : Number.NaN;
        resolve(Number.isFinite(rate) && rate > 0 ? rate / 1e6 : null);
      }).on('error', () => resolve(null));
    } catch {
      resolve(null);
    }
  });
}

function pairName(algorithm: BenchmarkAlgorithm): string {
  return algorithm.mac ? `${algorithm.cipher}/${algorithm.mac}` : algorithm.cipher;
}

const ALGORITHM_WIDTH = 46;
const CELL_WIDTH = 13;

function cell(row: BenchmarkRow | undefined): string {
  return row ? `${row.sealMBps.toFixed(0)} / ${row.openMBps.toFixed(0)}` : '-';
}

/**
 * Runs `revtun speed` with `argv` (the arguments after `speed`), writing to standard output
 * and error; resolves to the exit status: 0, or 255 for a bad option, as the rest of the CLI.
 */
export async function runSpeed(argv: readonly string[]): Promise<number> {
  let args: SpeedArgs;
  let plan: ReturnType<typeof resolveCryptoBenchmark>;
  try {
    args = parseSpeedArgs(argv);
    if (args.help) {
      process.stdout.write(`${SPEED_USAGE}\n`);
      return 0;
    }
    plan = resolveCryptoBenchmark(args.options);
  } catch (error) {
    if (error instanceof UsageError || (error instanceof SshError && error.code === Code.BadArgument)) {
      process.stderr.write(`revtun speed: ${error.message}\n${SPEED_USAGE}\n`);
      return 255;
    }
    throw error;
  }
  // A reader that went away (`revtun speed | head`) ends the run quietly, as SIGPIPE ends openssl speed.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    process.stderr.write(`revtun speed: standard output: ${error.message}\n`);
    process.exit(1);
  });
  const write = (line: string) => process.stdout.write(`${line}\n`);
  for (const { provider, reason } of plan.unavailable) process.stderr.write(`revtun speed: ${provider} not available: ${reason}\n`);
  if (!args.json) {
    write('MB/s (10^6 bytes/s) sealing / opening whole packets; packet = bytes on the wire; openssl = `openssl speed -evp` of the cipher alone');
    write(['algorithm'.padEnd(ALGORITHM_WIDTH), 'packet'.padStart(6), ...plan.providers.map((p) => p.padEnd(CELL_WIDTH)), 'openssl'].join('  '));
  }
  const openssl = new Map<string, Promise<number | null>>();
  for (const algorithm of plan.algorithms) {
    for (const size of plan.sizes) {
      const providers = plan.providers.filter((name) => providerOffers(name, algorithm));
      const onRow = args.json ? (row: BenchmarkRow) => write(JSON.stringify(row)) : undefined;
      const { rows } = providers.length ? await benchmarkCrypto({ providers, algorithms: [algorithm], sizes: [size], seconds: plan.seconds, onRow }) : { rows: [] };
      // After the group, never during it: openssl and the benchmark would share the cores.
      const evp = OPENSSL_EVP[algorithm.cipher];
      const key = `${evp}:${size}`;
      if (evp && !openssl.has(key)) openssl.set(key, opensslSpeed(evp, size, plan.seconds));
      const reference = evp ? await openssl.get(key)! : null;
      if (args.json) {
        if (reference !== null) write(JSON.stringify({ algorithm: algorithm.cipher, mac: algorithm.mac, provider: 'openssl', packetSize: size, sealMBps: reference, openMBps: null }));
        continue;
      }
      const cells = plan.providers.map((name) => cell(rows.find((row) => row.provider === name)).padEnd(CELL_WIDTH));
      write([pairName(algorithm).padEnd(ALGORITHM_WIDTH), String(size).padStart(6), ...cells, reference === null ? '-' : reference.toFixed(0)].join('  '));
    }
  }
  return 0;
}
