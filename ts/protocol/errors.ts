// The one error type of revtun and the numeric codes it carries. The numbers are the
// documented SSHReverseTunnel error codes (SSH 1001-1133, TCP client 100-1120, socket
// 10004-11004); `disconnectReasonFor` is the single place that maps them to RFC 4253 §11.1
// disconnect reasons.

export const Code = {
  // SSH layer
  ServerDisconnected: 1001,
  BadVersion: 1002,
  NegotiationFailed: 1003,
  UnsupportedAlgorithm: 1005,
  CannotSetKeys: 1006,
  UnexpectedAlgorithm: 1010,
  ExchangeHashFailed: 1011,
  CannotMakeKey: 1012,
  CannotSign: 1013,
  CannotEncrypt: 1014,
  CannotDecrypt: 1015,
  CannotDecompress: 1016,
  ChannelOpenFailed: 1020,
  InvalidChannelId: 1021,
  InvalidChannelData: 1022,
  InvalidChannelMessage: 1023,
  Unimplemented: 1024,
  /** A malformed message, or one that is not allowed in the current state. */
  ProtocolError: 1027,
  HostKeyRejected: 1030,
  HostKeyVerifyFailed: 1031,
  AuthFailed: 1032,
  ChannelRequestFailed: 1033,
  DhFailed: 1034,
  ConnectionFailed: 1036,
  ReconnectLimit: 1037,
  EcdhFailed: 1038,
  KeepAliveLimit: 1039,
  RequestFailure: 1098,
  WouldBlock: 1130,
  WouldBlockRekey: 1133,
  // TCP client
  CannotChangePort: 100,
  CannotChangeHost: 101,
  InvalidAddress: 102,
  AlreadyConnected: 104,
  CannotChangeLocalPort: 106,
  CannotChangeLocalHost: 107,
  PortZero: 116,
  CannotChangeMaxLineLength: 112,
  CodePageConversion: 434,
  Timeout: 301,
  BadState: 211,
  NotConnected: 212,
  AlreadyConnecting: 1105,
  ConnectionDropped: 1120,
  // Socket
  Interrupted: 10004,
  AccessDenied: 10013,
  BadArgument: 10022,
  TooManyFiles: 10024,
  AddressInUse: 10048,
  AddressNotAvailable: 10049,
  NetworkDown: 10050,
  NetworkUnreachable: 10051,
  ConnectionAborted: 10053,
  ConnectionReset: 10054,
  NotSocketConnected: 10057,
  SocketTimeout: 10060,
  ConnectionRefused: 10061,
  HostDown: 10064,
  HostUnreachable: 10065,
  HostNotFound: 11001,
  HostNotFoundTryAgain: 11002,
  DnsFailure: 11003,
  TunnelReconnectLimit: 10057,
} as const;

export type ErrorCode = (typeof Code)[keyof typeof Code];

/** Who caused the failure: our own side (bad options, local I/O) or the SSH peer. */
export type ErrorOrigin = 'local' | 'peer';

export class SshError extends Error {
  override readonly name = 'SshError';

  constructor(
    readonly code: number,
    message: string,
    readonly origin: ErrorOrigin = 'local',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** RFC 4253 §11.1 reason codes. */
export const DisconnectReason = {
  HostNotAllowedToConnect: 1,
  ProtocolError: 2,
  KeyExchangeFailed: 3,
  Reserved: 4,
  MacError: 5,
  CompressionError: 6,
  ServiceNotAvailable: 7,
  ProtocolVersionNotSupported: 8,
  HostKeyNotVerifiable: 9,
  ConnectionLost: 10,
  ByApplication: 11,
  TooManyConnections: 12,
  AuthCancelledByUser: 13,
  NoMoreAuthMethodsAvailable: 14,
  IllegalUserName: 15,
} as const;

export function disconnectReasonFor(error: SshError): number {
  switch (error.code) {
    case Code.BadVersion:
      return DisconnectReason.ProtocolVersionNotSupported;
    case Code.NegotiationFailed:
    case Code.UnsupportedAlgorithm:
    case Code.DhFailed:
    case Code.EcdhFailed:
    case Code.ExchangeHashFailed:
    case Code.CannotMakeKey:
      return DisconnectReason.KeyExchangeFailed;
    case Code.CannotDecrypt:
      return DisconnectReason.MacError;
    case Code.CannotDecompress:
      return DisconnectReason.CompressionError;
    case Code.HostKeyRejected:
    case Code.HostKeyVerifyFailed:
      return DisconnectReason.HostKeyNotVerifiable;
    case Code.AuthFailed:
      return DisconnectReason.NoMoreAuthMethodsAvailable;
    case Code.KeepAliveLimit:
      return DisconnectReason.ConnectionLost;
    default:
      return error.origin === 'peer' ? DisconnectReason.ProtocolError : DisconnectReason.ByApplication;
  }
}

/** Maps a Node.js socket error code (ECONNREFUSED, ...) to the documented socket error number. */
export function socketErrorCode(systemCode: string | undefined): number {
  switch (systemCode) {
    case 'ECONNREFUSED':
      return Code.ConnectionRefused;
    case 'ECONNRESET':
    case 'EPIPE':
      return Code.ConnectionReset;
    case 'ETIMEDOUT':
      return Code.SocketTimeout;
    case 'ENOTFOUND':
      return Code.HostNotFound;
    case 'EAI_AGAIN':
      return Code.HostNotFoundTryAgain;
    case 'EADDRINUSE':
      return Code.AddressInUse;
    case 'EADDRNOTAVAIL':
      return Code.AddressNotAvailable;
    case 'ENETUNREACH':
      return Code.NetworkUnreachable;
    case 'EHOSTUNREACH':
      return Code.HostUnreachable;
    case 'EHOSTDOWN':
      return Code.HostDown;
    case 'EACCES':
    case 'EPERM':
      return Code.AccessDenied;
    case 'EMFILE':
    case 'ENFILE':
      return Code.TooManyFiles;
    case 'ECONNABORTED':
      return Code.ConnectionAborted;
    case 'EINVAL':
      return Code.BadArgument;
    default:
      return Code.ConnectionFailed;
  }
}

/** Any thrown value as an SshError (unexpected ones as 1036, with the original as cause). */
export function asSshError(error: unknown): SshError {
  return error instanceof SshError ? error : new SshError(Code.ConnectionFailed, String((error as Error)?.message ?? error), 'local', { cause: error });
}
