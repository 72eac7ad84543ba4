// ssh_config(5) syntax: splitting a line into keyword and arguments the way OpenSSH 9.2's
// readconf.c does (strdelim for the keyword, argv_split for the arguments), the table of
// keywords OpenSSH knows, and the wildcard patterns of ssh_config's PATTERNS section. No
// evaluation happens here; ssh-config.ts decides what a line means for a destination.
//
// Why not the `ssh-config` npm package (5.3.0 on npm; read from its source, not installed):
// it is a round-tripping editor's parser. It takes `Keyword value`, `Keyword=value` and
// double quotes, but not single quotes or backslash escapes other than \", keeps a trailing
// `# comment` as part of the value, records no line numbers, compares keywords as written
// (`host` is not `Host`), and turns Match into a criteria object that loses repeated criteria
// and the argument-less `all`/`final`/`canonical`. Its compute() does not read Include files.
// We need ssh's tokenizer exactly (argv_split: quotes anywhere in a word, `#` only at the
// start of one, ProxyCommand's raw rest of line) to give ssh's errors at ssh's file and
// line, and the evaluation has to be ours anyway, so the dependency would buy almost nothing.

/** A configuration error, worded as ssh words it, with the file and line it came from. */
export class SshConfigError extends Error {
  override readonly name = 'SshConfigError';
  constructor(
    message: string,
    readonly file: string,
    readonly line: number,
  ) {
    super(line > 0 ? `${file} line ${line}: ${message}` : `${file}: ${message}`);
  }
}

/** One configuration line, split as ssh splits it. */
export interface ConfigLine {
  /** Lowercased keyword as written (aliases are resolved by {@link canonicalKeyword}). */
  keyword: string;
  /** Arguments after argv_split: quotes removed, escapes resolved, stopped at a `#` word. */
  args: string[];
  /** The raw text after the keyword and its delimiter, for ProxyCommand-like keywords. */
  rest: string;
  file: string;
  line: number;
}

/**
 * How ssh treats each keyword it knows, by lowercase name. `ignored` keywords are valid but
 * revtun gives them no meaning (ssh would use them); `unsupported` and `deprecated` are the
 * ones ssh itself only warns about.
 */
export type KeywordKind = 'known' | 'ignored' | 'deprecated' | 'unsupported';

// Every keyword in OpenSSH 9.2's readconf.c (Debian's build, which adds the GSSAPI key
// exchange options), with the aliases readconf keeps for old names.
const ALIASES: Record<string, string> = {
  identityfile2: 'identityfile',
  challengeresponseauthentication: 'kbdinteractiveauthentication',
  skeyauthentication: 'kbdinteractiveauthentication',
  tisauthentication: 'kbdinteractiveauthentication',
  dsaauthentication: 'pubkeyauthentication',
  keepalive: 'tcpkeepalive',
  hostbasedkeytypes: 'hostbasedacceptedalgorithms',
  pubkeyacceptedkeytypes: 'pubkeyacceptedalgorithms',
  smartcarddevice: 'pkcs11provider',
  // Debian's compatibility names for ServerAliveInterval.
  protocolkeepalives: 'serveraliveinterval',
  setuptimeout: 'serveraliveinterval',
};
const DEPRECATED = ['protocol', 'cipher', 'fallbacktorsh', 'globalknownhostsfile2', 'rhostsauthentication', 'userknownhostsfile2', 'useroaming', 'usersh', 'useprivilegedport'];
const UNSUPPORTED = ['afstokenpassing', 'kerberosauthentication', 'kerberostgtpassing', 'rsaauthentication', 'rhostsrsaauthentication', 'compressionlevel'];
/** Keywords from `man ssh_config` that revtun parses and gives meaning to (ssh-config.ts). */
export const SUPPORTED_KEYWORDS = [
  'host',
  'match',
  'include',
  'hostname',
  'port',
  'user',
  'identityfile',
  'identitiesonly',
  'identityagent',
  'certificatefile',
  'proxyjump',
  'proxycommand',
  'remoteforward',
  'serveraliveinterval',
  'serveralivecountmax',
  'stricthostkeychecking',
  'userknownhostsfile',
  'globalknownhostsfile',
  'hostkeyalias',
  'ciphers',
  'macs',
  'kexalgorithms',
  'hostkeyalgorithms',
  'connecttimeout',
  'connectionattempts',
  'addressfamily',
  'bindaddress',
  'exitonforwardfailure',
  'batchmode',
  'loglevel',
  'compression',
  'tcpkeepalive',
  'passwordauthentication',
  'pubkeyauthentication',
  'kbdinteractiveauthentication',
  'ignoreunknown',
  'canonicalizehostname',
  'localforward',
  'dynamicforward',
  'sendenv',
  'localcommand',
  'remotecommand',
  'controlpath',
  'forkafterauthentication',
  'gssapiauthentication',
  'gssapidelegatecredentials',
  'gssapikeyexchange',
  'gssapiserveridentity',
  'gssapitrustdns',
  'pubkeyacceptedalgorithms',
  'permitremoteopen',
];
/** The rest of `man ssh_config`: accepted and ignored, as ssh ignores what it does not use. */
const IGNORED = [
  'addkeystoagent',
  'bindinterface',
  'canonicaldomains',
  'canonicalizefallbacklocal',
  'canonicalizemaxdots',
  'canonicalizepermittedcnames',
  'casignaturealgorithms',
  'checkhostip',
  'clearallforwardings',
  'controlmaster',
  'controlpersist',
  'enableescapecommandline',
  'enablesshkeysign',
  'escapechar',
  'fingerprinthash',
  'forwardagent',
  'forwardx11',
  'forwardx11timeout',
  'forwardx11trusted',
  'gatewayports',
  'gssapiclientidentity',
  'gssapirenewalforcesrekey',
  'gssapikexalgorithms',
  'hashknownhosts',
  'hostbasedacceptedalgorithms',
  'hostbasedauthentication',
  'ipqos',
  'kbdinteractivedevices',
  'knownhostscommand',
  'logverbose',
  'nohostauthenticationforlocalhost',
  'numberofpasswordprompts',
  'permitlocalcommand',
  'pkcs11provider',
  'preferredauthentications',
  'proxyusefdpass',
  'rekeylimit',
  'requesttty',
  'requiredrsasize',
  'revokedhostkeys',
  'securitykeyprovider',
  'sessiontype',
  'setenv',
  'stdinnull',
  'streamlocalbindmask',
  'streamlocalbindunlink',
  'syslogfacility',
  'tunnel',
  'tunneldevice',
  'updatehostkeys',
  'verifyhostkeydns',
  'visualhostkey',
  'xauthlocation',
];

const KINDS = new Map<string, KeywordKind>([
  ...SUPPORTED_KEYWORDS.map((k) => [k, 'known'] as const),
  ...IGNORED.map((k) => [k, 'ignored'] as const),
  ...DEPRECATED.map((k) => [k, 'deprecated'] as const),
  ...UNSUPPORTED.map((k) => [k, 'unsupported'] as const),
]);

/** The keyword readconf.c uses for `name` (aliases resolved), or undefined if ssh does not know it. */
export function canonicalKeyword(name: string): { keyword: string; kind: KeywordKind } | undefined {
  const lower = name.toLowerCase();
  const keyword = ALIASES[lower] ?? lower;
  const kind = KINDS.get(keyword);
  return kind ? { keyword, kind } : undefined;
}

const WHITESPACE = ' \t\r\n';

/**
 * Splits one line into keyword and arguments; undefined for blank and comment lines.
 * The keyword ends at whitespace or a single `=`, as with ssh's strdelim.
 */
export function splitConfigLine(text: string, file: string, line: number): ConfigLine | undefined {
  // ssh strips trailing whitespace (and a form feed at the end) first.
  const trimmed = text.replace(/[ \t\r\n\f]+$/, '');
  let i = 0;
  while (i < trimmed.length && WHITESPACE.includes(trimmed[i]!)) i++;
  if (i >= trimmed.length || trimmed[i] === '#') return undefined;
  let end = i;
  while (end < trimmed.length && !WHITESPACE.includes(trimmed[end]!) && trimmed[end] !== '=') end++;
  const keyword = trimmed.slice(i, end).toLowerCase();
  let j = end;
  while (j < trimmed.length && WHITESPACE.includes(trimmed[j]!)) j++;
  if (trimmed[j] === '=') j++;
  while (j < trimmed.length && WHITESPACE.includes(trimmed[j]!)) j++;
  const rest = trimmed.slice(j);
  if (keyword === '') return undefined;
  if (rest === '') throw new SshConfigError(`no argument after keyword "${keyword}"`, file, line);
  const args = splitArguments(rest);
  if (!args) throw new SshConfigError('invalid quotes', file, line);
  return { keyword, args, rest, file, line };
}

/**
 * ssh's argv_split with comments on: words split on blanks, '…' and "…" quote anywhere in a
 * word, backslash escapes a quote, a backslash or (outside quotes) a space. Undefined when a
 * quote is left open.
 */
export function splitArguments(text: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '#') break;
    let word = '';
    let quote = '';
    for (; i < text.length; i++) {
      const ch = text[i]!;
      const next = text[i + 1];
      if (ch === '\\') {
        if (next === "'" || next === '"' || next === '\\' || (quote === '' && next === ' ')) {
          word += next;
          i++;
        } else word += ch;
      } else if (quote === '' && (ch === ' ' || ch === '\t')) break;
      else if (quote === '' && (ch === '"' || ch === "'")) quote = ch;
      else if (quote !== '' && ch === quote) quote = '';
      else word += ch;
    }
    if (quote !== '') return undefined;
    out.push(word);
  }
  return out;
}

/** Parses a whole file's text into its lines (blank lines and comments dropped). */
export function parseConfigText(text: string, file: string): ConfigLine[] {
  const lines: ConfigLine[] = [];
  text.split('\n').forEach((raw, index) => {
    const parsed = splitConfigLine(raw, file, index + 1);
    if (parsed) lines.push(parsed);
  });
  return lines;
}

/** OpenSSH's match_pattern: `*` any run, `?` one character, everything else literal and case-sensitive. */
export function matchPattern(text: string, pattern: string): boolean {
  // Iterative wildcard match with backtracking to the last `*`, so long names stay linear-ish.
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && (pattern[p] === '?' || (pattern[p] !== '*' && pattern[p] === text[t]))) {
      t++;
      p++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starT = t;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * OpenSSH's match_pattern_list: a comma-separated list where `!pattern` vetoes. Returns 1 for
 * a positive match, -1 when a negated pattern matched, 0 otherwise. `lower` lowercases the
 * patterns, for host names (which the caller lowercases too).
 */
export function matchPatternList(text: string, list: string, lower: boolean): 1 | 0 | -1 {
  let positive = false;
  for (const entry of list.split(',')) {
    const negated = entry.startsWith('!');
    let pattern = negated ? entry.slice(1) : entry;
    if (lower) pattern = pattern.toLowerCase();
    if (matchPattern(text, pattern)) {
      if (negated) return -1;
      positive = true;
    }
  }
  return positive ? 1 : 0;
}
