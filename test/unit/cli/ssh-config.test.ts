import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseForwardSpec, resolveConfig, SshConfigError, toRemoteForwardSpec, type ResolveOptions } from '../../../ts/cli/ssh-config.js';
import { formatResolved } from '../../../ts/cli/ssh-config-format.js';
import { assembleAlgorithms, expandTokens, globFiles, OPENSSH_ALGORITHMS, validAlgorithmList, type TokenValues } from '../../../ts/cli/ssh-config-expand.js';
import { canonicalKeyword, matchPattern, matchPatternList, parseConfigText, splitArguments, splitConfigLine } from '../../../ts/cli/ssh-config-parse.js';

const root = mkdtempSync(join(tmpdir(), 'revtun-ssh-config-unit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** Writes files under a fresh home directory; returns the home and the path of each file. */
function home(files: Record<string, string>): { dir: string; path: (name: string) => string } {
  const dir = join(root, `home${counter++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text, { mode: 0o600 });
  }
  return { dir, path: (name) => join(dir, name) };
}

/** Resolves with a config text as the only file (-F), fixed local facts and no exec. */
function resolveText(text: string, host: string, extra: Partial<ResolveOptions> = {}) {
  const h = home({ config: text });
  return resolveConfig({
    host,
    configFile: h.path('config'),
    homeDir: h.dir,
    localUser: 'me',
    uid: 1000,
    localHostname: 'box.example.lan',
    env: { HOME: h.dir, KEYS: '/srv/keys' },
    runExec: () => false,
    ...extra,
  });
}

function errorOf(fn: () => unknown): SshConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SshConfigError) return error;
    throw error;
  }
  throw new Error('no error');
}

describe('line syntax', () => {
  it.each([
    ['Port 22', 'port', ['22']],
    ['port=22', 'port', ['22']],
    ['  PORT  =  22  ', 'port', ['22']],
    ['User "a b"', 'user', ['a b']],
    ["User 'a b' # comment", 'user', ['a b']],
    ['IdentityFile a"b c"d', 'identityfile', ['ab cd']],
    ['IdentityFile a\\ b', 'identityfile', ['a b']],
    ['SendEnv A#B C', 'sendenv', ['A#B', 'C']],
  ])('%s', (text, keyword, args) => {
    expect(splitConfigLine(text, 'f', 1)).toMatchObject({ keyword, args });
  });

  it('skips blank and comment lines and keeps line numbers', () => {
    const lines = parseConfigText('# c\n\n   # indented\nHost x\n\tPort 1\n', 'cfg');
    expect(lines.map((l) => [l.keyword, l.line])).toEqual([
      ['host', 4],
      ['port', 5],
    ]);
  });

  it('keeps the raw rest of the line for ProxyCommand', () => {
    expect(splitConfigLine('ProxyCommand = nc "%h" %p # not a comment here', 'f', 1)!.rest).toBe('nc "%h" %p # not a comment here');
  });

  it('reports open quotes and missing arguments with file and line', () => {
    expect(errorOf(() => parseConfigText('Host x\nUser "open\n', 'cfg')).message).toBe('cfg line 2: invalid quotes');
    expect(errorOf(() => parseConfigText('\n\nPort\n', 'cfg')).message).toBe('cfg line 3: no argument after keyword "port"');
    expect(splitArguments('a "b')).toBeUndefined();
  });

  it('knows every keyword of man ssh_config, with the old aliases', () => {
    expect(canonicalKeyword('ChallengeResponseAuthentication')).toEqual({ keyword: 'kbdinteractiveauthentication', kind: 'known' });
    expect(canonicalKeyword('ForwardX11')?.kind).toBe('ignored');
    expect(canonicalKeyword('UseRoaming')?.kind).toBe('deprecated');
    expect(canonicalKeyword('RSAAuthentication')?.kind).toBe('unsupported');
    expect(canonicalKeyword('Frobnicate')).toBeUndefined();
  });
});

describe('patterns', () => {
  it.each([
    ['web1', 'web?', true],
    ['web12', 'web?', false],
    ['a.example.com', '*.example.com', true],
    ['example.com', '*.example.com', false],
    ['abc', 'a*c*', true],
    ['Web1', 'web*', false],
    ['', '*', true],
  ])('%s against %s', (text, pattern, result) => {
    expect(matchPattern(text, pattern)).toBe(result);
  });

  it('a negated entry vetoes the list and never matches on its own', () => {
    expect(matchPatternList('db1', '!db*,*', false)).toBe(-1);
    expect(matchPatternList('web1', '!db*,*', false)).toBe(1);
    expect(matchPatternList('web1', '!db*', false)).toBe(0);
    expect(matchPatternList('web', 'WEB', true)).toBe(1);
  });
});

describe('Host blocks and first value wins', () => {
  const config = ['Host web? !web9', '  Port 2201', 'Host web*', '  Port 2299', '  User alice', 'Host a,b', '  Port 7', 'Host *', '  Port 22', '  User fallback'].join('\n');

  it('takes the first value obtained for each key', () => {
    expect(resolveText(config, 'web1')).toMatchObject({ port: 2201, user: 'alice' });
    expect(resolveText(config, 'web9')).toMatchObject({ port: 2299, user: 'alice' });
    expect(resolveText(config, 'other')).toMatchObject({ port: 22, user: 'fallback' });
  });

  it('matches the name as typed: case-sensitive, commas are not separators', () => {
    expect(resolveText(config, 'WEB1').port).toBe(22);
    expect(resolveText(config, 'a').port).toBe(22);
  });

  it('defaults to the local user and port 22, and lowercases the host name', () => {
    expect(resolveText('', 'Some.Host')).toMatchObject({ user: 'me', port: 22, hostName: 'some.host', host: 'Some.Host' });
    expect(resolveText('HostName FE80::1', 'x').hostName).toBe('FE80::1');
  });

  it('lets command-line options win over the files', () => {
    const r = resolveText(config, 'web1', {
      commandLine: [
        ['-p', '2000'],
        ['-o', 'User=cli'],
        ['ServerAliveInterval', '5'],
        ['-o', 'ServerAliveInterval=6'],
      ],
    });
    expect(r).toMatchObject({ port: 2000, user: 'cli', serverAliveInterval: 5 });
  });

  it('-f sets ForkAfterAuthentication outright, as ssh does: a file cannot switch it off', () => {
    expect(resolveText('ForkAfterAuthentication no\n', 'x', { commandLine: [['-f', '']] }).forkAfterAuthentication).toBe(true);
    expect(resolveText('ForkAfterAuthentication yes\n', 'x').forkAfterAuthentication).toBe(true);
    expect(resolveText('', 'x').forkAfterAuthentication).toBe(false);
    expect(errorOf(() => resolveText('ForkAfterAuthentication maybe\n', 'x')).message).toMatch(/line 1: unsupported option "maybe"/);
  });

  it('reads ~/.ssh/config before /etc/ssh/ssh_config when there is no -F', () => {
    const h = home({ '.ssh/config': 'Host x\n  Port 1\n', system: 'Port 2\nUser sys\nHost *\n  IdentityFile ~/k\n' });
    const r = resolveConfig({ host: 'x', homeDir: h.dir, localUser: 'me', uid: process.getuid!(), systemConfigFile: h.path('system'), env: {} });
    expect(r).toMatchObject({ port: 1, user: 'sys', identityFile: ['~/k'], identityFilePaths: [join(h.dir, 'k')] });
  });
});

describe('keys that accumulate', () => {
  it('collects IdentityFile, CertificateFile and RemoteForward in order, without duplicates', () => {
    const r = resolveText(
      [
        'Host x',
        '  IdentityFile ~/a',
        '  RemoteForward 8080 localhost:80',
        'Host *',
        '  IdentityFile ~/b',
        '  IdentityFile ~/a',
        '  CertificateFile ~/a-cert.pub',
        '  RemoteForward 8080 localhost:80',
        '  RemoteForward [::1]:0 h:1',
      ].join('\n'),
      'x',
      { commandLine: [['-R', '9000:localhost:9001']] },
    );
    expect(r.identityFile).toEqual(['~/a', '~/b']);
    expect(r.certificateFile).toEqual(['~/a-cert.pub']);
    expect(r.remoteForward).toEqual([
      { listenPort: 9000, connectHost: 'localhost', connectPort: 9001 },
      { listenPort: 8080, connectHost: 'localhost', connectPort: 80 },
      { listenHost: '::1', listenPort: 0, connectHost: 'h', connectPort: 1 },
    ]);
  });

  it('falls back to ssh’s default identity files', () => {
    expect(resolveText('', 'x').identityFile[0]).toBe('~/.ssh/id_rsa');
  });

  it('reads forwarding specs as parse_forward does', () => {
    expect(parseForwardSpec('1080', true, true)).toEqual({ listenPort: 1080, connectHost: 'socks', connectPort: 0 });
    expect(parseForwardSpec('/tmp/s:localhost:80', false, true)).toEqual({ listenPath: '/tmp/s', listenPort: -2, connectHost: 'localhost', connectPort: 80 });
    expect(parseForwardSpec('0:h:1', false, false)).toBeUndefined(); // a local listener needs a port
    expect(parseForwardSpec('8080:h:0', false, true)).toBeUndefined();
  });

  it('keeps PermitRemoteOpen as written (first value wins) and checks it as ssh does', () => {
    expect(resolveText('PermitRemoteOpen localhost:80 db:5432\nPermitRemoteOpen any\n', 'x').permitRemoteOpen).toBe('localhost:80 db:5432');
    expect(resolveText('', 'x').permitRemoteOpen).toBeUndefined();
    expect(() => resolveText('PermitRemoteOpen none db:1\n', 'x')).toThrow(/"none" argument must appear alone/);
    expect(() => resolveText('PermitRemoteOpen db\n', 'x')).toThrow(/bad port number in permitremoteopen/);
    expect(() => resolveText('Host other\n  PermitRemoteOpen db:99999\n', 'x')).toThrow(/line 2: bad port number/); // inactive blocks too
  });

  it('converts to the tunnel’s forwarding specs with -R’s defaults', () => {
    expect(toRemoteForwardSpec(parseForwardSpec('8080:localhost:80', false, true)!)).toEqual({ bindAddress: 'localhost', port: 8080, host: 'localhost', hostPort: 80, dynamic: false });
    expect(toRemoteForwardSpec(parseForwardSpec('*:0:web:80', false, true)!)).toEqual({ bindAddress: '', port: 0, host: 'web', hostPort: 80, dynamic: false });
    expect(toRemoteForwardSpec(parseForwardSpec('1080', true, true)!)).toEqual({ bindAddress: 'localhost', port: 1080, host: '', hostPort: 0, dynamic: true });
    expect(toRemoteForwardSpec(parseForwardSpec('8080:/run/app.sock', false, true)!)).toEqual({ bindAddress: 'localhost', port: 8080, host: '/run/app.sock', hostPort: 0, dynamic: false });
  });
});

describe('Match', () => {
  it('matches host after HostName, originalhost, user and localuser', () => {
    const config = ['Host s', '  HostName s.example.org', 'Match host *.example.org !originalhost t', '  Port 1', 'Match user deploy', '  Port 2', 'Match localuser me', '  User fromlocal'].join('\n');
    expect(resolveText(config, 's').port).toBe(1);
    expect(resolveText(config, 'x', { commandLine: [['-l', 'deploy']] }).port).toBe(2);
    expect(resolveText(config, 'x').user).toBe('fromlocal');
  });

  it('runs exec with tokens expanded, and not after a criterion failed', () => {
    const seen: string[] = [];
    const runExec = (cmd: string) => {
      seen.push(cmd);
      return cmd.includes('yes');
    };
    const config = 'Match exec "test %h-%p-%r-%u-%n = yes"\n  Port 3\nMatch originalhost nomatch exec "never run"\n  Port 4\n';
    expect(resolveText(config, 'h', { runExec }).port).toBe(3);
    expect(seen).toEqual(['test h-22-me-me-h = yes']);
  });

  it('`Match all` must stand alone; criteria need arguments', () => {
    expect(errorOf(() => resolveText('\nMatch all host x\n', 'x')).line).toBe(2);
    expect(errorOf(() => resolveText('Match host\n', 'x')).message).toMatch(/line 1: Missing Match criteria for host/);
    expect(errorOf(() => resolveText('Match colour blue\n', 'x')).message).toMatch(/Unsupported Match attribute colour/);
  });

  it('Match final reads the files again, matching Host against the substituted name', () => {
    const config = ['Host alias', '  HostName real.example', '  IdentityFile ~/k', 'Host real.example', '  Port 5', 'Match final', '  User finaluser', 'Match !final', '  ConnectionAttempts 2'].join(
      '\n',
    );
    const r = resolveText(config, 'alias');
    expect(r).toMatchObject({ port: 5, user: 'finaluser', connectionAttempts: 2, hostName: 'real.example' });
    expect(r.identityFile).toEqual(['~/k']);
    // Even `Match !final` asks for the second pass; without any, Host sees only the alias.
    expect(resolveText(config.replace('Match !final', 'Match originalhost none'), 'alias').port).toBe(5);
    expect(resolveText(config.replace(/Match !?final/g, 'Match originalhost none'), 'alias').port).toBe(22);
  });
});

describe('ProxyJump and ProxyCommand', () => {
  it('whichever comes first wins; ProxyJump none leaves ProxyCommand open', () => {
    expect(resolveText('ProxyJump a@gw:2\nProxyCommand nc %h\n', 'x')).toMatchObject({ proxyJump: 'a@gw:2' });
    expect(resolveText('ProxyCommand nc %h\nProxyJump gw\n', 'x')).toMatchObject({ proxyCommand: 'nc %h', proxyCommandExpanded: 'nc x' });
    expect(resolveText('ProxyJump none\nProxyCommand nc\n', 'x').proxyCommand).toBe('nc');
    expect(resolveText('ProxyCommand none\n', 'x').proxyCommand).toBeUndefined();
    expect(resolveText('', 'x', { commandLine: [['-J', 'h1,u@[::1]:2']] }).proxyJump).toBe('h1,u@[::1]:2');
  });

  it('rejects a hop parse_jump would not take', () => {
    expect(errorOf(() => resolveText('ProxyJump gw:0\n', 'x')).message).toMatch(/Invalid ProxyJump "gw:0"/);
    expect(errorOf(() => resolveText('ProxyJump @gw\n', 'x')).message).toMatch(/Invalid ProxyJump/);
  });
});

describe('second pass and command-line flags', () => {
  it('CanonicalizeHostname also reads the files again (without DNS in revtun)', () => {
    expect(resolveText('CanonicalizeHostname yes\nHost alias\n  HostName Real\nHost real\n  Port 8\n', 'alias').port).toBe(8);
  });

  it('-i skips a file that does not exist, as ssh does, with its warning', () => {
    const r = resolveText('', 'x', {
      commandLine: [
        ['-i', '/nonexistent/key'],
        ['-i', '/etc/hostname'],
        ['-4', ''],
      ],
    });
    expect(r.identityFile).toEqual(['/etc/hostname']);
    expect(r.warnings).toEqual(['Warning: Identity file /nonexistent/key not accessible: No such file or directory.']);
    expect(r.addressFamily).toBe('inet');
  });
});

describe('Include', () => {
  it('resolves relative paths against ~/.ssh, globs in sorted order, and keeps Host inside it local', () => {
    const h = home({
      '.ssh/config': 'Host x\n  Include conf.d/*.conf\n  Port 9\n',
      '.ssh/conf.d/b.conf': 'IdentityFile ~/b\n',
      '.ssh/conf.d/a.conf': 'IdentityFile ~/a\nHost never\n',
      '.ssh/conf.d/.hidden.conf': 'Port 1\n',
    });
    const r = resolveConfig({ host: 'x', homeDir: h.dir, localUser: 'me', uid: process.getuid!(), systemConfigFile: join(h.dir, 'none'), env: {} });
    expect(r.identityFile).toEqual(['~/a', '~/b']);
    expect(r.port).toBe(9);
  });

  it('expands ~ and ignores patterns that match nothing', () => {
    const h = home({ config: 'Include ~/extra ~/missing/*\n', extra: 'Port 44\n' });
    expect(resolveConfig({ host: 'x', configFile: h.path('config'), homeDir: h.dir, localUser: 'me', uid: process.getuid!(), env: {} }).port).toBe(44);
  });

  it('reads an Include inside an inactive block for errors only', () => {
    const h = home({ config: 'Host other\n  Include ~/inc\n', inc: 'Port 44\n' });
    const opts = { host: 'x', configFile: h.path('config'), homeDir: h.dir, localUser: 'me', uid: process.getuid!(), env: {} };
    expect(resolveConfig(opts).port).toBe(22);
    writeFileSync(h.path('inc'), 'Port 44\nPort nope\n');
    expect(errorOf(() => resolveConfig(opts))).toMatchObject({ file: h.path('inc'), line: 2 });
  });

  it('refuses a file others can write, and endless recursion', () => {
    const h = home({ config: 'Include ~/inc\n', inc: 'Port 1\n' });
    chmodSync(h.path('inc'), 0o666);
    const opts = { host: 'x', configFile: h.path('config'), homeDir: h.dir, localUser: 'me', uid: process.getuid!(), env: {} };
    expect(errorOf(() => resolveConfig(opts)).message).toMatch(/Bad owner or permissions/);
    writeFileSync(h.path('inc'), 'Include ~/inc\n', { mode: 0o600 });
    chmodSync(h.path('inc'), 0o600);
    expect(errorOf(() => resolveConfig(opts)).message).toMatch(/Too many recursive/);
  });

  it('anchors a system file’s relative Include in /etc/ssh and refuses ~ there', () => {
    const h = home({ '.ssh/config': '', system: 'Include revtun-test-none-*.conf\nPort 6\n', bad: 'Include ~/x\n' });
    const opts = { host: 'x', homeDir: h.dir, localUser: 'me', uid: process.getuid!(), env: {} };
    expect(resolveConfig({ ...opts, systemConfigFile: h.path('system') }).port).toBe(6);
    expect(errorOf(() => resolveConfig({ ...opts, systemConfigFile: h.path('bad') })).message).toMatch(/line 1: bad include path ~\/x/);
  });

  it('globs like glob(3)', () => {
    const h = home({ 'd/x1': '', 'd/x2': '', 'd/y1': '', 'd/.x3': '' });
    expect(globFiles(`${h.dir}/d/x*`)).toEqual([h.path('d/x1'), h.path('d/x2')]);
    expect(globFiles(`${h.dir}/d/[xy]1`)).toEqual([h.path('d/x1'), h.path('d/y1')]);
    expect(globFiles(`${h.dir}/d/none`)).toEqual([]);
  });
});

describe('tokens', () => {
  const values: TokenValues = { host: 'h.example', originalHost: 'h', port: 2222, remoteUser: 'r', localUser: 'me', homeDir: '/home/me', localHostname: 'box.lan', uid: 1000, keyAlias: 'h' };

  it('expands the standard set', () => {
    expect(expandTokens('%h %n %p %r %u %d %l %L %i %k %%', '%CdhikLlnpru', values)).toEqual({ value: 'h.example h 2222 r me /home/me box.lan box 1000 h %' });
    // %C is SHA-1 over %l%h%p%r.
    expect(expandTokens('%C', '%C', values)).toEqual({ value: createHash('sha1').update('box.lanh.example2222r').digest('hex') });
  });

  it('rejects tokens a keyword does not take', () => {
    expect(expandTokens('%u', '%hnpr', values)).toHaveProperty('error');
    expect(expandTokens('50%', '%h', values)).toHaveProperty('error');
  });

  it('applies them where ssh does', () => {
    const r = resolveText(
      ['Host t*', '  HostName %h.example.com', '  IdentityFile ~/.ssh/%h-%r-%p', '  IdentityFile ${KEYS}/%u', '  UserKnownHostsFile %d/kh_%h', '  ProxyCommand nc %h %p', '  HostKeyAlias Alias'].join(
        '\n',
      ),
      'tok',
      { commandLine: [['-p', '2200']] },
    );
    expect(r.hostName).toBe('tok.example.com');
    expect(r.identityFile).toEqual(['~/.ssh/%h-%r-%p', '${KEYS}/%u']);
    expect(r.identityFilePaths).toEqual([expect.stringMatching(/\/\.ssh\/tok\.example\.com-me-2200$/), '/srv/keys/me']);
    expect(r.userKnownHostsFile).toEqual([expect.stringMatching(/\/kh_tok\.example\.com$/)]);
    expect(r).toMatchObject({ proxyCommand: 'nc %h %p', proxyCommandExpanded: 'nc tok.example.com 2200', hostKeyAlias: 'alias' });
  });

  it('reports a token HostName does not take, and an unset ${VAR}', () => {
    expect(errorOf(() => resolveText('HostName %r.x\n', 'x')).message).toMatch(/unknown key %r/);
    expect(errorOf(() => resolveText('IdentityFile ${NOPE}/k\n', 'x')).message).toMatch(/NOPE/);
  });
});

describe('algorithm lists', () => {
  it('+ appends, ^ prepends, - removes by pattern', () => {
    const ciphers = OPENSSH_ALGORITHMS.ciphers.defaults;
    expect(assembleAlgorithms('ciphers', undefined)).toEqual(ciphers);
    expect(assembleAlgorithms('ciphers', '+aes128-cbc')).toEqual([...ciphers, 'aes128-cbc']);
    expect(assembleAlgorithms('ciphers', '^aes256-ctr')).toEqual(['aes256-ctr', ...ciphers.filter((c) => c !== 'aes256-ctr')]);
    expect(assembleAlgorithms('ciphers', '-*-ctr,chacha*')).toEqual(['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com']);
    expect(assembleAlgorithms('hostkeyalgorithms', 'ssh-ed25519*')).toEqual(['ssh-ed25519', 'ssh-ed25519-cert-v01@openssh.com']);
  });

  it('takes mlkem768x25519-sha256 (newer than ssh 9.2, which would refuse it), alone or added (was "Bad SSH2 KexAlgorithms")', () => {
    expect(validAlgorithmList('kexalgorithms', 'mlkem768x25519-sha256')).toBe(true);
    expect(assembleAlgorithms('kexalgorithms', '^mlkem768x25519-sha256')[0]).toBe('mlkem768x25519-sha256');
    expect(assembleAlgorithms('kexalgorithms', 'mlkem768x25519-sha256')).toEqual(['mlkem768x25519-sha256']);
  });

  it('checks names as ssh does while reading', () => {
    expect(validAlgorithmList('ciphers', 'aes*')).toBe(false);
    expect(validAlgorithmList('ciphers', '-aes*')).toBe(true);
    expect(validAlgorithmList('hostkeyalgorithms', 'rsa-sha2-*')).toBe(true);
    expect(errorOf(() => resolveText('Host *\n  MACs hmac-nope\n', 'x')).message).toMatch(/line 2: Bad SSH2 MAC spec 'hmac-nope'/);
  });
});

describe('errors and unknown keywords', () => {
  it.each([
    ['Host x\n  Bogus 1\n', 2, 'Bad configuration option: bogus'],
    ['Host other\n  Port abc\n', 2, "Bad port 'abc'."],
    ['Port 22 23\n', 1, 'keyword port extra arguments at end of line'],
    ['\nBatchMode maybe\n', 2, 'unsupported option "maybe".'],
    ['ConnectTimeout soon\n', 1, 'invalid time value.'],
    ['RemoteForward 80:x\n', 1, 'Bad forwarding specification.'],
  ])('%j', (text, line, message) => {
    const e = errorOf(() => resolveText(text, 'x'));
    expect(e.line).toBe(line);
    expect(e.message).toContain(message);
    expect(e.message).toMatch(/config line \d+: /);
  });

  it('accepts and ignores keywords ssh knows that revtun does not use', () => {
    const r = resolveText('ForwardX11 yes\nControlMaster auto\nUseRoaming no\nRSAAuthentication yes\n', 'x');
    expect(r.warnings).toEqual([expect.stringMatching(/line 4: Unsupported option "rsaauthentication"/)]);
  });

  it('IgnoreUnknown lets unknown keywords through', () => {
    expect(resolveText('IgnoreUnknown Foo*\nFooBar 1\nPort 3\n', 'x').port).toBe(3);
  });

  it('passes revtun’s own settings through by name, case-insensitively', () => {
    const r = resolveText('Host x\n  sshkeepaliveinterval 10\n  AutoReconnect 0\n  AutoReconnect 2\n', 'x');
    expect([...r.revtunSettings]).toEqual([
      ['SSHKeepAliveInterval', '10'],
      ['AutoReconnect', '0'],
    ]);
  });

  it('rejects Host, Match and Include on the command line', () => {
    expect(errorOf(() => resolveText('', 'x', { commandLine: [['-o', 'Host=x']] })).message).toMatch(/not supported as a command-line option/);
  });
});

describe('formatResolved', () => {
  it('prints ssh -G lines for the supported keys in ssh’s order', () => {
    const r = resolveText(
      [
        'Host x',
        '  HostName X.Example',
        '  StrictHostKeyChecking no',
        '  PubkeyAuthentication yes',
        '  RemoteForward 8080 localhost:3000',
        '  ProxyJump u@10.0.0.1:2200',
        '  ConnectTimeout 1m',
        '  Ciphers aes128-ctr',
        '  SSHKeepAliveCountMax 4',
      ].join('\n'),
      'x',
    );
    const lines = formatResolved(r);
    expect(lines.slice(0, 4)).toEqual(['host x', 'user me', 'hostname x.example', 'port 22']);
    expect(lines).toContain('stricthostkeychecking false');
    expect(lines).toContain('pubkeyauthentication true');
    expect(lines).toContain('ciphers aes128-ctr');
    expect(lines).toContain('remoteforward 8080 [localhost]:3000');
    expect(lines).toContain('connecttimeout 60');
    expect(lines.indexOf('proxyjump u@[10.0.0.1]:2200')).toBe(lines.length - 2);
    expect(lines.at(-1)).toBe('sshkeepalivecountmax 4');
  });
});
