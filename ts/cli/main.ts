#!/usr/bin/env node
// The `revtun` command: `ssh -N -R` lines work unchanged. Host keys are checked against
// known_hosts (StrictHostKeyChecking yes / accept-new / no), passwords and passphrases come
// from SSH_ASKPASS or the terminal (never with BatchMode), and SIGINT/SIGTERM cancel the
// forwardings and log off cleanly. -E sends the messages to a file (diagnostics.ts), -f goes
// to the background once the forwardings are up (background.ts), and ConnectionAttempts tries
// the first TCP connection that many times, a second apart, as ssh does. --json and
// MetricsListen add event lines on stdout and a metrics server (operations.ts). Exit status: 0 after
// a clean stop, 255 on failure (1 when the -E file cannot be opened, as in ssh).

import { userInfo, type UserInfo } from 'node:os';
import { join } from 'node:path';
import { SSHReverseTunnel, SshAuthMode } from '../tunnel/tunnel.js';
import { type SshError, Code } from '../protocol/errors.js';
import { isFinal } from '../tunnel/reconnect.js';
import { canonicalSettingName } from '../tunnel/settings.js';
import { DEFAULT_CLI_HOST_KEY, decideHostKey, loadKnownHosts, preferKnownKeyTypes } from './host-keys.js';
import { parseArgs, UsageError, USAGE, type CliArgs } from './args.js';
import { usableIdentities } from './identity.js';
import { resolveConfig, SshConfigError, toRemoteForwardSpec, type ResolvedConfig } from './ssh-config.js';
import { formatResolved } from './ssh-config-format.js';
import { jumpChainFor } from './jump.js';
import { formatSeconds } from '../tunnel/timing.js';
import { askSecret } from './ask-secret.js';
import { ForegroundParent, runInBackground } from './background.js';
import { Diagnostics } from './diagnostics.js';
import { applyGssapi, wantsGssapi } from './gssapi.js';
import { startOperations, type Operations } from './operations.js';
import { runSpeed } from './speed.js';

const VERSION = 'revtun 0.1.0';

/** How long SIGINT/SIGTERM lets queued data leave before the connection is dropped. */
const SHUTDOWN_DRAIN_SECONDS = 5;

/** ssh pauses this long between ConnectionAttempts (sshconnect.c sleeps a second). */
const CONNECTION_RETRY_MS = 1000;

/**
 * The local account from the password database: ssh takes the home directory behind `~` (and
 * ~/.ssh/config) from there, not from $HOME, and gives up without one.
 */
function localAccount(): UserInfo<string> | undefined {
  try {
    return userInfo();
  } catch {
    return undefined;
  }
}

function expandHome(path: string, home: string): string {
  return path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

/** A forwarding's local target as ssh's messages name it: host:port, a socket path, or socks:0. */
function targetName(host: string, port: number, dynamic: boolean): string {
  if (dynamic) return 'socks:0';
  return host.includes('/') ? host : `${host}:${port}`;
}

function yesNo(value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  return /^(yes|true|1|on)$/i.test(value);
}

function applyOptions(tunnel: SSHReverseTunnel, args: CliArgs): void {
  const o = args.options;
  const map: [string, string][] = [
    ['ciphers', 'sshEncryptionAlgorithms'],
    ['macs', 'SSHMacAlgorithms'],
    ['kexalgorithms', 'SSHKeyExchangeAlgorithms'],
    ['hostkeyalgorithms', 'SSHPublicKeyAlgorithms'],
    ['pubkeyacceptedalgorithms', 'SSHPubKeyAuthSigAlgorithms'],
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
  // ssh's offers (OpenSSH kex.c): with Compression=yes it prefers zlib@openssh.com, otherwise it
  // still lists both zlib names after "none".
  tunnel.sshCompressionAlgorithms = yesNo(o.get('compression'), false) ? 'zlib@openssh.com,zlib,none' : 'none,zlib@openssh.com,zlib';
  const family = o.get('addressfamily')?.toLowerCase();
  if (family !== undefined) {
    if (!['any', 'inet', 'inet6'].includes(family)) throw new UsageError(`Bad AddressFamily ${family}`);
    tunnel.config(`UseIPv6=${family === 'inet6' ? 1 : family === 'any' ? 2 : 0}`);
  }
  const known = new Set([
    'port',
    'user',
    'identityfile',
    'userknownhostsfile',
    'globalknownhostsfile',
    'stricthostkeychecking',
    'exitonforwardfailure',
    'batchmode',
    'passwordauthentication',
    'kbdinteractiveauthentication',
    'pubkeyauthentication',
    'loglevel',
    'compression',
    'addressfamily',
    'identitiesonly',
    'proxycommand',
    'permitremoteopen',
    'logformat', // for operations.ts
    'metricslisten',
    ...map.map(([k]) => k),
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
  if (config.proxyJump !== undefined && config.proxyJump.toLowerCase() !== 'none') args.proxyJump = config.proxyJump;
  args.host = config.hostName;
  args.port = config.port;
  args.user = config.user;
  // resolveConfig already put -i files first and dropped duplicates and -i files that do not exist.
  args.identityFiles = [...new Set(config.identityFilePaths)];
  for (const forward of config.remoteForward) {
    const spec = toRemoteForwardSpec(forward);
    if (!spec) throw new UsageError('a dynamic RemoteForward on a Unix socket path is not supported (nor by ssh); give it a port');
    args.forwards.push(spec);
  }
  if (args.forwards.length === 0) throw new UsageError('no -R forwarding given (nor a RemoteForward in the config); revtun only opens remote forwardings');
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const values: Record<string, () => string | undefined> = {
    ciphers: () => config.ciphers.join(','),
    macs: () => config.macs.join(','),
    kexalgorithms: () => config.kexAlgorithms.join(','),
    hostkeyalgorithms: () => config.hostKeyAlgorithms.join(','),
    pubkeyacceptedalgorithms: () => config.pubkeyAcceptedAlgorithms.join(','),
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
    permitremoteopen: () => config.permitRemoteOpen,
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

/** The agent's socket for IdentityAgent (undefined: SSH_AUTH_SOCK), or undefined for none. */
function agentSocketFor(identityAgent: string | undefined): string | undefined {
  if (identityAgent?.toLowerCase() === 'none') return undefined;
  if (identityAgent === undefined || identityAgent === 'SSH_AUTH_SOCK') return process.env.SSH_AUTH_SOCK || undefined;
  if (identityAgent.startsWith('$')) return process.env[identityAgent.slice(1)] || undefined;
  return identityAgent;
}

async function run(argv: string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`revtun: ${error.message}\n${error.showUsage ? `${USAGE}\n` : ''}`);
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
  // -f: a child with the same arguments does the work; this process waits for it to report.
  // -G prints and exits, as ssh -G never forks. (ForkAfterAuthentication in a file is found
  // once the configuration is read, below; the child then reads it again.)
  const parent = ForegroundParent.take();
  if (args.background && !parent && !args.printConfig) return runInBackground(argv);

  // Everything from here on is written through `out`: standard error, the -E file, or the
  // parent of a -f child. Usage errors above went to standard error, as ssh's do.
  const out = new Diagnostics();
  if (parent) out.sendTo((line) => parent.line(line));
  if (args.logFile !== undefined) {
    try {
      out.openLogFile(args.logFile);
    } catch (error) {
      out.write((error as Error).message);
      return 1;
    }
  }
  const log = (message: string) => {
    if (!args.quiet) out.write(message);
  };
  const account = localAccount();
  if (!account) {
    out.write(`revtun: No user exists for uid ${process.getuid?.() ?? '?'}`);
    return 255;
  }
  const home = account.homedir;
  const expand = (path: string) => expandHome(path, home);

  // ssh_config: the command line first, then -F's file alone, or ~/.ssh/config and
  // /etc/ssh/ssh_config; the first value obtained wins. -R lines from the command line are
  // parsed by parseArgs; the config's RemoteForward lines join them.
  let config: ResolvedConfig;
  try {
    config = resolveConfig({
      host: args.host,
      ...(args.configFile !== undefined ? { configFile: args.configFile } : {}),
      commandLine: args.printConfig ? args.commandLine : args.commandLine.filter(([flag]) => flag !== '-R'),
      homeDir: home,
      localUser: account.username,
      uid: account.uid,
    });
    if (config.connectionAttempts <= 0) throw new UsageError('Invalid number of ConnectionAttempts');
    if (args.printConfig) {
      process.stdout.write(`${formatResolved(config).join('\n')}\n`);
      return 0;
    }
    // ForkAfterAuthentication from a file (-f on the command line went to the background above).
    if (config.forkAfterAuthentication && !parent) return runInBackground(argv);
    applyConfig(args, config);
  } catch (error) {
    if (error instanceof SshConfigError || error instanceof UsageError) {
      out.write(`revtun: ${error.message}`);
      return 255;
    }
    throw error;
  }
  // ssh prints a missing -i file's warning even under -q.
  for (const warning of config.warnings) {
    if (/^Warning: Identity file/.test(warning)) out.write(warning);
    else log(warning);
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
  tunnel.config('UseIPv6=2'); // ssh's AddressFamily any: either family, as the name resolves
  if (config.bindAddress) tunnel.localHost = config.bindAddress;
  tunnel.config(`LogLevel=${Math.min(3, args.verbosity)}`);
  tunnel.on('log', (e) => log(`debug${e.logLevel}: ${e.message}`));
  try {
    applyOptions(tunnel, args);
    // -4 and -6 win over an AddressFamily from a configuration file, as in ssh.
    if (args.addressFamily) tunnel.config(`UseIPv6=${args.addressFamily === 6 ? 1 : 0}`);
  } catch (error) {
    out.write(`revtun: ${(error as Error).message}`);
    return 255;
  }
  // --json lines and the metrics server; closed by stopOperations once run() is over.
  let ops: Operations;
  try {
    ops = await startOperations(tunnel, args.options, { host: args.host, port, user: tunnel.sshUser }, args.forwards.length, (line) => out.write(line));
  } catch (error) {
    out.write(`revtun: ${(error as Error).message}`);
    return 255;
  }
  stopOperations = () => ops.close();
  // Every exit with status 255 from here on goes through this, so that the human line and the
  // JSON `fatal` line (the last one written) always come together.
  const fatal = (line: string, code: number, description: string): number => {
    out.write(line);
    ops.json?.fatal(code, description);
    return 255;
  };
  if (!args.options.has('connecttimeout')) tunnel.config('ConnectionTimeout=60');
  // A -f child has no terminal: its parent, still in the foreground, asks.
  const askFor = (prompt: string, batch: boolean): string | undefined | Promise<string | undefined> => (batch ? undefined : parent ? parent.ask(prompt) : askSecret(prompt));
  let hostKeyProblem = '';
  if (args.proxyJump !== undefined) {
    try {
      const chain = jumpChainFor(args.proxyJump, {
        ...(args.configFile !== undefined ? { configFile: args.configFile } : {}),
        homeDir: home,
        expandHome: expand,
        askSecret: askFor,
        log,
        debug: (level, line) => {
          if (args.verbosity >= level) log(`debug${level}: ${line}`);
        },
        warnAlways: (line) => out.write(line),
        hostKeyRefused: (problem) => (hostKeyProblem = problem),
      });
      tunnel.jumpHosts = chain.hops;
      tunnel.proxyCommand = chain.proxyCommand ?? '';
    } catch (error) {
      if (!(error instanceof UsageError || error instanceof SshConfigError)) throw error;
      return fatal(`revtun: ${error.message}`, Code.BadArgument, error.message);
    }
  }

  // Host keys: known_hosts decides, as StrictHostKeyChecking says.
  const policy = loadKnownHosts(
    {
      userKnownHostsFile: args.options.get('userknownhostsfile'),
      globalKnownHostsFile: args.options.get('globalknownhostsfile'),
      strictHostKeyChecking: args.options.get('stricthostkeychecking'),
    },
    expand,
  );
  const hostKeyAlgorithms = args.options.get('hostkeyalgorithms')?.split(',') ?? DEFAULT_CLI_HOST_KEY;
  tunnel.config(`SSHPublicKeyAlgorithms=${preferKnownKeyTypes(policy, hostKeyName, port, hostKeyAlgorithms).join(',')}`);
  tunnel.on('sshServerAuthentication', (e) => {
    const decision = decideHostKey(policy, { name: hostKeyName, port, shownHost: args.host, hostKey: e.hostKey, sha256: tunnel.config('SSHFingerprintSHA256'), certificate: e.certificate });
    if (decision.warning) out.write(decision.warning.join('\n'));
    if (decision.note) log(decision.note);
    hostKeyProblem = decision.problem ?? '';
    e.accept = decision.accept;
  });

  // Credentials, in ssh's order: every usable identity key in turn, offered in the one
  // connection (the server's MaxAuthTries counts each), then a password, asked for only if the
  // server still wants one after the keys. A key file that cannot be used is passed over with
  // ssh's message (identity.ts); an encrypted key's passphrase is asked for only when the
  // server accepts that key. The agent's keys (SSH_AUTH_SOCK, IdentityAgent) come first.
  const pubkey = yesNo(args.options.get('pubkeyauthentication'), true);
  const passwordAllowed = yesNo(args.options.get('passwordauthentication'), true) || yesNo(args.options.get('kbdinteractiveauthentication'), false);
  const identities = pubkey
    ? usableIdentities({
        files: args.identityFiles.map(expand),
        userProvided: config.explicit.has('identityfile'),
        certificateFiles: config.certificateFilePaths,
        askPassphrase: (prompt) => askFor(prompt, batchMode),
        warn: log,
        debug: (level, line) => {
          if (args.verbosity >= level) log(`debug${level}: ${line}`);
        },
      })
    : [];
  for (const identity of identities) tunnel.addIdentity(identity);
  // The agent, as ssh asks it: SSH_AUTH_SOCK unless IdentityAgent says otherwise; with
  // IdentitiesOnly only its keys that are also identity files here.
  const agentSocket = pubkey ? agentSocketFor(config.identityAgent) : undefined;
  if (agentSocket) {
    tunnel.agent = agentSocket;
    tunnel.identitiesOnly = config.identitiesOnly;
    if (args.verbosity >= 1) log(`debug1: will ask the agent at ${agentSocket}`);
  }
  // GSSAPI (Kerberos) first when asked for (-K, GSSAPIAuthentication, GSSAPIKeyExchange), as in ssh.
  const gssapi = wantsGssapi(config);
  await applyGssapi(tunnel, config, args.host, (line) => {
    if (args.verbosity >= 1) log(`debug1: ${line}`);
  });
  if (identities.length === 0 && !agentSocket && !passwordAllowed && !gssapi) {
    const description = `no usable authentication method for ${tunnel.sshUser}@${args.host}`;
    return fatal(`revtun: ${description}`, Code.AuthFailed, description);
  }
  const hasKey = identities.length > 0 || agentSocket !== undefined;
  tunnel.sshAuthMode = hasKey && passwordAllowed ? SshAuthMode.MultiFactor : hasKey ? SshAuthMode.PublicKey : SshAuthMode.Password;
  // Kerberos alone: its own mode, which says plainly why it cannot be had (no GSSAPI library, ...).
  if (gssapi && !hasKey && !passwordAllowed) tunnel.sshAuthMode = config.gssapiKeyExchange ? SshAuthMode.GSSAPIKeyex : SshAuthMode.GSSAPIWithMic;
  if (passwordAllowed) {
    // Asked for once: a reconnect in the small hours must not wait at a prompt.
    let password: string | undefined | Promise<string | undefined>;
    tunnel.passwordProvider = () => (password ??= askFor(`${tunnel.sshUser}@${args.host}'s password: `, batchMode));
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
    if (!drained) log(`revtun: stopped after ${SHUTDOWN_DRAIN_SECONDS} s with forwarded connections still delivering data`);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  // One line per change of state, as autossh users expect to see in their logs.
  let lost: SshError | null = null;
  const finished = new Promise<void>((resolve) => {
    tunnel.on('tunnelState', (e) => {
      if (e.state === 'reconnecting') {
        log(`revtun: connection lost: ${e.error.message}; reconnecting in ${formatSeconds(e.delayMs)} (attempt ${e.attempt})`);
      } else if (e.state === 'up' && loggedOn) {
        log(`Reconnected to ${args.host} ([${tunnel.sshHost}]:${port}).`);
      } else if (e.state === 'closed' && loggedOn) {
        // (A logon attempt that failed reports 'closed' too; the loop below handles those.)
        if (!stopping && e.error) lost = e.error;
        resolve();
      }
    });
  });
  tunnel.on('forwardingRestored', (e) => {
    if (e.boundPort !== e.previousPort) out.write(`Allocated port ${e.boundPort} for remote forward to ${targetName(e.forwardingHost, e.forwardingPort, e.dynamic)}`);
  });
  tunnel.on('error', (e) => {
    // A forwarding that could not be had back after a reconnect; the others still serve.
    if (e.errorCode === Code.TunnelReconnectLimit) out.write(`Warning: ${e.description}`);
  });

  // ConnectionAttempts, as ssh counts them: only a TCP connection that could not be made
  // (refused, unreachable, timed out) is tried again; not one that was made and then failed in
  // key exchange or logon, nor a ProxyCommand, which ssh never retries. 'connected' with
  // status 0 says the connection was made.
  let connectionMade = false;
  tunnel.on('connected', (e) => {
    if (e.statusCode === 0) connectionMade = true;
  });
  for (let attempt = 1; ; attempt++) {
    connectionMade = false;
    if (args.verbosity > 0) log(`debug1: Connecting to ${args.host} port ${port}.`);
    try {
      await tunnel.sshLogon();
      break;
    } catch (error) {
      const e = error as SshError;
      // ssh runs a jump host chain as a ProxyCommand (`ssh -W`), which it does not retry either.
      const again = !connectionMade && attempt < config.connectionAttempts && config.proxyCommand === undefined && args.proxyJump === undefined && !isFinal(e) && !stopping;
      if (!again) {
        return fatal(`revtun: ${hostKeyProblem || e.message}${e.code ? ` (error ${e.code})` : ''}`, e.code, hostKeyProblem || e.message);
      }
      if (args.verbosity > 0) log(`debug1: ${e.message}`);
      await new Promise((resolve) => setTimeout(resolve, CONNECTION_RETRY_MS));
      if (args.verbosity > 0) log('debug1: Trying again...');
    }
  }
  loggedOn = true;
  log(`Authenticated to ${args.host} ([${tunnel.sshHost}]:${port}).`);

  // ExitOnForwardFailure is about the first connection; after a reconnect a refused
  // forwarding is retried instead (see SSHReverseTunnel.restoreForwarding).
  // With -f it is on unless switched off: `revtun -f` exits 0 only once its forwardings serve.
  const exitOnForwardFailure = yesNo(args.options.get('exitonforwardfailure'), parent !== null);
  // PermitRemoteOpen limits every dynamic forwarding of the connection, as in ssh.
  const permitRemoteOpen = args.options.get('permitremoteopen');
  for (const fwd of args.forwards) {
    try {
      const bound = fwd.dynamic
        ? await tunnel.requestDynamicForwarding(fwd.bindAddress, fwd.port, permitRemoteOpen === undefined ? {} : { permitRemoteOpen })
        : await tunnel.requestForwarding(fwd.bindAddress, fwd.port, fwd.host, fwd.hostPort);
      if (fwd.port === 0 && bound !== 0) out.write(`Allocated port ${bound} for remote forward to ${targetName(fwd.host, fwd.hostPort, fwd.dynamic)}`);
      ops.json?.forwardUp(fwd, bound);
    } catch (error) {
      const message = `remote port forwarding failed for ${fwd.bindAddress.includes('/') ? `listen path ${fwd.bindAddress}` : `listen port ${fwd.port}`}`;
      if (exitOnForwardFailure) {
        // fatal first: the logoff's 'closed' must not add a `stopped` line after it.
        const status = fatal(`Error: ${message}`, (error as SshError).code ?? Code.RequestFailure, message);
        await tunnel.sshLogoff().catch(() => undefined);
        return status;
      }
      out.write(`Warning: ${message} (${(error as Error).message})`);
      ops.json?.forwardFailed(fwd, (error as SshError).code ?? Code.RequestFailure, (error as Error).message);
    }
  }
  if (parent) {
    if (args.verbosity > 0) log('debug1: forking to background');
    out.detach();
    parent.up();
  }

  await finished;
  if (lost) {
    const e = lost as SshError;
    return fatal(`revtun: connection to ${args.host} lost: ${e.message} (error ${e.code})`, e.code, e.message);
  }
  return 0;
}

/** Closes what startOperations started (the metrics server would keep the process alive). */
let stopOperations = async (): Promise<void> => undefined;

// `revtun speed` benchmarks the crypto providers (speed.ts). Only the first argument counts, so
// a host called "speed" is still reached as `revtun -- speed`, `revtun user@speed` or with any
// option before it (`revtun -R 8080:localhost:80 speed`).
const argv = process.argv.slice(2);
(argv[0] === 'speed' ? runSpeed(argv.slice(1)) : run(argv))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`revtun: ${(error as Error)?.stack ?? String(error)}\n`);
      process.exitCode = 255;
    },
  )
  .finally(() => stopOperations().catch(() => undefined));
