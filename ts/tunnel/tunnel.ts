// SSHReverseTunnel: the documented component as an idiomatic TypeScript class. It owns one
// SSH connection (the sans-IO core driven by a SocketDriver), the remote forwardings
// requested on it, and the channels the server opens for them, which either surface as
// events (event mode) or are joined to a local TCP target (local forwarding mode).

import * as net from 'node:net';
import * as dns from 'node:dns/promises';
import { SshClientCore, type ClientEvent, type HostKeyInfo } from '../protocol/client.js';
import { SshError, Code, socketErrorCode, DisconnectReason } from '../protocol/errors.js';
import { Reader, Writer } from '../protocol/wire.js';
import { CHANNEL_HIGH_WATER } from '../protocol/channels.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { defaultCryptoProvider, describeCryptoProvider, skippedCryptoProviders } from '../crypto/select.js';
import { SocketDriver } from '../net/driver.js';
import { SocketReader } from '../net/reader.js';
import { TypedEmitter, type TunnelEvents, type ChannelOpenRequestEvent, type ServerAuthenticationEvent } from './events.js';
import type { ForwarderHost, LocalForwarder } from './local-forward.js';
import { ForwardingTable } from './forwardings.js';
import {
  SETTINGS,
  algorithmLists,
  canonicalSettingName,
  formatSettingValue,
  matchesVersionPattern,
  parseSettingValue,
  splitList,
  DEFAULT_CIPHERS,
} from './settings.js';
import { authOptionsFor, SshAuthMode, SshCertStoreType, type SshAuthModeValue, type SshCertStoreTypeValue } from './credentials.js';
import { delay, withTimeout } from './timing.js';
import { ChannelRecords } from './chunker.js';

export { SshAuthMode, SshCertStoreType, type SshAuthModeValue, type SshCertStoreTypeValue };
import { hostKeyMatches } from './hostkeys.js';

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

/** The JavaScript runtime and its version (Bun and Deno also report a Node compatibility version). */
function runtimeVersion(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions['bun']) return `bun ${versions['bun']}`;
  if (versions['deno']) return `deno ${versions['deno']}`;
  return `node ${versions['node']}`;
}

export class SSHReverseTunnel extends TypedEmitter<TunnelEvents> {
  // ---- documented properties ----
  sshHost = '';
  sshPort = 22;
  sshUser = '';
  sshPassword = '';
  sshAuthMode: SshAuthModeValue = SshAuthMode.Password;
  /**
   * Where the client key comes from: a PEM/OpenSSH key file path or the key text. A key file
   * of yours that group or others may access is refused at sshLogon with error 10013, as
   * OpenSSH refuses it; key text is never checked, and never quoted in an error.
   */
  sshCertStoreType: SshCertStoreTypeValue = SshCertStoreType.Auto;
  sshCertStore = '';
  sshCertStorePassword = '';
  /** Accepted for compatibility; key files carry no certificate subject to select by. */
  sshCertSubject = '';
  /** A trusted server key: an OpenSSH public key line, a base64 key blob, or a fingerprint. */
  sshAcceptServerHostKey = '';
  sshEncryptionAlgorithms = DEFAULT_CIPHERS.join(',');
  sshCompressionAlgorithms = 'none';
  /** Seconds each method may take (0 = no deadline). */
  timeout = 60;
  /**
   * A revtun extension: asked for the password the first time authentication needs one while
   * sshPassword is empty (after a refused key, say). Return undefined to skip password methods.
   */
  passwordProvider: (() => string | undefined) | null = null;

  /**
   * The crypto backend. Unless one is set, the first of the native core, the WASM core and
   * node:crypto that loads, or the one REVTUN_CRYPTO names (see loadCryptoProvider()).
   */
  get cryptoProvider(): CryptoProvider {
    if (!this.chosenProvider) {
      this.chosenProvider = defaultCryptoProvider();
      this.providerIsDefault = true;
    }
    return this.chosenProvider;
  }

  set cryptoProvider(provider: CryptoProvider) {
    this.chosenProvider = provider;
    this.providerIsDefault = false;
  }
  private chosenProvider: CryptoProvider | null = null;
  private providerIsDefault = false;

  private requestedLocalHost = '';
  private requestedLocalPort = 0;
  private settings = new Map<string, boolean | number | string>();
  private core: SshClientCore | null = null;
  private driver: SocketDriver | null = null;
  private socket: net.Socket | null = null;
  /** The socket while it is still connecting, so reset() or a failure can drop it. */
  private pendingSocket: net.Socket | null = null;
  /** Local forwarders holding corked writes until the current flush ends. */
  private readonly corkedForwarders: LocalForwarder[] = [];
  /** Reads the SSH socket into reused memory; handed to the driver. */
  private socketReader: SocketReader | null = null;
  private connecting = false;
  private readonly forwardings = new ForwardingTable();
  private readonly writableWaiters = new Map<number, (() => void)[]>();
  private closeWaiters: (() => void)[] = [];
  private rekeyWaiters: (() => void)[] = [];
  private readonly progressCheckers = new Set<() => void>();
  private readonly channelRecords = new ChannelRecords();
  /** ChannelDataEOLFound while an sshChannelData event is being delivered. */
  private deliveringEolFound: boolean | null = null;
  private lastHostKey: HostKeyInfo | null = null;
  private forwardedPort = 0;
  private onAuthenticated: ((error: SshError | null) => void) | null = null;

  constructor() {
    super();
    this.resetSettings();
  }

  private resetSettings(): void {
    this.settings = new Map(Object.entries(SETTINGS).map(([name, spec]) => [name, spec.default]));
  }

  private setting<T extends boolean | number | string>(name: string): T {
    return this.settings.get(name) as T;
  }

  /**
   * The local address the SSH connection binds to. While connected it reads back the address
   * in use; setting it only affects the next logon.
   */
  get localHost(): string {
    return this.connected && this.socket?.localAddress ? this.socket.localAddress : this.requestedLocalHost;
  }
  set localHost(value: string) {
    this.requestedLocalHost = value;
  }

  /** The local port to bind (0 = any). While connected it reads back the port in use. */
  get localPort(): number {
    return this.connected && this.socket?.localPort ? this.socket.localPort : this.requestedLocalPort;
  }
  set localPort(value: number) {
    this.requestedLocalPort = value;
  }

  // ---- read-only properties ----

  get connected(): boolean {
    return this.core !== null && this.core.isAuthenticated && !this.core.isClosed;
  }

  /** The channels open right now (sshChannelCount is its length). */
  get sshChannels(): SshChannelInfo[] {
    if (!this.core) return [];
    return this.core.channels.channelList
      .filter((ch) => ch.state === 'open' || ch.state === 'closing')
      .map((ch) => {
        const fwd = this.forwardings.forChannel(ch.localId);
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
          bufferedBytes: ch.outgoingBytes + (this.forwardings.forwarder(ch.localId)?.buffered ?? 0),
        };
      });
  }

  get sshChannelCount(): number {
    return this.sshChannels.length;
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
        return this.deliveringEolFound === null ? '' : this.deliveringEolFound ? 'True' : 'False';
      }
      return this.channelRecords.configure(name === 'channeldataeol' ? 'ChannelDataEOL' : 'MaxChannelDataLength', Number(perChannel[2]), value);
    }
    const name = canonicalSettingName(rawName);
    if (eq >= 0) {
      const value = setting.slice(eq + 1);
      if (!name || !(name in SETTINGS)) {
        if (name) throw new SshError(Code.BadArgument, `${name} is read-only`, 'local');
        throw new SshError(Code.BadArgument, `unknown setting ${rawName.trim()}`, 'local');
      }
      this.settings.set(name, parseSettingValue(name, value));
      return '';
    }
    if (!name) {
      if (rawName.trim().toLowerCase() === 'sshkeyrenegotiate') {
        // Starts a re-exchange and returns at once; exchangeKeys() is the awaitable form.
        const core = this.requireConnected();
        this.act(() => core.rekey());
        return '';
      }
      throw new SshError(Code.BadArgument, `unknown setting ${rawName.trim()}`, 'local');
    }
    switch (name) {
      case 'ForwardedPort':
        return String(this.forwardedPort);
      case 'NegotiatedStrictKex':
        return this.core?.strictKexNegotiated ? 'True' : 'False';
      case 'ServerSSHVersionString':
        return this.core?.remoteVersion ?? '';
      case 'SSHFingerprintMD5':
        return this.lastHostKey?.fingerprints.md5 ?? '';
      case 'SSHFingerprintSHA1':
        return this.lastHostKey?.fingerprints.sha1 ?? '';
      case 'SSHFingerprintSHA256':
        return this.lastHostKey?.fingerprints.sha256 ?? '';
      case 'BuildInfo':
        return `revtun ${VERSION}; crypto provider: ${describeCryptoProvider(this.cryptoProvider)}; ${runtimeVersion()}`;
      default:
        return formatSettingValue(this.settings.get(name)!);
    }
  }

  /** Resets every property and setting to its default. Closes an open connection first. */
  reset(): void {
    this.abort(new SshError(Code.BadState, 'reset', 'local'));
    this.sshHost = '';
    this.sshPort = 22;
    this.sshUser = '';
    this.sshPassword = '';
    this.sshAuthMode = SshAuthMode.Password;
    this.sshCertStoreType = SshCertStoreType.Auto;
    this.sshCertStore = '';
    this.sshCertStorePassword = '';
    this.sshCertSubject = '';
    this.sshAcceptServerHostKey = '';
    this.passwordProvider = null;
    this.sshEncryptionAlgorithms = DEFAULT_CIPHERS.join(',');
    this.sshCompressionAlgorithms = 'none';
    this.timeout = 60;
    this.localHost = '';
    this.localPort = 0;
    this.forwardedPort = 0;
    this.lastHostKey = null;
    this.resetSettings();
  }

  /** Lets pending I/O callbacks run (the Node event loop does the real work). */
  async doEvents(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  // ---- logon / logoff ----

  /** Connects, exchanges keys, verifies the host key and authenticates. */
  async sshLogon(host?: string, port?: number): Promise<void> {
    if (this.connected) throw new SshError(Code.AlreadyConnected, 'already connected; call sshLogoff first', 'local');
    if (this.connecting) throw new SshError(Code.AlreadyConnecting, 'already connecting', 'local');
    if (host !== undefined) this.sshHost = host;
    if (port !== undefined) this.sshPort = port;
    if (!this.sshHost) throw new SshError(Code.InvalidAddress, 'sshHost is not set', 'local');
    if (!Number.isInteger(this.sshPort) || this.sshPort < 1 || this.sshPort > 65535) {
      throw new SshError(Code.BadArgument, `sshPort ${this.sshPort} is not a port number (1-65535)`, 'local');
    }
    const coreOptions = this.buildCoreOptions(); // validates options before any network traffic
    // Whatever a previous, dropped connection left (its forwardings, its socket) is void now.
    this.cleanup();
    this.connecting = true;
    try {
      await withTimeout(this.setting<number>('ConnectionTimeout') || this.timeout, 'connecting and logging on', async () => {
        const socket = await this.openSocket();
        this.socket = socket;
        this.emit('connected', { statusCode: 0, description: 'OK' });
        this.emit('connectionStatus', { connectionEvent: 'Remote host connection complete.', statusCode: 0, description: 'OK' });
        const core = new SshClientCore(coreOptions);
        this.core = core;
        const authenticated = new Promise<void>((resolve, reject) => {
          this.onAuthenticated = (error) => (error ? reject(error) : resolve());
        });
        this.driver = new SocketDriver(
          core,
          socket,
          { onEvent: (event) => this.handleEvent(event), beforeIdle: () => this.uncorkForwarders(core), afterFlush: () => this.onProgress() },
          this.socketReader ?? undefined,
        );
        this.driver.start();
        await authenticated;
      });
    } catch (error) {
      this.abort(error instanceof SshError ? error : new SshError(Code.ConnectionFailed, String(error), 'local'));
      throw error;
    } finally {
      this.connecting = false;
      this.onAuthenticated = null;
    }
  }

  /** Closes every channel, sends DISCONNECT and closes the connection. */
  async sshLogoff(): Promise<void> {
    const core = this.core;
    if (!core || core.isClosed) {
      this.cleanup();
      return;
    }
    // Data already accepted by sendChannelData (or from a local target) is still delivered:
    // each channel closes once its queue is flushed, within `timeout`.
    const channels = core.channels.channelList.filter((ch) => ch.state !== 'closed');
    if (channels.length > 0) {
      this.act(() => {
        for (const ch of channels) core.channels.close(ch.localId, true);
      });
      const waitForReplies = this.setting<boolean>('WaitForChannelClose');
      const done = () => core.isClosed || channels.every((ch) => (waitForReplies ? ch.state === 'closed' : ch.closeSent));
      await this.waitUntil(done, this.timeout, 'closing channels').catch(() => undefined);
    }
    if (!core.isClosed) {
      const closed = this.waitForClose();
      if (this.setting<boolean>('WaitForServerDisconnect')) {
        this.act(() => core.disconnect(DisconnectReason.ByApplication, 'logged off', true));
        if (this.timeout > 0) await Promise.race([closed, delay(this.timeout * 1000)]);
        else await closed;
      } else {
        core.disconnect(DisconnectReason.ByApplication, 'logged off');
        this.driver?.flush();
        await closed;
      }
    }
    this.cleanup();
  }

  // ---- forwarding ----

  /**
   * Asks the server to listen on address:port and forward connections here. With
   * forwardingHost set, each connection is joined to forwardingHost:forwardingPort; otherwise
   * it surfaces through the channel events. Port 0 lets the server pick; the bound port is
   * returned (and readable as config('ForwardedPort')).
   */
  async requestForwarding(address: string, port: number, forwardingHost = '', forwardingPort = 0): Promise<number> {
    const core = this.requireConnected();
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new SshError(Code.BadArgument, `port ${port} is out of range`, 'local');
    if (forwardingHost && (!Number.isInteger(forwardingPort) || forwardingPort < 1 || forwardingPort > 65535)) {
      throw new SshError(Code.BadArgument, `forwarding port ${forwardingPort} is out of range`, 'local');
    }
    const data = new Writer(64).string(address).uint32(port).finish();
    let boundPort = 0;
    // The table is updated while the reply is being processed, not after the await: the server
    // may forward a connection at once, and its CHANNEL_OPEN can arrive in the same read as
    // the reply, before any promise continuation runs.
    const reply = await this.globalRequest(core, 'tcpip-forward', data, (ok, replyData) => {
      if (!ok) return;
      boundPort = port;
      if (port === 0) {
        // RFC 4254 §7.1: the reply carries the allocated port when port 0 was asked for.
        const r = new Reader(replyData);
        boundPort = r.remaining >= 4 ? r.uint32() : 0;
      }
      if (boundPort >= 1 && boundPort <= 65535) this.forwardings.add({ address, requestedPort: port, boundPort, forwardingHost, forwardingPort });
    });
    if (!reply.ok) {
      throw new SshError(Code.RequestFailure, `the server refused to listen on ${address || '*'}:${port}`, 'peer');
    }
    if (boundPort < 1 || boundPort > 65535) throw new SshError(Code.ProtocolError, 'server allocated an invalid port', 'peer');
    this.forwardedPort = boundPort;
    this.log(1, `remote forwarding ${address || '*'}:${boundPort} -> ${forwardingHost ? `${forwardingHost}:${forwardingPort}` : 'events'}`);
    return boundPort;
  }

  /** Stops a forwarding; pass the address and port given to (or returned by) requestForwarding. */
  async cancelForwarding(address: string, port: number): Promise<void> {
    const core = this.requireConnected();
    const fwd = this.forwardings.named(address, port);
    if (!fwd) throw new SshError(Code.BadArgument, `no forwarding for ${address}:${port}`, 'local');
    const data = new Writer(64).string(address).uint32(fwd.boundPort).finish();
    const reply = await this.globalRequest(core, 'cancel-tcpip-forward', data);
    this.forwardings.remove(fwd);
    if (!reply.ok) throw new SshError(Code.RequestFailure, `the server refused to cancel ${address}:${port}`, 'peer');
  }

  /** `onReply` runs synchronously as the reply is processed, before later messages are. */
  private globalRequest(
    core: SshClientCore,
    name: string,
    data: Uint8Array,
    onReply?: (ok: boolean, data: Uint8Array) => void,
  ): Promise<{ ok: boolean; data: Uint8Array }> {
    return withTimeout(this.timeout, name, () =>
      new Promise((resolve, reject) => {
        this.act(() =>
          core.channels.globalRequest(name, data, (ok, replyData) => {
            if (!core.isClosed) onReply?.(ok, replyData);
            if (core.isClosed) reject(new SshError(Code.NotConnected, 'the connection closed before the server answered', 'peer'));
            else resolve({ ok, data: replyData });
          }),
        );
      }),
    );
  }

  // ---- channels ----

  /**
   * Queues data on a channel. Resolves once the channel can take more (backpressure); with
   * timeout 0 a full channel fails at once with error 1130 instead of waiting.
   */
  async sendChannelData(channelId: number, data: Uint8Array | string): Promise<void> {
    const core = this.requireConnected();
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const ch = core.channels.channel(channelId);
    if (ch.writeBlocked && this.timeout === 0) {
      throw new SshError(Code.WouldBlock, `channel ${channelId} is full; wait for sshChannelReadyToSend`, 'local');
    }
    if (ch.writeBlocked) await this.waitWritable(channelId);
    let queued = 0;
    this.act(() => {
      queued = core.channels.send(channelId, bytes);
    });
    if (queued >= CHANNEL_HIGH_WATER && this.timeout > 0) await this.waitWritable(channelId);
  }

  /** Closes a channel; data already queued on it is still delivered. */
  async closeChannel(channelId: number): Promise<void> {
    const core = this.requireConnected();
    core.channels.channel(channelId);
    this.act(() => core.channels.close(channelId, true));
  }

  /** Starts a key re-exchange and resolves when it has finished. */
  async exchangeKeys(): Promise<void> {
    const core = this.requireConnected();
    const finished = this.waitForRekey();
    this.act(() => core.rekey());
    await withTimeout(this.timeout, 'key re-exchange', () => finished);
  }

  private waitForRekey(): Promise<void> {
    return new Promise((resolve) => this.rekeyWaiters.push(resolve));
  }

  // ---- internals ----

  private requireConnected(): SshClientCore {
    if (!this.core || this.core.isClosed || !this.core.isAuthenticated) {
      throw new SshError(Code.NotConnected, 'not connected; call sshLogon first', 'local');
    }
    return this.core;
  }

  /** Runs an action on the core and puts the result on the wire. */
  private act(work: () => void): void {
    const core = this.core;
    if (!core) throw new SshError(Code.NotConnected, 'not connected', 'local');
    try {
      core.act(work);
    } finally {
      this.driver?.flush();
    }
  }

  private log(level: 1 | 2 | 3, message: string): void {
    if (level <= this.setting<number>('LogLevel')) this.emit('log', { logLevel: level, message, logType: level >= 3 ? 'Debug' : level === 2 ? 'Verbose' : 'Info' });
  }

  private async openSocket(): Promise<net.Socket> {
    const useIPv6 = this.setting<number>('UseIPv6');
    let address = this.sshHost;
    if (net.isIP(address) === 0) {
      try {
        const family = useIPv6 === 0 ? 4 : useIPv6 === 1 ? 6 : 0;
        const found = await dns.lookup(address, family ? { family } : { order: 'ipv6first' });
        address = found.address;
      } catch (cause) {
        const code = socketErrorCode((cause as NodeJS.ErrnoException).code);
        this.emit('connected', { statusCode: code, description: `cannot resolve ${this.sshHost}` });
        throw new SshError(code, `cannot resolve host ${this.sshHost}: ${(cause as Error).message}`, 'local', { cause });
      }
    }
    return await new Promise<net.Socket>((resolve, reject) => {
      const reader = new SocketReader();
      const socket = net.connect({
        onread: reader.onread,
        host: address,
        port: this.sshPort,
        ...(this.requestedLocalHost ? { localAddress: this.requestedLocalHost } : {}),
        ...(this.requestedLocalPort ? { localPort: this.requestedLocalPort } : {}),
        noDelay: this.setting<boolean>('TcpNoDelay'),
        keepAlive: this.setting<boolean>('TCPKeepAlive') || this.setting<number>('KeepAliveTime') > 0,
        keepAliveInitialDelay: this.setting<number>('KeepAliveTime'),
      });
      const fail = (error: NodeJS.ErrnoException) => {
        const code = socketErrorCode(error.code);
        this.emit('connected', { statusCode: code, description: error.message });
        socket.destroy();
        reject(new SshError(code, `cannot connect to ${this.sshHost}:${this.sshPort}: ${error.message}`, 'local', { cause: error }));
      };
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.off('error', fail);
        this.socketReader = reader;
        resolve(socket);
      });
      this.pendingSocket = socket;
    });
  }


  private buildCoreOptions(): ConstructorParameters<typeof SshClientCore>[0] {
    const provider = this.cryptoProvider; // loads the default provider on first use
    const skipped = this.providerIsDefault ? skippedCryptoProviders() : [];
    this.log(2, `crypto provider: ${describeCryptoProvider(provider)}${skipped.length ? ` (not loaded: ${skipped.join('; ')})` : ''}`);
    const versionPattern = this.setting<string>('SSHVersionPattern');
    return {
      provider: this.cryptoProvider,
      clientVersion: this.setting('ClientSSHVersionString'),
      acceptServerVersion: (v) => matchesVersionPattern(versionPattern, v),
      algorithms: algorithmLists(this.cryptoProvider, {
        kex: this.setting('SSHKeyExchangeAlgorithms'),
        hostKey: this.setting('SSHPublicKeyAlgorithms'),
        cipher: this.sshEncryptionAlgorithms,
        mac: this.setting('SSHMacAlgorithms'),
        compression: this.sshCompressionAlgorithms,
      }),
      strictKex: this.setting<number>('UseStrictKeyExchange') as 0 | 1 | 2 | 3,
      dhGroupBits: this.setting('PreferredDHGroupBits'),
      rekeyBytes: this.setting('KeyRenegotiationThreshold'),
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
        tryAllMethods: this.setting('TryAllAvailableAuthMethods'),
        repeatMethods: !this.setting<boolean>('DoNotRepeatAuthMethods'),
        passwordPrompt: this.setting('PasswordPrompt'),
        publicKeySignatureAlgorithms: this.setting('SSHPubKeyAuthSigAlgorithms'),
        onPrompt: (event) => this.emit('sshKeyboardInteractive', event),
      }),
      verifyHostKey: (info) => this.verifyHostKey(info),
      channels: {
        maxWindow: this.setting('MaxWindowSize'),
        maxPacket: this.setting('MaxPacketSize'),
        idleTimeout: this.setting<number>('DefaultChannelIdleTimeout'),
      },
      keepAliveInterval: this.setting('SSHKeepAliveInterval'),
      keepAliveCountMax: this.setting('SSHKeepAliveCountMax'),
      isForwardingKnown: (address, port) => this.forwardings.match(address, port) !== undefined,
      logLevel: this.setting<number>('LogLevel'),
    };
  }

  private verifyHostKey(info: HostKeyInfo): boolean {
    this.lastHostKey = info;
    const algorithm = this.setting<string>('SSHFingerprintHashAlgorithm');
    const fingerprint = algorithm === 'MD5' ? info.fingerprints.md5 : algorithm === 'SHA1' ? info.fingerprints.sha1 : info.fingerprints.sha256;
    const trustedFingerprints = splitList(this.setting<string>('SSHAcceptServerHostKeyFingerPrint'));
    const preAccepted =
      this.setting<boolean>('SSHAcceptAnyServerHostKey') ||
      (this.sshAcceptServerHostKey !== '' && hostKeyMatches(this.sshAcceptServerHostKey, info)) ||
      trustedFingerprints.some((f) => hostKeyMatches(f, info));
    const event: ServerAuthenticationEvent = {
      hostKey: info.hostKey,
      fingerprint,
      keyAlgorithm: info.algorithm,
      certSubject: '',
      certIssuer: '',
      status: 0,
      accept: preAccepted,
    };
    this.emit('sshServerAuthentication', event);
    if (!event.accept) this.log(1, `rejected server host key ${info.keyType} SHA256:${info.fingerprints.sha256}`);
    return event.accept;
  }

  private forwarderHost(core: SshClientCore): ForwarderHost {
    return {
      act: (work) => {
        if (!core.isClosed) {
          try {
            this.act(work);
          } catch (error) {
            this.log(1, `local forwarding: ${(error as Error).message}`);
          }
        }
      },
      accept: (ch) => {
        core.channels.setHighWater(ch, 1); // see send: the socket pauses once the window is full
        core.channels.accept(ch);
      },
      reject: (ch, reason, description) => core.channels.reject(ch, reason, description),
      send: (ch, data) => core.channels.send(ch, data) === 0,
      uncorkLater: (forwarder) => this.corkedForwarders.push(forwarder),
      holdInput: () => this.driver?.holdInput() ?? (() => undefined),
      sendEof: (ch) => core.channels.sendEof(ch),
      close: (ch) => core.channels.close(ch, true),
      consume: (ch, n) => core.channels.consume(ch, n),
      log: (level, message) => this.log(level, message),
      failed: (ch, error) => {
        this.forwardings.detach(ch);
        this.emit('error', { errorCode: Code.ChannelOpenFailed, description: `channel ${ch}: ${error.message}` });
      },
    };
  }

  private handleEvent(event: ClientEvent): void {
    const core = this.core!;
    switch (event.type) {
      case 'log':
        this.log(event.level, event.message);
        return;
      case 'status':
        this.emit('sshStatus', { message: event.message });
        return;
      case 'serverVersion':
      case 'banner':
        if (event.type === 'banner') this.log(1, `server banner: ${event.text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, ' ')}`);
        return;
      case 'keysExchanged':
        if (event.initial) this.emit('connectionStatus', { connectionEvent: 'SSH handshake complete.', statusCode: 0, description: 'OK' });
        for (const resolve of this.rekeyWaiters.splice(0)) resolve();
        return;
      case 'authenticated':
        this.onAuthenticated?.(null);
        return;
      case 'closed': {
        const error = event.error;
        this.onAuthenticated?.(error ?? new SshError(Code.ConnectionDropped, 'connection closed during logon', 'peer'));
        if (error && !this.connecting) this.emit('error', { errorCode: error.code, description: error.message });
        this.forwardings.detachAll();
        for (const waiters of this.writableWaiters.values()) for (const w of waiters) w();
        this.writableWaiters.clear();
        for (const resolve of this.rekeyWaiters.splice(0)) resolve();
        this.emit('disconnected', { statusCode: error ? error.code : 0, description: error ? error.message : 'OK' });
        this.emit('connectionStatus', { connectionEvent: 'Remote host disconnected.', statusCode: error?.code ?? 0, description: error?.message ?? 'OK' });
        for (const resolve of this.closeWaiters.splice(0)) resolve();
        return;
      }
      case 'channelOpenRequest': {
        const fwd = this.forwardings.match(event.connectedAddress, event.connectedPort)!;
        const request: ChannelOpenRequestEvent = {
          channelId: event.channel,
          service: event.service,
          connectedAddress: event.connectedAddress,
          connectedPort: event.connectedPort,
          originAddress: event.originAddress,
          originPort: event.originPort,
          accept: true,
        };
        this.emit('sshChannelOpenRequest', request);
        if (!request.accept) {
          core.channels.reject(event.channel, 1, 'refused by the application');
          return;
        }
        this.forwardings.attach(event.channel, fwd, this.setting('ForwardingLocalHost'), this.forwarderHost(core));
        // Event mode accepts now; a local forwarder accepts once its target connection is up.
        if (!fwd.forwardingHost) core.channels.accept(event.channel);
        return;
      }
      case 'channelOpened':
        this.emit('sshChannelOpened', { channelId: event.channel });
        return;
      case 'channelData': {
        // The core's views are plain Uint8Arrays when a packet joined two reads; hand out a
        // Buffer (a view, not a copy) either way, as sockets and applications expect.
        const data = event.data;
        const view = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
        const forwarder = this.forwardings.forwarder(event.channel);
        if (forwarder) {
          forwarder.write(view);
          return;
        }
        this.driver?.keepInput(); // the application may hold on to what it is given
        for (const record of this.channelRecords.push(event.channel, view)) this.deliverData(event.channel, record.data, record.eolFound);
        // Records wait in a buffer bounded by MaxChannelDataLength, so credit is returned now.
        core.channels.consume(event.channel, view.length);
        return;
      }
      case 'channelEof':
        this.flushRecords(event.channel);
        this.forwardings.forwarder(event.channel)?.end();
        this.emit('sshChannelEOF', { channelId: event.channel });
        return;
      case 'channelClosed':
        this.flushRecords(event.channel);
        this.channelRecords.forget(event.channel);
        this.forwardings.detach(event.channel);
        this.resolveWritable(event.channel);
        this.emit('sshChannelClosed', { channelId: event.channel });
        return;
      case 'channelWritable':
        this.forwardings.forwarder(event.channel)?.resume();
        this.resolveWritable(event.channel);
        this.emit('sshChannelReadyToSend', { channelId: event.channel });
        return;
      case 'channelRequest': {
        const request = { channelId: event.channel, requestType: event.requestType, requestData: event.data, success: false };
        this.emit('sshChannelRequest', request);
        if (event.wantReply) core.channels.replyChannelRequest(event.channel, request.success);
        if (request.success) this.emit('sshChannelRequested', { channelId: event.channel, requestType: event.requestType, requestData: event.data });
        return;
      }
    }
  }

  private deliverData(channelId: number, channelData: Uint8Array, channelDataEOLFound: boolean): void {
    this.deliveringEolFound = channelDataEOLFound;
    try {
      this.emit('sshChannelData', { channelId, channelData, channelDataEOLFound });
    } finally {
      this.deliveringEolFound = null;
    }
  }

  /** Delivers what a record chunker still holds when its channel ends. */
  private flushRecords(channel: number): void {
    const rest = this.channelRecords.flush(channel);
    if (rest) this.deliverData(channel, rest.data, false);
  }

  private resolveWritable(channel: number): void {
    const waiters = this.writableWaiters.get(channel);
    if (!waiters) return;
    this.writableWaiters.delete(channel);
    for (const w of waiters) w();
  }

  private waitWritable(channel: number): Promise<void> {
    return withTimeout(this.timeout, `sending on channel ${channel}`, () =>
      new Promise<void>((resolve) => {
        const list = this.writableWaiters.get(channel) ?? [];
        list.push(resolve);
        this.writableWaiters.set(channel, list);
      }),
    );
  }

  private waitForClose(): Promise<void> {
    if (!this.core || this.core.isClosed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Resolves once `condition` holds; it is re-checked whenever the connection makes progress. */
  private waitUntil(condition: () => boolean, seconds: number, what: string): Promise<void> {
    if (condition()) return Promise.resolve();
    let check: () => void = () => undefined;
    return withTimeout(seconds, what, () =>
      new Promise<void>((resolve) => {
        check = () => {
          if (condition()) resolve();
        };
        this.progressCheckers.add(check);
      }),
    ).finally(() => this.progressCheckers.delete(check));
  }

  /**
   * Local sockets write what the packets just handled gave them, one writev each; what the
   * kernel took at once goes back to the server as window. Returns true if any credit was given.
   */
  private uncorkForwarders(core: SshClientCore): boolean {
    if (this.corkedForwarders.length === 0) return false;
    let credited = false;
    for (const forwarder of this.corkedForwarders.splice(0)) {
      const written = forwarder.uncork();
      if (written > 0) {
        core.act(() => core.channels.consume(forwarder.channel, written));
        credited = true;
      }
    }
    return credited;
  }

  private onProgress(): void {
    for (const check of [...this.progressCheckers]) check();
  }

  /** Drops the connection at once (failed logon, reset). */
  private abort(reason: SshError): void {
    this.pendingSocket?.destroy();
    this.pendingSocket = null;
    if (this.core && !this.core.isClosed) {
      this.core.disconnect(DisconnectReason.ByApplication, reason.message);
      this.driver?.flush();
    }
    this.cleanup();
  }

  private cleanup(): void {
    this.forwardings.clear();
    this.socket?.destroy();
    this.socket = null;
    this.pendingSocket = null;
    this.socketReader = null;
    this.driver = null;
    this.core = null;
  }
}
