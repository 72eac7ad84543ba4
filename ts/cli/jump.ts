// ProxyJump (-J and the config keyword) for the CLI: each hop of `[user@]host[:port][,...]` is
// looked up in the configuration as ssh would look it up for a connection of its own (ssh runs
// `ssh -W` for a hop, with -F passed on and nothing else from the command line), so a hop's
// HostName, Port, User, IdentityFile, known_hosts files, StrictHostKeyChecking, HostKeyAlias,
// BatchMode and password settings are its own. The first hop's own ProxyJump extends the chain
// before it, and its ProxyCommand, when it has one instead, carries the first connection.

import type { JumpHost } from '../tunnel/jump.js';
import { describeHop } from '../tunnel/jump.js';
import { resolveConfig, type ResolvedConfig } from './ssh-config.js';
import { UsageError } from './args.js';
import { DEFAULT_CLI_HOST_KEY, decideHostKey, loadKnownHosts, preferKnownKeyTypes } from './host-keys.js';
import { usableIdentities } from './identity.js';

export interface JumpHop {
  user?: string;
  host: string;
  port?: number;
}

/** How deep a first hop's own ProxyJump may nest before the chain counts as a loop. */
const MAX_JUMP_DEPTH = 8;

/** One hop of a jump spec: `[user@]host[:port]`, `[user@][address]:port`, or `ssh://[user@]host[:port]`. */
export function parseJumpHop(text: string): JumpHop {
  const bad = () => new UsageError(`Invalid ProxyJump "${text}"`);
  let rest = text;
  const uri = rest.startsWith('ssh://');
  if (uri) rest = rest.slice(6).replace(/\/$/, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (user === '') throw bad();
  }
  let host = rest;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if ((rest.match(/:/g) ?? []).length === 1) {
    [host, portText] = rest.split(':') as [string, string];
  }
  if (host === '' || /[\s,]/.test(host)) throw bad();
  let port: number | undefined;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw bad();
  }
  return { ...(user !== undefined ? { user } : {}), host, ...(port !== undefined ? { port } : {}) };
}

export function parseJumpSpec(spec: string): JumpHop[] {
  return spec.split(',').map((hop) => parseJumpHop(hop.trim()));
}

export interface JumpContext {
  /** -F, passed on to every hop's lookup as ssh passes it to its ssh -W. */
  configFile?: string;
  homeDir: string;
  expandHome: (path: string) => string;
  /** The answer now, or later (a prompt on the terminal does not block). */
  askSecret: (prompt: string, batchMode: boolean) => string | undefined | Promise<string | undefined>;
  log: (line: string) => void;
  /** A debug line, printed at -v level `level` and above. */
  debug: (level: number, line: string) => void;
  warnAlways: (line: string) => void;
  /** A hop's host key was refused: the line to print instead of the library's error. */
  hostKeyRefused: (problem: string) => void;
}

export interface JumpChain {
  hops: JumpHost[];
  /** The first hop's ProxyCommand (unexpanded), when its configuration gives one. */
  proxyCommand?: string;
}

/** The jump hosts of a ProxyJump value (empty for "none"). */
export function jumpChainFor(spec: string, ctx: JumpContext, depth = 0): JumpChain {
  if (spec.toLowerCase() === 'none') return { hops: [] };
  if (depth > MAX_JUMP_DEPTH) throw new UsageError(`ProxyJump ${spec}: jump hosts nest more than ${MAX_JUMP_DEPTH} deep (a loop?)`);
  const chain: JumpChain = { hops: [] };
  parseJumpSpec(spec).forEach((hop, index) => {
    const commandLine: [string, string][] = [];
    if (hop.user !== undefined) commandLine.push(['-l', hop.user]);
    if (hop.port !== undefined) commandLine.push(['-p', String(hop.port)]);
    const config = resolveConfig({ host: hop.host, ...(ctx.configFile !== undefined ? { configFile: ctx.configFile } : {}), commandLine, homeDir: ctx.homeDir });
    // Later hops are reached through the earlier ones, whatever their own ProxyJump says.
    if (index === 0 && config.proxyJump !== undefined) {
      const before = jumpChainFor(config.proxyJump, ctx, depth + 1);
      chain.hops.push(...before.hops);
      if (before.proxyCommand !== undefined) chain.proxyCommand = before.proxyCommand;
    } else if (index === 0 && config.proxyCommand !== undefined && config.proxyCommand.toLowerCase() !== 'none') {
      chain.proxyCommand = config.proxyCommand;
    }
    chain.hops.push(jumpHostFrom(config, ctx));
  });
  return chain;
}

function jumpHostFrom(config: ResolvedConfig, ctx: JumpContext): JumpHost {
  const name = describeHop({ host: config.hostName, port: config.port });
  const policy = loadKnownHosts(
    {
      userKnownHostsFile: config.userKnownHostsFile.join(' '),
      globalKnownHostsFile: config.globalKnownHostsFile.join(' '),
      strictHostKeyChecking: config.strictHostKeyChecking,
    },
    ctx.expandHome,
  );
  const hostKeyName = config.hostKeyAlias ?? config.hostName;
  // The hop's own HostKeyAlgorithms, ordered by its own known_hosts as ssh -W would order them:
  // the certificate forms first for a hop with a @cert-authority line, so that it shows its
  // certificate rather than a plain key nobody listed.
  const algorithms = config.explicit.has('hostkeyalgorithms') ? config.hostKeyAlgorithms : DEFAULT_CLI_HOST_KEY;
  const hop: JumpHost = {
    host: config.hostName,
    port: config.port,
    user: config.user,
    hostKeyAlgorithms: preferKnownKeyTypes(policy, hostKeyName, config.port, algorithms).join(','),
    verifyHostKey: (info) => {
      const decision = decideHostKey(policy, {
        name: hostKeyName,
        port: config.port,
        shownHost: config.hostName,
        hostKey: info.hostKey,
        sha256: info.fingerprints.sha256,
        certificate: info.certificate,
      });
      if (decision.warning) for (const line of decision.warning) ctx.warnAlways(line);
      if (decision.note) ctx.log(decision.note);
      if (!decision.accept) ctx.hostKeyRefused(`jump host ${name}: ${decision.problem ?? 'host key refused'}`);
      return decision.accept;
    },
  };
  // The hop's IdentityFile lines, or ssh's default files when it has none, each offered in turn.
  hop.identities =
    config.pubkeyAuthentication === 'no'
      ? []
      : usableIdentities({
          files: [...new Set(config.identityFilePaths)],
          userProvided: config.explicit.has('identityfile'),
          askPassphrase: (prompt) => ctx.askSecret(prompt, config.batchMode),
          warn: ctx.log,
          debug: ctx.debug,
        });
  // Always a provider of the hop's own: with password methods off it gives none, so the hop
  // never falls back to the server's credentials.
  let password: string | undefined | Promise<string | undefined>;
  const passwordAllowed = config.passwordAuthentication || config.kbdInteractiveAuthentication;
  hop.passwordProvider = () => {
    if (!passwordAllowed) return undefined;
    password ??= ctx.askSecret(`${config.user}@${config.hostName}'s password: `, config.batchMode);
    return password;
  };
  return hop;
}
