// What each configuration setting is for, when a change takes effect, and where revtun's
// default departs from the reference documentation and why. The names, kinds, defaults and
// ranges come from ./settings.ts (the table the code uses); this file adds the words, and
// renders both into the README's settings and error tables (scripts/docs-tables.mjs writes them;
// a unit test fails when the README is stale or a setting has no entry here).

import { NOT_YET, PROPERTY_SETTINGS, READ_ONLY, SETTINGS } from './settings.js';
import { errorCodeRows } from '../protocol/errors.js';

/**
 * When a changed value is used: `live` applies to the open connection at once; `next` at the
 * next logon (or reconnect); `use` is read each time it is needed (so also live); `idle` is
 * refused while a connection is in progress; `read` is answered from state and cannot be set.
 */
export type Applies = 'live' | 'next' | 'use' | 'idle' | 'read';

export interface SettingDoc {
  summary: string;
  applies: Applies;
  /** The reference's default and why revtun's differs, where it does. */
  differs?: { reference: string; why: string };
}

export const SETTING_DOCS: Record<string, SettingDoc> = {
  DefaultChannelIdleTimeout: { summary: 'Seconds a channel may stay idle before it is closed; 0 never.', applies: 'live' },
  ForwardingLocalHost: { summary: 'The local address forwarded connections are made from (empty: the system chooses).', applies: 'use' },
  ClientSSHVersionString: {
    summary: 'The version line revtun sends.',
    applies: 'next',
    differs: { reference: 'the vendor product string', why: 'revtun names itself, so that server logs say which client connected' },
  },
  DoNotRepeatAuthMethods: { summary: 'In multi-factor logons, skip methods the server already accepted.', applies: 'next' },
  KeyRenegotiationThreshold: { summary: 'Bytes after which keys are exchanged again (RFC 4253 §9).', applies: 'next' },
  LogLevel: { summary: '0 none, 1 info, 2 verbose, 3 packets (never secrets at any level).', applies: 'use' },
  MaxPacketSize: { summary: 'The largest channel packet the server may send us.', applies: 'next' },
  MaxWindowSize: { summary: 'The receive window of each channel; may be raised while connected.', applies: 'live' },
  PasswordPrompt: { summary: 'A keyboard-interactive prompt (glob) answered with sshPassword.', applies: 'use' },
  PreferredDHGroupBits: { summary: 'The modulus size asked for in a group-exchange key exchange.', applies: 'next' },
  SSHAcceptAnyServerHostKey: { summary: 'Trust any host key (tests only: it gives up server authentication).', applies: 'next' },
  SSHAcceptServerCAKey: { summary: 'CA keys (and PEM CA certificates) whose host certificates are trusted.', applies: 'next' },
  SSHAcceptServerHostKeyFingerPrint: { summary: 'Fingerprints of trusted host keys, comma-separated.', applies: 'next' },
  SSHFingerprintHashAlgorithm: { summary: 'The hash of the fingerprint the sshServerAuthentication event shows.', applies: 'next' },
  SSHKeepAliveCountMax: { summary: 'Unanswered SSH keep-alives in a row before the connection is given up (1039).', applies: 'live' },
  SSHKeepAliveInterval: {
    summary: 'Seconds of silence before an SSH keep-alive is sent; 0 never.',
    applies: 'live',
    differs: { reference: '0 (none)', why: 'a tunnel must notice a dead link to heal itself: 30 s × (5 + 1) finds one within 3 minutes, as autossh users set it' },
  },
  SSHKeyExchangeAlgorithms: {
    summary: 'Key exchange algorithms, in order of preference.',
    applies: 'next',
    differs: {
      reference: 'curve25519-sha256 first; includes the SHA-1 and 1024-bit exchanges',
      why: 'the post-quantum hybrids (mlkem768x25519-sha256, sntrup761x25519-sha512) come first, as in OpenSSH 10, when the crypto provider has their KEMs; SHA-1 and 1024-bit groups are offered only when listed (see "What it speaks")',
    },
  },
  SSHMacAlgorithms: {
    summary: 'MAC algorithms, in order of preference.',
    applies: 'next',
    differs: { reference: 'includes hmac-md5, hmac-ripemd160 and the -96 truncations', why: 'weak MACs only when listed; EtM forms first, as OpenSSH orders them' },
  },
  SSHPubKeyAuthSigAlgorithms: {
    summary: 'Signature algorithms our keys may sign with.',
    applies: 'next',
    differs: { reference: 'includes ssh-dss and the x509v3-sign forms', why: 'DSA and SHA-1 signatures only when listed' },
  },
  SSHPublicKeyAlgorithms: {
    summary: 'Host key algorithms accepted from the server, in order.',
    applies: 'next',
    differs: { reference: 'includes ssh-rsa (SHA-1), ssh-dss and x509v3-sign-*', why: 'legacy host keys only when listed; X.509 ones are asked for when a CA certificate is trusted' },
  },
  SSHVersionPattern: { summary: 'Server version lines accepted (globs).', applies: 'next' },
  TryAllAvailableAuthMethods: { summary: 'Try every method with credentials, not only the first the server accepts.', applies: 'next' },
  UseStrictKeyExchange: { summary: '0 off, 1 on (not enforced), 2 on and Terrapin-safe algorithms only without it, 3 required.', applies: 'next' },
  WaitForChannelClose: { summary: 'closeChannel waits for the server’s CLOSE.', applies: 'use' },
  WaitForServerDisconnect: { summary: 'sshLogoff waits for the server to close the connection.', applies: 'use' },
  ConnectionTimeout: { summary: 'Seconds establishing the connection may take (0: `timeout` applies).', applies: 'next' },
  AbsoluteTimeout: { summary: 'True: `timeout` is a fixed deadline; False: an inactivity timeout.', applies: 'use' },
  TCPKeepAlive: {
    summary: 'SO_KEEPALIVE on the server connection.',
    applies: 'next',
    differs: { reference: 'off', why: 'on, as OpenSSH has TCPKeepAlive yes: the kernel then notices a peer gone for good' },
  },
  KeepAliveTime: { summary: 'Milliseconds idle before the first TCP keep-alive probe (0: the system’s).', applies: 'next' },
  TcpNoDelay: {
    summary: 'TCP_NODELAY on the server connection (no Nagle delay).',
    applies: 'next',
    differs: { reference: 'False', why: 'revtun coalesces packets itself, so Nagle only adds latency to forwarded request/response traffic' },
  },
  UseIPv6: { summary: '0 IPv4 only, 1 IPv6 only, 2 both (IPv6 first, Happy Eyeballs). The CLI uses 2, as ssh does.', applies: 'next' },
  MaskSensitiveData: { summary: 'Hide FirewallPassword when it is read back (logs never hold secrets).', applies: 'use' },
  AutoReconnect: { summary: '0 never, 1 after a lost connection, 2 also until the first logon succeeds.', applies: 'use' },
  MaxRetryCount: { summary: 'Reconnect attempts per outage; 0 no limit.', applies: 'use' },
  RetryInterval: { summary: 'Seconds between reconnect attempts (with up to 20% jitter).', applies: 'use' },
  FirewallType: { summary: '0 none, 1 HTTP CONNECT, 2 SOCKS4, 3 SOCKS5, 10 SOCKS4A; sets FirewallPort to the type’s port.', applies: 'next' },
  FirewallHost: { summary: 'The proxy host.', applies: 'next' },
  FirewallPort: { summary: 'The proxy port (0: the type’s default).', applies: 'next' },
  FirewallUser: { summary: 'The proxy user.', applies: 'next' },
  FirewallPassword: { summary: 'The proxy password.', applies: 'next' },
  FirewallData: { summary: 'Extra header lines for an HTTP proxy.', applies: 'next' },
  FirewallAutoDetect: { summary: 'Take the proxy from https_proxy / all_proxy / no_proxy.', applies: 'next' },
  ProxyExceptionsList: { summary: 'Hosts reached directly, not through the proxy.', applies: 'next' },
  SignedSSHCert: { summary: 'An OpenSSH user certificate for the sshCert* key.', applies: 'next' },
  EnablePageantAuth: { summary: 'Keys from ssh-agent: 0 no, 1 when available, 2 only those.', applies: 'next' },
  RecordLength: { summary: 'Event mode: fixed-length records; may change inside sshChannelData.', applies: 'use' },
  MaxLineLength: { summary: 'Event mode: the longest line of a channel with a ChannelDataEOL.', applies: 'idle' },
  CodePage: { summary: 'How text sent with sendChannelData becomes bytes (65001 UTF-8).', applies: 'use' },
  UseFIPSCompliantAPI: { summary: 'node:crypto in FIPS mode for the process (refused where OpenSSL has no FIPS provider).', applies: 'next' },
  UseInternalSecurityAPI: { summary: 'True: the Rust core does packet crypto; False: node:crypto.', applies: 'next' },
  ProcessIdleEvents: { summary: 'Accepted; revtun has no event loop of its own to run idle events in.', applies: 'use' },
  SelectWaitMillis: { summary: 'How long doEvents() waits when nothing is ready.', applies: 'use' },
  KerberosDelegation: { summary: 'Delegate the Kerberos ticket to the server (GSSAPI).', applies: 'next' },
  KerberosRealm: { summary: 'The Kerberos realm of the server principal.', applies: 'next' },
  KerberosSPN: { summary: 'The server principal name (default host@<sshHost>).', applies: 'next' },
  // Read-only.
  ForwardedPort: { summary: 'The port the last forwarding listens on (0 after sshLogoff).', applies: 'read' },
  NegotiatedStrictKex: { summary: 'Whether strict key exchange is in use.', applies: 'read' },
  ServerSSHVersionString: { summary: 'The server’s version line.', applies: 'read' },
  SSHFingerprintMD5: { summary: 'The server host key’s MD5 fingerprint.', applies: 'read' },
  SSHFingerprintSHA1: { summary: 'The server host key’s SHA-1 fingerprint.', applies: 'read' },
  SSHFingerprintSHA256: { summary: 'The server host key’s SHA-256 fingerprint.', applies: 'read' },
  BuildInfo: { summary: 'revtun’s version, crypto provider and runtime.', applies: 'read' },
  LicenseInfo: { summary: 'The license (MIT; no key is needed).', applies: 'read' },
  // The same values as the localHost and localPort properties.
  LocalHost: { summary: 'The local address to connect from (the localHost property).', applies: 'idle' },
  LocalPort: { summary: 'The local port to connect from (the localPort property).', applies: 'idle' },
  // Socket options of the server connection (./socket-settings.ts; through the native addon).
  MaxTransferRate: { summary: 'Bytes per second each way (token buckets): what revtun sends, and the window credit the server is given; 0 no limit.', applies: 'live' },
  Linger: { summary: 'True: a close sends what is queued (LingerTime bounds it); False: the connection ends with a reset.', applies: 'live' },
  DataPlane: {
    summary:
      "native: once logged on, the addon's relay thread moves forwarded bytes where it applies (a socket transport, the native addon, no compression or channel idle timeout), else Node's event loop does and the log says why; js: Node's event loop always.",
    applies: 'next',
  },
  LingerTime: { summary: 'Seconds a close may linger sending queued data, then the connection is reset; 0 the system’s.', applies: 'live' },
  InBufferSize: { summary: 'SO_RCVBUF of the server connection; reads back what the kernel kept.', applies: 'live' },
  OutBufferSize: { summary: 'SO_SNDBUF of the server connection; reads back what the kernel kept.', applies: 'live' },
  KeepAliveInterval: { summary: 'Milliseconds between unanswered TCP keep-alive probes (TCP_KEEPINTVL); turns TCPKeepAlive on.', applies: 'live' },
};

/** Settings with an index, and the one-shot command; documented in the README's prose. */
export const INDEXED_SETTINGS = ['ChannelDataEOL[id]', 'MaxChannelDataLength[id]', 'ChannelDataEOLFound[id]', 'SSHKeyRenegotiate'];

/** Every setting name the code knows, for the completeness test. */
export function knownSettingNames(): string[] {
  return [...Object.keys(SETTINGS), ...READ_ONLY, ...PROPERTY_SETTINGS, ...NOT_YET];
}

const APPLIES_TEXT: Record<Applies, string> = {
  live: 'at once, on the open connection',
  next: 'next logon',
  use: 'each use',
  idle: 'not while connected',
  read: 'read-only',
};

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function defaultText(name: string): string {
  const spec = SETTINGS[name];
  if (!spec) return '';
  const value = spec.default;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (value === '') return '(empty)';
  if (spec.kind === 'list') return 'see "What it speaks"';
  return `\`${String(value)}\``;
}

function rangeText(name: string): string {
  const spec = SETTINGS[name];
  if (!spec) return '';
  if (spec.choices) return spec.choices.join(', ');
  if (spec.intChoices) return spec.intChoices.join(', ');
  if (spec.kind === 'int' && (spec.min !== undefined || spec.max !== undefined)) return `${spec.min ?? ''}–${spec.max ?? ''}`;
  return spec.kind === 'list' ? 'comma-separated names' : '';
}

/** The README's settings table. */
export function settingsMarkdown(): string {
  const notYet = new Set(NOT_YET);
  const rows = knownSettingNames().map((name) => {
    const doc = SETTING_DOCS[name]!;
    const applies = notYet.has(name) ? 'not implemented yet (10022)' : APPLIES_TEXT[doc.applies];
    return `| ${name} | ${cell(doc.summary)} | ${defaultText(name)} | ${rangeText(name)} | ${applies} |`;
  });
  return ['| setting | what it does | default | values | a change applies |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** The README's list of defaults that differ from the reference, with the reasons. */
export function differingDefaultsMarkdown(): string {
  return Object.entries(SETTING_DOCS)
    .filter(([, doc]) => doc.differs)
    .map(([name, doc]) => `- **${name}**: ${defaultText(name)} here, ${doc.differs!.reference} in the reference: ${doc.differs!.why}.`)
    .join('\n');
}

/** The README's error-code table. */
export function errorCodesMarkdown(): string {
  const rows = errorCodeRows().map((row) => `| ${row.code} | \`${row.name}\` | ${cell(row.meaning)}${row.raised ? '' : ' (not raised by revtun)'} |`);
  return ['| code | `Code.` | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** `text` with the part between `<!-- name:begin -->` and `<!-- name:end -->` replaced by `content`. */
export function replaceGenerated(text: string, name: string, content: string): string {
  const begin = `<!-- ${name}:begin (generated by npm run docs; do not edit) -->`;
  const end = `<!-- ${name}:end -->`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README has no ${name} markers`);
  return `${text.slice(0, from + begin.length)}\n${content}\n${text.slice(to)}`;
}

/** The README with every generated table brought up to date. */
export function regenerateReadme(readme: string): string {
  let text = replaceGenerated(readme, 'settings', settingsMarkdown());
  text = replaceGenerated(text, 'defaults', differingDefaultsMarkdown());
  return replaceGenerated(text, 'errors', errorCodesMarkdown());
}
