// The ssh-agent client against OpenSSH's own ssh-agent, started by the test with keys added by
// ssh-add: listing identities (and a certificate), signatures checked with our verifier for each
// key type and both rsa-sha2 flags, a key the agent does not hold, a locked agent, an agent that
// went away, and an agent socket that sends garbage or too much.

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { AgentClient, MAX_AGENT_MESSAGE } from '../../ts/net/agent.js';
import { NodeCryptoProvider } from '../../ts/crypto/node.js';
import { generateKey, startSshd, TEST_PASSWORD, TEST_USER, type KeyPair, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { SshAuthMode } from '../../ts/index.js';
import { runRevtun } from '../helpers/cli.js';
import { writeFileSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'revtun-agent-'));
const keys: Record<'ed25519' | 'ecdsa' | 'rsa', KeyPair> = {
  ed25519: generateKey(dir, 'id_ed25519', 'ed25519'),
  ecdsa: generateKey(dir, 'id_ecdsa', 'ecdsa'),
  rsa: generateKey(dir, 'id_rsa', 'rsa', { bits: 2048 }),
};
const stranger = generateKey(dir, 'id_stranger', 'ed25519');
const provider = new NodeCryptoProvider();
const blobOf = (line: string) => new Uint8Array(Buffer.from(line.split(/\s+/)[1]!, 'base64'));

let agent: ChildProcess;
let socketPath: string;

/** Starts `ssh-agent -D` on a socket of our own; resolves once it prints its environment. */
function startAgent(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn('ssh-agent', ['-D', '-a', path], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('SSH_AUTH_SOCK')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`ssh-agent exited with ${code}: ${out}`)));
  });
}

const sshAdd = (args: string[], input?: string) => execFileSync('ssh-add', args, { env: { ...process.env, SSH_AUTH_SOCK: socketPath }, stdio: ['pipe', 'pipe', 'pipe'], ...(input ? { input } : {}) });

beforeAll(async () => {
  socketPath = join(dir, 'agent.sock');
  agent = await startAgent(socketPath);
  sshAdd([keys.ed25519.privatePath, keys.ecdsa.privatePath, keys.rsa.privatePath]);
  // A certificate for the ed25519 key, signed by a CA of the test's: ssh-add adds it beside the key.
  const ca = generateKey(dir, 'ca', 'ed25519');
  execFileSync('ssh-keygen', ['-q', '-s', ca.privatePath, '-I', 'agent-test', '-n', 'root', keys.ed25519.privatePath + '.pub']);
  sshAdd([keys.ed25519.privatePath]);
});
afterAll(() => {
  agent?.kill();
});

describe('ssh-agent client', () => {
  it('lists every identity the agent holds, with its type and comment, the certificate included', async () => {
    const client = await AgentClient.connect(socketPath);
    const ids = await client.identities();
    client.close();
    const byType = new Map(ids.map((id) => [id.keyType, id]));
    expect([...byType.keys()].sort()).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-ed25519-cert-v01@openssh.com', 'ssh-rsa']);
    expect(Buffer.from(byType.get('ssh-ed25519')!.publicKey)).toEqual(Buffer.from(blobOf(keys.ed25519.publicLine)));
    const cert = readFileSync(keys.ed25519.privatePath + '-cert.pub', 'utf8');
    expect(Buffer.from(byType.get('ssh-ed25519-cert-v01@openssh.com')!.publicKey)).toEqual(Buffer.from(blobOf(cert)));
    expect(byType.get('ssh-rsa')!.comment).toBe('id_rsa'); // ssh-keygen -C
  });

  it('signs with each key; the signatures verify, RSA with SHA-256 and SHA-512 as asked', async () => {
    const client = await AgentClient.connect(socketPath);
    const data = new TextEncoder().encode('session id and userauth request');
    const cases: [KeyPair, string][] = [
      [keys.ed25519, 'ssh-ed25519'],
      [keys.ecdsa, 'ecdsa-sha2-nistp256'],
      [keys.rsa, 'rsa-sha2-256'],
      [keys.rsa, 'rsa-sha2-512'],
    ];
    for (const [key, algorithm] of cases) {
      const blob = blobOf(key.publicLine);
      const signature = await client.sign(blob, data, algorithm);
      expect(provider.verify(blob, algorithm, signature, data), algorithm).toBe(true);
      expect(provider.verify(blob, algorithm, signature, new TextEncoder().encode('other data')), algorithm).toBe(false);
    }
    client.close();
  });

  it('a key the agent does not hold: 1013, and the connection stays usable', async () => {
    const client = await AgentClient.connect(socketPath);
    await expect(client.sign(blobOf(stranger.publicLine), new Uint8Array(8), 'ssh-ed25519')).rejects.toMatchObject({ code: 1013, message: expect.stringContaining('refused') });
    expect((await client.identities()).length).toBe(4);
    client.close();
  });

  it('a locked agent lists nothing and signs nothing until unlocked', async () => {
    const askpass = join(dir, 'askpass.sh');
    execFileSync('sh', ['-c', `printf '#!/bin/sh\\necho lockword\\n' > ${askpass}; chmod 700 ${askpass}`]);
    const env = { ...process.env, SSH_AUTH_SOCK: socketPath, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' };
    execFileSync('ssh-add', ['-x'], { env, stdio: 'pipe' });
    try {
      const client = await AgentClient.connect(socketPath);
      expect(await client.identities()).toEqual([]);
      await expect(client.sign(blobOf(keys.ed25519.publicLine), new Uint8Array(8), 'ssh-ed25519')).rejects.toMatchObject({ code: 1013 });
      client.close();
    } finally {
      execFileSync('ssh-add', ['-X'], { env, stdio: 'pipe' });
    }
    const client = await AgentClient.connect(socketPath);
    expect((await client.identities()).length).toBe(4);
    client.close();
  });

  it('no agent at the path: a clear error with the socket code', async () => {
    await expect(AgentClient.connect(join(dir, 'nothing-here.sock'))).rejects.toMatchObject({ message: expect.stringContaining('cannot reach the agent') });
  });
});

describe('a hostile agent socket', () => {
  /** A Unix socket server answering every request with `reply`. */
  async function fakeAgent(name: string, reply: (socket: net.Socket) => void): Promise<{ path: string; close: () => void }> {
    const path = join(dir, name);
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => reply(socket));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return { path, close: () => server.close() };
  }

  it('an oversized frame is refused without waiting for it', async () => {
    const fake = await fakeAgent('big.sock', (socket) => {
      const header = Buffer.alloc(5);
      header.writeUInt32BE(MAX_AGENT_MESSAGE + 1, 0);
      header[4] = 12;
      socket.write(header);
    });
    const client = await AgentClient.connect(fake.path);
    await expect(client.identities()).rejects.toMatchObject({ code: 1027, message: expect.stringContaining('limit') });
    fake.close();
  });

  it('a truncated identities answer is a malformed reply, not a crash', async () => {
    const fake = await fakeAgent('short.sock', (socket) => {
      // Says 2 identities, then holds a single half blob.
      socket.write(Buffer.from([0, 0, 0, 9, 12, 0, 0, 0, 2, 0, 0, 0, 50]));
    });
    const client = await AgentClient.connect(fake.path);
    await expect(client.identities()).rejects.toMatchObject({ code: 1027, message: expect.stringContaining('malformed identities answer') });
    client.close();
    fake.close();
  });

  it('an agent that closes mid-request fails the request', async () => {
    const fake = await fakeAgent('gone.sock', (socket) => socket.destroy());
    const client = await AgentClient.connect(fake.path);
    await expect(client.identities()).rejects.toMatchObject({ message: expect.stringContaining('closed') });
    fake.close();
  });

  it('a timeout of 0 means no deadline: a slow answer (a confirmation the user takes time over) still arrives', async () => {
    let answer: (() => void) | null = null;
    let requestArrived: () => void = () => undefined;
    const asked = new Promise<void>((resolve) => (requestArrived = resolve));
    const slow = await fakeAgent('slow.sock', (socket) => {
      answer = () => socket.write(Buffer.from([0, 0, 0, 5, 12, 0, 0, 0, 0]));
      requestArrived();
    });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const client = await AgentClient.connect(slow.path, 0);
      const listed = client.identities();
      await asked;
      vi.advanceTimersByTime(24 * 3600 * 1000); // a day: no timer may fire
      answer!();
      expect(await listed).toEqual([]);
      client.close();
    } finally {
      vi.useRealTimers();
      slow.close();
    }
  });

  it('an agent that never answers: the request times out and the client is failed for good', async () => {
    const fake = await fakeAgent('silent.sock', () => undefined);
    const client = await AgentClient.connect(fake.path, 200);
    await expect(client.identities()).rejects.toMatchObject({ code: 301 });
    await expect(client.identities()).rejects.toMatchObject({ code: 301 });
    fake.close();
  });
});

describe("logging on with the agent's keys", () => {
  let sshd: Sshd;
  beforeAll(async () => {
    // Only the RSA key is authorized: the agent's ed25519 and ECDSA keys are offered first and refused.
    sshd = await startSshd({ authorizedKeys: [keys.rsa.publicLine], config: ['LogLevel DEBUG1'] });
  });
  afterAll(() => sshd?.stop());

  it('tunnel.agent = path: no key file anywhere; the agent signs with the key sshd accepts (rsa-sha2)', async () => {
    const from = sshd.log().length;
    const t = makeTunnel(sshd, { user: TEST_USER, password: '' });
    t.sshAuthMode = SshAuthMode.PublicKey;
    t.agent = socketPath;
    try {
      await t.sshLogon();
      expect(t.connected).toBe(true);
    } finally {
      await t.sshLogoff().catch(() => undefined);
    }
    await sshd.waitForLog(/Accepted publickey for revtuntest .* RSA SHA256/, from);
    expect(sshd.log().slice(from)).toMatch(/Failed publickey for revtuntest .* ED25519|userauth_pubkey: .*ED25519/);
  });

  it('EnablePageantAuth=1 takes the agent from SSH_AUTH_SOCK', async () => {
    const saved = process.env.SSH_AUTH_SOCK;
    process.env.SSH_AUTH_SOCK = socketPath;
    try {
      const t = makeTunnel(sshd, { user: TEST_USER, password: '', config: ['EnablePageantAuth=1'] });
      t.sshAuthMode = SshAuthMode.PublicKey;
      await t.sshLogon();
      expect(t.connected).toBe(true);
      await t.sshLogoff();
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it("EnablePageantAuth=2 offers only the agent's keys, and fails when no agent answers", async () => {
    // The authorized key as a file, but the agent required: with no agent, no logon.
    const t = makeTunnel(sshd, { user: TEST_USER, privateKey: keys.rsa.privatePath, config: ['EnablePageantAuth=2'] });
    t.agent = join(dir, 'no-agent.sock');
    await expect(t.sshLogon()).rejects.toMatchObject({ message: expect.stringContaining('cannot reach the agent') });
  });

  it('EnablePageantAuth=2 with an agent: a key file is not offered, even one the server would take', async () => {
    sshd.setAuthorizedKeys(TEST_USER, [stranger.publicLine]); // a key the agent does not hold
    try {
      const only = makeTunnel(sshd, { user: TEST_USER, privateKey: stranger.privatePath, config: ['EnablePageantAuth=2'] });
      only.agent = socketPath;
      await expect(only.sshLogon()).rejects.toMatchObject({ code: 1032 });
      const also = makeTunnel(sshd, { user: TEST_USER, privateKey: stranger.privatePath, config: ['EnablePageantAuth=1'] });
      also.agent = socketPath;
      await also.sshLogon();
      await also.sshLogoff();
    } finally {
      sshd.setAuthorizedKeys(TEST_USER, [keys.rsa.publicLine]);
    }
  });

  it('an agent that refuses to sign (a key added with -c and no way to confirm): the key is passed over, the password logs on', async () => {
    const refusingPath = join(dir, 'refusing.sock');
    const refusing = await startAgent(refusingPath, { ...process.env, SSH_ASKPASS: '/bin/false', DISPLAY: ':0', SSH_ASKPASS_REQUIRE: 'force' });
    try {
      execFileSync('ssh-add', ['-c', keys.rsa.privatePath], { env: { ...process.env, SSH_AUTH_SOCK: refusingPath }, stdio: 'pipe' });
      const from = sshd.log().length;
      const t = makeTunnel(sshd, { user: TEST_USER, password: TEST_PASSWORD });
      t.sshAuthMode = SshAuthMode.MultiFactor;
      t.agent = refusingPath;
      const status: string[] = [];
      t.on('sshStatus', (e) => status.push(e.message));
      await t.sshLogon();
      await t.sshLogoff();
      expect(status.some((m) => /not using key .*from the agent.*cannot sign/.test(m))).toBe(true);
      await sshd.waitForLog(/Accepted password for revtuntest/, from);
    } finally {
      refusing.kill();
    }
  });
});

describe('revtun and the agent', () => {
  let sshd: Sshd;
  let knownHosts: string;
  beforeAll(async () => {
    sshd = await startSshd({ authorizedKeys: [keys.ecdsa.publicLine] });
    knownHosts = join(dir, 'cli_known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519}\n`);
  });
  afterAll(() => sshd?.stop());

  const revtun = (extra: string[], env: NodeJS.ProcessEnv) =>
    runRevtun(['-N', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-p', String(sshd.port), ...extra, '-R', '0:127.0.0.1:9', `${TEST_USER}@127.0.0.1`], env);

  it('uses the agent at SSH_AUTH_SOCK with no key file, as ssh does', async () => {
    const run = revtun([], { SSH_AUTH_SOCK: socketPath });
    await run.waitFor(/Allocated port \d+ for remote forward/);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('IdentityAgent none: the agent is not asked, and with no key and no password there is no way in', async () => {
    const run = revtun(['-o', 'IdentityAgent=none'], { SSH_AUTH_SOCK: socketPath });
    expect(await run.exit).toBe(255);
  });

  it('IdentityAgent names the socket (SSH_AUTH_SOCK unset)', async () => {
    const run = revtun(['-o', `IdentityAgent=${socketPath}`], { SSH_AUTH_SOCK: '' });
    await run.waitFor(/Allocated port \d+ for remote forward/);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('IdentitiesOnly: an agent key that is no identity file here is not offered', async () => {
    // -i names the (unauthorized) ed25519 key; the agent also holds the authorized ECDSA key.
    const only = revtun(['-o', 'IdentitiesOnly=yes', '-i', keys.ed25519.privatePath], { SSH_AUTH_SOCK: socketPath });
    expect(await only.exit).toBe(255);
    const all = revtun(['-i', keys.ed25519.privatePath], { SSH_AUTH_SOCK: socketPath });
    await all.waitFor(/Allocated port \d+ for remote forward/);
    all.child.kill('SIGTERM');
    expect(await all.exit).toBe(0);
  });
});

describe('a logoff while the agent is being asked', () => {
  it('ends the logon attempt: no connection is made once the agent answers', async () => {
    const sshd = await startSshd({ authorizedKeys: [keys.ed25519.publicLine] });
    const path = join(dir, 'held.sock');
    let release: () => void = () => undefined;
    let heldServer: net.Server | undefined;
    const asked = new Promise<void>((resolve) => {
      const server = net.createServer((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', () => {
          release = () => socket.write(Buffer.from([0, 0, 0, 5, 12, 0, 0, 0, 0]));
          resolve();
        });
      });
      server.listen(path);
      heldServer = server;
    });
    try {
      const t = makeTunnel(sshd, { user: TEST_USER, privateKey: keys.ed25519.privatePath });
      t.agent = path;
      const from = sshd.log().length;
      const logon = t.sshLogon().then(
        () => 'up',
        (e: { message: string }) => e.message,
      );
      await asked;
      await t.sshLogoff();
      release();
      expect(await logon).toMatch(/abandoned/);
      expect(t.connected).toBe(false);
      expect(sshd.log().slice(from)).not.toMatch(/Connection from|Accepted/);
    } finally {
      heldServer?.close();
      await sshd.stop();
    }
  });
});
