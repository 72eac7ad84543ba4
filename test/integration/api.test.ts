// The short-path helper and the binding options, against a real OpenSSH sshd.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, startSshd, TEST_USER, type Sshd } from '../helpers/sshd.js';
import { makeTunnel } from '../helpers/tunnel.js';
import { READS_BACK, sampleFor } from '../helpers/setting-samples.js';
import { SETTINGS } from '../../ts/tunnel/settings.js';
import { SETTING_DOCS } from '../../ts/tunnel/settings-doc.js';
import { listen, roundTrip, roundTripOrReset } from '../helpers/streams.js';
import { openReverseTunnel, type TunnelStateEvent } from '../../ts/index.js';

const key = generateKey(mkdtempSync(join(tmpdir(), 'revtun-api-')), 'id', 'ed25519');
let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd({ authorizedKeys: [key.publicLine] });
});
afterAll(async () => {
  await sshd?.stop();
});

describe('openReverseTunnel', () => {
  it('logs on with a key, forwards to a local service, and closes', async () => {
    const service = await listen((s) => s.end('hello from behind the NAT'));
    const tunnel = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      privateKey: key.privatePath,
      hostKey: sshd.hostKeys.ed25519,
      remote: { address: '127.0.0.1', port: 0 },
      local: { host: '127.0.0.1', port: service.port },
    });
    expect(tunnel.port).toBeGreaterThan(0);
    expect((await roundTrip(tunnel.port, Buffer.alloc(0))).toString()).toBe('hello from behind the NAT');
    await tunnel.close();
    expect(tunnel.tunnel.connected).toBe(false);
    // close() cancelled the forwarding before logging off, so the listener is already gone.
    expect(await roundTripOrReset(tunnel.port, Buffer.alloc(0)).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ECONNREFUSED');
    await service.close();
  });

  it('reports its states and closes when its AbortSignal aborts', async () => {
    const service = await listen((s) => s.end('up'));
    const controller = new AbortController();
    const states: TunnelStateEvent[] = [];
    let onClosed: () => void = () => undefined;
    const closed = new Promise<void>((resolve) => (onClosed = resolve));
    const tunnel = await openReverseTunnel({
      host: sshd.host,
      port: sshd.port,
      username: TEST_USER,
      privateKey: key.privatePath,
      hostKey: sshd.hostKeys.ed25519,
      remote: { address: '127.0.0.1', port: 0 },
      local: { host: '127.0.0.1', port: service.port },
      onState: (e) => {
        states.push(e);
        if (e.state === 'closed') onClosed();
      },
      signal: controller.signal,
    });
    expect((await roundTrip(tunnel.port, Buffer.alloc(0))).toString()).toBe('up');
    controller.abort();
    await closed;
    expect(states).toEqual([{ state: 'connecting' }, { state: 'up' }, { state: 'closed', error: null }]);
    expect(tunnel.tunnel.connected).toBe(false);
    expect(await roundTripOrReset(tunnel.port, Buffer.alloc(0)).catch((e: NodeJS.ErrnoException) => e.code)).toBe('ECONNREFUSED');
    await service.close();
  });

  it('an already aborted signal opens nothing', async () => {
    await expect(
      openReverseTunnel({
        host: sshd.host,
        port: sshd.port,
        username: TEST_USER,
        privateKey: key.privatePath,
        hostKey: sshd.hostKeys.ed25519,
        remote: { port: 0 },
        local: { port: 1 },
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses an untrusted server with 1030 and leaves nothing open', async () => {
    const stranger = generateKey(mkdtempSync(join(tmpdir(), 'revtun-api-')), 'other', 'ed25519');
    await expect(
      openReverseTunnel({
        host: sshd.host,
        port: sshd.port,
        username: TEST_USER,
        privateKey: key.privateText,
        hostKey: stranger.publicLine,
        remote: { port: 0 },
        local: { port: 1 },
      }),
    ).rejects.toMatchObject({ code: 1030 });
  });
});

describe('the connection properties while connected', () => {
  it('refuse changes with their documented codes, read back the live values, and free up after sshLogoff', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.config('LocalHost=127.0.0.4');
    expect(tunnel.localHost).toBe('127.0.0.4');
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '', 0);
    expect(tunnel.config('ForwardedPort')).toBe(String(port));
    expect(tunnel.config('LocalHost')).toBe('127.0.0.4');
    expect(tunnel.config('LocalPort')).toBe(String(tunnel.localPort));
    const refusals: [() => unknown, number][] = [
      [() => (tunnel.sshHost = 'elsewhere'), 101],
      [() => (tunnel.sshPort = 2222), 100],
      [() => (tunnel.localPort = 4000), 106],
      [() => (tunnel.localHost = '127.0.0.5'), 107],
      [() => tunnel.config('LocalPort=4000'), 106],
      [() => tunnel.config('MaxLineLength=4096'), 112],
    ];
    for (const [change, code] of refusals) expect(change).toThrow(expect.objectContaining({ code }));
    expect(tunnel.sshHost).toBe(sshd.host);
    expect(tunnel.localHost).toBe('127.0.0.4');
    await tunnel.sshLogoff();
    expect(tunnel.config('ForwardedPort')).toBe('0');
    tunnel.sshPort = 2222;
    expect(tunnel.sshPort).toBe(2222);
    expect(() => (tunnel.sshPort = 0)).toThrow(expect.objectContaining({ code: 116 }));
    expect(() => tunnel.config('LocalPort=70000')).toThrow(expect.objectContaining({ code: 10022 }));
  });

  it('every setting is either taken while connected (the connection still carries data after) or refused with its documented code', async () => {
    const target = await listen((socket) => socket.end('still up'));
    const tunnel = makeTunnel(sshd);
    await tunnel.sshLogon();
    const refusedWhileConnected: Record<string, number> = { MaxLineLength: 112, LocalHost: 107, LocalPort: 106 };
    const idle = Object.entries(SETTING_DOCS)
      .filter(([, doc]) => doc.applies === 'idle')
      .map(([name]) => name);
    expect(idle.sort()).toEqual(Object.keys(refusedWhileConnected).sort());
    for (const [name, code] of Object.entries(refusedWhileConnected)) {
      const value = name === 'LocalHost' ? '127.0.0.9' : name === 'LocalPort' ? '4000' : sampleFor(name);
      expect(() => tunnel.config(`${name}=${value}`), name).toThrow(expect.objectContaining({ code }));
    }
    const taken = Object.keys(SETTINGS).filter((name) => !idle.includes(name) && name !== 'UseFIPSCompliantAPI');
    // Socket options Node cannot set itself need the native addon: with another provider they are refused, with the reason.
    const needAddon = ['KeepAliveInterval', 'InBufferSize', 'OutBufferSize'];
    // The kernel keeps its own idea of a buffer size (doubled, clamped): that is what reads back.
    const kernelValue = ['InBufferSize', 'OutBufferSize'];
    const native = tunnel.cryptoProvider.name === 'native';
    for (const name of taken) {
      const value = sampleFor(name);
      if (needAddon.includes(name) && !native) {
        expect(() => tunnel.config(`${name}=${value}`), name).toThrow(expect.objectContaining({ code: 10022, message: expect.stringMatching(/native addon/) }));
        continue;
      }
      tunnel.config(`${name}=${value}`);
      if (kernelValue.includes(name)) expect(Number(tunnel.config(name)), name).toBeGreaterThan(0);
      else if (!READS_BACK[name] && name !== 'UseInternalSecurityAPI') expect(tunnel.config(name).toLowerCase(), name).toBe(value.toLowerCase());
    }
    expect(tunnel.connected).toBe(true);
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    expect((await roundTrip(port, Buffer.alloc(0))).toString()).toBe('still up');
    await tunnel.sshLogoff();
    await target.close();
  });

  it('localHost reads the machine name until an address is set, and a name binds to its address', async () => {
    const tunnel = makeTunnel(sshd);
    expect(tunnel.localHost).toBe(hostname());
    tunnel.config('LocalHost=localhost'); // a name, as the property reads back: bound to its address
    await tunnel.sshLogon();
    expect(tunnel.localHost).toBe('127.0.0.1');
    await tunnel.sshLogoff();
  });

  it('sshLogon(host, port) that fails its checks leaves sshHost and sshPort as they were', async () => {
    const tunnel = makeTunnel(sshd);
    await expect(tunnel.sshLogon('elsewhere.example', 0)).rejects.toMatchObject({ code: 116 });
    tunnel.sshUser = '';
    await expect(tunnel.sshLogon('elsewhere.example', 2222)).rejects.toMatchObject({ code: 10022 });
    expect([tunnel.sshHost, tunnel.sshPort]).toEqual([sshd.host, sshd.port]);
  });
});

describe('binding', () => {
  it('localHost picks the source address of the SSH connection', async () => {
    const tunnel = makeTunnel(sshd);
    tunnel.localHost = '127.0.0.3';
    await tunnel.sshLogon();
    expect(tunnel.localHost).toBe('127.0.0.3');
    expect(tunnel.localPort).toBeGreaterThan(0);
    await tunnel.sshLogoff();
    expect(sshd.log()).toMatch(/from 127\.0\.0\.3 port \d+/);
  });

  it('ForwardingLocalHost picks the source address of connections to the target', async () => {
    let seen = '';
    const target = await listen((s) => {
      seen = s.remoteAddress ?? '';
      s.end('ok');
    });
    const tunnel = makeTunnel(sshd, { config: ['ForwardingLocalHost=127.0.0.2'] });
    await tunnel.sshLogon();
    const port = await tunnel.requestForwarding('127.0.0.1', 0, '127.0.0.1', target.port);
    expect((await roundTrip(port, Buffer.alloc(0))).toString()).toBe('ok');
    expect(seen).toBe('127.0.0.2');
    await tunnel.sshLogoff();
    await target.close();
  });

  it('WaitForServerDisconnect leaves the close to the server', async () => {
    const tunnel = makeTunnel(sshd, { config: ['WaitForServerDisconnect=True', 'LogLevel=2'] });
    await tunnel.sshLogon();
    const seen: string[] = [];
    tunnel.on('log', (e) => {
      if (/DISCONNECT|server closed/.test(e.message)) seen.push(e.message);
    });
    tunnel.on('disconnected', (e) => seen.push(`disconnected ${e.statusCode}`));
    await tunnel.sshLogoff();
    expect(tunnel.connected).toBe(false);
    expect(seen).toEqual(['sent DISCONNECT; waiting for the server to close the connection', 'the server closed the connection', 'disconnected 0']);
  });
});
