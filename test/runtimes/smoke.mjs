// Runtime smoke test, run by test/integration/runtimes.test.ts under Bun and Deno (plain
// JavaScript against the built dist/, so every runtime loads the same files): a throwaway
// sshd, a reverse tunnel with the crypto provider named by REVTUN_CRYPTO (the automatic one when
// it is empty, with the one cipher SMOKE_CIPHER names), and 16 MiB through
// it to an echo service and back, compared by SHA-256. The client key is passphrase-protected
// (bcrypt-pbkdf), so its derivation runs in the runtime's worker threads; Argon2 there is
// compared with the same derivation on the main thread.

import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startLoopbackSshd } from '../../dist/demo/sshd.js';
import { openReverseTunnel } from '../../dist/index.js';
import { deriveOffThread, deriveSync } from '../../dist/crypto/kdf-worker.js';

const SIZE = 16 * 1024 * 1024;
const user = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
const dir = mkdtempSync(join(tmpdir(), 'revtun-smoke-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519', { passphrase: 'smoke test' });
// SMOKE_CIPHER: the one cipher the server accepts (with REVTUN_CRYPTO empty, the automatic provider's test).
const sshd = await startLoopbackSshd({ users: [user], authorizedKeys: [key.publicLine], config: process.env.SMOKE_CIPHER ? [`Ciphers ${process.env.SMOKE_CIPHER}`] : [] });
const echo = net.createServer((socket) => socket.pipe(socket));
await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));

try {
  const tunnel = await openReverseTunnel({
    host: sshd.host,
    port: sshd.port,
    username: user,
    privateKey: key.privateText,
    passphrase: 'smoke test',
    hostKey: sshd.hostKeys.ed25519,
    remote: { address: '127.0.0.1', port: 0 },
    local: { host: '127.0.0.1', port: echo.address().port },
    cryptoProvider: process.env.REVTUN_CRYPTO ?? 'wasm',
  });
  const provider = tunnel.tunnel.cryptoProvider;
  // Which plane carries the connection (internal state: the log line came before this point).
  console.log(`data plane: ${tunnel.tunnel.session?.plane ? 'native' : 'js'}`);
  if (process.env.SMOKE_CIPHER) console.log(`${process.env.SMOKE_CIPHER} on ${provider.backendFor?.(process.env.SMOKE_CIPHER, null)}`);
  const data = randomBytes(SIZE);
  const received = createHash('sha256');
  let count = 0;
  await new Promise((resolve, reject) => {
    const socket = net.connect(tunnel.port, '127.0.0.1', () => socket.end(data));
    socket.on('data', (chunk) => {
      received.update(chunk);
      count += chunk.length;
    });
    socket.on('end', resolve);
    socket.on('error', reject);
  });
  const match = received.digest('hex') === createHash('sha256').update(data).digest('hex');
  const argon2 = { kind: 'argon2', variant: 'Argon2id', memoryKib: 1024, passes: 2, parallelism: 1, salt: new Uint8Array(16), length: 80 };
  const pass = new TextEncoder().encode('smoke test');
  const same = Buffer.from(await deriveOffThread(argon2, pass)).equals(Buffer.from(deriveSync(argon2, pass)));
  console.log(`argon2id in a worker thread: ${same ? 'matches' : 'DIFFERS'}`);
  if (!same) process.exitCode = 1;
  console.log(`${tunnel.tunnel.config('BuildInfo')}`);
  console.log(`moved ${count} bytes, sha256 ${match ? 'matches' : 'DIFFERS'}`);
  await tunnel.close();
  if (!match || count !== SIZE) process.exitCode = 1;
} finally {
  echo.close();
  await sshd.stop();
}
