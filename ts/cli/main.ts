#!/usr/bin/env node
// The `revtun` command: `ssh -N -R` lines work unchanged. Host keys are checked against
// known_hosts (StrictHostKeyChecking yes / accept-new / no), passwords and passphrases come
// from SSH_ASKPASS or the terminal (never with BatchMode), and SIGINT/SIGTERM cancel the
// forwardings and log off cleanly. Exit status: 0 after a clean stop, 255 on failure.

import { appendFileSync, closeSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { SSHReverseTunnel, SshAuthMode } from '../tunnel/tunnel.js';
import { SshError, Code } from '../protocol/errors.js';
import { parsePublicKey, publicKeyTypeName } from '../protocol/publickey.js';
import { canonicalSettingName, DEFAULT_HOST_KEY } from '../tunnel/settings.js';
import { checkKnownHosts, knownHostsLine, knownHostsName, loadKnownHostsFiles, type KnownHostEntry } from '../tunnel/hostkeys.js';
import { parseArgs, UsageError, USAGE, type CliArgs } from './args.js';
import { usableIdentities } from './identity.js';
import { resolveConfig, SshConfigError, toRemoteForwardSpec, type ResolvedConfig } from './ssh-config.js';
import { formatResolved } from './ssh-config-format.js';
import { formatSeconds } from '../tunnel/timing.js';

const VERSION = 'revtun 0.1.0';

/** How long SIGINT/SIGTERM lets queued data leave before the connection is dropped. */
const SHUTDOWN_DRAIN_SECONDS = 5;

function expandHome(path: string): string {
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}

function yesNo(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  return /^(yes|true|1|on)$/i.test(value);
}

/**
 * Asks for a secret like ssh does: SSH_ASKPASS when forced or without a terminal, else the
 * terminal with echo off. Synchronous, because authentication asks for a password only at
 * the moment it needs one. Returns undefined when there is no way to ask.
 */
function askSecret(prompt: string, batchMode: boolean): string | undefined {
  if (batchMode) return undefined;
  const askpass = process.env.SSH_ASKPASS;
  const require = process.env.SSH_ASKPASS_REQUIRE ?? '';
  if (askpass && require !== 'never' && (require === 'force' || !process.stdin.isTTY)) {
    try {
      return execFileSync(askpass, [prompt], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  }
  let tty: number;
  try {
    tty = openSync('/dev/tty', 'r+');
  } catch {
    return undefined;
  }
  try {
    writeSync(tty, prompt);
    execFileSync('stty', ['-echo'], { stdio: [tty, 'ignore', 'ignore'] });
    const bytes: number[] = [];
    const one = Buffer.alloc(1);
    while (readSync(tty, one, 0, 1, null) === 1 && one[0] !== 0x0a && bytes.length < 4096) bytes.push(one[0]!);
    return Buffer.from(bytes).toString('utf8').replace(/\r$/, '');
  } catch {
    return undefined;
  } finally {
    try {
      execFileSync('stty', ['echo'], { stdio: [tty, 'ignore', 'ignore'] });
      writeSync(tty, '\n');
    } catch {
      /* the terminal went away */
    }
    closeSync(tty);
  }
}

interface HostKeyPolicy {
  entries: KnownHostEntry[];
  userFile: string;
  strict: 'yes' | 'accept-new' | 'no';
}

function loadKnownHosts(args: CliArgs): HostKeyPolicy {
  const userFiles = (args.options.get('userknownhostsfile') ?? '~/.ssh/known_hosts ~/.ssh/known_hosts2').split(/\s+/).map(expandHome);
  const globalFiles = (args.options.get('globalknownhostsfile') ?? '/etc/ssh/ssh_known_hosts').split(/\s+/).map(expandHome);
  // One list from every file: a @revoked line in the global file must outweigh a good line in the user's.
  const entries = loadKnownHostsFiles([...userFiles, ...globalFiles]);
  const raw = (args.options.get('stricthostkeychecking') ?? 'ask').toLowerCase();
  const strict = raw === 'accept-new' ? 'accept-new' : raw === 'no' || raw === 'off' ? 'no' : 'yes';
  return { entries, userFile: userFiles[0]!, strict };
}

/** Like ssh, prefer host key algorithms for which known_hosts already holds a key for this host. */
function preferKnownKeyTypes(policy: HostKeyPolicy, host: string, port: number, algorithms: string[]): string[] {
  const known = new Set<string>();
  for (const e of policy.entries) {
    if (e.marker !== '' || checkKnownHosts([e], host, port, e.key) !== 'match') continue;
    known.add(e.keyType);
  }
  if (known.size === 0) return algorithms;
  const usesKnown = (alg: string) => known.has(alg.startsWith('rsa-sha2-') ? 'ssh-rsa' : alg);
  return [...algorithms.filter(usesKnown), ...algorithms.filter((a) => !usesKnown(a))];
}

function log(args: CliArgs, message: string): void {
  if (!args.quiet) process.stderr.write(`${message}\n`);
}

function applyOptions(tunnel: SSHReverseTunnel, args: CliArgs): void {
  const o = args.options;
  const map: [string, string][] = [
    ['ciphers', 'sshEncryptionAlgorithms'],
    ['macs', 'SSHMacAlgorithms'],
    ['kexalgorithms', 'SSHKeyExchangeAlgorithms'],
    ['hostkeyalgorithms', 'SSHPublicKeyAlgorithms'],
    ['serveraliveinterval', 'SSHKeepAliveInterval'],
    ['serveralivecountmax', 'SSHKeepAliveCountMax'],
    ['connecttimeout', 'ConnectionTimeout'],
  ];
  tunnel.config('SSHKeepAliveCountMax=3'); // ssh's default ServerAliveCountMax
  for (const [option, target] of map) {
    const value = o.get(option);
    if (value === undefined) continue;
    if (target === 'sshEncryptionAlgorithms') tunnel.sshEncryptionAlgorithms = value;
    else tunnel.config(`${target}=${value}`);
  }
  const logLevel = o.get('loglevel');
  if (logLevel !== undefined) {
    // OpenSSH's names: everything quieter than VERBOSE prints only errors.
    const levels: Record<string, number> = { quiet: 0, fatal: 0, error: 0, info: 0, verbose: 1, debug: 1, debug1: 1, debug2: 2, debug3: 3 };
    const level = levels[logLevel.toLowerCase()];
    if (level === undefined) throw new UsageError(`Unsupported LogLevel ${logLevel}`);
    tunnel.config(`LogLevel=${Math.max(level, Math.min(3, args.verbosity))}`);
  }
  if (yesNo(o.get('compression'), false)) throw new UsageError('Compression=yes is not supported yet (zlib arrives in a later version)');
  const family = o.get('addressfamily')?.toLowerCase();
  if (family !== undefined) {
    if (!['any', 'inet', 'inet6'].includes(family)) throw new UsageError(`Bad AddressFamily ${family}`);
    tunnel.config(`UseIPv6=${family === 'inet6' ? 1 : family === 'any' ? 2 : 0}`);
  }
  const known = new Set([
    'port', 'user', 'identityfile', 'userknownhostsfile', 'globalknownhostsfile', 'stricthostkeychecking', 'exitonforwardfailure',
    'batchmode', 'passwordauthentication', 'kbdinteractiveauthentication', 'pubkeyauthentication', 'loglevel', 'compression',
    'addressfamily', 'identitiesonly', 'proxycommand', ...map.map(([k]) => k),
  ]);
  const proxyCommand = o.get('proxycommand');
  if (proxyCommand !== undefined) tunnel.proxyCommand = proxyCommand;
  for (const [name, value] of o) {
    if (known.has(name)) continue;
    const setting = canonicalSettingName(name);
    if (!setting) throw new UsageError(`Bad configuration option: ${name}`);
    tunnel.config(`${setting}=${value}`);
  }
}

/**
 * Puts the resolved configuration where the rest of the command reads it: the host ssh
 * connects to (HostName), port and user, the identity files (-i ones first, then the config's
 * IdentityFile lines, or ssh's defaults when neither gives one), its RemoteForward lines, and
 * the -o options rebuilt from every keyword the command line or a file set (keywords ssh
 * knows but revtun does not use are dropped, as ssh ignores them).
 */
function applyConfig(args: CliArgs, config: ResolvedConfig): void {
  if (config.proxyJump !== undefined) throw new UsageError(`ProxyJump ${config.proxyJump}: jump hosts are not supported yet (ProxyCommand is)`);
  args.host = config.hostName;
  args.port = config.port;
  args.user = config.user;
  // resolveConfig already put -i files first and dropped duplicates and -i files that do not exist.
  args.identityFiles = [...new Set(config.identityFilePaths)];
  for (const forward of config.remoteForward) {
    const spec = toRemoteForwardSpec(forward);
    if (!spec) throw new UsageError('a RemoteForward to a Unix socket or a dynamic (SOCKS) one is not supported yet');
    args.forwards.push(spec);
  }
  if (args.forwards.length === 0) throw new UsageError('no -R forwarding given (nor a RemoteForward in the config); revtun only opens remote forwardings');
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const values: Record<string, () => string | undefined> = {
    ciphers: () => config.ciphers.join(','),
    macs: () => config.macs.join(','),
    kexalgorithms: () => config.kexAlgorithms.join(','),
    hostkeyalgorithms: () => config.hostKeyAlgorithms.join(','),
    serveraliveinterval: () => String(config.serverAliveInterval),
    serveralivecountmax: () => String(config.serverAliveCountMax),
    connecttimeout: () => (config.connectTimeout === undefined ? undefined : String(config.connectTimeout)),
    stricthostkeychecking: () => config.strictHostKeyChecking,
    userknownhostsfile: () => config.userKnownHostsFile.join(' '),
    globalknownhostsfile: () => config.globalKnownHostsFile.join(' '),
    exitonforwardfailure: () => yes(config.exitOnForwardFailure),
    batchmode: () => yes(config.batchMode),
    passwordauthentication: () => yes(config.passwordAuthentication),
    kbdinteractiveauthentication: () => yes(config.kbdInteractiveAuthentication),
    pubkeyauthentication: () => yes(config.pubkeyAuthentication !== 'no'),
    tcpkeepalive: () => yes(config.tcpKeepAlive),
    compression: () => yes(config.compression),
    addressfamily: () => config.addressFamily,
    loglevel: () => (config.logLevel === 'SILENT' ? 'quiet' : config.logLevel.toLowerCase()),
    proxycommand: () => config.proxyCommand ?? 'none',
  };
  const options = new Map<string, string>();
  for (const [keyword, value] of Object.entries(values)) {
    if (!config.explicit.has(keyword)) continue;
    const text = value();
    if (text !== undefined) options.set(keyword, text);
  }
  for (const [name, value] of config.revtunSettings) options.set(name.toLowerCase(), value);
  args.options = options;
}

async function run(argv: string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`revtun: ${error.message}\n${USAGE}\n`);
      return 255;
    }
    throw error;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }

  // ssh_config: the command line first, then -F's file alone, or ~/.ssh/config and
  // /etc/ssh/ssh_config; the first value obtained wins. -R lines from the command line are
  // parsed by parseArgs; the config's RemoteForward lines join them.
  let config: ResolvedConfig;
  try {
    config = resolveConfig({
      host: args.host,
      ...(args.configFile !== undefined ? { configFile: args.configFile } : {}),
      commandLine: args.printConfig ? args.commandLine : args.commandLine.filter(([flag]) => flag !== '-R'),
      homeDir: homedir(),
    });
    if (args.printConfig) {
      process.stdout.write(`${formatResolved(config).join('\n')}\n`);
      return 0;
    }
    applyConfig(args, config);
  } catch (error) {
    if (error instanceof SshConfigError || error instanceof UsageError) {
      process.stderr.write(`revtun: ${error.message}\n`);
      return 255;
    }
    throw error;
  }
  // ssh prints a missing -i file's warning even under -q.
  for (const warning of config.warnings) {
    if (/^Warning: Identity file/.test(warning)) process.stderr.write(`${warning}\n`);
    else log(args, warning);
  }
  // known_hosts is searched for HostKeyAlias if there is one, as ssh does.
  const hostKeyName = config.hostKeyAlias ?? args.host;

  const tunnel = new SSHReverseTunnel();
  const batchMode = yesNo(args.options.get('batchmode'), false);
  const port = args.port ?? 22;
  tunnel.sshHost = args.host;
  tunnel.sshPort = port;
  tunnel.sshUser = args.user ?? process.env.USER ?? 'root';
  tunnel.timeout = 60; // per request; the tunnel itself lives until stopped
  if (args.addressFamily) tunnel.config(`UseIPv6=${args.addressFamily === 6 ? 1 : 0}`);
  if (config.bindAddress) tunnel.localHost = config.bindAddress;
  tunnel.config(`LogLevel=${Math.min(3, args.verbosity)}`);
  tunnel.on('log', (e) => log(args, `debug${e.logLevel}: ${e.message}`));
  try {
    applyOptions(tunnel, args);
  } catch (error) {
    process.stderr.write(`revtun: ${(error as Error).message}\n`);
    return 255;
  }
  if (!args.options.has('connecttimeout')) tunnel.config('ConnectionTimeout=60');

  // Host keys: known_hosts decides, as StrictHostKeyChecking says.
  const policy = loadKnownHosts(args);
  const hostKeyAlgorithms = args.options.get('hostkeyalgorithms')?.split(',') ?? DEFAULT_HOST_KEY;
  tunnel.config(`SSHPublicKeyAlgorithms=${preferKnownKeyTypes(policy, hostKeyName, port, hostKeyAlgorithms).join(',')}`);
  let hostKeyProblem = '';
  tunnel.on('sshServerAuthentication', (e) => {
    const keyType = publicKeyTypeName(parsePublicKey(e.hostKey));
    const verdict = checkKnownHosts(policy.entries, hostKeyName, port, e.hostKey);
    const fingerprint = `${keyType} key fingerprint is SHA256:${tunnel.config('SSHFingerprintSHA256')}`;
    if (verdict === 'match') {
      e.accept = true;
    } else if (verdict === 'revoked') {
      // ssh's words. ssh goes on under StrictHostKeyChecking=no, but with port forwarding
      // disabled, which leaves a tunnel nothing to do: revtun refuses in every mode.
      const warning = [
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        '@       WARNING: REVOKED HOST KEY DETECTED!               @',
        '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
        `The ${keyType} host key for ${knownHostsName(hostKeyName, port)} is marked as revoked.`,
        'This could mean that a stolen key is being used to',
        'impersonate this host.',
        `The ${fingerprint}.`,
      ];
      process.stderr.write(warning.join('\n') + '\n');
      hostKeyProblem = 'Host key verification failed.';
      e.accept = false;
    } else if (verdict === 'mismatch') {
      hostKeyProblem = `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The ${fingerprint}. Refusing to connect.`;
      e.accept = false;
    } else if (policy.strict === 'yes') {
      hostKeyProblem = `No ${keyType} host key is known for ${args.host} and StrictHostKeyChecking is on (${fingerprint}).`;
      e.accept = false;
    } else {
      try {
        mkdirSync(dirname(policy.userFile), { recursive: true, mode: 0o700 });
        appendFileSync(policy.userFile, knownHostsLine(hostKeyName, port, keyType, e.hostKey) + '\n', { mode: 0o600 });
        log(args, `Warning: Permanently added '${args.host}' (${keyType}) to the list of known hosts.`);
      } catch (error) {
        log(args, `Failed to add the host to the list of known hosts (${policy.userFile}): ${(error as Error).message}`);
      }
      e.accept = true;
    }
  });

  // Credentials, in ssh's order: every usable identity key in turn, offered in the one
  // connection (the server's MaxAuthTries counts each), then a password, asked for only if the
  // server still wants one after the keys. A key file that cannot be used is passed over with
  // ssh's message (identity.ts); an encrypted key's passphrase is asked for only when the
  // server accepts that key. IdentitiesOnly changes nothing yet: it limits the keys an agent
  // offers, and revtun does not talk to ssh-agent.
  const pubkey = yesNo(args.options.get('pubkeyauthentication'), true);
  const passwordAllowed = yesNo(args.options.get('passwordauthentication'), true) || yesNo(args.options.get('kbdinteractiveauthentication'), false);
  const identities = pubkey
    ? usableIdentities({
        files: args.identityFiles.map(expandHome),
        userProvided: config.explicit.has('identityfile'),
        askPassphrase: (prompt) => askSecret(prompt, batchMode),
        warn: (line) => log(args, line),
        debug: (level, line) => {
          if (args.verbosity >= level) log(args, `debug${level}: ${line}`);
        },
      })
    : [];
  for (const identity of identities) tunnel.addIdentity(identity);
  if (identities.length === 0 && !passwordAllowed) {
    process.stderr.write(`revtun: no usable authentication method for ${tunnel.sshUser}@${args.host}\n`);
    return 255;
  }
  const hasKey = identities.length > 0;
  tunnel.sshAuthMode = hasKey && passwordAllowed ? SshAuthMode.MultiFactor : hasKey ? SshAuthMode.PublicKey : SshAuthMode.Password;
  if (passwordAllowed) {
    // Asked for once: a reconnect in the small hours must not wait at a prompt.
    let password: string | undefined;
    tunnel.passwordProvider = () => (password ??= askSecret(`${tunnel.sshUser}@${args.host}'s password: `, batchMode));
  }

  // Signals are handled from the start: before logon they abandon the attempt, afterwards
  // they cancel the forwardings and log off, giving queued data SHUTDOWN_DRAIN_SECONDS to
  // leave (a container runtime sends SIGKILL 10 s after SIGTERM).
  let stopping = false;
  let loggedOn = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    if (!loggedOn) {
      tunnel.reset();
      process.exit(130);
    }
    tunnel.timeout = SHUTDOWN_DRAIN_SECONDS;
    for (const fwd of [...tunnel.forwardings]) await tunnel.cancelForwarding(fwd.address, fwd.boundPort).catch(() => undefined);
    const { drained } = await tunnel.sshLogoff({ drainSeconds: SHUTDOWN_DRAIN_SECONDS }).catch(() => ({ drained: false }));
    if (!drained) log(args, `revtun: stopped after ${SHUTDOWN_DRAIN_SECONDS} s with forwarded connections still delivering data`);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  // One line per change of state, as autossh users expect to see in their logs.
  let lost: SshError | null = null;
  const finished = new Promise<void>((resolve) => {
    tunnel.on('tunnelState', (e) => {
      if (e.state === 'reconnecting') {
        log(args, `revtun: connection lost: ${e.error.message}; reconnecting in ${formatSeconds(e.delayMs)} (attempt ${e.attempt})`);
      } else if (e.state === 'up' && loggedOn) {
        log(args, `Reconnected to ${args.host} ([${tunnel.sshHost}]:${port}).`);
      } else if (e.state === 'closed') {
        if (!stopping && e.error) lost = e.error;
        resolve();
      }
    });
  });
  tunnel.on('forwardingRestored', (e) => {
    if (e.boundPort !== e.previousPort) process.stderr.write(`Allocated port ${e.boundPort} for remote forward to ${e.forwardingHost}:${e.forwardingPort}\n`);
  });
  tunnel.on('error', (e) => {
    // A forwarding that could not be had back after a reconnect; the others still serve.
    if (e.errorCode === Code.TunnelReconnectLimit) process.stderr.write(`Warning: ${e.description}\n`);
  });

  try {
    await tunnel.sshLogon();
  } catch (error) {
    const e = error as SshError;
    process.stderr.write(`revtun: ${hostKeyProblem || e.message}${e.code ? ` (error ${e.code})` : ''}\n`);
    return 255;
  }
  loggedOn = true;
  log(args, `Authenticated to ${args.host} ([${tunnel.sshHost}]:${port}).`);

  // ExitOnForwardFailure is about the first connection; after a reconnect a refused
  // forwarding is retried instead (see SSHReverseTunnel.restoreForwarding).
  const exitOnForwardFailure = yesNo(args.options.get('exitonforwardfailure'), false);
  for (const fwd of args.forwards) {
    try {
      const bound = await tunnel.requestForwarding(fwd.bindAddress, fwd.port, fwd.host, fwd.hostPort);
      if (fwd.port === 0) process.stderr.write(`Allocated port ${bound} for remote forward to ${fwd.host}:${fwd.hostPort}\n`);
    } catch (error) {
      const message = `remote port forwarding failed for listen port ${fwd.port}`;
      if (exitOnForwardFailure) {
        process.stderr.write(`Error: ${message}\n`);
        await tunnel.sshLogoff().catch(() => undefined);
        return 255;
      }
      process.stderr.write(`Warning: ${message} (${(error as Error).message})\n`);
    }
  }

  await finished;
  if (lost) {
    const e = lost as SshError;
    process.stderr.write(`revtun: connection to ${args.host} lost: ${e.message} (error ${e.code})\n`);
    return 255;
  }
  return 0;
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`revtun: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exitCode = 255;
  },
);
