// `npm run demo`: a reverse tunnel end to end on loopback. Starts a throwaway OpenSSH sshd,
// a small HTTP service standing in for "the program behind NAT", opens a reverse tunnel to
// it with openReverseTunnel, fetches a page through the server's forwarded port, and closes.

import * as http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { generateKey, startLoopbackSshd } from './sshd.js';
import { openReverseTunnel } from '../tunnel/open.js';

/** The login name to authorize; Bun reports "unknown" from userInfo() for some users. */
function currentUser(): string {
  const name = userInfo().username;
  if (name && name !== 'unknown') return name;
  return execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'revtun-demo-'));
  const clientKey = generateKey(dir, 'id_ed25519', 'ed25519');
  const user = currentUser();
  const sshd = await startLoopbackSshd({ users: [user], authorizedKeys: [clientKey.publicLine] });
  console.log(`sshd listening on ${sshd.host}:${sshd.port}`);

  const service = http.createServer((req, res) => res.end(`hello from the service behind the tunnel (you asked for ${req.url})\n`));
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  const servicePort = (service.address() as { port: number }).port;
  console.log(`local service on 127.0.0.1:${servicePort}`);

  // The part a user writes:
  const tunnel = await openReverseTunnel({
    host: sshd.host,
    port: sshd.port,
    username: user,
    privateKey: clientKey.privateText,
    hostKey: sshd.hostKeys.ed25519,
    remote: { address: '127.0.0.1', port: 0 },
    local: { host: '127.0.0.1', port: servicePort },
  });
  console.log(`the SSH server now forwards 127.0.0.1:${tunnel.port} to the local service`);
  console.log(tunnel.tunnel.config('BuildInfo'));

  const body = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: tunnel.port, path: '/through-the-tunnel' }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
  process.stdout.write(`GET http://127.0.0.1:${tunnel.port}/through-the-tunnel -> ${body}`);

  await tunnel.close();
  await new Promise<void>((resolve) => service.close(() => resolve()));
  await sshd.stop();
  console.log('tunnel closed; demo finished');
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${(error as Error).message}`);
  process.exitCode = 1;
});
