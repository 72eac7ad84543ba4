// The documented configuration settings (config('Name=Value') / config('Name')): their
// defaults, parsing and validation. Names are matched case-insensitively. Read-only settings
// (ServerSSHVersionString, NegotiatedStrictKex, fingerprints, BuildInfo) are answered by the
// tunnel from live state.

import { SshError, Code } from '../protocol/errors.js';
import { KEX_METHODS } from '../protocol/kex.js';
import { hybridKexAvailable, isHybridKex } from '../protocol/kex-hybrid.js';
import { isGssKex, NULL_HOST_KEY } from '../protocol/kex-gss.js';
import type { AlgorithmLists } from '../protocol/client.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { CERTIFICATE_ALGORITHMS, certificateAlgorithmFor } from '../protocol/certificates.js';
import { parseCaCertificates, parseCaKeys } from './hostkeys.js';
import { MAX_RECORD_LENGTH } from './chunker.js';
import { encoderFor } from './code-page.js';
import { DEFAULT_X509_ALGORITHMS, X509_ALGORITHMS, isX509Algorithm, x509AlgorithmSpec } from '../protocol/x509-chain.js';
import { keyTypeForAlgorithm } from '../protocol/publickey.js';
import { DEFAULT_HOST_KEY_ALGORITHMS, DEFAULT_PUBKEY_SIGNATURE_ALGORITHMS, SIGNATURE_ALGORITHMS } from '../protocol/key-types.js';
import { isCompressionAlgorithm } from '../protocol/compression.js';

export const DEFAULT_KEX = [
  // Post-quantum hybrids first, as OpenSSH 10 orders them; algorithmLists keeps them only when
  // the crypto provider has the KEM (the native or WASM core, not node:crypto).
  'mlkem768x25519-sha256',
  'sntrup761x25519-sha512',
  'sntrup761x25519-sha512@openssh.com',
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
];
/** SSHPublicKeyAlgorithms' default: the non-legacy host key algorithms of ./protocol/key-types.ts. */
export const DEFAULT_HOST_KEY: readonly string[] = DEFAULT_HOST_KEY_ALGORITHMS;
export const DEFAULT_CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'];
export const DEFAULT_MACS = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  // Only offered when the provider has UMAC (the Rust core); algorithmLists() drops the rest.
  'umac-64-etm@openssh.com',
  'umac-128-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
  'hmac-sha1',
];
export const DEFAULT_PUBKEY_SIG_ALGS: readonly string[] = DEFAULT_PUBKEY_SIGNATURE_ALGORITHMS;

export const CLIENT_VERSION = 'SSH-2.0-revtun_0.1';

type Kind = 'bool' | 'int' | 'string' | 'list';

interface SettingSpec {
  kind: Kind;
  default: boolean | number | string;
  min?: number;
  max?: number;
  /** Values the setting accepts, for string settings with a fixed set. */
  choices?: string[];
  /** Values the setting accepts, for int settings with a fixed set. */
  intChoices?: number[];
  /** Throws SshError 10022 for a value the setting cannot use. */
  check?: (text: string) => void;
}

/** Writable settings, by canonical name. */
export const SETTINGS: Record<string, SettingSpec> = {
  DefaultChannelIdleTimeout: { kind: 'int', default: 0, min: 0 },
  ForwardingLocalHost: { kind: 'string', default: '' },
  ClientSSHVersionString: { kind: 'string', default: CLIENT_VERSION },
  DoNotRepeatAuthMethods: { kind: 'bool', default: true },
  KeyRenegotiationThreshold: { kind: 'int', default: 1024 * 1024 * 1024, min: 16 * 1024 },
  LogLevel: { kind: 'int', default: 1, min: 0, max: 3 },
  MaxPacketSize: { kind: 'int', default: 32768, min: 1024, max: 256 * 1024 },
  MaxWindowSize: { kind: 'int', default: 2 * 1024 * 1024, min: 32768, max: 0x7fffffff },
  PasswordPrompt: { kind: 'string', default: '' },
  PreferredDHGroupBits: { kind: 'int', default: 3072, min: 2048, max: 8192 },
  SSHAcceptAnyServerHostKey: { kind: 'bool', default: false },
  /**
   * CA public key lines (one per line or comma-separated): host certificates they signed are
   * trusted; and PEM CA certificates: X.509 host keys whose chain leads to one are trusted.
   */
  SSHAcceptServerCAKey: {
    kind: 'string',
    default: '',
    check: (text) => {
      parseCaKeys(text);
      parseCaCertificates(text);
    },
  },
  SSHAcceptServerHostKeyFingerPrint: { kind: 'string', default: '' },
  SSHFingerprintHashAlgorithm: { kind: 'string', default: 'SHA256', choices: ['MD5', 'SHA1', 'SHA256'] },
  SSHKeepAliveCountMax: { kind: 'int', default: 5, min: 0 },
  // A dead link is noticed within interval × (count + 1): 3 minutes by default.
  SSHKeepAliveInterval: { kind: 'int', default: 30, min: 0 },
  SSHKeyExchangeAlgorithms: { kind: 'list', default: DEFAULT_KEX.join(',') },
  SSHMacAlgorithms: { kind: 'list', default: DEFAULT_MACS.join(',') },
  SSHPubKeyAuthSigAlgorithms: { kind: 'list', default: DEFAULT_PUBKEY_SIG_ALGS.join(',') },
  SSHPublicKeyAlgorithms: { kind: 'list', default: DEFAULT_HOST_KEY.join(',') },
  SSHVersionPattern: { kind: 'string', default: '*SSH-1.99-*,*SSH-2.0-*' },
  TryAllAvailableAuthMethods: { kind: 'bool', default: false },
  UseStrictKeyExchange: { kind: 'int', default: 1, min: 0, max: 3 },
  WaitForChannelClose: { kind: 'bool', default: true },
  WaitForServerDisconnect: { kind: 'bool', default: false },
  ConnectionTimeout: { kind: 'int', default: 0, min: 0 },
  /** False: timeouts are inactivity timeouts (extended whenever bytes move); True: fixed deadlines. */
  AbsoluteTimeout: { kind: 'bool', default: false },
  // SO_KEEPALIVE, as OpenSSH sets it (TCPKeepAlive yes): the kernel's probes notice a peer gone for good.
  TCPKeepAlive: { kind: 'bool', default: true },
  // At most what TCP_KEEPIDLE takes (32 767 s): above it libuv's setsockopt fails and Node ignores the failure.
  KeepAliveTime: { kind: 'int', default: 0, min: 0, max: 32_767_000 },
  // Socket options the native addon sets (./socket-settings.ts): 0 leaves the system's value.
  /** TCP_KEEPINTVL, ms (the kernel keeps whole seconds, at most 32767). */
  KeepAliveInterval: { kind: 'int', default: 0, min: 0, max: 32_767_000 },
  /** False: the connection is reset at close (resetAndDestroy, ../net/close.ts). */
  Linger: { kind: 'bool', default: true },
  /** Seconds an orderly close may take before revtun resets the connection (../net/close.ts); 0: no bound of revtun's. */
  LingerTime: { kind: 'int', default: 0, min: 0, max: 65_535 },
  /** SO_RCVBUF, bytes; reads back as the kernel's effective size once connected. */
  InBufferSize: { kind: 'int', default: 0, min: 0, max: 0x7fffffff },
  /** SO_SNDBUF, bytes; as InBufferSize. */
  OutBufferSize: { kind: 'int', default: 0, min: 0, max: 0x7fffffff },
  /** Bytes per second each way through the SSH connection (../net/rate-limit.ts); 0: no limit. */
  MaxTransferRate: { kind: 'int', default: 0, min: 0, max: 0x7fffffff },
  /**
   * Where forwarded bytes are moved (../net/data-plane.ts): 'native' (the default), the addon's
   * relay thread once the connection is logged on, where the connection allows it (else the
   * log says why not and Node's event loop carries it); 'js', Node's event loop always.
   * The environment's REVTUN_DATA_PLANE overrides it.
   */
  DataPlane: { kind: 'string', default: 'native', choices: ['native', 'js'] },
  TcpNoDelay: { kind: 'bool', default: true },
  UseIPv6: { kind: 'int', default: 0, min: 0, max: 2 },
  MaskSensitiveData: { kind: 'bool', default: true },
  AutoReconnect: { kind: 'int', default: 1, min: 0, max: 2 },
  /** Attempts per outage; 0 = no limit. */
  MaxRetryCount: { kind: 'int', default: 0, min: 0 },
  RetryInterval: { kind: 'int', default: 5, min: 0 },
  // Proxies (ts/net/proxy.ts). FirewallType: 0 none, 1 HTTP tunneling proxy, 2 SOCKS4, 3 SOCKS5, 10 SOCKS4A.
  FirewallType: { kind: 'int', default: 0, intChoices: [0, 1, 2, 3, 10] },
  FirewallHost: { kind: 'string', default: '' },
  /** 0: the type's default (80 or 1080); setting FirewallType sets it, as documented. */
  FirewallPort: { kind: 'int', default: 0, min: 0, max: 65535 },
  FirewallUser: { kind: 'string', default: '' },
  FirewallPassword: { kind: 'string', default: '' },
  FirewallData: { kind: 'string', default: '' },
  /** Take the proxy from https_proxy / all_proxy / no_proxy when no FirewallType is set. */
  FirewallAutoDetect: { kind: 'bool', default: false },
  ProxyExceptionsList: { kind: 'string', default: '' },
  /** The OpenSSH user certificate of the sshCert* key: a certificate line or a -cert.pub file path. */
  SignedSSHCert: { kind: 'string', default: '' },
  /** Keys from ssh-agent (SSH_AUTH_SOCK; Pageant's role here): 0 no, 1 when available, 2 only those. */
  EnablePageantAuth: { kind: 'int', default: 0, min: 0, max: 2 },
  /** Event mode: fixed-length sshChannelData records for channels without a ChannelDataEOL; 0 = off. */
  RecordLength: { kind: 'int', default: 0, min: 0, max: MAX_RECORD_LENGTH },
  /** Event mode: the longest record of a channel with a ChannelDataEOL and no MaxChannelDataLength. */
  MaxLineLength: { kind: 'int', default: 2048, min: 256, max: MAX_RECORD_LENGTH },
  /** How sendChannelData(string) and ChannelDataEOL become bytes (./code-page.ts); SSH's own strings stay UTF-8. */
  CodePage: { kind: 'int', default: 65001, min: 1, check: (text) => void encoderFor(Number(text)) },
  /** node:crypto in FIPS mode (process-wide, as documented); refused where the runtime's OpenSSL has no FIPS provider. */
  UseFIPSCompliantAPI: { kind: 'bool', default: false },
  /** True: the Rust core (native, else WASM) does the packet crypto; False: node:crypto (the system's OpenSSL). */
  UseInternalSecurityAPI: { kind: 'bool', default: true },
  /** revtun has no event loop of its own (the runtime's runs everything), so there are no idle events to turn off. */
  ProcessIdleEvents: { kind: 'bool', default: true },
  /** How long doEvents() waits when no event was ready. */
  SelectWaitMillis: { kind: 'int', default: 20, min: 0, max: 60_000 },
  // GSSAPI (sshAuthMode 5 and 6; ../crypto/gssapi.ts says how they name the server).
  KerberosDelegation: { kind: 'bool', default: true },
  KerberosRealm: { kind: 'string', default: '' },
  KerberosSPN: { kind: 'string', default: '' },
};

/**
 * Documented settings this version does not implement yet. Naming one is an error rather
 * than a silent no-op, so a program never believes it got behaviour it did not.
 */
export const NOT_YET: string[] = [];

/** Settings answered from live state; setting them is an error. */
export const READ_ONLY = ['ForwardedPort', 'NegotiatedStrictKex', 'ServerSSHVersionString', 'SSHFingerprintMD5', 'SSHFingerprintSHA1', 'SSHFingerprintSHA256', 'BuildInfo', 'LicenseInfo'];

/** Settings that are the same values as properties (localHost, localPort), read and set through them. */
export const PROPERTY_SETTINGS = ['LocalHost', 'LocalPort'];

const byLowerName = new Map<string, string>([...Object.keys(SETTINGS), ...READ_ONLY, ...PROPERTY_SETTINGS].map((name) => [name.toLowerCase(), name]));
const notYetByLowerName = new Map<string, string>(NOT_YET.map((name) => [name.toLowerCase(), name]));

/** The documented spelling of a setting name, or undefined; throws for names not implemented yet. */
export function canonicalSettingName(name: string): string | undefined {
  const key = name
    .trim()
    .replace(/\[.*\]$/, '')
    .toLowerCase();
  const unsupported = notYetByLowerName.get(key);
  if (unsupported) throw new SshError(Code.BadArgument, `the ${unsupported} setting is not implemented in this version of revtun`, 'local');
  return byLowerName.get(key);
}

export function parseBool(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new SshError(Code.BadArgument, `"${text}" is not a boolean (use True/False, 1/0 or Yes/No)`, 'local');
}

export function parseSettingValue(name: string, text: string): boolean | number | string {
  const spec = SETTINGS[name]!;
  switch (spec.kind) {
    case 'bool':
      return parseBool(text);
    case 'int': {
      const t = text.trim();
      const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : /^-?\d+$/.test(t) ? Number(t) : NaN;
      if (!Number.isSafeInteger(n)) throw new SshError(Code.BadArgument, `${name}: "${text}" is not a whole number`, 'local');
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new SshError(Code.BadArgument, `${name}: ${n} is outside ${spec.min ?? '-inf'}..${spec.max ?? 'inf'}`, 'local');
      }
      if (spec.intChoices && !spec.intChoices.includes(n)) throw new SshError(Code.BadArgument, `${name}: ${n} is not one of ${spec.intChoices.join(', ')}`, 'local');
      spec.check?.(String(n));
      return n;
    }
    case 'list':
      return splitList(text).join(',');
    case 'string': {
      spec.check?.(text);
      if (spec.choices) {
        const match = spec.choices.find((c) => c.toLowerCase() === text.trim().toLowerCase());
        if (!match) throw new SshError(Code.BadArgument, `${name}: "${text}" is not one of ${spec.choices.join(', ')}`, 'local');
        return match;
      }
      return text;
    }
  }
}

export function formatSettingValue(value: boolean | number | string): string {
  return typeof value === 'boolean' ? (value ? 'True' : 'False') : String(value);
}

export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Glob match for SSHVersionPattern: `*` any run, `?` one character. */
export function matchesVersionPattern(patterns: string, version: string): boolean {
  return splitList(patterns).some((p) => {
    const re =
      '^' +
      p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$';
    return new RegExp(re).test(version);
  });
}

/**
 * Every host key algorithm the client can verify: the signature algorithms, their certificate
 * forms, the X.509 ones, and the "null" host key of a GSSAPI key exchange (RFC 4462 §5).
 */
const HOST_KEY_ALGORITHMS = new Set([...SIGNATURE_ALGORITHMS.map((spec) => spec.name), ...Object.keys(CERTIFICATE_ALGORITHMS), ...X509_ALGORITHMS.map((spec) => spec.name), NULL_HOST_KEY]);

/**
 * The host key list with the certificate form of each plain algorithm put first, as ssh
 * orders its list when known_hosts has a @cert-authority line for the host: used when the
 * application trusts a CA (SSHAcceptServerCAKey), so that a server with a host certificate
 * presents it rather than its plain key. Names already in the list keep their place.
 */
export function preferCertificateAlgorithms(hostKeyAlgorithms: string): string {
  const names = splitList(hostKeyAlgorithms);
  const certificates = names.map(certificateAlgorithmFor).filter((n): n is string => n !== undefined && !names.includes(n));
  return [...new Set([...certificates, ...names])].join(',');
}

/**
 * The host key list with X.509 algorithms (RFC 6187) put first: used when the application
 * trusts a CA certificate (a PEM certificate in SSHAcceptServerCAKey), so that a server with an
 * X.509 host certificate presents it. Each non-legacy X.509 algorithm whose key type the list
 * has a plain algorithm for comes in (x509v3-ssh-dss only when listed); a list that already
 * names an X.509 algorithm is the user's choice and stays as it is.
 */
export function preferX509Algorithms(hostKeyAlgorithms: string): string {
  const names = splitList(hostKeyAlgorithms);
  if (names.some(isX509Algorithm)) return names.join(',');
  const keyTypes = new Set(names.map(keyTypeForAlgorithm));
  const x509 = DEFAULT_X509_ALGORITHMS.filter((name) => keyTypes.has(x509AlgorithmSpec(name)!.keyType));
  return [...x509, ...names].join(',');
}

/** The default cipher list with the provider's fast ciphers first; any other list unchanged. */
function preferFast(provider: CryptoProvider, ciphers: string): string {
  const fast = provider.fastCiphers ?? [];
  if (ciphers !== DEFAULT_CIPHERS.join(',') || fast.length === 0) return ciphers;
  return [...fast.filter((c) => DEFAULT_CIPHERS.includes(c)), ...DEFAULT_CIPHERS.filter((c) => !fast.includes(c))].join(',');
}

/**
 * The negotiation lists from the user's comma-separated settings, keeping only what the
 * provider and the protocol implement. A list left empty is error 1005.
 */
export function algorithmLists(provider: CryptoProvider, lists: { kex: string; hostKey: string; cipher: string; mac: string; compression: string }): AlgorithmLists {
  const usable = (text: string, have: (name: string) => boolean, what: string) => {
    const names = splitList(text);
    const kept = names.filter(have);
    if (kept.length === 0) {
      throw new SshError(Code.UnsupportedAlgorithm, `none of the ${what} algorithms (${names.join(',')}) is supported`, 'local');
    }
    return kept;
  };
  return {
    kex: usable(lists.kex, (n) => (n in KEX_METHODS && (!isHybridKex(n) || hybridKexAvailable(provider, n))) || isGssKex(n), 'key exchange'),
    hostKey: usable(lists.hostKey, (n) => HOST_KEY_ALGORITHMS.has(n), 'host key'),
    cipher: usable(preferFast(provider, lists.cipher), (n) => provider.ciphers.has(n), 'encryption'),
    mac: usable(lists.mac, (n) => provider.macs.has(n), 'MAC'),
    compression: usable(lists.compression || 'none', isCompressionAlgorithm, 'compression'),
  };
}
