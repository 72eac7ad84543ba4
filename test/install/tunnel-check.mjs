// Run by test/integration/install.test.ts inside a throwaway project where revtun was installed
// from its release tarballs: imports revtun by its package name (so from that project's
// node_modules, never from this checkout), says which crypto provider it chose (and for the automatic
// one, which backend serves AES-GCM and ChaCha20-Poly1305) and the log line that says why, then opens a reverse tunnel to the test's sshd and sends a line through it to
// the test's echo service and back. argv[2] is JSON: host, port, user, password,
// fingerprints (the sshd's host keys, comma-separated), echoPort.

import * as net from 'node:net';
import { SSHReverseTunnel } from 'revtun';

const target = JSON.parse(process.argv[2]);
const tunnel = new SSHReverseTunnel();
tunnel.sshHost = target.host;
tunnel.sshPort = target.port;
tunnel.sshUser = target.user;
tunnel.sshPassword = target.password;
tunnel.config(`SSHAcceptServerHostKeyFingerPrint=${target.fingerprints}`);
tunnel.config('LogLevel=2');
tunnel.on('log', ({ logLevel, message }) => {
  if (message.startsWith('crypto provider:') || message.startsWith('packet crypto:')) console.log(`log ${logLevel}: ${message}`);
});
const provider = tunnel.cryptoProvider;
console.log(`provider: ${provider.name}`);
// The automatic provider's choice for the two AEAD ciphers.
for (const cipher of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com']) console.log(`${cipher} on ${provider.backendFor?.(cipher, null)}`);

await tunnel.sshLogon();
const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.echoPort);
const echoed = await new Promise((resolve, reject) => {
  const socket = net.connect({ host: '127.0.0.1', port });
  let received = '';
  socket.setEncoding('utf8');
  socket.on('connect', () => socket.write('through the tunnel\n'));
  socket.on('data', (chunk) => {
    received += chunk;
    if (received.endsWith('\n')) socket.end(() => resolve(received.trim()));
  });
  socket.on('error', reject);
});
console.log(`echoed: ${echoed}`);
await tunnel.sshLogoff();
