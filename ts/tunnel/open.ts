// The short path most users want: one call that logs on, requests one remote forwarding
// joined to a local service, and returns the bound port and a way to close it. The tunnel
// reconnects by itself (AutoReconnect 1 unless `config` says otherwise) and reports each
// change through `onState`; an AbortSignal stops it like close().

import { SSHReverseTunnel, SshAuthMode, type SshIdentity } from './tunnel.js';
import type { CryptoProvider } from '../crypto/provider.js';
import { loadCryptoProvider, type CryptoProviderName } from '../crypto/select.js';
import type { TunnelStateEvent } from './events.js';
import type { JumpHost } from './jump.js';

/** What openReverseTunnel connects to, how it logs on, and which remote port it forwards to which local address. */
export interface OpenReverseTunnelOptions {
  host: string;
  port?: number;
  username: string;
  password?: string;
  /**
   * Private key text (OpenSSH or PEM) or a path to it. A key file of yours that group or
   * others may access is refused with error 10013, as OpenSSH refuses it (chmod 600 it).
   */
  privateKey?: string;
  passphrase?: string;
  /**
   * More keys, tried after `privateKey` in this order within one connection (see
   * SSHReverseTunnel.identities); only the one the server accepts signs.
   */
  identities?: SshIdentity[];
  /**
   * The server key to trust: an OpenSSH public key line or a fingerprint ("SHA256:...").
   * Without it (or acceptAnyHostKey) the connection is refused with error 1030.
   */
  hostKey?: string;
  /** Trust whatever key the server shows. Only for tests on loopback. */
  acceptAnyHostKey?: boolean;
  /** Where the server listens: address (default "localhost") and port (0 = any free port). */
  remote: { address?: string; port: number };
  /** The local service each connection is joined to: a host (default "localhost") and port, or a Unix socket path. */
  local: { host?: string; port: number } | { path: string };
  /** Seconds for logon and each request (default 60). */
  timeout?: number;
  /** Extra settings as "Name=Value" strings. */
  config?: string[];
  /** A provider, or the name of one to load (native, wasm, node); default: the automatic one (see SSHReverseTunnel.cryptoProvider). */
  cryptoProvider?: CryptoProvider | CryptoProviderName;
  /**
   * Called at every change of state: connecting, up, down (with why), reconnecting (with the
   * attempt and the wait before it) and closed (final; error null after close()).
   */
  onState?: (event: TunnelStateEvent) => void;
  /** Aborting it closes the tunnel as close() does (or abandons the logon still under way). */
  signal?: AbortSignal;
  /**
   * Reach the server through a proxy: `http://[user:pass@]host[:port]` (CONNECT),
   * `socks4://`, `socks4a://`, `socks5://` (names resolved here) or `socks5h://` (by the proxy).
   * Reconnects go the same way.
   */
  proxy?: string;
  /**
   * Reach the server through these SSH jump hosts in order (ssh's ProxyJump); each needs its
   * hostKey or verifyHostKey. Reconnects run the chain again.
   */
  jumpHosts?: JumpHost[];
}

/** A tunnel opened by openReverseTunnel: the port the server listens on, the tunnel itself, and how to close it. */
export interface OpenedReverseTunnel {
  /**
   * The port the server listens on (the allocated one when remote.port was 0). After a
   * reconnect that could not have the old port back, the new one.
   */
  readonly port: number;
  tunnel: SSHReverseTunnel;
  /** Cancels the forwarding (the server has stopped listening once this resolves) and logs off. */
  close(): Promise<void>;
}

/**
 * Connects, logs on and asks the server to listen on a remote port (`ssh -R`) in one call;
 * the promise resolves once the forwarding is in place and rejects with an SshError otherwise.
 * The 90 % case of SSHReverseTunnel in ten lines (see the README).
 */
export async function openReverseTunnel(options: OpenReverseTunnelOptions): Promise<OpenedReverseTunnel> {
  const tunnel = new SSHReverseTunnel();
  if (options.cryptoProvider) {
    tunnel.cryptoProvider = typeof options.cryptoProvider === 'string' ? loadCryptoProvider(options.cryptoProvider) : options.cryptoProvider;
  }
  tunnel.sshHost = options.host;
  tunnel.sshPort = options.port ?? 22;
  tunnel.sshUser = options.username;
  if (options.timeout !== undefined) tunnel.timeout = options.timeout;
  for (const identity of options.identities ?? []) tunnel.addIdentity(identity);
  if (options.privateKey || tunnel.identities.length > 0) {
    tunnel.sshAuthMode = options.password ? SshAuthMode.MultiFactor : SshAuthMode.PublicKey;
  }
  if (options.privateKey) {
    tunnel.sshCertStore = options.privateKey; // text or path: credentials.ts tells them apart and reads the file
    tunnel.sshCertStorePassword = options.passphrase ?? '';
  }
  if (options.password) tunnel.sshPassword = options.password;
  if (options.hostKey) tunnel.sshAcceptServerHostKey = options.hostKey;
  if (options.proxy) tunnel.proxy = options.proxy;
  if (options.jumpHosts) tunnel.jumpHosts = options.jumpHosts;
  if (options.acceptAnyHostKey) tunnel.config('SSHAcceptAnyServerHostKey=True');
  for (const setting of options.config ?? []) tunnel.config(setting);
  if (options.onState) tunnel.on('tunnelState', options.onState);
  const signal = options.signal;
  signal?.throwIfAborted();
  const abandon = () => tunnel.reset();
  signal?.addEventListener('abort', abandon, { once: true });
  try {
    await tunnel.sshLogon();
  } finally {
    signal?.removeEventListener('abort', abandon);
  }
  const address = options.remote.address ?? 'localhost';
  let port: number;
  try {
    signal?.throwIfAborted();
    const local = options.local;
    port = await ('path' in local
      ? tunnel.requestForwarding(address, options.remote.port, local.path.includes('/') ? local.path : `./${local.path}`, 0) // a '/' marks a path
      : tunnel.requestForwarding(address, options.remote.port, local.host ?? 'localhost', local.port));
  } catch (error) {
    await tunnel.sshLogoff();
    throw error;
  }
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      signal?.removeEventListener('abort', onAbort);
      const current = tunnel.forwardings[0];
      if (tunnel.connected && current) await tunnel.cancelForwarding(address, current.boundPort).catch(() => undefined);
      await tunnel.sshLogoff();
    })());
  const onAbort = () => void close();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    get port() {
      return tunnel.forwardings[0]?.boundPort ?? port;
    },
    tunnel,
    close,
  };
}
