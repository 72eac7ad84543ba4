// The `ssh2` npm package doing what `ssh -N -R` does, for the side-by-side tunnel benchmark:
// one remote forwarding, each forwarded connection piped to a local port.
// usage: node bench/ssh2-tunnel.mjs host port user keyfile remotePort localPort cipher
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import ssh2 from 'ssh2';

const [host, port, username, keyFile, remotePort, localPort, cipher] = process.argv.slice(2);
const client = new ssh2.Client();
client.on('tcp connection', (_info, accept) => {
  const channel = accept();
  const local = net.connect(Number(localPort), '127.0.0.1');
  local.setNoDelay(true);
  channel.pipe(local).pipe(channel);
  const close = () => {
    local.destroy();
    channel.destroy();
  };
  local.on('error', close);
  channel.on('error', close);
});
client.on('ready', () => {
  client.forwardIn('127.0.0.1', Number(remotePort), (error) => {
    if (error) {
      console.error(`forwardIn failed: ${error.message}`);
      process.exit(1);
    }
  });
});
client.on('error', (error) => {
  console.error(`ssh2: ${error.message}`);
  process.exit(1);
});
client.connect({
  host,
  port: Number(port),
  username,
  privateKey: readFileSync(keyFile),
  hostVerifier: () => true, // loopback benchmark against a server started moments ago
  algorithms: { cipher: [cipher] },
});
