// The documented SSHReverseTunnel events, with their parameters as camelCase fields.
// Parameters the handler may set (accept, response, success) are plain writable fields
// read back after every listener has run.

import { EventEmitter } from 'node:events';
import type { SshError } from '../protocol/errors.js';
import type { HostCertificateInfo, X509HostKeyInfo } from '../protocol/client.js';

/** The `connected` event: the SSH connection is up and authenticated. */
export interface ConnectedEvent {
  statusCode: number;
  description: string;
}
/** The `connectionStatus` event: a step of establishing the connection (`connectionEvent` names it). */
export interface ConnectionStatusEvent {
  connectionEvent: string;
  statusCode: number;
  description: string;
}
/** The `disconnected` event: the connection ended; `statusCode` 0 and "OK" when it ended normally, else the error code. */
export interface DisconnectedEvent {
  statusCode: number;
  description: string;
}
/** The `error` event: an error during data delivery, with its documented error code. */
export interface ErrorEvent {
  errorCode: number;
  description: string;
}
/** The `log` event: one message of the log, at `logLevel` (1 info, 2 verbose, 3 debug; the LogLevel setting chooses which are sent). */
export interface LogEvent {
  logLevel: number;
  message: string;
  logType: string;
}
/** The events that only name a channel: `sshChannelOpened`, `sshChannelEOF`, `sshChannelClosed`, `sshChannelReadyToSend`. */
export interface ChannelEvent {
  channelId: number;
}
/** sshChannelClosed. A revtun extension: the payload bytes that crossed the channel each way. */
export interface ChannelClosedEvent extends ChannelEvent {
  /** Sent to the server on this channel: for a forwarded connection, what the local target wrote back. */
  bytesSent: number;
  /** Received from the server on this channel: for a forwarded connection, what its remote client wrote. */
  bytesReceived: number;
}
/** The `sshChannelData` event: data that arrived on a channel. */
export interface ChannelDataEvent extends ChannelEvent {
  channelData: Uint8Array;
  /**
   * With ChannelDataEOL and MaxChannelDataLength set for the channel: true when the data
   * ends with the EOL string, false when it was cut at MaxChannelDataLength (or is what was
   * left when the channel ended). Always true otherwise.
   */
  channelDataEOLFound: boolean;
}
/** The `sshChannelOpenRequest` event: the server opens a channel for a connection to a forwarded port. */
export interface ChannelOpenRequestEvent extends ChannelEvent {
  service: string;
  connectedAddress: string;
  connectedPort: number;
  originAddress: string;
  originPort: number;
  /** Set to false to refuse the connection. Defaults to true. */
  accept: boolean;
}
/** The `sshChannelRequest` event: the server sent a channel request that wants an answer. */
export interface ChannelRequestEvent extends ChannelEvent {
  requestType: string;
  /** The type-specific rest of the request. */
  requestData: Uint8Array;
  /** Set to true to answer the request with success. Defaults to false. */
  success: boolean;
}
/** The `sshChannelRequested` event: a channel request answered with success, for any further processing it needs. */
export interface ChannelRequestedEvent extends ChannelEvent {
  requestType: string;
  requestData: Uint8Array;
}
/** The `sshKeyboardInteractive` event: one prompt of keyboard-interactive authentication, answered by setting `response`. */
export interface KeyboardInteractiveEvent {
  name: string;
  instructions: string;
  prompt: string;
  echoResponse: boolean;
  /** Set to the answer for this prompt. */
  response: string;
}
/** amCustom: `packet` is the server's last message (hex); set it to the hex of the message to send, or '' to give up. */
export interface CustomAuthEvent {
  packet: string;
}
/** The `sshServerAuthentication` event: the server's host key, to be trusted by setting `accept`. */
export interface ServerAuthenticationEvent {
  /** The SSH public key blob of the server (for a host certificate, the certified key). */
  hostKey: Uint8Array;
  /** Fingerprint per SSHFingerprintHashAlgorithm (SHA256 by default) in the documented hex form, "0a:1b:2c:…". */
  fingerprint: string;
  /** A revtun extension: the SHA-256 fingerprint as OpenSSH prints it ("SHA256:" and base64 without padding). */
  opensshFingerprint: string;
  /** The negotiated host key algorithm, e.g. ssh-ed25519 or ssh-ed25519-cert-v01@openssh.com. */
  keyAlgorithm: string;
  /** For an X.509 host key: the leaf certificate's subject DN ("O=Example, CN=gw"); for an OpenSSH host certificate: its key ID. Empty otherwise. */
  certSubject: string;
  /** For an X.509 host key: the leaf's issuer DN; for an OpenSSH host certificate: its CA key, as "ssh-ed25519 SHA256:...". Empty otherwise. */
  certIssuer: string;
  /** The host certificate's fields when the server presented one (its CA signature already verified). */
  certificate?: HostCertificateInfo;
  /** The X.509 chain's fields when the server presented an x509v3-* host key (its signature already verified, its chain not judged). */
  x509?: X509HostKeyInfo;
  status: number;
  /** Set to true to trust the key. Pre-set when the key matches sshAcceptServerHostKey. */
  accept: boolean;
}
/** The `sshStatus` event: a progress message about the connection. */
export interface StatusEvent {
  message: string;
}
/** The `reconnectAttempt` event: an attempt to re-establish the connection or a forwarding is about to start; set `cancel` to stop. */
export interface ReconnectAttemptEvent {
  host: string;
  port: number;
  /** This attempt's number in the current outage, from 1. */
  retryCount: number;
  /** Attempts left after this one; -1 when MaxRetryCount is 0 (no limit). */
  retriesRemaining: number;
  maxRetryCount: number;
  /** RetryInterval, in seconds. */
  retryInterval: number;
  /** 0: the SSH connection is being re-established; 1: a forwarding on a live connection. */
  retryType: 0 | 1;
  /** With retryType 1: the remote port the forwarding asks for. */
  remoteListeningPort: number;
  /** Set to true to stop retrying. */
  cancel: boolean;
}

/**
 * A revtun extension: where the tunnel is in its life. `down` carries why the connection was
 * lost; `reconnecting` the attempt about to start and how long it waits first; `closed` is
 * final (error null after a clean logoff).
 */
export type TunnelStateEvent =
  | { state: 'connecting' }
  | { state: 'up' }
  | { state: 'down'; error: SshError }
  | { state: 'reconnecting'; attempt: number; delayMs: number; error: SshError }
  | { state: 'closed'; error: SshError | null };

/**
 * A revtun extension: a forwarding is listening again after a reconnect. `boundPort` differs
 * from `previousPort` when the old port could not be had back (a port-0 forwarding whose
 * port was taken meanwhile).
 */
export interface ForwardingRestoredEvent {
  address: string;
  requestedPort: number;
  previousPort: number;
  boundPort: number;
  forwardingHost: string;
  forwardingPort: number;
  /** A dynamic (SOCKS) forwarding (requestDynamicForwarding). */
  dynamic: boolean;
}

/**
 * A revtun extension: a key exchange finished. `initial` for the connection's first; otherwise
 * `byServer` tells a re-exchange the server began from one we began (RekeyLimit, SSHKeyRenegotiate).
 */
export interface KeyExchangeEvent {
  initial: boolean;
  byServer: boolean;
  kex: string;
  hostKey: string;
  cipherClientToServer: string;
  cipherServerToClient: string;
  /** null for an AEAD cipher, which has no separate MAC. */
  macClientToServer: string | null;
  macServerToClient: string | null;
  compressionClientToServer: string;
  compressionServerToClient: string;
}

/** A revtun extension: the server answered a keep-alive (SSHKeepAliveInterval) after roundTripMs milliseconds. */
export interface KeepAliveEvent {
  roundTripMs: number;
}

/** Every event of SSHReverseTunnel with the parameters its listeners receive: the map `on`, `once` and `off` are typed by. */
export interface TunnelEvents {
  connected: [ConnectedEvent];
  connectionStatus: [ConnectionStatusEvent];
  disconnected: [DisconnectedEvent];
  error: [ErrorEvent];
  log: [LogEvent];
  sshChannelClosed: [ChannelClosedEvent];
  sshChannelData: [ChannelDataEvent];
  sshChannelEOF: [ChannelEvent];
  sshChannelOpened: [ChannelEvent];
  sshChannelOpenRequest: [ChannelOpenRequestEvent];
  sshChannelReadyToSend: [ChannelEvent];
  sshChannelRequest: [ChannelRequestEvent];
  sshChannelRequested: [ChannelRequestedEvent];
  sshKeyboardInteractive: [KeyboardInteractiveEvent];
  sshCustomAuth: [CustomAuthEvent];
  sshServerAuthentication: [ServerAuthenticationEvent];
  sshStatus: [StatusEvent];
  reconnectAttempt: [ReconnectAttemptEvent];
  tunnelState: [TunnelStateEvent];
  forwardingRestored: [ForwardingRestoredEvent];
  keyExchange: [KeyExchangeEvent];
  keepAlive: [KeepAliveEvent];
}

/** Every event the tunnel emits; listening for any other name is a mistake, and throws. */
export const TUNNEL_EVENT_NAMES = [
  'connected',
  'connectionStatus',
  'disconnected',
  'error',
  'log',
  'sshChannelClosed',
  'sshChannelData',
  'sshChannelEOF',
  'sshChannelOpened',
  'sshChannelOpenRequest',
  'sshChannelReadyToSend',
  'sshChannelRequest',
  'sshChannelRequested',
  'sshKeyboardInteractive',
  'sshCustomAuth',
  'sshServerAuthentication',
  'sshStatus',
  'reconnectAttempt',
  'tunnelState',
  'forwardingRestored',
  'keyExchange',
  'keepAlive',
] as const satisfies readonly (keyof TunnelEvents)[];
// The list must name every event of TunnelEvents: this fails to compile when one is missing.
const everyEventNamed: Exclude<keyof TunnelEvents, (typeof TUNNEL_EVENT_NAMES)[number]> extends never ? true : never = true;
void everyEventNamed;

/**
 * EventEmitter with the tunnel's event names and parameter types. A listener for a name that
 * is not one of them (a typo such as 'sshServerAuthenticaton', in plain JavaScript where the
 * types do not catch it) is refused with a TypeError instead of never being called.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly emitter = new EventEmitter();
  /** How many events have been emitted: doEvents() tells from it whether any were ready. */
  protected eventsEmitted = 0;

  constructor(private readonly eventNames: readonly string[]) {}

  private checkName(event: string): void {
    if (!this.eventNames.includes(event)) {
      throw new TypeError(`there is no event named '${String(event)}' (the events are: ${this.eventNames.join(', ')})`);
    }
  }

  /** Calls `listener` for every `event` from now on. An unknown event name throws a TypeError. */
  on<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.checkName(event);
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Calls `listener` for the next `event` only. An unknown event name throws a TypeError. */
  once<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.checkName(event);
    this.emitter.once(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** Removes a listener added with `on` or `once`. An unknown event name throws a TypeError. */
  off<K extends keyof Events & string>(event: K, listener: (...args: Events[K]) => void): this {
    this.checkName(event);
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  /** How many listeners `event` has. */
  listenerCount<K extends keyof Events & string>(event: K): number {
    return this.emitter.listenerCount(event);
  }

  /**
   * Calls each listener in turn. One that throws does not stop the others, and its error does
   * not travel up into revtun's socket callbacks (where it would abandon the connection's
   * work, or end the process): it goes to listenerThrew. 'error' without a listener is not an
   * exception either: failures also reject the pending promise.
   */
  protected emit<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    this.eventsEmitted++;
    // rawListeners: once() wrappers included, which remove themselves when called.
    for (const listener of this.emitter.rawListeners(event) as ((...a: unknown[]) => void)[]) {
      try {
        listener.apply(this, args);
      } catch (error) {
        this.listenerThrew(event, error);
      }
    }
  }

  /** A listener for `event` threw `error`; the emitter carries on. */
  protected listenerThrew(_event: string, _error: unknown): void {}
}
