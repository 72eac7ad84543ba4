// Provider micro-benchmark: MB/s sealing and opening whole SSH packets, per algorithm and
// provider (native, wasm, node), at 1 KiB, 16 KiB and 32 KiB packets, printed beside
// `openssl speed` for the same primitive on this machine where OpenSSL has it.
//
// usage: node bench/crypto.mjs [--quick] [--json file]      (after npm run build)

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadCryptoProvider } from '../dist/index.js';

const quick = process.argv.includes('--quick');
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const SECONDS = quick ? 0.15 : 0.5;
const SIZES = [1024, 16 * 1024, 32 * 1024];

// [cipher, mac, openssl speed -evp name (or null)]
const CASES = [
  ['aes128-gcm@openssh.com', null, 'aes-128-gcm'],
  ['aes256-gcm@openssh.com', null, 'aes-256-gcm'],
  ['chacha20-poly1305@openssh.com', null, 'chacha20-poly1305'],
  ['aes128-ctr', 'hmac-sha2-256-etm@openssh.com', 'aes-128-ctr'],
  ['aes128-ctr', 'umac-64-etm@openssh.com', 'aes-128-ctr'],
  ['aes128-ctr', 'umac-128-etm@openssh.com', 'aes-128-ctr'],
  ['aes256-ctr', 'hmac-sha2-512-etm@openssh.com', 'aes-256-ctr'],
  ['aes128-cbc', 'hmac-sha1', 'aes-128-cbc'],
  ['3des-cbc', 'hmac-sha1', 'des-ede3-cbc'],
  ['blowfish-cbc', 'hmac-md5', null],
  ['cast128-cbc', 'hmac-md5', null],
  ['arcfour256', 'hmac-sha1', null],
];

function packetFor(sealer, size) {
  const block = Math.max(sealer.blockSize, 8);
  const outside = sealer.lengthOutsidePadding ? 4 : 0;
  let body = size - outside;
  body -= body % block;
  const packet = new Uint8Array(outside + body + sealer.macLength);
  const length = packet.length - 4 - sealer.macLength;
  new DataView(packet.buffer).setUint32(0, length);
  packet[4] = 8;
  packet.set(randomBytes(length - 1), 5);
  return packet;
}

/** Seals `size`-byte packets for SECONDS; then opens as many; returns MB/s for each. */
function measure(provider, cipher, mac, size) {
  const info = provider.ciphers.get(cipher);
  const macInfo = mac ? provider.macs.get(mac) : undefined;
  const keys = { cipher, mac, key: randomBytes(info.keyLength), iv: randomBytes(info.ivLength), macKey: randomBytes(macInfo?.keyLength ?? 0) };
  const sealer = provider.createSealer(keys);
  const template = packetFor(sealer, size);
  // Packets to open, sealed untimed by a second sealer with the same keys.
  const feeder = provider.createSealer(keys);
  const sealed = Array.from({ length: Math.max(64, Math.min(2048, Math.round((64 * 1024 * 1024) / template.length))) }, (_, i) => {
    const packet = template.slice();
    feeder.seal(i, packet);
    return packet;
  });
  // Sealing re-encrypts one buffer in place: no allocation or copy inside the timed loop.
  const packet = template.slice();
  let n = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9));
  const start = process.hrtime.bigint();
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < 16; i++) sealer.seal(n++, packet);
  }
  const sealSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  const opener = provider.createOpener(keys);
  const head = new Uint8Array(opener.lengthFieldBytes);
  const openStart = process.hrtime.bigint();
  for (let i = 0; i < sealed.length; i++) {
    const p = sealed[i];
    head.set(p.subarray(0, head.length));
    opener.decryptLength(i, head);
    p.set(head);
    opener.open(i, p);
  }
  const openSeconds = Number(process.hrtime.bigint() - openStart) / 1e9;
  return { seal: (n * template.length) / sealSeconds / 1e6, open: (sealed.length * template.length) / openSeconds / 1e6 };
}

function opensslSpeed(evp, size) {
  try {
    const out = execFileSync('openssl', ['speed', '-evp', evp, '-bytes', String(size), '-seconds', quick ? '1' : '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = out.trim().split('\n').pop();
    const k = Number(line.trim().split(/\s+/).pop().replace(/k$/, ''));
    return (k * 1000) / 1e6; // openssl prints 1000s of bytes per second
  } catch {
    return null;
  }
}

const providers = ['native', 'wasm', 'node'].map((name) => [name, loadCryptoProvider(name)]);
const rows = [];
for (const [cipher, mac, evp] of CASES) {
  for (const size of SIZES) {
    const row = { algorithm: mac ? `${cipher} + ${mac}` : cipher, size, openssl: evp ? opensslSpeed(evp, size) : null };
    for (const [name, provider] of providers) {
      const able = provider.ciphers.has(cipher) && (!mac || provider.macs.has(mac));
      row[name] = able ? measure(provider, cipher, mac, size) : null;
    }
    rows.push(row);
    const fmt = (r) => (r ? `${r.seal.toFixed(0)}/${r.open.toFixed(0)}` : '-');
    console.error(
      `${row.algorithm.padEnd(46)} ${String(size).padStart(6)}  native ${fmt(row.native).padEnd(11)} wasm ${fmt(row.wasm).padEnd(9)} node ${fmt(row.node).padEnd(11)} openssl ${row.openssl?.toFixed(0) ?? '-'}`,
    );
  }
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ unit: 'MB/s (seal/open)', rows }, null, 1));
else console.log(JSON.stringify(rows, null, 1));
