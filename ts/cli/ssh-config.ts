// Evaluates ssh_config(5) for one destination the way OpenSSH 9.2's ssh does (readconf.c and
// ssh.c's main): command-line options first, then `-F file` alone or ~/.ssh/config followed
// by /etc/ssh/ssh_config; the first value obtained for a keyword wins, except for the
// keywords that accumulate (IdentityFile, CertificateFile, the forwardings, SendEnv).
// `Match final` (or CanonicalizeHostname) reads the files a second time against the
// substituted host name, as ssh does. Parse errors carry file and line, worded like ssh's.
//
// Syntax lives in ssh-config-parse.ts (which also says why the `ssh-config` npm package is not
// used); algorithm tables, tokens and globbing in ssh-config-expand.ts; `-G` output in
// ssh-config-format.ts.

import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname as osHostname, userInfo } from 'node:os';
import { SETTINGS } from '../tunnel/settings.js';
import { permitOpenEntryProblem } from '../tunnel/permit-open.js';
import { strerror } from '../tunnel/keyfile.js';
import { assembleAlgorithms, expandEnv, expandTilde, expandTokens, globFiles, TOKEN_SETS, type TokenValues } from './ssh-config-expand.js';
import { canonicalKeyword, matchPattern, matchPatternList, parseConfigText, SshConfigError, splitArguments, splitConfigLine, type ConfigLine } from './ssh-config-parse.js';

import { formatJump, IGNORED_FLAG_KEYWORDS, oneArg, parseForwardSpec, parseValue, validJumpHop, type ForwardSpec } from './ssh-config-values.js';
import { OPS_KEYWORDS } from './ops-options.js';

export { SshConfigError } from './ssh-config-parse.js';
export { parseForwardSpec, toRemoteForwardSpec, type ForwardSpec } from './ssh-config-values.js';

/** The result of evaluating the configuration for one destination. */
export interface ResolvedConfig {
  /** The destination as given. */
  host: string;
  /** HostName with %h substituted, lowercased unless it is an address; else the destination. */
  hostName: string;
  port: number;
  user: string;
  /** As written, in order (ssh -G prints these unexpanded); the defaults when none was given. */
  identityFile: string[];
  /** identityFile with ~, %tokens and ${ENV} expanded: the paths to open. */
  identityFilePaths: string[];
  identitiesOnly: boolean;
  /**
   * IdentityAgent: "none", "SSH_AUTH_SOCK" (the environment's), a $VARIABLE naming one, or a
   * socket path (expanded); undefined when not set (SSH_AUTH_SOCK then, as in ssh).
   */
  identityAgent?: string;
  certificateFile: string[];
  certificateFilePaths: string[];
  /** As `ssh -G` prints it: [user@]host[:port], earlier hops first. */
  proxyJump?: string;
  /** As written; run it with {@link proxyCommandExpanded}. */
  proxyCommand?: string;
  /** ProxyCommand with %h %n %p %r %% expanded. */
  proxyCommandExpanded?: string;
  remoteForward: ForwardSpec[];
  localForward: ForwardSpec[];
  serverAliveInterval: number;
  serverAliveCountMax: number;
  strictHostKeyChecking: 'yes' | 'no' | 'ask' | 'accept-new';
  /** Expanded (~, tokens, ${ENV}); ["none"] when set to none. */
  userKnownHostsFile: string[];
  globalKnownHostsFile: string[];
  /** Lowercased, as ssh uses it. */
  hostKeyAlias?: string;
  ciphers: string[];
  macs: string[];
  kexAlgorithms: string[];
  hostKeyAlgorithms: string[];
  pubkeyAcceptedAlgorithms: string[];
  /** Seconds; undefined for none (the system's TCP timeout). */
  connectTimeout?: number;
  connectionAttempts: number;
  addressFamily: 'any' | 'inet' | 'inet6';
  bindAddress?: string;
  exitOnForwardFailure: boolean;
  /** ForkAfterAuthentication, or -f: go to the background once the forwardings are up. */
  forkAfterAuthentication: boolean;
  /**
   * PermitRemoteOpen as written (first value wins; entries joined by a space), checked as ssh
   * checks it; undefined when not set (any). It limits where dynamic forwardings connect.
   */
  permitRemoteOpen?: string;
  batchMode: boolean;
  /** The level name as Debian's ssh -G prints it: SILENT FATAL ERROR INFO VERBOSE DEBUG DEBUG2 DEBUG3. */
  logLevel: string;
  compression: boolean;
  tcpKeepAlive: boolean;
  passwordAuthentication: boolean;
  pubkeyAuthentication: 'yes' | 'no' | 'unbound' | 'host-bound';
  kbdInteractiveAuthentication: boolean;
  /** GSSAPIAuthentication, GSSAPIKeyExchange, GSSAPIDelegateCredentials, GSSAPITrustDns (-K, -k). */
  gssapiAuthentication: boolean;
  gssapiKeyExchange: boolean;
  gssapiDelegateCredentials: boolean;
  gssapiTrustDns: boolean;
  gssapiServerIdentity?: string;
  sendEnv: string[];
  /** ControlPath, LocalCommand, RemoteCommand as ssh keeps them (RemoteCommand and ControlPath expanded). */
  controlPath?: string;
  localCommand?: string;
  remoteCommand?: string;
  /** revtun's own settings (ts/tunnel/settings.ts) and CLI keywords (ops-options.ts) found by name, documented spelling → value. */
  revtunSettings: Map<string, string>;
  /** What ssh would print as warnings: unsupported or deprecated keywords, a missing -i file. */
  warnings: string[];
  /**
   * The keywords (lower case) given a value by the command line or a file, as opposed to left
   * at ssh's default: a caller with defaults of its own keeps those for the rest.
   */
  explicit: ReadonlySet<string>;
}

/** What {@link resolveConfig} needs; everything but `host` has the defaults ssh would use. */
export interface ResolveOptions {
  /** The destination host as given on the command line (user@ and :port already taken off). */
  host: string;
  /** `-F file`: read only this file ("none" reads nothing). */
  configFile?: string;
  /** Overrides for ~/.ssh/config and /etc/ssh/ssh_config when no configFile is given. */
  userConfigFile?: string;
  systemConfigFile?: string;
  /**
   * Command-line options in argv order, read before the files so that they win, each as
   * [keyword, value] (['Port', '2222']), ['-o', 'Key=value'] as ssh's -o takes it, or one of
   * ssh's flags: ['-p', port], ['-l', user], ['-i', file], ['-J', jump], ['-R', spec],
   * ['-c', ciphers], ['-m', macs], ['-4', ''], ['-6', ''], ['-f', ''], ['-C', ''].
   */
  commandLine?: Iterable<readonly [string, string]>;
  localUser?: string;
  homeDir?: string;
  uid?: number;
  /** %l; defaults to the host name the kernel reports. */
  localHostname?: string;
  env?: Record<string, string | undefined>;
  /** Runs a `Match exec` command, true for exit status 0; defaults to `$SHELL -c` (or /bin/sh). */
  runExec?: (command: string) => boolean;
}

const MAX_INCLUDE_DEPTH = 16;
const DEFAULT_IDENTITIES = ['~/.ssh/id_rsa', '~/.ssh/id_ecdsa', '~/.ssh/id_ecdsa_sk', '~/.ssh/id_ed25519', '~/.ssh/id_ed25519_sk', '~/.ssh/id_xmss', '~/.ssh/id_dsa'];
const revtunSettingByLowerName = new Map([...Object.keys(SETTINGS), ...OPS_KEYWORDS].map((name) => [name.toLowerCase(), name]));

/** Options gathered while reading: first value wins in `values`; the lists accumulate. */
interface Gathered {
  values: Map<string, string | number | boolean | string[]>;
  identityFile: string[];
  certificateFile: string[];
  remoteForward: ForwardSpec[];
  localForward: ForwardSpec[];
  sendEnv: string[];
  revtun: Map<string, string>;
}

interface Context {
  opts: Required<Omit<ResolveOptions, 'configFile' | 'userConfigFile' | 'systemConfigFile' | 'commandLine'>>;
  gathered: Gathered;
  /** The name Host lines match: the destination, and in the final pass the substituted HostName. */
  matchHost: string;
  finalPass: boolean;
  wantFinalPass: boolean;
  warnings: string[];
}

/** add_identity_file and add_*_forward skip duplicates, which matters for the second pass. */
function pushUnique<T>(list: T[], item: T): void {
  const key = JSON.stringify(item);
  if (!list.some((x) => JSON.stringify(x) === key)) list.push(item);
}

function tokenValues(ctx: Context, host: string): TokenValues {
  const g = ctx.gathered.values;
  const port = (g.get('port') as number | undefined) ?? 22;
  const user = (g.get('user') as string | undefined) ?? ctx.opts.localUser;
  const alias = g.get('hostkeyalias') as string | undefined;
  return {
    host,
    originalHost: ctx.opts.host,
    port,
    remoteUser: user,
    localUser: ctx.opts.localUser,
    homeDir: ctx.opts.homeDir,
    localHostname: ctx.opts.localHostname,
    uid: ctx.opts.uid,
    keyAlias: alias ?? host,
  };
}

/** The host `Match host` and `Match exec`'s %h see: the HostName so far with %h substituted. */
function currentHost(ctx: Context, line: ConfigLine): string {
  if (ctx.finalPass) return ctx.matchHost;
  const hostName = ctx.gathered.values.get('hostname') as string | undefined;
  if (hostName === undefined) return ctx.opts.host;
  const r = expandTokens(hostName, TOKEN_SETS.hostname, tokenValues(ctx, ctx.opts.host));
  if ('error' in r) throw new SshConfigError(r.error, line.file, line.line);
  return r.value;
}

/** match_cfg_line: every criterion must hold; `all` stands alone (or after canonical/final). */
function evaluateMatch(ctx: Context, line: ConfigLine, neverMatch: boolean): boolean {
  const host = currentHost(ctx, line);
  const user = (ctx.gathered.values.get('user') as string | undefined) ?? ctx.opts.localUser;
  const args = line.args;
  let result = true;
  let attributes = 0;
  const bad = (msg: string): never => {
    throw new SshConfigError(`${msg}`, line.file, line.line);
  };
  for (let i = 0; i < args.length; i++) {
    const original = args[i]!;
    const negate = original.startsWith('!');
    const attrib = (negate ? original.slice(1) : original).toLowerCase();
    if (attrib === 'all') {
      if (attributes > 1 || i + 1 < args.length) bad(`'${original}' cannot be combined with other Match attributes`);
      if (result) result = !negate;
      return result;
    }
    attributes++;
    if (attrib === 'canonical' || attrib === 'final') {
      if (attrib === 'final') ctx.wantFinalPass = true;
      if (ctx.finalPass === negate) result = false;
      continue;
    }
    const arg = args[++i];
    if (arg === undefined || arg === '') bad(`Missing Match criteria for ${attrib}`);
    let r: boolean;
    switch (attrib) {
      case 'host':
        r = matchPatternList(host.toLowerCase(), arg!, true) === 1;
        break;
      case 'originalhost':
        r = matchPatternList(ctx.opts.host.toLowerCase(), arg!, true) === 1;
        break;
      case 'user':
        r = matchPatternList(user, arg!, false) === 1;
        break;
      case 'localuser':
        r = matchPatternList(ctx.opts.localUser, arg!, false) === 1;
        break;
      case 'exec': {
        const cmd = expandTokens(arg!, TOKEN_SETS.standard, tokenValues(ctx, host));
        if ('error' in cmd) bad(cmd.error);
        // ssh skips the command once an earlier criterion failed; revtun also skips it in
        // an Include that can never match, where ssh would still run it.
        if (!result || neverMatch) continue;
        r = ctx.opts.runExec((cmd as { value: string }).value);
        break;
      }
      default:
        bad(`Unsupported Match attribute ${attrib}`);
        r = false;
    }
    if (r === negate) result = false;
  }
  if (attributes === 0) bad('One or more attributes required for Match');
  return result;
}

/** Applies one line; returns the new `active` state for Host/Match lines. */
function processLine(ctx: Context, line: ConfigLine, active: boolean, userConf: boolean, neverMatch: boolean, depth: number, cmdline: boolean): boolean {
  const g = ctx.gathered;
  const bad = (msg: string): never => {
    throw new SshConfigError(msg, line.file, line.line);
  };
  const known = canonicalKeyword(line.keyword);
  if (!known) {
    const setting = revtunSettingByLowerName.get(line.keyword);
    if (setting) {
      if (active && !g.revtun.has(setting)) g.revtun.set(setting, line.args.join(' '));
      return active;
    }
    const ignore = g.values.get('ignoreunknown') as string | undefined;
    if (ignore !== undefined && matchPatternList(line.keyword, ignore, true) === 1) return active;
    bad(`Bad configuration option: ${line.keyword}`);
  }
  const { keyword, kind } = known!;
  // ssh reports unsupported keywords and quietly skips deprecated ones; the rest of
  // `man ssh_config` is valid but means nothing to revtun.
  if (kind === 'unsupported') ctx.warnings.push(`${line.file} line ${line.line}: Unsupported option "${line.keyword}"`);
  if (kind === 'ignored' && IGNORED_FLAG_KEYWORDS.has(keyword)) parseValue(keyword, line);
  if (kind !== 'known') return active;
  switch (keyword) {
    case 'host': {
      if (cmdline) bad('Host directive not supported as a command-line option');
      let matched = false;
      for (const arg of line.args) {
        if (arg === '') bad('keyword host empty argument');
        if (neverMatch) return false;
        const negated = arg.startsWith('!');
        if (matchPattern(ctx.matchHost, negated ? arg.slice(1) : arg)) {
          if (negated) return false;
          matched = true;
        }
      }
      return matched;
    }
    case 'match': {
      if (cmdline) bad('Host directive not supported as a command-line option');
      const r = evaluateMatch(ctx, line, neverMatch);
      return neverMatch ? false : r;
    }
    case 'include':
      if (cmdline) bad('Include directive not supported as a command-line option');
      for (const arg of line.args) {
        if (arg === '') bad('keyword include empty argument');
        if (arg.startsWith('~') && !userConf) bad(`bad include path ${arg}.`);
        const anchored = arg.startsWith('/') || arg.startsWith('~') ? arg : `${userConf ? `${ctx.opts.homeDir}/.ssh` : '/etc/ssh'}/${arg}`;
        for (const file of globFiles(expandTilde(anchored, ctx.opts.homeDir, ctx.opts.localUser))) {
          if (depth + 1 > MAX_INCLUDE_DEPTH) bad('Too many recursive configuration includes');
          // An Include inside an inactive block is still read (errors count) but applies nothing;
          // Host and Match inside it do not leak into the including file.
          readFile(ctx, file, { userConf, checkPerm: true, active, neverMatch: neverMatch || !active, depth: depth + 1 });
        }
      }
      return active;
    case 'identityfile':
    case 'certificatefile': {
      const arg = oneArg(line);
      if (active) pushUnique(keyword === 'identityfile' ? g.identityFile : g.certificateFile, arg);
      return active;
    }
    case 'remoteforward':
    case 'localforward':
    case 'dynamicforward': {
      const first = line.args[0];
      if (first === undefined || first === '') bad('Missing argument.');
      const second = keyword === 'dynamicforward' ? undefined : line.args[1];
      if (line.args.length > (keyword === 'dynamicforward' ? 1 : 2)) bad(`keyword ${keyword} extra arguments at end of line`);
      if (keyword === 'localforward' && (second === undefined || second === '')) bad('Missing target argument.');
      const dynamic = keyword === 'dynamicforward' || second === undefined || second === '';
      const fwd = parseForwardSpec(dynamic ? first! : `${first}:${second}`, dynamic, keyword === 'remoteforward');
      if (!fwd) bad('Bad forwarding specification.');
      if (active) pushUnique(keyword === 'remoteforward' ? g.remoteForward : g.localForward, fwd!);
      return active;
    }
    case 'permitremoteopen': {
      // Checked in inactive blocks too, as ssh does; any and none stand alone.
      const words = line.args.filter((a) => a !== '');
      if (words.length === 0) bad('missing permitremoteopen specification');
      for (const word of words) {
        if (/^(any|none)$/i.test(word)) {
          if (words.length > 1) bad(`keyword permitremoteopen "${word}" argument must appear alone.`);
          continue;
        }
        const problem = permitOpenEntryProblem(word);
        if (problem) bad(`${problem} in permitremoteopen`);
      }
      if (active && !g.values.has(keyword)) g.values.set(keyword, words.join(' '));
      return active;
    }
    case 'sendenv':
      for (const arg of line.args) {
        if (arg === '' || arg.includes('=')) bad('Invalid environment name.');
        if (!active) continue;
        if (arg.startsWith('-')) g.sendEnv = g.sendEnv.filter((n) => n !== arg.slice(1));
        else if (!g.sendEnv.includes(arg)) g.sendEnv.push(arg);
      }
      return active;
    case 'proxycommand':
    case 'localcommand':
    case 'remotecommand': {
      const command = line.rest.replace(/^[ \t=]+/, '');
      // A ProxyJump seen earlier shadows a later ProxyCommand (and the reverse, below);
      // Debian's ssh lets a ProxyCommand through after `ProxyJump none`.
      const jump = g.values.get('proxyjump') as string | undefined;
      const slot = keyword === 'proxycommand' && jump !== undefined && jump.toLowerCase() !== 'none' ? 'proxyjump' : keyword;
      if (active && !g.values.has(slot)) g.values.set(slot, command);
      return active;
    }
    case 'proxyjump': {
      const spec = line.rest
        .replace(/^[ \t=]+/, '')
        .replace(/#.*$/, '')
        .trimEnd();
      if (spec.toLowerCase() !== 'none' && !spec.split(',').every(validJumpHop)) bad(`Invalid ProxyJump "${spec}"`);
      if (active && !g.values.has('proxyjump') && !g.values.has('proxycommand')) {
        g.values.set('proxyjump', spec);
        if (spec.toLowerCase() !== 'none') g.values.set('proxycommand', 'none');
      }
      return active;
    }
  }
  const value = parseValue(keyword, line);
  // A time of `none` is stored as ssh's "unset" (-1), so a later line may still set it.
  if (active && !g.values.has(keyword) && value !== -1) g.values.set(keyword, value);
  return active;
}

const FLAG_KEYWORD: Record<string, string> = { '-p': 'port', '-l': 'user', '-J': 'proxyjump' };

/** One command-line option: a keyword, `-o` with `Key=value`, or one of ssh's flags. */
function applyCommandLine(ctx: Context, key: string, value: string): void {
  const apply = (line: ConfigLine) => processLine(ctx, line, true, true, false, 0, true);
  if (key === '-o') {
    const line = splitConfigLine(value, 'command-line', 0);
    if (line) apply(line);
    return;
  }
  if (key === '-R') {
    // ssh -R takes the whole spec as one word; a lone port (or host:port) is a SOCKS forwarding.
    const fwd = parseForwardSpec(value, false, true) ?? parseForwardSpec(value, true, true);
    if (!fwd) throw new SshConfigError(`Bad remote forwarding specification '${value}'`, 'command-line', 0);
    pushUnique(ctx.gathered.remoteForward, fwd);
    return;
  }
  if (key === '-4' || key === '-6') {
    // ssh sets it outright, the last of -4/-6 winning over each other and over -o AddressFamily.
    ctx.gathered.values.set('addressfamily', key === '-4' ? 'inet' : 'inet6');
    return;
  }
  if (key === '-C') {
    ctx.gathered.values.set('compression', true); // ssh sets it outright: -o Compression=no cannot undo it
    return;
  }
  if (key === '-c' || key === '-m') {
    // ssh sets Ciphers / MACs outright, over -o and the files, the last -c (or -m) winning.
    ctx.gathered.values.set(key === '-c' ? 'ciphers' : 'macs', value);
    return;
  }
  if (key === '-f') {
    ctx.gathered.values.set('forkafterauthentication', true); // ssh sets it outright: no file can unset it
    return;
  }
  // -K and -k set their options outright too, overriding -o; the later of the two wins.
  if (key === '-K') {
    ctx.gathered.values.set('gssapiauthentication', true);
    ctx.gathered.values.set('gssapidelegatecredentials', true);
    return;
  }
  if (key === '-k') {
    ctx.gathered.values.set('gssapidelegatecredentials', false);
    return;
  }
  if (key === '-i') {
    // ssh -i skips a file it cannot stat, with a warning, and keeps it tilde-expanded.
    const path = expandTilde(value, ctx.opts.homeDir, ctx.opts.localUser);
    try {
      statSync(path);
    } catch (error) {
      ctx.warnings.push(`Warning: Identity file ${path} not accessible: ${strerror((error as NodeJS.ErrnoException).code ?? 'EIO')}.`);
      return;
    }
    pushUnique(ctx.gathered.identityFile, path);
    return;
  }
  const keyword = FLAG_KEYWORD[key] ?? key.toLowerCase();
  const args = key in FLAG_KEYWORD ? [value] : splitArguments(value);
  if (!args) throw new SshConfigError('invalid quotes', 'command-line', 0);
  apply({ keyword, args, rest: value, file: 'command-line', line: 0 });
}

interface ReadFlags {
  userConf: boolean;
  checkPerm: boolean;
  active: boolean;
  neverMatch: boolean;
  depth: number;
}

/** read_config_file_depth: false when the file does not exist. */
function readFile(ctx: Context, path: string, flags: ReadFlags): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new SshConfigError(`Can't open user config file ${path}: ${(error as Error).message}`, path, 0);
  }
  if (flags.checkPerm) {
    // ssh refuses a file that someone else could have written.
    const st = statSync(path);
    if ((st.uid !== 0 && st.uid !== ctx.opts.uid) || (st.mode & 0o022) !== 0) throw new SshConfigError(`Bad owner or permissions on ${path}`, path, 0);
  }
  let active = flags.active;
  for (const line of parseConfigText(text, path)) active = processLine(ctx, line, active, flags.userConf, flags.neverMatch, flags.depth, false);
  return true;
}

function defaultRunExec(shell: string | undefined): (command: string) => boolean {
  return (command) => spawnSync(shell || '/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'inherit'] }).status === 0;
}

function expandPath(ctx: Context, path: string, v: TokenValues, where: string): string {
  const tokens = expandTokens(expandTilde(path, ctx.opts.homeDir, ctx.opts.localUser), TOKEN_SETS.standard, v);
  if ('error' in tokens) throw new SshConfigError(tokens.error, where, 0);
  const env = expandEnv(tokens.value, ctx.opts.env);
  if ('error' in env) throw new SshConfigError(env.error, where, 0);
  return env.value;
}

/**
 * Evaluates the configuration for `opts.host` as ssh does and returns the typed result.
 * Throws {@link SshConfigError} naming the file and line of the first bad line.
 */
export function resolveConfig(opts: ResolveOptions): ResolvedConfig {
  const info = userInfo();
  const env = opts.env ?? process.env;
  const base = {
    host: opts.host,
    localUser: opts.localUser ?? info.username,
    homeDir: opts.homeDir ?? info.homedir,
    uid: opts.uid ?? info.uid,
    localHostname: opts.localHostname ?? osHostname(),
    env,
    runExec: opts.runExec ?? defaultRunExec(env.SHELL),
  };
  const ctx: Context = {
    opts: base,
    gathered: { values: new Map(), identityFile: [], certificateFile: [], remoteForward: [], localForward: [], sendEnv: [], revtun: new Map() },
    matchHost: opts.host,
    finalPass: false,
    wantFinalPass: false,
    warnings: [],
  };
  for (const [key, value] of opts.commandLine ?? []) applyCommandLine(ctx, key, value);
  const readAll = () => {
    if (opts.configFile !== undefined) {
      if (opts.configFile.toLowerCase() === 'none') return;
      if (!readFile(ctx, opts.configFile, { userConf: true, checkPerm: false, active: true, neverMatch: false, depth: 0 })) {
        throw new SshConfigError(`Can't open user config file ${opts.configFile}: No such file or directory`, opts.configFile, 0);
      }
      return;
    }
    readFile(ctx, opts.userConfigFile ?? `${base.homeDir}/.ssh/config`, { userConf: true, checkPerm: true, active: true, neverMatch: false, depth: 0 });
    readFile(ctx, opts.systemConfigFile ?? '/etc/ssh/ssh_config', { userConf: false, checkPerm: false, active: true, neverMatch: false, depth: 0 });
  };
  readAll();

  const g = ctx.gathered;
  const hostNameWritten = g.values.get('hostname') as string | undefined;
  let host = opts.host;
  if (hostNameWritten !== undefined) {
    const r = expandTokens(hostNameWritten, TOKEN_SETS.hostname, tokenValues(ctx, opts.host));
    if ('error' in r) throw new SshConfigError(r.error, 'HostName', 0);
    host = r.value;
  }
  if (isIP(host) === 0) host = host.toLowerCase();
  const canonicalize = g.values.get('canonicalizehostname');
  if (ctx.wantFinalPass || (canonicalize !== undefined && canonicalize !== 'no')) {
    // The second pass matches Host lines against the substituted name, as ssh re-reads with it.
    ctx.finalPass = true;
    ctx.matchHost = host;
    g.values.set('hostname', host);
    readAll();
  }

  const v = g.values;
  const user = (v.get('user') as string | undefined) ?? base.localUser;
  const port = (v.get('port') as number | undefined) ?? 22;
  const hostKeyAlias = (v.get('hostkeyalias') as string | undefined)?.toLowerCase();
  const tokens: TokenValues = { ...tokenValues(ctx, host), port, remoteUser: user, keyAlias: hostKeyAlias ?? opts.host };
  const identityFile = g.identityFile.length ? g.identityFile : DEFAULT_IDENTITIES;
  const proxyJumpRaw = v.get('proxyjump') as string | undefined;
  const proxyCommandRaw = v.get('proxycommand') as string | undefined;
  const jump = proxyJumpRaw !== undefined && proxyJumpRaw.toLowerCase() !== 'none' ? formatJump(proxyJumpRaw) : undefined;
  const proxyCommand = jump === undefined && proxyCommandRaw !== undefined && proxyCommandRaw !== 'none' ? proxyCommandRaw : undefined;
  let proxyCommandExpanded: string | undefined;
  if (proxyCommand !== undefined) {
    const r = expandTokens(proxyCommand, TOKEN_SETS.proxy, tokens);
    if ('error' in r) throw new SshConfigError(r.error, 'ProxyCommand', 0);
    proxyCommandExpanded = r.value;
  }
  const knownHosts = (v.get('userknownhostsfile') as string[] | undefined) ?? ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'];
  const agentRaw = v.get('identityagent') as string | undefined;
  const identityAgent =
    agentRaw === undefined || agentRaw.toLowerCase() === 'none' || agentRaw === 'SSH_AUTH_SOCK' || agentRaw.startsWith('$') ? agentRaw : expandPath(ctx, agentRaw, tokens, 'IdentityAgent');
  const remoteCommand = v.get('remotecommand') as string | undefined;
  const controlPath = v.get('controlpath') as string | undefined;
  const timeout = v.get('connecttimeout') as number | undefined;
  const expandedCommand = (text: string | undefined, what: string) => {
    if (text === undefined) return undefined;
    const r = expandTokens(text, TOKEN_SETS.standard, tokens);
    if ('error' in r) throw new SshConfigError(r.error, what, 0);
    return r.value;
  };
  const explicit = new Set(v.keys());
  if (g.identityFile.length) explicit.add('identityfile');
  if (g.remoteForward.length) explicit.add('remoteforward');
  return {
    explicit,
    host: opts.host,
    hostName: host,
    port,
    user,
    identityFile: [...identityFile],
    identityFilePaths: identityFile.map((p) => expandPath(ctx, p, tokens, 'IdentityFile')),
    identitiesOnly: (v.get('identitiesonly') as boolean | undefined) ?? false,
    ...(identityAgent !== undefined ? { identityAgent } : {}),
    certificateFile: [...g.certificateFile],
    certificateFilePaths: g.certificateFile.map((p) => expandPath(ctx, p, tokens, 'CertificateFile')),
    ...(jump !== undefined ? { proxyJump: jump } : {}),
    ...(proxyCommand !== undefined ? { proxyCommand, proxyCommandExpanded } : {}),
    remoteForward: g.remoteForward,
    localForward: g.localForward,
    // Debian's ssh: 300 s by default in batch mode, 0 otherwise.
    serverAliveInterval: (v.get('serveraliveinterval') as number | undefined) ?? (v.get('batchmode') === true ? 300 : 0),
    serverAliveCountMax: (v.get('serveralivecountmax') as number | undefined) ?? 3,
    strictHostKeyChecking: (v.get('stricthostkeychecking') as ResolvedConfig['strictHostKeyChecking'] | undefined) ?? 'ask',
    userKnownHostsFile: knownHosts[0]?.toLowerCase() === 'none' ? ['none'] : knownHosts.map((p) => expandPath(ctx, p, tokens, 'UserKnownHostsFile')),
    globalKnownHostsFile: (v.get('globalknownhostsfile') as string[] | undefined) ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    ...(hostKeyAlias !== undefined ? { hostKeyAlias } : {}),
    ciphers: assembleAlgorithms('ciphers', v.get('ciphers') as string | undefined),
    macs: assembleAlgorithms('macs', v.get('macs') as string | undefined),
    kexAlgorithms: assembleAlgorithms('kexalgorithms', v.get('kexalgorithms') as string | undefined),
    hostKeyAlgorithms: assembleAlgorithms('hostkeyalgorithms', v.get('hostkeyalgorithms') as string | undefined),
    pubkeyAcceptedAlgorithms: assembleAlgorithms('pubkeyacceptedalgorithms', v.get('pubkeyacceptedalgorithms') as string | undefined),
    ...(timeout !== undefined ? { connectTimeout: timeout } : {}),
    connectionAttempts: (v.get('connectionattempts') as number | undefined) ?? 1,
    addressFamily: (v.get('addressfamily') as ResolvedConfig['addressFamily'] | undefined) ?? 'any',
    ...(v.has('bindaddress') ? { bindAddress: v.get('bindaddress') as string } : {}),
    exitOnForwardFailure: (v.get('exitonforwardfailure') as boolean | undefined) ?? false,
    forkAfterAuthentication: (v.get('forkafterauthentication') as boolean | undefined) ?? false,
    ...(v.has('permitremoteopen') ? { permitRemoteOpen: v.get('permitremoteopen') as string } : {}),
    batchMode: (v.get('batchmode') as boolean | undefined) ?? false,
    logLevel: (v.get('loglevel') as string | undefined) ?? 'INFO',
    compression: (v.get('compression') as boolean | undefined) ?? false,
    tcpKeepAlive: (v.get('tcpkeepalive') as boolean | undefined) ?? true,
    passwordAuthentication: (v.get('passwordauthentication') as boolean | undefined) ?? true,
    pubkeyAuthentication: (v.get('pubkeyauthentication') as ResolvedConfig['pubkeyAuthentication'] | undefined) ?? 'yes',
    kbdInteractiveAuthentication: (v.get('kbdinteractiveauthentication') as boolean | undefined) ?? true,
    gssapiAuthentication: (v.get('gssapiauthentication') as boolean | undefined) ?? false,
    gssapiKeyExchange: (v.get('gssapikeyexchange') as boolean | undefined) ?? false,
    gssapiDelegateCredentials: (v.get('gssapidelegatecredentials') as boolean | undefined) ?? false,
    gssapiTrustDns: (v.get('gssapitrustdns') as boolean | undefined) ?? false,
    ...(v.has('gssapiserveridentity') ? { gssapiServerIdentity: v.get('gssapiserveridentity') as string } : {}),
    sendEnv: g.sendEnv,
    ...(controlPath !== undefined && controlPath !== 'none' ? { controlPath: expandPath(ctx, controlPath, tokens, 'ControlPath') } : {}),
    ...(v.has('localcommand') ? { localCommand: v.get('localcommand') as string } : {}),
    ...(remoteCommand !== undefined ? { remoteCommand: expandedCommand(remoteCommand, 'RemoteCommand') } : {}),
    revtunSettings: g.revtun,
    warnings: ctx.warnings,
  };
}
