// SSHReverseTunnel: the documented component as an idiomatic TypeScript class. It holds the
// properties and settings, the forwardings the application requested (which outlive any one
// connection), and the current Session (one SSH connection). When a connection that was up is
// lost, it reconnects as AutoReconnect, MaxRetryCount and RetryInterval say and asks for every
// forwarding again on the same remote port.

import type { ClientOptions, HostKeyInfo, HostKeyVerdict } from '../protocol/client.js';
import { hostname } from 'node:os';
import { SshError, Code, asSshError, type ErrorCode } from '../protocol/errors.js';
import { CHANNEL_HIGH_WATER } from '../protocol/channels.js';
import { equalBytes, toHex } from '../protocol/wire.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { defaultCryptoProvider, defaultCryptoProviderReason, describeCryptoProvider, fipsMode, loadCryptoProvider, setFipsMode } from '../crypto/select.js';
import { Socket } from 'node:net';
import { connectSocket, type OpenedSocket } from '../net/connect.js';
import { readSocketOptions, type SocketOptionValues } from '../net/socket-options.js';
import { applyAtConnect, applyLive, checkSocketSetting, effectiveBufferSize, SOCKET_SETTINGS, socketOptionSettings } from './socket-settings.js';
import { expandProxyCommand } from '../net/proxy-command.js';
import { defaultFirewallPort, describeProxy, isProxyException, parseProxyUrl, proxyFromEnvironment, proxyFromSettings, type ProxySpec } from '../net/proxy.js';
import { decodePacket, encodePacket, getSshParam, getSshParamBytes, setSshParam } from './ssh-params.js';
import { TrafficTotals, type ChannelByteTotals } from './traffic.js';
import { TypedEmitter, TUNNEL_EVENT_NAMES, type CustomAuthEvent, type TunnelEvents, type ServerAuthenticationEvent, type TunnelStateEvent } from './events.js';
import {
  SETTINGS,
  algorithmLists,
  canonicalSettingName,
  formatSettingValue,
  matchesVersionPattern,
  parseSettingValue,
  splitList,
  preferCertificateAlgorithms,
  preferX509Algorithms,
  DEFAULT_CIPHERS,
} from './settings.js';
import { GSS_KEX_ALGORITHMS, isGssKex, NULL_HOST_KEY } from '../protocol/kex-gss.js';
import { withoutUnusableGssKex } from '../crypto/gssapi.js';
import { authOptionsFor, SshAuthMode, SshCertStoreType, type Credentials, type SshAuthModeValue, type SshCertStoreTypeValue, type SshIdentity } from './credentials.js';
import { checkIdentity } from './identities.js';
import { describeHop, hopCaKeys, hopKeyRefusal, judgeHopCertificate, openJumpChain, type JumpHost, type PreparedHop } from './jump.js';
import { agentKeys, agentPath, type AgentKeys } from './agent-keys.js';
import { realScheduler, withDeadline, type TunnelScheduler } from './timing.js';
import { ChannelRecords } from './chunker.js';
import { Session, type RequestedForwarding } from './session.js';
import { EventTranslator, type TranslatorHost } from './translate.js';
import { isFinal, AutoReconnect } from './reconnect.js';
import { Reconnector, type ReconnectorHost } from './supervisor.js';
import { certificateSubjectAndIssuer, hostKeyMatches, judgeHostCertificate, judgeX509HostKey, parseCaCertificates, parseCaKeys } from './hostkeys.js';
import { checkForwarding, describeForwarding } from './forward-request.js';
import { CertificateSlot, type ResolvedCertificate } from './certificate-slot.js';
import { encoderFor } from './code-page.js';
import { describeHostKey, type CertificateInfo } from './certificate-info.js';
import { installCertificateProperties, type CertificateProperties } from './certificate-properties.js';
import { installFirewallProperties, type FirewallProperties } from './firewall-properties.js';
import { socksLimits, type DynamicForwardingOptions } from './socks-forward.js';
import { keySources, UnlockedKeys } from './unlocked-keys.js';

export { SshAuthMode, SshCertStoreType, type SshAuthModeValue, type SshCertStoreTypeValue, type SshIdentity };

export { realScheduler, type TunnelScheduler };

type Lifecycle = 'idle' | 'logon' | 'up' | 'reconnecting' | 'loggingOff';

/** One entry of the documented channel list. */
export interface SshChannelInfo {
  channelId: number;
  bytesSent: number;
  connectedAddress: string;
  connectedPort: number;
  forwardingHost: string;
  forwardingPort: number;
  originAddress: string;
  originPort: number;
  service: string;
  /**
   * Bytes revtun itself holds for this channel: queued for the server plus written to the
   * local target but not yet taken by it. Bounded by flow control in both directions.
   */
  bufferedBytes: number;
}

const VERSION = '0.1.0';

/** An encoded certificate as the *Encoded properties read it back: text as given, bytes as base64. */
function encodedText(value: string | Uint8Array): string {
  return typeof value === 'string' ? value : Buffer.from(value).toString('base64');
}

/** The JavaScript runtime and its version (Bun and Deno also report a Node compatibility version). */
function runtimeVersion(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions['bun']) return `bun ${versions['bun']}`;
  if (versions['deno']) return `deno ${versions['deno']}`;
  return `node ${versions['node']}`;
}

/**
 * An SSH reverse tunnel (`ssh -R`): connects and logs on to an SSH server, asks it to listen on
 * remote ports, and forwards each connection it accepts to a local address. The documented
 * properties, methods and events of the API specification; see the README for the quick start.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface merged in at the end of this file declares only getters installed on the prototype there
export class SSHReverseTunnel extends TypedEmitter<TunnelEvents> {
  // ---- documented properties ----
  /** The SSH server's name or address. Changing it during a connection fails with 101. */
  get sshHost(): string {
    return this.host;
  }
  set sshHost(value: string) {
    this.refuseWhileConnected(Code.CannotChangeHost, 'sshHost');
    this.host = value;
  }
  /** The SSH server's port. Changing it during a connection fails with 100; 0 fails with 116. */
  get sshPort(): number {
    return this.port;
  }
  set sshPort(value: number) {
    this.refuseWhileConnected(Code.CannotChangePort, 'sshPort');
    if (value === 0) throw new SshError(Code.PortZero, 'sshPort cannot be 0: give the port the SSH server listens on', 'local');
    this.port = value;
  }
  sshUser = '';
  sshPassword = '';
  sshAuthMode: SshAuthModeValue = SshAuthMode.Password;
  /**
   * How sshCertStore is read: every documented value is either read (PFX 2/3, PEM and OpenSSH
   * 6/7, PPK 14/15, XML 16/17, JWK 18/19, Auto 99) or refused at sshLogon with 10022 saying why
   * (./cert-store.ts).
   */
  sshCertStoreType: SshCertStoreTypeValue = SshCertStoreType.Auto;
  /**
   * Where the client key comes from: a key file path, or the store's content (key text, a
   * JWK, a PFX as bytes or base64). A key file of yours that group or others may access is
   * refused at sshLogon with error 10013, as OpenSSH refuses it; content is never quoted in an error.
   */
  sshCertStore: string | Uint8Array = '';
  /** The passphrase of an encrypted key, or the password of a PFX. */
  sshCertStorePassword = '';
  /**
   * Which key of a store that holds several: the certificate subject in a PFX (exact, else
   * contained; `*` or empty: the first), the `kid` in a JWK Set. Ignored by single-key stores.
   * Reads back the full subject of the certificate it selected ("" when none matched), as
   * documented; for a store without certificates, what was set.
   */
  get sshCertSubject(): string {
    return this.clientCertificate().subject;
  }
  set sshCertSubject(value: string) {
    this.requestedCertSubject = value;
  }
  /**
   * A certificate or public key (PEM, DER or base64; an OpenSSH public key or certificate line)
   * that selects the sshCertStore key it belongs to; without a store, it is only described.
   * Reads back the selected certificate (or key blob) as base64, however it was selected.
   */
  get sshCertEncoded(): string {
    return this.clientCertificate().info.encoded || encodedText(this.requestedCertEncoded);
  }
  set sshCertEncoded(value: string | Uint8Array) {
    this.requestedCertEncoded = value;
  }
  /**
   * A revtun shorthand for a trusted server key: an OpenSSH public key line, a base64 key
   * blob, or a fingerprint (SHA256:…, MD5 or SHA1 hex). The documented certificate-shaped form
   * is sshAcceptServerHostKeyEncoded / sshAcceptServerHostKeyStore; either trusts the key.
   */
  sshAcceptServerHostKey = '';
  /**
   * The server key to accept, in any form sshCertEncoded takes (an X.509 certificate's key, an
   * OpenSSH public key line, an RFC 4716 file's text…). With a store, it selects within it.
   */
  get sshAcceptServerHostKeyEncoded(): string {
    return this.hostKeyCertificate().info.encoded || encodedText(this.requestedHostKeyEncoded);
  }
  set sshAcceptServerHostKeyEncoded(value: string | Uint8Array) {
    this.requestedHostKeyEncoded = value;
  }
  /**
   * A store holding the server key to accept: a public key or certificate file or blob
   * (PublicKeyFile 8 … SSHPublicKeyFile 13), or any store sshCertStore takes, whose public half is used.
   */
  sshAcceptServerHostKeyStore: string | Uint8Array = '';
  sshAcceptServerHostKeyStoreType: SshCertStoreTypeValue = SshCertStoreType.Auto;
  sshAcceptServerHostKeyStorePassword = '';
  /** Selects within a store of several certificates, as sshCertSubject does; reads back the match. */
  get sshAcceptServerHostKeySubject(): string {
    return this.hostKeyCertificate().subject;
  }
  set sshAcceptServerHostKeySubject(value: string) {
    this.requestedHostKeySubject = value;
  }
  sshEncryptionAlgorithms = DEFAULT_CIPHERS.join(',');
  /** Offered, not preferred: "none" first, so zlib is used only with a server that insists (see README). */
  sshCompressionAlgorithms = 'none,zlib';
  /** Seconds each method may take (0 = no deadline). */
  timeout = 60;
  /**
   * A revtun extension: asked for the password the first time authentication needs one while
   * sshPassword is empty (after a refused key, say). Return undefined to skip password methods,
   * or a Promise of the answer (a prompt); authentication waits for it.
   */
  passwordProvider: (() => string | undefined | Promise<string | undefined>) | null = null;

  /**
   * A revtun extension: more client keys for publickey authentication, tried after the
   * sshCert* key (the first identity, when sshCertStore is set) in this order within one
   * connection, as ssh tries several identity files: each is offered, and only the one the
   * server accepts signs. Every key file is read at sshLogon; a passphrase given as a function
   * is asked only when its key is about to sign. Each offer counts against the server's limit
   * of attempts (OpenSSH's MaxAuthTries, 6 by default); reaching it fails with 1032.
   * Used when SSHAuthMode is PublicKey or MultiFactor (or with TryAllAvailableAuthMethods).
   */
  identities: SshIdentity[] = [];

  /**
   * A revtun extension: a proxy URL (http://, socks4://, socks4a://, socks5://, socks5h://, with
   * optional user:password@) used instead of the Firewall* settings. Empty: those settings decide.
   */
  proxy = '';

  /**
   * A revtun extension, ssh's ProxyCommand: a shell command whose standard input and output
   * carry the connection, with %h, %p, %r, %n and %% expanded at each connection (reconnects
   * run it again). Empty or "none": connect directly (or through the proxy settings).
   */
  proxyCommand = '';

  /**
   * A revtun extension, ssh's ProxyJump: the server is reached through these SSH servers in
   * order, each connection carried in a direct-tcpip channel of the one before. Each hop has
   * its own host key check (refused unless its hostKey or verifyHostKey accepts it, or
   * SSHAcceptAnyServerHostKey is set) and credentials (by default the tunnel's own, under the
   * hop's user). The proxy settings and ProxyCommand, if any, reach the first hop. Reconnects
   * run the whole chain again.
   */
  jumpHosts: JumpHost[] = [];

  /**
   * A revtun extension: offer the keys of an ssh-agent before the key files (true: the agent
   * at SSH_AUTH_SOCK; a string: the agent's socket path). The agent signs; nothing of the key
   * leaves it. EnablePageantAuth=1 does the same as true; EnablePageantAuth=2 offers only the
   * agent's keys and fails the logon when no agent answers.
   */
  agent: boolean | string = false;

  /**
   * A revtun extension, ssh's IdentitiesOnly: of the agent's keys, offer only those that are
   * also given as key files (sshCertStore, identities) here.
   */
  identitiesOnly = false;

  /**
   * A revtun extension, ssh's GSSAPIAuthentication (withMic) and GSSAPIKeyExchange
   * (keyExchange): in the modes other than 5 and 6, try Kerberos first, and offer the GSSAPI
   * key exchanges; passed over where GSSAPI cannot be had. The Kerberos* settings apply.
   */
  alsoGssapi: { withMic: boolean; keyExchange: boolean } = { withMic: false, keyExchange: false };

  /**
   * The crypto backend. Unless one is set, the automatic provider, which runs each negotiated
   * cipher and MAC on the fastest of the native core, the WASM core and node:crypto that loaded,
   * or the one REVTUN_CRYPTO names (see loadCryptoProvider()).
   */
  get cryptoProvider(): CryptoProvider {
    if (!this.chosenProvider) {
      // UseInternalSecurityAPI=False, or FIPS mode, asks for the system's OpenSSL rather than revtun's own core.
      const system = !this.setting<boolean>('UseInternalSecurityAPI') || fipsMode();
      this.chosenProvider = system ? loadCryptoProvider('node') : defaultCryptoProvider();
      this.providerIsDefault = true;
      this.providerReason = system ? { reason: fipsMode() ? 'FIPS mode' : 'UseInternalSecurityAPI=False', fellBack: false } : defaultCryptoProviderReason();
    }
    return this.chosenProvider;
  }

  set cryptoProvider(provider: CryptoProvider) {
    this.chosenProvider = provider;
    this.providerIsDefault = false;
    this.providerReason = { reason: 'set through cryptoProvider', fellBack: false };
  }
  private chosenProvider: CryptoProvider | null = null;
  private providerIsDefault = false;
  /** Why chosenProvider is the one in use, for its log line (reason '' when it was simply the first that loaded). */
  private providerReason = { reason: '', fellBack: false };

  private host = '';
  private port = 22;
  private requestedLocalHost = '';
  private requestedCertSubject = '';
  private requestedHostKeySubject = '';
  private requestedCertEncoded: string | Uint8Array = '';
  private requestedHostKeyEncoded: string | Uint8Array = '';
  private readonly clientCertificateSlot = new CertificateSlot({ encoded: 'sshCertEncoded', subject: 'sshCertSubject', store: 'sshCertStore', publicFirst: false });
  private readonly hostKeySlot = new CertificateSlot({
    encoded: 'sshAcceptServerHostKeyEncoded',
    subject: 'sshAcceptServerHostKeySubject',
    store: 'sshAcceptServerHostKeyStore',
    publicFirst: true,
  });
  /** The server key this logon accepted, described for the sshAcceptServerHostKey* properties. */
  private acceptedHostKey: CertificateInfo | null = null;
  /** Whether the connection being set up showed a host key (a GSSAPI key exchange may show none). */
  private hostKeyChecked = false;
  private requestedLocalPort = 0;
  private settings = new Map<string, boolean | number | string>();
  /** The current SSH connection (null between connections). */
  private session: Session | null = null;
  /** The TCP socket the current connection runs over (the first jump host's with jump hosts), if it has one. */
  private tcpSocket: Socket | null = null;
  /** Aborts a connection attempt under way (logoff, reset, a timeout). */
  private connectAbort: AbortController | null = null;
  private lifecycle: Lifecycle = 'idle';
  /** The forwardings the application asked for, in order; asked for again on every reconnect. */
  private readonly requested: RequestedForwarding[] = [];
  private readonly reconnector: Reconnector;
  /** When the current session logged on (scheduler time). */
  private sessionSince = 0;
  /** The host key the first connection of this logon accepted: a reconnect must see it again. */
  private trustedHostKey: Uint8Array | null = null;
  /** The same for each jump host, by its place in jumpHosts. */
  private readonly trustedJumpKeys = new Map<number, Uint8Array>();
  private readonly records = new ChannelRecords({
    recordLength: () => this.setting<number>('RecordLength'),
    maxLineLength: () => this.setting<number>('MaxLineLength'),
    encoder: () => encoderFor(this.setting<number>('CodePage')),
  });
  private readonly translatorHost: TranslatorHost;
  private readonly traffic = new TrafficTotals();
  private lastHostKey: HostKeyInfo | null = null;
  private forwardedPort = 0;
  /** Clock and timers (see TunnelScheduler). */
  scheduler: TunnelScheduler = realScheduler;
  /** The encrypted keys this logon has decrypted: its reconnects sign without deriving again. */
  private readonly unlockedKeys = new UnlockedKeys((level, message) => this.log(level, message));

  constructor() {
    super(TUNNEL_EVENT_NAMES);
    this.resetSettings();
    this.reconnector = new Reconnector(this.reconnectorHost());
    this.translatorHost = {
      emit: (event, ...args) => this.emit(event, ...args),
      log: (level, message) => this.log(level, message),
      forwardingLocalHost: () => this.setting<string>('ForwardingLocalHost'),
      scheduler: () => this.scheduler,
      records: this.records,
      delivering: null,
      keepAliveRoundTripMs: null,
    };
    // An assignment to a property the class does not have (a typo such as `tunnel.sshhost`)
    // throws a TypeError in strict code (every ES module) instead of creating a field nobody
    // reads. Subclasses may add their own fields, so only a plain instance is closed.
    if (new.target === SSHReverseTunnel) Object.preventExtensions(this);
  }

  private resetSettings(): void {
    this.settings = new Map(Object.entries(SETTINGS).map(([name, spec]) => [name, spec.default]));
  }

  /** DataPlane, unless REVTUN_DATA_PLANE (native or js) forces one for the process (tests, benchmarks). */
  private dataPlane(): 'native' | 'js' {
    const forced = process.env['REVTUN_DATA_PLANE']?.trim().toLowerCase();
    if (forced === 'native' || forced === 'js') return forced;
    return this.setting<string>('DataPlane') === 'native' ? 'native' : 'js';
  }

  private setting<T extends boolean | number | string>(name: string): T {
    return this.settings.get(name) as T;
  }

  /** @internal A setting's parsed value, unmasked (for the firewall properties). */
  settingValue<T extends boolean | number | string>(name: string): T {
    return this.setting<T>(name);
  }

  /**
   * The local address the SSH connection binds to. While connected it reads back the address
   * in use; setting it only affects the next logon.
   */
  get localHost(): string {
    if (this.connected && this.session!.socket.localAddress) return this.session!.socket.localAddress;
    // As documented, the machine's name (gethostname) until an address is set; only a set one binds.
    return this.requestedLocalHost || hostname();
  }
  set localHost(value: string) {
    this.refuseWhileConnected(Code.CannotChangeLocalHost, 'localHost');
    this.requestedLocalHost = value;
  }

  /** The local port to bind (0 = any). While connected it reads back the port in use. */
  get localPort(): number {
    return this.connected && this.session!.socket.localPort ? this.session!.socket.localPort : this.requestedLocalPort;
  }
  set localPort(value: number) {
    this.refuseWhileConnected(Code.CannotChangeLocalPort, 'localPort');
    this.requestedLocalPort = value;
  }

  /**
   * The connection's endpoints are fixed while a logon, a connection or a reconnect is under
   * way (as documented, with the property's own code); sshLogoff or reset() frees them.
   */
  private refuseWhileConnected(code: ErrorCode, property: string): void {
    if (this.lifecycle === 'idle') return;
    throw new SshError(code, `${property} cannot change while a connection is in progress; call sshLogoff first`, 'local');
  }

  // ---- read-only properties ----

  /** Logged on right now (false while reconnecting). */
  get connected(): boolean {
    return this.session?.isLoggedOn ?? false;
  }

  /** The channels open right now (sshChannelCount is its length). */
  get sshChannels(): SshChannelInfo[] {
    const session = this.session;
    if (!session?.isOpen) return [];
    return session.core
      .channelViews()
      .filter((ch) => ch.state === 'open' || ch.state === 'closing')
      .map((ch) => {
        const fwd = session.forwardingOfChannel(ch.localId);
        return {
          channelId: ch.localId,
          bytesSent: ch.bytesSent,
          connectedAddress: ch.connection.connectedAddress,
          connectedPort: ch.connection.connectedPort,
          originAddress: ch.connection.originAddress,
          originPort: ch.connection.originPort,
          forwardingHost: fwd?.forwardingHost ?? '',
          forwardingPort: fwd?.forwardingPort ?? 0,
          service: ch.service,
          bufferedBytes: ch.outgoingBytes + session.localBuffered(ch.localId),
        };
      });
  }

  get sshChannelCount(): number {
    return this.sshChannels.length;
  }

  /** A revtun extension: channel payload bytes each way since the tunnel was made, over every connection. */
  get channelBytes(): ChannelByteTotals {
    return this.traffic.read(this.session?.core ?? null);
  }

  /** A revtun extension: the last keep-alive's round trip in milliseconds (null until one is answered). */
  get keepAliveRoundTripMs(): number | null {
    return this.translatorHost.keepAliveRoundTripMs;
  }

  // ---- packet helpers, for sshCustomAuth handlers (./ssh-params.ts) ----

  /** Hex-encodes a payload (the form sshCustomAuth's `packet` takes). */
  encodePacket(packet: Uint8Array): string {
    return encodePacket(packet);
  }

  /** Decodes a hex-encoded payload (sshCustomAuth's `packet`). */
  decodePacket(encodedPacket: string): Uint8Array {
    return decodePacket(encodedPacket);
  }

  /** Reads a field of a payload by its well-known name, or by a "%type,…" list; the value in setSshParam's text form. */
  getSshParam(payload: Uint8Array, field: string): string {
    return getSshParam(payload, field);
  }

  /** As getSshParam, as raw bytes. */
  getSshParamBytes(payload: Uint8Array, field: string): Uint8Array {
    return getSshParamBytes(payload, field);
  }

  /** Appends a field (type s, sb, m, i, l, b or f, value as text) to a payload; returns the new payload. */
  setSshParam(payload: Uint8Array, fieldType: string, fieldValue: string): Uint8Array {
    return setSshParam(payload, fieldType, fieldValue);
  }

  // ---- config ----

  /** Sets (`'Name=Value'`) or reads (`'Name'`) a documented configuration setting. */
  config(setting: string): string {
    const eq = setting.indexOf('=');
    const rawName = eq >= 0 ? setting.slice(0, eq) : setting;
    const perChannel = /^\s*(ChannelDataEOL|MaxChannelDataLength|ChannelDataEOLFound)\[(\d+)\]\s*$/i.exec(rawName);
    if (perChannel) {
      const name = perChannel[1]!.toLowerCase();
      const value = eq >= 0 ? setting.slice(eq + 1) : null;
      if (name === 'channeldataeolfound') {
        if (value !== null) throw new SshError(Code.BadArgument, 'ChannelDataEOLFound is read-only', 'local');
        // Meaningful only inside sshChannelData, and only for the channel being delivered.
        const delivering = this.translatorHost.delivering;
        if (!delivering || delivering.channel !== Number(perChannel[2])) return '';
        return delivering.eolFound ? 'True' : 'False';
      }
      return this.records.configure(name === 'channeldataeol' ? 'ChannelDataEOL' : 'MaxChannelDataLength', Number(perChannel[2]), value);
    }
    const name = canonicalSettingName(rawName);
    if (eq >= 0) {
      const value = setting.slice(eq + 1);
      if (name === 'LocalHost') {
        this.localHost = value.trim();
        return '';
      }
      if (name === 'LocalPort') {
        const port = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
        if (!(port >= 0 && port <= 65535)) throw new SshError(Code.BadArgument, `LocalPort: "${value}" is not a port number (0-65535)`, 'local');
        this.localPort = port;
        return '';
      }
      if (!name || !(name in SETTINGS)) {
        if (name) throw new SshError(Code.BadArgument, `${name} is read-only`, 'local');
        throw new SshError(Code.BadArgument, `unknown setting ${rawName.trim()}`, 'local');
      }
      if (name === 'MaxLineLength' && this.lifecycle !== 'idle') {
        throw new SshError(Code.CannotChangeMaxLineLength, 'MaxLineLength cannot change while a connection is in progress', 'local');
      }
      const parsed = parseSettingValue(name, value);
      checkSocketSetting(name, parsed, SETTINGS[name]!.default);
      if (name === 'UseFIPSCompliantAPI') setFipsMode(parsed as boolean); // process-wide, as documented
      this.settings.set(name, parsed);
      // The crypto backend follows these at the next logon, unless the application chose one.
      if ((name === 'UseInternalSecurityAPI' || name === 'UseFIPSCompliantAPI') && this.providerIsDefault) this.chosenProvider = null;
      if (name === 'MaskSensitiveData' && parsed === false) {
        // No log line of revtun's holds a secret at any LogLevel; what this unmasks is reading FirewallPassword back.
        this.log(1, 'MaskSensitiveData is off: config("FirewallPassword") now reads back the password itself');
      }
      if (name === 'ProcessIdleEvents') this.log(2, 'ProcessIdleEvents: revtun has no event loop of its own (the runtime runs the I/O), so there are no idle events to turn on or off');
      // As documented, choosing a firewall type sets FirewallPort to that type's port.
      if (name === 'FirewallType') this.settings.set('FirewallPort', defaultFirewallPort(this.setting<number>('FirewallType')));
      this.applyLiveSetting(name);
      return '';
    }
    if (!name) {
      if (rawName.trim().toLowerCase() === 'sshkeyrenegotiate') {
        // Starts a re-exchange and returns at once; exchangeKeys() is the awaitable form.
        const started = this.requireSession().run((core) => core.rekey());
        if (!started.ok) throw started.error;
        return '';
      }
      throw new SshError(Code.BadArgument, `unknown setting ${rawName.trim()}`, 'local');
    }
    const core = this.session?.core;
    switch (name) {
      case 'ForwardedPort':
        return String(this.forwardedPort);
      case 'LocalHost':
        return this.localHost;
      case 'LocalPort':
        return String(this.localPort);
      case 'NegotiatedStrictKex':
        return core?.strictKexNegotiated ? 'True' : 'False';
      case 'ServerSSHVersionString':
        return core?.remoteVersion ?? '';
      case 'SSHFingerprintMD5':
        return this.lastHostKey?.fingerprints.md5 ?? '';
      case 'SSHFingerprintSHA1':
        return this.lastHostKey?.fingerprints.sha1 ?? '';
      case 'SSHFingerprintSHA256':
        return this.lastHostKey?.fingerprints.sha256 ?? '';
      case 'LicenseInfo':
        return `revtun ${VERSION}: open source under the MIT License; no license key is needed or read`;
      case 'UseFIPSCompliantAPI':
        return fipsMode() ? 'True' : 'False';
      case 'UseInternalSecurityAPI':
        // What the next logon uses: the Rust core, or node:crypto.
        return this.cryptoProvider.name === 'node' ? 'False' : 'True';
      case 'BuildInfo':
        return `revtun ${VERSION}; crypto provider: ${describeCryptoProvider(this.cryptoProvider)}; ${runtimeVersion()}`;
      case 'InBufferSize':
      case 'OutBufferSize': {
        // Once connected, what the kernel kept (see effectiveBufferSize); before, what was set.
        const effective = this.session?.isOpen ? effectiveBufferSize(name, this.tcpSocket) : null;
        return String(effective ?? this.setting<number>(name));
      }
      case 'FirewallPassword':
        // Readable back like any setting, except that MaskSensitiveData (on by default) hides it.
        return this.setting<boolean>('MaskSensitiveData') && this.setting<string>(name) ? '********' : this.setting<string>(name);
      default:
        return formatSettingValue(this.settings.get(name)!);
    }
  }

  /** Keep-alive and flow-control settings changed while connected apply to the live connection. */
  private applyLiveSetting(name: string): void {
    const session = this.session;
    if (!session?.isOpen) return;
    if (SOCKET_SETTINGS.includes(name)) {
      const options = socketOptionSettings((n) => this.setting(n));
      applyLive(this.tcpSocket, options);
    }
    if (name === 'MaxTransferRate') session.setMaxTransferRate(this.setting<number>('MaxTransferRate'));
    if (name === 'SSHKeepAliveInterval' || name === 'SSHKeepAliveCountMax' || name === 'MaxWindowSize' || name === 'DefaultChannelIdleTimeout') {
      session.run((core) =>
        core.updateSettings({
          keepAliveInterval: this.setting('SSHKeepAliveInterval'),
          keepAliveCountMax: this.setting('SSHKeepAliveCountMax'),
          maxWindow: this.setting('MaxWindowSize'),
          idleTimeout: this.setting('DefaultChannelIdleTimeout'),
        }),
      );
    }
  }

  /**
   * A revtun extension: the SSH connection's TCP socket options as the kernel holds them now
   * (getsockopt through the native addon), or null when not connected over such a socket or
   * without the addon. Times are in seconds, as the kernel keeps them.
   */
  socketOptions(): SocketOptionValues | null {
    return this.session?.isOpen && this.tcpSocket && !this.tcpSocket.destroyed ? readSocketOptions(this.tcpSocket) : null;
  }

  /**
   * A revtun extension: appends a key to `identities` (checked at once: 10022 for a malformed
   * one; its file is read at sshLogon). Returns the tunnel, for chaining.
   */
  addIdentity(identity: SshIdentity): this {
    checkIdentity(identity);
    this.identities.push({ ...identity });
    return this;
  }

  /** Resets every property and setting to its default. Closes an open connection first. */
  reset(): void {
    this.reconnector.stop();
    this.connectAbort?.abort();
    this.session?.abort('reset');
    this.session = null;
    this.requested.length = 0;
    this.lifecycle = 'idle';
    this.sshHost = '';
    this.sshPort = 22;
    this.sshUser = '';
    this.sshPassword = '';
    this.sshAuthMode = SshAuthMode.Password;
    this.sshCertStoreType = SshCertStoreType.Auto;
    this.sshCertStore = '';
    this.sshCertStorePassword = '';
    this.sshCertSubject = '';
    this.sshCertEncoded = '';
    this.sshAcceptServerHostKey = '';
    this.sshAcceptServerHostKeyEncoded = '';
    this.sshAcceptServerHostKeyStore = '';
    this.sshAcceptServerHostKeyStoreType = SshCertStoreType.Auto;
    this.sshAcceptServerHostKeyStorePassword = '';
    this.sshAcceptServerHostKeySubject = '';
    this.clientCertificateSlot.clear();
    this.hostKeySlot.clear();
    this.acceptedHostKey = null;
    this.passwordProvider = null;
    this.identities = [];
    this.proxy = '';
    this.proxyCommand = '';
    this.jumpHosts = [];
    this.agent = false;
    this.identitiesOnly = false;
    this.alsoGssapi = { withMic: false, keyExchange: false };
    this.sshEncryptionAlgorithms = DEFAULT_CIPHERS.join(',');
    this.sshCompressionAlgorithms = 'none,zlib';
    // The crypto backend is chosen again from the (reset) settings, as on a new tunnel.
    this.chosenProvider = null;
    this.providerIsDefault = false;
    this.providerReason = { reason: '', fellBack: false };
    this.timeout = 60;
    this.localHost = '';
    this.localPort = 0;
    this.forwardedPort = 0;
    this.lastHostKey = null;
    this.trustedHostKey = null;
    this.trustedJumpKeys.clear();
    this.records.forgetAll(); // the per-channel ChannelDataEOL / MaxChannelDataLength settings
    this.unlockedKeys.clear();
    this.resetSettings();
  }

  // ---- logon / logoff ----

  /**
   * Connects, exchanges keys, verifies the host key and authenticates. With AutoReconnect 2
   * a failed first logon is retried like a lost connection; errors that no retry can mend
   * (authentication, host key, algorithms, options) fail at once.
   */
  async sshLogon(host?: string, port?: number): Promise<void> {
    if (this.connected) throw new SshError(Code.AlreadyConnected, 'already connected; call sshLogoff first', 'local');
    if (this.lifecycle === 'logon') throw new SshError(Code.AlreadyConnecting, 'already connecting', 'local');
    // A logon replaces whatever a dropped connection left, a reconnect under way included: the
    // endpoints are set directly, past the while-connected guard of their setters, and put
    // back if the options do not check out (a reconnect under way then carries on unchanged).
    // Encrypted keys with a passphrase given are decrypted now, once for this logon, their
    // costly KDF in a worker thread so that other tunnels and timers keep running meanwhile;
    // the checks below then find them decrypted.
    const own = {
      certStore: this.sshCertStore,
      certStoreType: this.sshCertStoreType,
      certStorePassword: this.sshCertStorePassword,
      certSubject: this.requestedCertSubject,
      certKey: this.logonCertKey(),
      identities: this.identities,
    };
    await this.unlockedKeys.unlock(keySources(own, this.jumpHosts));
    const previous = { host: this.host, port: this.port };
    try {
      if (host !== undefined) this.host = host;
      if (port === 0) throw new SshError(Code.PortZero, 'sshPort cannot be 0: give the port the SSH server listens on', 'local');
      if (port !== undefined) this.port = port;
      this.checkLogonOptions();
    } catch (error) {
      this.host = previous.host;
      this.port = previous.port;
      throw error;
    }
    // Whatever a previous, dropped connection left (its forwardings, its socket, a reconnect
    // under way) is void now: the application starts afresh.
    this.reconnector.stop();
    this.connectAbort?.abort();
    this.session?.abort('logging on again');
    this.session = null;
    this.requested.length = 0;
    this.trustedHostKey = null;
    this.acceptedHostKey = null;
    this.trustedJumpKeys.clear();
    this.reconnector.reset();
    this.lifecycle = 'logon';
    try {
      if (this.setting<number>('AutoReconnect') === AutoReconnect.Always) await this.reconnector.logonWithRetries();
      else await this.startSession();
      this.lifecycle = 'up';
      this.emitState({ state: 'up' });
    } catch (error) {
      this.lifecycle = 'idle';
      this.session = null;
      this.unlockedKeys.clear();
      const e = asSshError(error);
      this.emitState({ state: 'closed', error: e });
      throw e;
    }
  }

  /** Everything that can be checked before any network traffic; throws the error for the first problem. */
  private checkLogonOptions(): void {
    if (!this.sshHost) throw new SshError(Code.InvalidAddress, 'sshHost is not set', 'local');
    if (!Number.isInteger(this.sshPort) || this.sshPort < 1 || this.sshPort > 65535) {
      throw new SshError(Code.BadArgument, `sshPort ${this.sshPort} is not a port number (1-65535)`, 'local');
    }
    this.buildCoreOptions(); // credentials, algorithms, settings
    this.checkConfiguredHostKey(); // a server key store that cannot be read
    if (this.setting<number>('FirewallType') !== 0 && !this.setting<string>('FirewallHost') && !this.proxy) {
      throw new SshError(Code.BadArgument, 'FirewallType is set but FirewallHost is empty', 'local');
    }
    this.proxyFor(this.sshHost); // a bad proxy URL
    this.expandedProxyCommand(this.firstHop()); // an unknown %-token
    this.jumpHosts.forEach((hop, index) => {
      this.prepareHop(hop, index);
    }); // a hop's bad key or port
  }

  /**
   * Closes every channel (delivering what is queued on them, within `timeout`, or
   * `drainSeconds` when given), sends DISCONNECT and closes the connection. Stops reconnecting.
   * `drained` is false when a channel had not finished closing as the time ran out (data
   * still queued here, or the server still delivering what it had).
   */
  async sshLogoff(options: { drainSeconds?: number } = {}): Promise<{ drained: boolean }> {
    this.reconnector.stop();
    this.connectAbort?.abort();
    const session = this.session;
    const wasActive = this.lifecycle !== 'idle';
    this.lifecycle = 'loggingOff';
    try {
      const drained = await session?.logoff({
        drainSeconds: options.drainSeconds ?? this.timeout,
        waitForChannelClose: this.setting<boolean>('WaitForChannelClose'),
        waitForServerDisconnect: this.setting<boolean>('WaitForServerDisconnect'),
      });
      return { drained: drained ?? true };
    } finally {
      // A logon started while this one drained owns the tunnel now: leave its state alone.
      if (this.lifecycle === 'loggingOff') {
        if (this.session === session) this.session = null;
        this.requested.length = 0;
        this.forwardedPort = 0; // ForwardedPort describes a connection; there is none now
        this.lifecycle = 'idle';
        this.unlockedKeys.clear();
        if (wasActive) this.emitState({ state: 'closed', error: null });
      }
    }
  }

  /** Opens a socket and logs on; the new session becomes the tunnel's. */
  private async startSession(): Promise<Session> {
    this.emitState({ state: 'connecting' });
    // Registered before the first wait (the agent), so that a logoff or reset meanwhile ends this attempt.
    const abort = new AbortController();
    this.connectAbort = abort;
    let agent: AgentKeys | null = null;
    let options: ClientOptions;
    try {
      agent = await this.openAgent();
      if (abort.signal.aborted) throw new SshError(Code.BadState, 'connecting was abandoned', 'local');
      options = await withoutUnusableGssKex(this.buildCoreOptions(undefined, agent), (message) => this.log(1, message), this.timeout);
    } catch (error) {
      agent?.close();
      if (this.connectAbort === abort) this.connectAbort = null;
      throw error;
    }
    let session: Session | null = null;
    try {
      // Establishing the connection has its own limit (ConnectionTimeout, else timeout), fixed:
      // nothing of the session moves before it exists.
      const connectSeconds = this.setting<number>('ConnectionTimeout') || this.timeout;
      const opened = await withDeadline({ seconds: connectSeconds, clock: this.scheduler }, 'connecting', () => this.openTransport(abort.signal, agent)).catch((error: unknown) => {
        abort.abort(); // a socket still connecting when the deadline passed is given up
        const e = asSshError(error);
        this.emit('connected', { statusCode: e.code, description: e.message });
        throw e;
      });
      if (abort.signal.aborted) {
        opened.socket.destroy();
        throw new SshError(Code.BadState, 'connecting was abandoned', 'local');
      }
      const current = this.createSession(options, opened);
      session = current;
      // A logoff or reset during the handshake ends this attempt there and then.
      abort.signal.addEventListener('abort', () => current.abort('connecting was abandoned'), { once: true });
      this.emit('connected', { statusCode: 0, description: 'OK' });
      this.emit('connectionStatus', { connectionEvent: 'Remote host connection complete.', statusCode: 0, description: 'OK' });
      // The handshake and authentication are data: `timeout` of inactivity (or AbsoluteTimeout);
      // with timeout 0, ConnectionTimeout still bounds them.
      this.hostKeyChecked = false;
      if (this.timeout > 0) await current.deadline(this.timeout, 'logging on', () => current.logon());
      else await withDeadline({ seconds: connectSeconds, clock: this.scheduler }, 'logging on', () => current.logon());
      if (!this.hostKeyChecked && this.hostKeyTrustConfigured()) {
        // A GSSAPI key exchange with no host key: Kerberos authenticated the server instead.
        this.log(
          1,
          'the server was authenticated by Kerberos (GSSAPI key exchange) and sent no host key: the configured host key trust (SSHAcceptServerHostKey, fingerprints, CA keys) was not applied',
        );
      }
    } catch (error) {
      abort.abort();
      (session as Session | null)?.abort('logon failed');
      if (this.session === session) this.session = null;
      throw asSshError(error);
    } finally {
      if (this.connectAbort === abort) this.connectAbort = null;
      agent?.close(); // only authentication (of the server and any jump host) asks it to sign
    }
    this.sessionSince = this.scheduler.now();
    return session!;
  }

  /** Whether and where the agent is asked, from `agent` and EnablePageantAuth. */
  private agentMode(): { path: string | null; only: boolean; required: boolean } {
    const pageant = this.setting<number>('EnablePageantAuth');
    const path = agentPath(this.agent !== false ? this.agent : pageant > 0);
    return { path, only: pageant === 2, required: pageant === 2 };
  }

  /** The agent's keys for this connection attempt, or null (none asked for, or none there and not required). */
  private async openAgent(): Promise<AgentKeys | null> {
    const mode = this.agentMode();
    if (mode.path === null) {
      if (mode.required) throw new SshError(Code.BadArgument, 'EnablePageantAuth=2 needs an agent, and SSH_AUTH_SOCK is not set', 'local');
      return null;
    }
    try {
      const keys = await agentKeys(mode.path, this.timeout * 1000);
      this.log(2, `the agent at ${mode.path} holds ${keys.identities.length} key(s)`);
      return keys;
    } catch (error) {
      const e = asSshError(error);
      if (mode.required) throw e;
      this.log(1, `not using the agent: ${e.message}`);
      return null;
    }
  }

  /** Where the first socket goes: the first jump host, or the server itself. */
  private firstHop(): { host: string; port: number; user: string } {
    const hop = this.jumpHosts[0];
    return hop ? { host: hop.host, port: hop.port ?? 22, user: hop.user ?? this.sshUser } : { host: this.sshHost, port: this.sshPort, user: this.sshUser };
  }

  /** The transport to the SSH server: a socket (direct, through a proxy or a ProxyCommand), or a channel through the jump hosts. */
  private openTransport(signal: AbortSignal, agent: AgentKeys | null): Promise<OpenedSocket> {
    const first = this.firstHop();
    const connectFirst = () =>
      connectSocket({
        host: first.host,
        port: first.port,
        useIPv6: this.setting<number>('UseIPv6'),
        localAddress: this.requestedLocalHost,
        localPort: this.requestedLocalPort,
        noDelay: this.setting<boolean>('TcpNoDelay'),
        keepAlive: socketOptionSettings((n) => this.setting(n)).keepAlive,
        keepAliveInitialDelay: this.setting<number>('KeepAliveTime'),
        signal,
        proxy: this.proxyFor(first.host),
        proxyCommand: this.expandedProxyCommand(first),
        proxyTimeoutMs: (this.setting<number>('ConnectionTimeout') || this.timeout) * 1000,
        onAttemptFailed: (address, error) => this.log(2, `connecting to ${first.host} at ${address} failed: ${error.message}`),
        onProxyConnected: (proxy) => {
          this.log(2, `connected to ${first.host}:${first.port} through the ${describeProxy(proxy)}`);
          this.emit('connectionStatus', { connectionEvent: 'Firewall connection complete.', statusCode: 0, description: 'OK' });
        },
      }).then((opened) => {
        if (opened.address !== first.host) this.log(2, `connected to ${first.host}:${first.port} at ${opened.address}`);
        // The TCP socket towards the server (or the first jump host): the socket options go there.
        this.tcpSocket = opened.socket instanceof Socket ? opened.socket : null;
        const options = socketOptionSettings((n) => this.setting(n));
        applyAtConnect(opened.socket, options, (level, message) => this.log(level, message));
        return opened;
      });
    if (this.jumpHosts.length === 0) return connectFirst();
    const hops = this.jumpHosts.map((hop, index) => this.prepareHop(hop, index, agent));
    return openJumpChain(hops, { host: this.sshHost, port: this.sshPort }, connectFirst, (level, message) => this.log(level, message), signal);
  }

  /** A jump host's core options: its credentials (or the tunnel's, under its user) and its host key check. */
  private prepareHop(hop: JumpHost, index: number, agent: AgentKeys | null = null): PreparedHop {
    const port = hop.port ?? 22;
    if (!hop.host) throw new SshError(Code.BadArgument, `jump host ${index + 1} has no host name`, 'local');
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SshError(Code.BadArgument, `jump host ${hop.host}: bad port ${port}`, 'local');
    const hasKey = Boolean(hop.privateKey) || (hop.identities?.length ?? 0) > 0;
    const hasPassword = Boolean(hop.password) || hop.passwordProvider !== undefined;
    const own = hasKey || hasPassword;
    // What a jump host is never given: the server's password, its keyboard-interactive answers
    // (the application's handler cannot tell a hop's prompts from the server's) or its custom
    // authentication. A hop without credentials of its own borrows only the tunnel's keys and
    // agent, as ssh lends a jump host its identities: publickey reveals nothing.
    const isolated: Partial<Credentials> = { password: '', passwordProvider: null, onPrompt: () => undefined, onCustomAuth: undefined, tryAllMethods: false };
    const credentials: Partial<Credentials> = {
      user: hop.user ?? this.sshUser,
      ...isolated,
      ...(own
        ? {
            authMode: hasKey && hasPassword ? SshAuthMode.MultiFactor : hasKey ? SshAuthMode.PublicKey : SshAuthMode.Password,
            certStoreType: SshCertStoreType.Auto,
            certStore: hop.privateKey ?? '',
            certStorePassword: hop.privateKeyPassphrase ?? '',
            password: hop.password ?? '',
            passwordProvider: hop.passwordProvider ?? null,
            identities: hop.identities ?? [],
            // The tunnel's certificate and store subject belong to the tunnel's key, not this one.
            signedCert: '',
            certSubject: '',
          }
        : { authMode: SshAuthMode.PublicKey }),
    };
    const caKeys = hopCaKeys(hop, port);
    let options: ClientOptions;
    try {
      options = this.buildCoreOptions(
        { host: hop.host, credentials, trustsCa: caKeys.length > 0, hostKeyAlgorithms: hop.hostKeyAlgorithms, verifyHostKey: (info) => this.verifyJumpHostKey(hop, index, port, caKeys, info) },
        agent,
      );
    } catch (error) {
      const e = asSshError(error);
      if (own || e.code !== Code.BadArgument) throw new SshError(e.code, `jump host ${describeHop({ host: hop.host, port })}: ${e.message}`, 'local', { cause: e });
      throw new SshError(
        Code.BadArgument,
        `jump host ${describeHop({ host: hop.host, port })} has no credentials of its own, and the tunnel has no key to lend it (a jump host is never given the server's password)`,
        'local',
      );
    }
    return { host: hop.host, port, options };
  }

  private verifyJumpHostKey(hop: JumpHost, index: number, port: number, caKeys: readonly Uint8Array[], info: HostKeyInfo): HostKeyVerdict {
    const name = describeHop({ host: hop.host, port });
    const pinned = this.trustedJumpKeys.get(index);
    if (pinned) {
      if (toHex(pinned) === toHex(info.hostKey)) return true;
      this.log(1, `the host key of jump host ${name} changed since the first connection (now ${info.keyType} SHA256:${info.fingerprints.sha256}); refusing to reconnect`);
      return false;
    }
    const certificate = judgeHopCertificate(caKeys, info);
    let accepted = this.setting<boolean>('SSHAcceptAnyServerHostKey') || certificate?.trusted === true || (hop.hostKey !== undefined && hostKeyMatches(hop.hostKey, info));
    if (!accepted && hop.verifyHostKey) {
      try {
        accepted = hop.verifyHostKey({ ...info, host: hop.host, port, hop: index }) === true;
      } catch (error) {
        this.log(1, `jump host ${name}: verifyHostKey threw (${(error as Error).message}); the key is refused`);
        accepted = false;
      }
    }
    if (!accepted) {
      this.log(1, `rejected the host key of jump host ${name}: ${info.keyType} SHA256:${info.fingerprints.sha256}`);
      return hopKeyRefusal(caKeys, info, certificate);
    }
    // As for the server: a key trusted for its CA's sake is judged again at each connection.
    if (certificate?.trusted !== true) this.trustedJumpKeys.set(index, info.hostKey);
    return true;
  }

  private createSession(options: ClientOptions, opened: OpenedSocket): Session {
    let translator: EventTranslator | null = null;
    const session: Session = new Session(
      options,
      opened,
      {
        onEvent: (event) => {
          if (event.type === 'closed') this.sessionClosed(session, event.error);
          translator!.handle(event);
        },
        log: (level, message) => this.log(level, message),
        localTargetFailed: (channel, error) => this.emit('error', { errorCode: Code.ChannelOpenFailed, description: `channel ${channel}: ${error.message}` }),
      },
      {
        clock: this.scheduler,
        absolute: () => this.setting<boolean>('AbsoluteTimeout'),
        maxTransferRate: this.setting<number>('MaxTransferRate'),
        closePolicy: () => ({ reset: !this.setting<boolean>('Linger'), lingerSeconds: this.setting<number>('LingerTime') }),
        dataPlane: this.dataPlane(),
      },
    );
    translator = new EventTranslator(session, this.translatorHost);
    this.session = session;
    return session;
  }

  /** A listener failing while another's failure is being reported is not reported again (no loop). */
  private reportingListenerError = false;

  /**
   * An application listener threw. The tunnel carries on (the event's other listeners ran,
   * and the connection's work goes on: data accounted for, credit returned); the error is
   * logged and reported as an error event, except for an error listener's own, only logged.
   */
  protected override listenerThrew(event: string, error: unknown): void {
    if (this.reportingListenerError) return;
    this.reportingListenerError = true;
    try {
      const description = `a listener for ${event} threw: ${(error as Error)?.message ?? String(error)}`;
      this.log(1, description);
      if (event !== 'error') this.emit('error', { errorCode: Code.ConnectionFailed, description });
    } finally {
      this.reportingListenerError = false;
    }
  }

  /** A session's connection ended: report it, and reconnect if it was up and may come back. */
  private sessionClosed(session: Session, error: SshError | null): void {
    if (session !== this.session) return;
    this.records.forgetAll();
    const wasUp = this.lifecycle === 'up';
    // A server that closes normally ("by application") ended the connection without a fault:
    // status 0 and "OK", as for our own logoff; the tunnel still comes back below.
    const fault = error && !(wasUp && error.normalClose) ? error : null;
    if (error && !fault) this.log(1, error.message);
    if (fault && wasUp) this.emit('error', { errorCode: fault.code, description: fault.message });
    this.emit('disconnected', { statusCode: fault ? fault.code : 0, description: fault ? fault.message : 'OK' });
    this.emit('connectionStatus', { connectionEvent: 'Remote host disconnected.', statusCode: fault?.code ?? 0, description: fault?.message ?? 'OK' });
    if (!wasUp) return; // a logon in progress fails through its promise; a logoff is on its way
    this.session = null;
    if (error && this.setting<number>('AutoReconnect') !== AutoReconnect.None && !isFinal(error)) {
      this.reconnector.connectionEnded(this.sessionSince, this.scheduler.now());
      this.lifecycle = 'reconnecting';
      this.emitState({ state: 'down', error });
      void this.reconnector.reconnect(error);
      return;
    }
    this.lifecycle = 'idle';
    this.unlockedKeys.clear();
    this.emitState({ state: 'closed', error });
  }

  private emitState(event: TunnelStateEvent): void {
    this.emit('tunnelState', event);
  }

  private reconnectorHost(): ReconnectorHost {
    const tunnel = this;
    return {
      get sshHost() {
        return tunnel.sshHost;
      },
      get sshPort() {
        return tunnel.sshPort;
      },
      get timeout() {
        return tunnel.timeout;
      },
      get scheduler() {
        return tunnel.scheduler;
      },
      requested: this.requested,
      retrySettings: () => ({
        autoReconnect: this.setting<number>('AutoReconnect'),
        maxRetryCount: this.setting<number>('MaxRetryCount'),
        retryInterval: this.setting<number>('RetryInterval'),
      }),
      startSession: () => this.startSession(),
      currentSession: () => this.session,
      emit: (event, ...args) => this.emit(event, ...args),
      emitState: (event) => this.emitState(event),
      log: (level, message) => this.log(level, message),
      reconnected: () => {
        this.lifecycle = 'up';
        this.log(1, `reconnected to ${this.sshHost}:${this.sshPort}`);
      },
      gaveUp: (error) => {
        this.lifecycle = 'idle';
        this.requested.length = 0;
        this.unlockedKeys.clear();
        this.emit('error', { errorCode: error.code, description: error.message });
        this.emitState({ state: 'closed', error });
      },
      forwardedPortChanged: (port) => {
        if (port) this.forwardedPort = port;
      },
    };
  }

  // ---- forwarding ----

  /**
   * Asks the server to listen on address:port and forward connections here. With
   * forwardingHost set, each connection is joined to forwardingHost:forwardingPort, or, when
   * forwardingHost is a path (it contains '/', as in ssh -R) with forwardingPort 0, to that
   * local Unix socket; otherwise it surfaces through the channel events. Port 0 lets the
   * server pick; the bound port is returned (and readable as config('ForwardedPort')). The
   * forwarding is asked for again after every reconnect, on the port it was given. A bad
   * port or path fails with 10022 before anything is sent.
   *
   * A revtun extension: an address that is a path, with port 0, asks the server to listen on
   * that Unix socket instead (OpenSSH's streamlocal-forward, ssh -R /remote.sock:...); it
   * resolves to 0 and is cancelled with cancelForwarding(path, 0). sshd refuses to bind over
   * an existing file (error 1098) unless its StreamLocalBindUnlink is yes, which a reconnect
   * also needs: the dead session's socket file stays behind.
   */
  async requestForwarding(address: string, port: number, forwardingHost = '', forwardingPort = 0): Promise<number> {
    return this.addForwarding({ address, port, forwardingHost, forwardingPort, dynamic: false, boundPort: 0 });
  }

  /**
   * A revtun extension, ssh -R [address:]port with no target (reverse dynamic forwarding):
   * asks the server to listen on address:port, and answers each connection as a SOCKS server
   * (SOCKS5 without authentication, SOCKS4, SOCKS4A; CONNECT only), connecting from here to
   * the host and port it names (from ForwardingLocalHost, if set). The SOCKS reply waits for
   * that connect and carries its failure (connection refused, host unreachable, ...);
   * malformed SOCKS input closes that channel alone. Either is a log line (LogLevel 1), not
   * an error event: the SOCKS client has been told. Returns the bound port; the forwarding is
   * asked for again after every reconnect, and cancelForwarding(address, port) stops it.
   * Anyone who can reach the server's port can reach whatever this machine can: bind it to
   * localhost, or limit the destinations with `options.permitRemoteOpen` (ssh's
   * PermitRemoteOpen), unless that is what you want. A client that has not sent its whole
   * request within `options.handshakeTimeout` seconds (30) is closed. Bad options: 10022.
   */
  async requestDynamicForwarding(address: string, port: number, options: DynamicForwardingOptions = {}): Promise<number> {
    const socks = socksLimits(options);
    return this.addForwarding({ address, port, forwardingHost: '', forwardingPort: 0, dynamic: true, socks, boundPort: 0 });
  }

  private async addForwarding(forwarding: RequestedForwarding): Promise<number> {
    const session = this.requireSession();
    checkForwarding(forwarding);
    const grant = await session.requestForwarding(forwarding, forwarding.port, this.timeout);
    forwarding.boundPort = grant.boundPort;
    this.requested.push(forwarding);
    if (grant.boundPort) this.forwardedPort = grant.boundPort; // a socket path has none
    this.log(1, `remote forwarding ${describeForwarding(forwarding, grant.boundPort)}`);
    return grant.boundPort;
  }

  /** Stops a forwarding; pass the address and port given to (or returned by) requestForwarding. */
  async cancelForwarding(address: string, port: number): Promise<void> {
    const session = this.requireSession();
    const forwarding = this.requested.find((f) => f.address === address && (f.boundPort === port || (port !== 0 && f.port === port)));
    if (!forwarding) throw new SshError(Code.BadArgument, `no forwarding for ${address}:${port}`, 'local');
    this.requested.splice(this.requested.indexOf(forwarding), 1);
    const grant = session.grantOf(forwarding);
    if (!grant) return; // not listening on this connection (a retry was still pending)
    if (!(await session.cancelForwarding(grant, this.timeout))) {
      throw new SshError(Code.RequestFailure, `the server refused to cancel ${address}:${port}`, 'peer');
    }
  }

  /** The forwardings requested and not cancelled, with the port each listens on (or last did). */
  get forwardings(): readonly Readonly<RequestedForwarding>[] {
    return this.requested;
  }

  /** A revtun extension: how many of `forwardings` the server is listening for on the connection up now. */
  get forwardingsListening(): number {
    const session = this.connected ? this.session! : null;
    return session ? this.requested.filter((f) => session.grantOf(f) !== undefined).length : 0;
  }

  // ---- channels ----

  /**
   * Queues data on a channel. Resolves once the channel can take more (backpressure); with
   * timeout 0 a full channel fails at once with error 1130 instead of waiting.
   */
  async sendChannelData(channelId: number, data: Uint8Array | string): Promise<void> {
    const session = this.requireSession();
    const bytes = typeof data === 'string' ? encoderFor(this.setting<number>('CodePage'))(data) : data;
    const ch = session.core.channel(channelId);
    if (!ch) throw new SshError(Code.InvalidChannelId, `no open channel with id ${channelId}`, 'local');
    if (ch.writeBlocked && this.timeout === 0) {
      throw new SshError(Code.WouldBlock, `channel ${channelId} is full; wait for sshChannelReadyToSend`, 'local');
    }
    if (ch.writeBlocked) await session.waitWritable(channelId, this.timeout);
    const sent = session.run((core) => core.sendData(channelId, bytes));
    if (!sent.ok) throw sent.error;
    if (sent.value >= CHANNEL_HIGH_WATER && this.timeout > 0) await session.waitWritable(channelId, this.timeout);
  }

  /** Closes a channel; data already queued on it is still delivered. */
  async closeChannel(channelId: number): Promise<void> {
    const session = this.requireSession();
    if (!session.core.channel(channelId)) throw new SshError(Code.InvalidChannelId, `no open channel with id ${channelId}`, 'local');
    const closed = session.run((core) => core.closeChannel(channelId, true));
    if (!closed.ok) throw closed.error;
  }

  /** Starts a key re-exchange and resolves when it has finished. */
  async exchangeKeys(): Promise<void> {
    await this.requireSession().exchangeKeys(this.timeout);
  }

  /**
   * Lets pending I/O callbacks run (the runtime's event loop does the real work); when none of
   * them raised an event, waits SelectWaitMillis before resolving, as documented.
   */
  async doEvents(): Promise<void> {
    const before = this.eventsEmitted;
    await new Promise<void>((resolve) => setImmediate(resolve));
    const wait = this.setting<number>('SelectWaitMillis');
    if (this.eventsEmitted === before && wait > 0) await this.scheduler.sleep(wait, new AbortController().signal);
  }

  // ---- internals ----

  private requireSession(): Session {
    const session = this.session;
    if (!session?.isLoggedOn) throw new SshError(Code.NotConnected, 'not connected; call sshLogon first', 'local');
    return session;
  }

  private log(level: 1 | 2 | 3, message: string): void {
    if (level <= this.setting<number>('LogLevel')) this.emit('log', { logLevel: level, message, logType: level >= 3 ? 'Debug' : level === 2 ? 'Verbose' : 'Info' });
  }

  /** The ProxyCommand with its tokens expanded for this connection, or undefined. */
  private expandedProxyCommand(to: { host: string; port: number; user: string }): string | undefined {
    const command = this.proxyCommand.trim();
    if (!command || command.toLowerCase() === 'none') return undefined;
    return expandProxyCommand(command, { host: to.host, port: to.port, user: to.user, originalHost: to.host });
  }

  /**
   * The proxy for a connection to `host`: the Firewall* settings, else (FirewallAutoDetect)
   * the environment as curl reads it; none for a host in ProxyExceptionsList.
   */
  private proxyFor(host: string): ProxySpec | null {
    if (isProxyException(host, this.setting<string>('ProxyExceptionsList'))) return null;
    if (this.proxy) return parseProxyUrl(this.proxy);
    const configured = proxyFromSettings({
      type: this.setting('FirewallType'),
      host: this.setting('FirewallHost'),
      port: this.setting('FirewallPort'),
      user: this.setting('FirewallUser'),
      password: this.setting('FirewallPassword'),
      data: this.setting('FirewallData'),
    });
    if (configured) return configured;
    return this.setting<boolean>('FirewallAutoDetect') ? proxyFromEnvironment(process.env, host) : null;
  }

  /** @internal The sshCert* group resolved (cached until one of its inputs changes). */
  clientCertificate(): ResolvedCertificate {
    return this.clientCertificateSlot.resolve({
      storeType: this.sshCertStoreType,
      store: this.sshCertStore,
      password: this.sshCertStorePassword,
      subject: this.requestedCertSubject,
      encoded: this.requestedCertEncoded,
      signedCert: this.setting<string>('SignedSSHCert'),
    });
  }

  /** @internal The sshAcceptServerHostKey* group: the configured key, else the key this logon accepted. */
  hostKeyCertificate(): ResolvedCertificate {
    const resolved = this.hostKeySlot.resolve({
      storeType: this.sshAcceptServerHostKeyStoreType,
      store: this.sshAcceptServerHostKeyStore,
      password: this.sshAcceptServerHostKeyStorePassword,
      subject: this.requestedHostKeySubject,
      encoded: this.requestedHostKeyEncoded,
    });
    if (resolved.keyBlob || resolved.error || !this.acceptedHostKey) return resolved;
    return { ...resolved, info: this.acceptedHostKey, subject: this.acceptedHostKey.subject || resolved.subject };
  }

  /**
   * The key sshCertEncoded picked in the sshCertStore store, which logon then signs with (by
   * its public key: two certificates may share a subject), or undefined when sshCertEncoded is
   * not set. One that selects nothing fails the logon (10022).
   */
  private logonCertKey(): Uint8Array | undefined {
    const encoded = this.requestedCertEncoded;
    if (this.sshCertStore.length === 0 || (typeof encoded === 'string' ? encoded.trim() === '' : encoded.length === 0)) return undefined;
    const resolved = this.clientCertificate();
    if (resolved.error) throw resolved.error;
    return resolved.keyBlob ?? undefined;
  }

  /** Fails (10022) when sshAcceptServerHostKeyEncoded / Store are set but name no key. */
  private checkConfiguredHostKey(): void {
    const { error } = this.hostKeyCertificate();
    if (error) throw error;
  }

  /** The core's options for the server, or (with `hop`) for a jump host: its credentials and host key check. */
  private buildCoreOptions(
    hop?: { host: string; credentials: Partial<Credentials>; trustsCa: boolean; hostKeyAlgorithms: string | undefined; verifyHostKey: (info: HostKeyInfo) => HostKeyVerdict },
    agent: AgentKeys | null = null,
  ): ClientOptions {
    const agentMode = this.agentMode();
    const provider = this.cryptoProvider; // loads the default provider on first use
    // A fallback (no prebuilt addon for this platform, say) is worth a line at the default
    // LogLevel: it is the one note a user gets that the slower provider is in use, and why.
    const { reason, fellBack } = this.providerReason;
    if (!hop) this.log(fellBack ? 1 : 2, `crypto provider: ${describeCryptoProvider(provider)}${reason ? ` (${reason})` : ''}`);
    const versionPattern = this.setting<string>('SSHVersionPattern');
    // A trusted CA: ask for the host certificate first, OpenSSH or X.509 as the CA is
    // (SSHAcceptServerCAKey is the server's; a hop has its own caKeys, OpenSSH CA keys).
    const trust = hop ? '' : this.setting<string>('SSHAcceptServerCAKey');
    let hostKeyList = hop?.hostKeyAlgorithms ?? this.setting<string>('SSHPublicKeyAlgorithms');
    if (parseCaCertificates(trust).length > 0) hostKeyList = preferX509Algorithms(hostKeyList);
    if (hop ? hop.trustsCa : parseCaKeys(trust).length > 0) hostKeyList = preferCertificateAlgorithms(hostKeyList);
    // GSSAPI key exchange (RFC 4462 §2) with the server, not with a jump host; "null" lets a server without host keys take part.
    const gssKex = !hop && (this.sshAuthMode === SshAuthMode.GSSAPIKeyex || this.alsoGssapi.keyExchange);
    const kexAlgorithms = this.setting<string>('SSHKeyExchangeAlgorithms');
    return {
      provider,
      clientVersion: this.setting('ClientSSHVersionString'),
      acceptServerVersion: (v) => matchesVersionPattern(versionPattern, v),
      algorithms: algorithmLists(provider, {
        // Unless SSHKeyExchangeAlgorithms names GSSAPI ones itself, they all come first.
        // A jump host never runs a GSSAPI key exchange (it has no Kerberos source): even listed names are left out for it.
        kex: hop
          ? splitList(kexAlgorithms)
              .filter((name) => !isGssKex(name))
              .join(',')
          : gssKex && !splitList(kexAlgorithms).some(isGssKex)
            ? [...GSS_KEX_ALGORITHMS, kexAlgorithms].join(',')
            : kexAlgorithms,
        hostKey: gssKex ? `${hostKeyList},${NULL_HOST_KEY}` : hostKeyList,
        cipher: this.sshEncryptionAlgorithms,
        mac: this.setting('SSHMacAlgorithms'),
        compression: this.sshCompressionAlgorithms,
      }),
      strictKex: this.setting<number>('UseStrictKeyExchange') as 0 | 1 | 2 | 3,
      dhGroupBits: this.setting('PreferredDHGroupBits'),
      rekeyBytes: this.setting('KeyRenegotiationThreshold'),
      // A jump host's connection is never handed over (it carries the next hop, not a forwarding).
      keepKeysForHandover: !hop && this.dataPlane() === 'native',
      allocate: (size) => Buffer.allocUnsafe(size),
      ownsInput: true, // the reader's chunks: the driver tells it what the core still holds
      auth: authOptionsFor({
        user: this.sshUser,
        password: this.sshPassword,
        passwordProvider: this.passwordProvider,
        authMode: this.sshAuthMode,
        certStoreType: this.sshCertStoreType,
        certStore: this.sshCertStore,
        certStorePassword: this.sshCertStorePassword,
        certSubject: this.requestedCertSubject,
        certKey: this.logonCertKey(),
        identities: this.identities,
        unlockedKeys: this.unlockedKeys,
        tryAllMethods: this.setting('TryAllAvailableAuthMethods'),
        repeatMethods: !this.setting<boolean>('DoNotRepeatAuthMethods'),
        passwordPrompt: this.setting('PasswordPrompt'),
        publicKeySignatureAlgorithms: this.setting('SSHPubKeyAuthSigAlgorithms'),
        onPrompt: (event) => this.emit('sshKeyboardInteractive', event),
        ...(this.listenerCount('sshCustomAuth') > 0
          ? {
              onCustomAuth: (serverMessage: Uint8Array) => {
                const event: CustomAuthEvent = { packet: encodePacket(serverMessage) };
                this.emit('sshCustomAuth', event);
                return event.packet ? decodePacket(event.packet) : null;
              },
            }
          : {}),
        agentIdentities: agent?.identities ?? [],
        agentOnly: agentMode.only,
        agentExpected: agentMode.path !== null && agent === null,
        identitiesOnly: this.identitiesOnly,
        alsoGssapi: hop ? { withMic: false, keyExchange: false } : this.alsoGssapi,
        gssapiLeftOut: (reason) => this.log(2, `not trying GSSAPI: ${reason}`),
        signedCert: this.setting<string>('SignedSSHCert'),
        // KerberosSPN and KerberosRealm name the server's service; a jump host's is made from its name.
        kerberos: {
          host: hop ? hop.host : this.sshHost,
          spn: hop ? '' : this.setting<string>('KerberosSPN'),
          realm: this.setting<string>('KerberosRealm'),
          delegate: this.setting<boolean>('KerberosDelegation'),
        },
        ...hop?.credentials,
      }),
      verifyHostKey: hop ? hop.verifyHostKey : (info) => this.verifyHostKey(info),
      hostCertificateName: hop ? hop.host : this.sshHost,
      channels: {
        maxWindow: this.setting('MaxWindowSize'),
        maxPacket: this.setting('MaxPacketSize'),
        idleTimeout: this.setting<number>('DefaultChannelIdleTimeout'),
      },
      keepAliveInterval: this.setting('SSHKeepAliveInterval'),
      keepAliveCountMax: this.setting('SSHKeepAliveCountMax'),
      logLevel: this.setting<number>('LogLevel'),
    };
  }

  /** Whether the application named host keys or CAs to trust (rather than a handler, or accepting any). */
  private hostKeyTrustConfigured(): boolean {
    return (
      this.sshAcceptServerHostKey !== '' ||
      this.hostKeyCertificate().keyBlob !== null ||
      this.setting<string>('SSHAcceptServerHostKeyFingerPrint') !== '' ||
      this.setting<string>('SSHAcceptServerCAKey') !== ''
    );
  }

  private verifyHostKey(info: HostKeyInfo): HostKeyVerdict {
    this.hostKeyChecked = true;
    this.lastHostKey = info;
    if (this.trustedHostKey && toHex(this.trustedHostKey) !== toHex(info.hostKey)) {
      // The application trusted one key for this logon; a reconnect that meets another is
      // refused (1030) and not retried, whatever the lists or handlers would say.
      this.log(1, `the server's host key changed since the first connection (now ${info.keyType} SHA256:${info.fingerprints.sha256}); refusing to reconnect`);
      return false;
    }
    const algorithm = this.setting<string>('SSHFingerprintHashAlgorithm');
    // The documented form, "0a:1b:2c:…", for each hash; OpenSSH's "SHA256:base64" form is the
    // opensshFingerprint field (and the SSHFingerprintSHA256 setting).
    const sha256Hex = toHex(Buffer.from(info.fingerprints.sha256, 'base64'), ':');
    const fingerprint = algorithm === 'MD5' ? info.fingerprints.md5 : algorithm === 'SHA1' ? info.fingerprints.sha1 : sha256Hex;
    const trustedFingerprints = splitList(this.setting<string>('SSHAcceptServerHostKeyFingerPrint'));
    const caKeys = parseCaKeys(this.setting<string>('SSHAcceptServerCAKey'));
    const caCertificates = parseCaCertificates(this.setting<string>('SSHAcceptServerCAKey'));
    const certificate =
      info.certificate && caKeys.length > 0
        ? judgeHostCertificate(info.certificate, info.hostKey, caKeys)
        : info.x509 && caCertificates.length > 0
          ? judgeX509HostKey(info.x509, caCertificates)
          : null;
    const configuredKey = this.hostKeyCertificate().keyBlob;
    const preAccepted =
      this.trustedHostKey !== null ||
      this.setting<boolean>('SSHAcceptAnyServerHostKey') ||
      certificate?.trusted === true ||
      (this.sshAcceptServerHostKey !== '' && hostKeyMatches(this.sshAcceptServerHostKey, info)) ||
      // Checked readable at sshLogon; a store that has gone since matches nothing (no throw here).
      (configuredKey !== null && equalBytes(configuredKey, info.hostKey)) ||
      trustedFingerprints.some((f) => hostKeyMatches(f, info));
    const event: ServerAuthenticationEvent = {
      hostKey: info.hostKey,
      fingerprint,
      opensshFingerprint: `SHA256:${info.fingerprints.sha256}`,
      keyAlgorithm: info.algorithm,
      ...certificateSubjectAndIssuer(info.certificate, info.x509),
      status: 0,
      accept: preAccepted,
      ...(info.certificate ? { certificate: info.certificate } : {}),
      ...(info.x509 ? { x509: info.x509 } : {}),
    };
    this.emit('sshServerAuthentication', event);
    if (!event.accept) {
      this.log(1, `rejected server host key ${info.keyType} SHA256:${info.fingerprints.sha256}`);
      const shown = `${info.keyType} SHA256:${info.fingerprints.sha256}`;
      const what = info.x509 ? "the server's X.509 host certificate" : 'the server host certificate';
      if (certificate && !certificate.trusted) return { refused: `${what} (${shown}) was not accepted: ${certificate.reason}` };
      if ((caKeys.length > 0 || caCertificates.length > 0) && !certificate) {
        const why = info.certificate
          ? 'it is an OpenSSH host certificate, and SSHAcceptServerCAKey holds no OpenSSH CA key'
          : info.x509
            ? 'it is an X.509 host certificate, and SSHAcceptServerCAKey holds no CA certificate'
            : 'it is a plain key, not a certificate from the CA of SSHAcceptServerCAKey';
        return { refused: `the server host key (${shown}) was not accepted: ${why}` };
      }
      return false;
    }
    // A key trusted for its CA's sake is judged again at each logon (its certificate may be
    // renewed, or expire); any other trusted key is pinned for the reconnects.
    if (!(certificate?.trusted === true)) this.trustedHostKey ??= info.hostKey;
    this.acceptedHostKey = describeHostKey(info);
    return true;
  }
}

// The documented read-only certificate properties (sshCertFingerprint, sshCertIssuer, …,
// sshAcceptServerHostKeyFingerprint, …): getters made from one table, ./certificate-properties.ts.
export interface SSHReverseTunnel extends CertificateProperties<'sshCert'>, CertificateProperties<'sshAcceptServerHostKey'>, FirewallProperties {}
installCertificateProperties(SSHReverseTunnel.prototype, 'sshCert', (tunnel) => tunnel.clientCertificate().info);
installCertificateProperties(SSHReverseTunnel.prototype, 'sshAcceptServerHostKey', (tunnel) => tunnel.hostKeyCertificate().info);
// firewallType, firewallHost, …: the documented firewall properties, views of the Firewall* settings.
installFirewallProperties(SSHReverseTunnel.prototype);
