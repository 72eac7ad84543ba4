// The revtun command's compression switches against an sshd with Compression yes: -C,
// -o Compression=yes and an ssh_config Compression line offer zlib@openssh.com first, as ssh
// does; without them the offer starts with "none" and the connection stays uncompressed.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, TEST_USER, type Sshd, startSshdWithEcho, stopAll, type EchoServer } from '../helpers/sshd.js';
import { roundTrip } from '../helpers/streams.js';
import { runRevtun, type Run, stopRuns } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-cli-compression-'));
const key = generateKey(dir, 'id_ed25519', 'ed25519');
let sshd: Sshd;
let echo: EchoServer;
beforeAll(async () => {
  ({ sshd, echo } = await startSshdWithEcho({ authorizedKeys: [key.publicLine], config: ['Compression yes'] }));
});
afterAll(() => stopAll(echo, sshd));

const started: Run[] = [];
afterEach(() => stopRuns(started));

/** Runs revtun -v with `extra` options until its forwarding is up, echoes text through it, stops it; returns stderr. */
async function echoThrough(extra: string[]): Promise<string> {
  const known = join(dir, 'known_hosts');
  writeFileSync(known, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
  const run = runRevtun(
    ['-N', '-v', '-p', String(sshd.port), '-i', key.privatePath, '-o', `UserKnownHostsFile=${known}`, '-o', 'BatchMode=yes', ...extra, '-R', `0:127.0.0.1:${echo.port}`, `${TEST_USER}@127.0.0.1`],
    { HOME: dir },
  );
  started.push(run);
  const m = await run.waitFor(/Allocated port (\d+)/);
  const text = Buffer.from('GET /index.html HTTP/1.1\r\nHost: example\r\n\r\n'.repeat(2000));
  const echoed = await roundTrip(Number(m[1]), text).catch((error: Error) => {
    throw new Error(`${error.message}; revtun said:\n${run.stderr()}`);
  });
  expect(echoed.equals(text)).toBe(true);
  run.child.kill('SIGTERM');
  expect(await run.exit).toBe(0);
  return run.stderr();
}

describe('revtun compression options', () => {
  it('-C negotiates zlib@openssh.com', async () => {
    const stderr = await echoThrough(['-C']);
    expect(stderr).toMatch(/compression=zlib@openssh\.com\/zlib@openssh\.com/);
    expect(stderr).toMatch(/compression zlib@openssh\.com on for packets sent/);
  });

  it('-o Compression=yes negotiates zlib@openssh.com', async () => {
    expect(await echoThrough(['-o', 'Compression=yes'])).toMatch(/compression=zlib@openssh\.com\/zlib@openssh\.com/);
  });

  it('Compression yes in the ssh_config file negotiates zlib@openssh.com; -o Compression=no first wins over it', async () => {
    const config = join(dir, 'config');
    writeFileSync(config, 'Host 127.0.0.1\n  Compression yes\n', { mode: 0o600 });
    expect(await echoThrough(['-F', config])).toMatch(/compression=zlib@openssh\.com\/zlib@openssh\.com/);
    expect(await echoThrough(['-F', config, '-o', 'Compression=no'])).toMatch(/compression=none\/none/);
  });

  it('without them the connection is not compressed, as with ssh', async () => {
    const stderr = await echoThrough([]);
    expect(stderr).toMatch(/compression=none\/none/);
    expect(stderr).not.toMatch(/compression zlib/);
  });
});
