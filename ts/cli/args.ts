// Command-line parsing for `revtun`, compatible with the `ssh -N -R` subset people already
// use: -N -v -p -i -l -o -R -c -m -q -4 -6 -T -n -f -E -F -G -J -K -k (and revtun's --json), destinations as [user@]host or
// ssh://user@host:port, and -R specs as [bind_address:]port:host:hostport (IPv6 addresses in
// brackets), [bind_address:]port:/local/socket, [bind_address:]port alone (dynamic, SOCKS),
// or /remote/socket:host:hostport and /remote/socket:/local/socket.

import { parseForwardSpec, toRemoteForwardSpec } from './ssh-config-values.js';
import { OPENSSH_ALGORITHMS } from './ssh-config-expand.js';

export interface RemoteForwardSpec {
  /**
   * The address the server binds; OpenSSH sends "localhost" when none is given. A path (it
   * contains '/') is a Unix socket the server listens on, with port 0.
   */
  bindAddress: string;
  port: number;
  /** The local target: a host, or a Unix socket path (it contains '/'); '' when dynamic. */
  host: string;
  /** 0 for a Unix-socket target. */
  hostPort: number;
  /** No target (-R [bind_address:]port): revtun answers SOCKS and connects where asked. */
  dynamic: boolean;
}

export interface CliArgs {
  host: string;
  /**
   * The options that ssh_config evaluation reads before the files, in argv order:
   * ['-p', port], ['-l', user], ['-i', file], ['-o', 'Key=value'], ['-R', spec], ['-c', ciphers], ['-m', macs],
   * ['-4'|'-6', ''], ['-f', ''], ['-C', ''].
   */
  commandLine: [string, string][];
  /** -F: the only config file to read ("none": none). */
  configFile?: string;
  /** -G: print the resolved configuration and exit. */
  printConfig: boolean;
  /** -E: append diagnostics to this file instead of standard error. */
  logFile?: string;
  /** -f: go to the background once the forwardings are up. */
  background: boolean;
  user?: string;
  port?: number;
  identityFiles: string[];
  options: Map<string, string>;
  forwards: RemoteForwardSpec[];
  /** ProxyJump as resolved from -J and the configuration (undefined: none). */
  proxyJump?: string;
  verbosity: number;
  quiet: boolean;
  addressFamily?: 4 | 6;
  help: boolean;
  version: boolean;
}

/**
 * A command line revtun cannot run. As in ssh, the usage text follows only a malformed
 * command line (a missing argument, an unknown flag, no destination); a bad value for a
 * well-formed option (a port, a forwarding, a cipher) is its message alone.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  constructor(
    message: string,
    readonly showUsage = true,
  ) {
    super(message);
  }
}

export const USAGE = `usage: revtun [-46CfGKkNqTnv] [--json] [-c cipher_spec] [-E log_file] [-F configfile] [-i identity_file]
              [-J destination] [-l login_name] [-m mac_spec] [-o option] [-p port] -R forward ... [user@]hostname
       revtun speed [--json] [--providers list] [--algorithms list] [--sizes list] [--seconds n]
forward: [bind_address:]port:host:hostport  [bind_address:]port:local_socket
         [bind_address:]port (SOCKS)  remote_socket:host:hostport  remote_socket:local_socket`;

function parsePort(text: string, what: string, allowZero: boolean): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`Bad ${what} '${text}'`, false);
  const n = Number(text);
  if (n > 65535 || (!allowZero && n === 0)) throw new UsageError(`Bad ${what} '${text}'`, false);
  return n;
}

/**
 * One -R argument, read as ssh reads it (parse_forward: a field with a '/' is a socket path,
 * [bracketed] IPv6 addresses stay whole, ports may be service names).
 */
export function parseRemoteForward(spec: string): RemoteForwardSpec {
  const parsed = parseForwardSpec(spec, false, true) ?? parseForwardSpec(spec, true, true);
  const forward = parsed && toRemoteForwardSpec(parsed);
  if (!forward) throw new UsageError(`Bad remote forwarding specification '${spec}'`, false);
  return forward;
}

function parseDestination(text: string, args: CliArgs): void {
  let rest = text;
  const uri = /^ssh:\/\/(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(text);
  if (uri) {
    if (uri[1]) args.user ??= decodeURIComponent(uri[1]);
    args.host = uri[2]!.replace(/^\[|\]$/g, '');
    if (uri[3]) args.port ??= parsePort(uri[3], 'port', false);
    return;
  }
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    args.user ??= rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  if (rest === '') throw new UsageError('missing hostname');
  args.host = rest.replace(/^\[|\]$/g, '');
}

/**
 * -c and -m as ssh checks them: a comma-separated list of names it knows, exactly (no patterns);
 * -c may start with + or ^ (append to or put before the defaults), -m may not.
 */
function checkAlgorithmOption(flag: 'c' | 'm', value: string): void {
  const keyword = flag === 'c' ? 'ciphers' : 'macs';
  const list = flag === 'c' && /^[+^]/.test(value) ? value.slice(1) : value;
  const known: readonly string[] = OPENSSH_ALGORITHMS[keyword].all;
  const names = list.split(',').filter((name) => name !== '');
  if (names.length === 0 || !names.every((name) => known.includes(name))) throw new UsageError(`Unknown ${flag === 'c' ? 'cipher' : 'mac'} type '${value}'`, false);
}

/** Adds one -o argument: "Name=value", "Name value" or "Name"; first value wins, as in ssh. */
function addOption(text: string, options: Map<string, string>): void {
  const m = /^\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)$/.exec(text);
  if (!m) throw new UsageError(`option '${text}' needs a value (Name=value)`, false);
  const name = m[1]!.toLowerCase();
  if (!options.has(name)) options.set(name, m[2]!.trim());
}

export function parseArgs(argv: string[]): CliArgs {
  const args: CliArgs = {
    host: '',
    commandLine: [],
    printConfig: false,
    background: false,
    identityFiles: [],
    options: new Map(),
    forwards: [],
    verbosity: 0,
    quiet: false,
    help: false,
    version: false,
  };
  const withValue = new Set(['p', 'i', 'l', 'o', 'R', 'F', 'E', 'J', 'c', 'm']);
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '--help' || arg === '-h') {
      args.help = true;
      continue;
    }
    if (arg === '--json') {
      // The same as -o LogFormat=json, which resolveConfig reads from commandLine.
      args.commandLine.push(['-o', 'LogFormat=json']);
      addOption('LogFormat=json', args.options);
      continue;
    }
    if (arg === '--version' || arg === '-V') {
      args.version = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    // Bundled flags, as in ssh: -Nv, -vvv, -p2222, -R8080:localhost:80
    for (let j = 1; j < arg.length; j++) {
      const flag = arg[j]!;
      if (withValue.has(flag)) {
        let value = arg.slice(j + 1);
        if (value === '') {
          if (i + 1 >= argv.length) throw new UsageError(`option requires an argument -- ${flag}`);
          value = argv[++i]!;
        }
        if (flag !== 'F' && flag !== 'E') args.commandLine.push([`-${flag}`, value]);
        switch (flag) {
          case 'F':
            args.configFile = value;
            break;
          case 'E':
            args.logFile = value; // the last one wins, as in ssh
            break;
          case 'p':
            args.port = parsePort(value, 'port', false);
            break;
          case 'i':
            args.identityFiles.push(value);
            break;
          case 'l':
            args.user = value;
            break;
          case 'o':
            addOption(value, args.options);
            break;
          case 'R':
            args.forwards.push(parseRemoteForward(value));
            break;
          case 'J':
            break; // ProxyJump: resolveConfig takes it from commandLine, first one winning
          case 'c':
          case 'm':
            checkAlgorithmOption(flag, value); // resolveConfig sets Ciphers / MACs outright, the last one winning
            break;
        }
        break;
      }
      switch (flag) {
        case 'N':
        case 'T':
        case 'n':
          break; // revtun never opens a session or reads stdin
        case 'v':
          args.verbosity++;
          break;
        case 'q':
          args.quiet = true;
          break;
        case 'G':
          args.printConfig = true;
          break;
        case 'f':
          args.background = true;
          args.commandLine.push(['-f', '']);
          break;
        case 'K':
        case 'k':
          args.commandLine.push([`-${flag}`, '']); // GSSAPI: resolveConfig sets them outright
          break;
        case 'C':
          args.commandLine.push(['-C', '']); // Compression=yes: resolveConfig sets it outright, as ssh does
          break;
        case '4':
          args.addressFamily = 4;
          args.commandLine.push(['-4', '']);
          break;
        case '6':
          args.addressFamily = 6;
          args.commandLine.push(['-6', '']);
          break;
        default:
          throw new UsageError(`unknown option -- ${flag}`);
      }
    }
  }
  if (args.help || args.version) return args;
  const rest = argv.slice(i);
  if (rest.length === 0) throw new UsageError('missing destination [user@]hostname');
  if (rest.length > 1) throw new UsageError(`revtun runs no remote command (got '${rest.slice(1).join(' ')}')`);
  const given = { user: args.user, port: args.port };
  parseDestination(rest[0]!, args);
  // user@host and ssh://host:port count as -l and -p given after the others (first one wins).
  if (args.user !== undefined && given.user === undefined) args.commandLine.push(['-l', args.user]);
  if (args.port !== undefined && given.port === undefined) args.commandLine.push(['-p', String(args.port)]);
  const optPort = args.options.get('port');
  if (optPort !== undefined && args.port === undefined) args.port = parsePort(optPort, 'port', false);
  const optUser = args.options.get('user');
  if (optUser !== undefined && args.user === undefined) args.user = optUser;
  const optIdentity = args.options.get('identityfile');
  if (optIdentity !== undefined) args.identityFiles.push(optIdentity);
  return args; // with no -R, the config's RemoteForward lines must give one (checked once it is read)
}
