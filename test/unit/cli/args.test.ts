import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../../ts/cli/ssh-config.js';
import { parseArgs, parseRemoteForward, UsageError } from '../../../ts/cli/args.js';

describe('-R specs', () => {
  it.each([
    ['8080:localhost:3000', { bindAddress: 'localhost', port: 8080, host: 'localhost', hostPort: 3000, dynamic: false }],
    ['0.0.0.0:0:127.0.0.1:22', { bindAddress: '0.0.0.0', port: 0, host: '127.0.0.1', hostPort: 22, dynamic: false }],
    ['*:80:web:8080', { bindAddress: '', port: 80, host: 'web', hostPort: 8080, dynamic: false }],
    [':80:web:8080', { bindAddress: '', port: 80, host: 'web', hostPort: 8080, dynamic: false }],
    ['[::1]:8080:[fe80::1]:3000', { bindAddress: '::1', port: 8080, host: 'fe80::1', hostPort: 3000, dynamic: false }],
    // A field with a '/' is a Unix socket path, as in ssh's parse_fwd_field (relative ones too).
    ['8080:/run/app.sock', { bindAddress: 'localhost', port: 8080, host: '/run/app.sock', hostPort: 0, dynamic: false }],
    ['127.0.0.1:0:./app.sock', { bindAddress: '127.0.0.1', port: 0, host: './app.sock', hostPort: 0, dynamic: false }],
    // No target: reverse dynamic forwarding (ssh -R [bind_address:]port), SOCKS answered here.
    ['1080', { bindAddress: 'localhost', port: 1080, host: '', hostPort: 0, dynamic: true }],
    ['*:0', { bindAddress: '', port: 0, host: '', hostPort: 0, dynamic: true }],
    ['[::1]:1080', { bindAddress: '::1', port: 1080, host: '', hostPort: 0, dynamic: true }],
    // A socket path on the server to listen on (streamlocal-forward@openssh.com).
    ['/run/user/1000/app.sock:localhost:3000', { bindAddress: '/run/user/1000/app.sock', port: 0, host: 'localhost', hostPort: 3000, dynamic: false }],
    ['/tmp/remote.sock:/tmp/local.sock', { bindAddress: '/tmp/remote.sock', port: 0, host: '/tmp/local.sock', hostPort: 0, dynamic: false }],
  ])('%s', (spec, expected) => {
    expect(parseRemoteForward(spec)).toEqual(expected);
  });

  it.each(['8080:host', '70000', 'x:y', '/tmp/remote.sock', 'a:b:c:d:e', '70000:h:1', '80:h:0', '80::3000', '80:[a/b]:1'])('rejects %s', (spec) => {
    expect(() => parseRemoteForward(spec)).toThrow(UsageError);
  });
});

describe('command lines', () => {
  it('parses a typical ssh -N -R line with bundled flags', () => {
    const a = parseArgs(['-Nvv', '-p2222', '-i', 'key', '-o', 'ServerAliveInterval=30', '-o', 'StrictHostKeyChecking accept-new', '-R', '0:localhost:3000', 'deploy@gw.example.com']);
    expect(a).toMatchObject({ host: 'gw.example.com', user: 'deploy', port: 2222, identityFiles: ['key'], verbosity: 2 });
    expect(a.options.get('serveraliveinterval')).toBe('30');
    expect(a.options.get('stricthostkeychecking')).toBe('accept-new');
    expect(a.forwards).toHaveLength(1);
  });

  it('takes ssh:// destinations and -o Port / User, with flags winning as in ssh', () => {
    expect(parseArgs(['-R', '1:h:2', 'ssh://alice@[::1]:2200'])).toMatchObject({ host: '::1', user: 'alice', port: 2200 });
    expect(parseArgs(['-o', 'Port=2300', '-o', 'User=bob', '-R', '1:h:2', 'host'])).toMatchObject({ port: 2300, user: 'bob' });
    expect(parseArgs(['-l', 'carol', '-o', 'User=bob', '-R', '1:h:2', 'host']).user).toBe('carol');
  });

  it('-f (ForkAfterAuthentication for ssh_config) and -E (bundled or not; the last one wins, as in ssh)', () => {
    const args = parseArgs(['-fN', '-E', 'first.log', '-Esecond.log', '-R', '1:h:2', 'host']);
    expect(args).toMatchObject({
      background: true,
      logFile: 'second.log',
      commandLine: [
        ['-f', ''],
        ['-R', '1:h:2'],
      ],
    });
    expect(parseArgs(['-R', '1:h:2', 'host'])).not.toHaveProperty('logFile');
    expect(parseArgs(['-R', '1:h:2', 'host']).background).toBe(false);
    expect(() => parseArgs(['-R', '1:h:2', 'host', '-E'])).toThrow(UsageError); // a second destination word
    expect(() => parseArgs(['-E'])).toThrow(/option requires an argument -- E/);
  });

  it('keeps the options ssh_config reads first in argv order, -F and -G apart', () => {
    const args = parseArgs(['-F', 'cfg', '-G', '-p', '2200', '-o', 'User=bob', '-i', 'k', '-4', '-R', '1:h:2', 'alice@host']);
    expect(args.configFile).toBe('cfg');
    expect(args.printConfig).toBe(true);
    expect(args.commandLine).toEqual([
      ['-p', '2200'],
      ['-o', 'User=bob'],
      ['-i', 'k'],
      ['-4', ''],
      ['-R', '1:h:2'],
      ['-l', 'alice'],
    ]);
    // With no -R the config may still give a RemoteForward: that is checked once it is read.
    expect(parseArgs(['host']).forwards).toEqual([]);
  });

  it('the first -o value for a name wins, as in ssh', () => {
    expect(parseArgs(['-o', 'Ciphers=a', '-o', 'ciphers=b', '-R', '1:h:2', 'h']).options.get('ciphers')).toBe('a');
  });

  it('-c and -m set Ciphers and MACs outright, over -o and the config files, the last one winning (ssh -G agrees)', () => {
    const resolved = (argv: string[], config = '') => {
      const dir = mkdtempSync(join(tmpdir(), 'revtun-args-'));
      writeFileSync(join(dir, 'config'), config);
      const args = parseArgs([...argv, '-R', '1:h:2', 'h']);
      const r = resolveConfig({ host: 'h', configFile: join(dir, 'config'), commandLine: args.commandLine, homeDir: dir, localUser: 'me', uid: 1000, localHostname: 'box' });
      return [r.ciphers.join(','), r.macs.join(',')];
    };
    expect(resolved(['-c', 'aes128-ctr', '-o', 'Ciphers=aes256-ctr'])[0]).toBe('aes128-ctr');
    expect(resolved(['-o', 'Ciphers=aes256-ctr', '-c', 'aes128-ctr'])[0]).toBe('aes128-ctr');
    expect(resolved(['-c', 'aes128-ctr', '-caes256-ctr'])[0]).toBe('aes256-ctr');
    expect(resolved(['-c', 'aes128-ctr,,aes256-ctr'])[0]).toBe('aes128-ctr,aes256-ctr');
    expect(resolved(['-c', '^aes256-gcm@openssh.com'])[0]).toMatch(/^aes256-gcm@openssh\.com,chacha20-poly1305@openssh\.com,/);
    expect(resolved(['-c', '+3des-cbc'])[0]).toMatch(/,aes256-gcm@openssh\.com,3des-cbc$/);
    expect(resolved(['-m', 'hmac-sha1'], 'Host *\n  MACs hmac-sha2-256\n')[1]).toBe('hmac-sha1');
  });

  it.each([
    [['-c', 'foo', '-R', '1:h:2', 'h'], /^Unknown cipher type 'foo'$/],
    [['-c', 'aes*', '-R', '1:h:2', 'h'], /^Unknown cipher type 'aes\*'$/],
    [['-c', '-aes128-ctr', '-R', '1:h:2', 'h'], /^Unknown cipher type '-aes128-ctr'$/],
    [['-c', '', '-R', '1:h:2', 'h'], /^Unknown cipher type ''$/],
    [['-m', '+umac-64@openssh.com', '-R', '1:h:2', 'h'], /^Unknown mac type '\+umac-64@openssh\.com'$/],
    [['-m', 'HMAC-SHA1', '-R', '1:h:2', 'h'], /^Unknown mac type 'HMAC-SHA1'$/],
  ])('refuses what ssh refuses: %j', (argv, message) => {
    expect(() => parseArgs(argv as string[])).toThrow(message);
  });

  it.each([
    [[], /missing destination/],
    [['-R', '1:h:2', 'host', 'uptime'], /runs no remote command/],
    [['-X', '-R', '1:h:2', 'host'], /unknown option -- X/],
    [['-p'], /requires an argument/],
    [['-p', '0', '-R', '1:h:2', 'h'], /Bad port/],
    [['-o', 'Ciphers', '-R', '1:h:2', 'h'], /needs a value/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseArgs(argv as string[])).toThrow(message);
  });
});
