// The one error type of revtun and the numeric codes it carries. The numbers are the
// documented SSHReverseTunnel error codes (SSH 1001-1133, TCP client 100-1120, socket
// 10004-11004); `disconnectReasonFor` is the single place that maps them to RFC 4253 §11.1
// disconnect reasons.

/**
 * Every documented error code, once: its name in the code, its number, what it means (in
 * revtun's words), and where revtun raises it. `Code` below is derived from this table, and so
 * are the README's error list (scripts/docs-tables.mjs) and the test that compares it with the
 * reference documentation. A code marked `raised: false` is documented for a platform or a
 * feature revtun does not have (Winsock, listening sockets); it is defined so that a program
 * ported from the documentation can name it.
 */
export const ERROR_TABLE = {
  // ---- the SSH layer
  ServerDisconnected: [1001, 'The server ended the connection with a DISCONNECT message (once the tunnel is up, a normal close "by application" is status 0 instead).'],
  BadVersion: [1002, "The server's version line is not SSH-2.0 (or SSH-1.99), or is malformed."],
  NegotiationFailed: [1003, 'No algorithm in some category is acceptable to both sides.'],
  UnsupportedAlgorithm: [1005, 'An algorithm was named that this build or crypto provider does not implement.'],
  CannotSetKeys: [1006, 'The keys derived by the key exchange could not be installed.'],
  UnexpectedAlgorithm: [1010, 'The server used an algorithm other than the one negotiated (a host key or signature of another type).'],
  ExchangeHashFailed: [1011, 'The exchange hash of a key exchange could not be computed.'],
  CannotMakeKey: [1012, 'A key pair for the key exchange could not be generated.'],
  CannotSign: [1013, 'A signature (public-key authentication) could not be made.'],
  CannotEncrypt: [1014, 'An outgoing packet could not be encrypted.'],
  CannotDecrypt: [1015, 'An incoming packet failed its integrity check or could not be decrypted.'],
  CannotDecompress: [1016, 'An incoming compressed packet is corrupt or inflates past the packet size limit.'],
  ChannelOpenFailed: [1020, 'A channel could not be opened (refused by the server, or the local target could not be reached).'],
  InvalidChannelId: [1021, 'A channel number that is not open was used.'],
  InvalidChannelData: [1022, "Channel data broke the channel's rules (beyond the window, after EOF, too large)."],
  InvalidChannelMessage: [1023, "A channel message is malformed or not allowed in the channel's state."],
  Unimplemented: [1024, 'The server answered UNIMPLEMENTED to a message revtun sent.'],
  ProtocolError: [1027, 'The server sent a malformed message, or one not allowed at that point.'],
  HostKeyRejected: [1030, "The server's host key is not trusted (accept it in the sshServerAuthentication event, or configure it)."],
  HostKeyVerifyFailed: [1031, "The server's signature over the key exchange does not verify with its host key."],
  AuthFailed: [1032, 'Authentication failed; the description says which methods were tried.'],
  ChannelRequestFailed: [1033, 'The server refused a channel request.'],
  DhFailed: [1034, 'A Diffie-Hellman exchange failed (a bad group or public value).'],
  ConnectionFailed: [1036, 'The SSH connection failed for a reason not covered by another code; also an application event listener that threw (reported, and the tunnel carries on).'],
  ReconnectLimit: [1037, 'Reconnecting gave up after MaxRetryCount attempts.'],
  EcdhFailed: [1038, 'An elliptic-curve (or hybrid post-quantum) key exchange failed: a bad public value or shared secret.'],
  KeepAliveLimit: [1039, 'The server left SSHKeepAliveCountMax keep-alives in a row unanswered.'],
  RequestFailure: [1098, 'The server refused a global request (a port forwarding, for instance).'],
  WouldBlock: [1130, "The data cannot be sent now: the channel's window or the socket is full."],
  WouldBlockRekey: [1133, 'The data cannot be sent now: a key re-exchange is in progress.'],
  // ---- the TCP client
  CannotChangePort: [100, 'sshPort cannot change while a connection is in progress.'],
  CannotChangeHost: [101, 'sshHost cannot change while a connection is in progress.'],
  InvalidAddress: [102, 'The server address is not usable (0.0.0.0, or empty).'],
  AlreadyConnected: [104, 'Already connected: log off before connecting again.'],
  CannotChangeLocalPort: [106, 'localPort cannot change while a connection is in progress.'],
  CannotChangeLocalHost: [107, 'localHost cannot change while a connection is in progress.'],
  CannotChangeMaxLineLength: [112, 'MaxLineLength cannot change while a connection is in progress.'],
  PortZero: [116, 'The server port cannot be 0.'],
  CannotChangeUseConnection: [117, 'UseConnection cannot change while the component is active.', { raised: false }],
  OperationWouldBlock: [135, 'The operation would block.', { raised: false }],
  TimeoutTcp: [201, 'Timeout (TCP layer).', { raised: false }],
  BadState: [211, 'The action is not possible in the current state.'],
  NotConnected: [212, 'The action needs a connection, and there is none.'],
  Listening: [213, 'The action is not possible while listening.', { raised: false }],
  Timeout: [301, 'Timeout: nothing moved for `timeout` seconds (or the whole call took that long, with AbsoluteTimeout).'],
  CannotOpenFile: [302, 'A file could not be opened.', { raised: false }],
  CodePageConversion: [434, 'A string has a character the selected CodePage cannot encode.'],
  AlreadyConnecting: [1105, 'A connection is already being made: wait for it, or close it first.'],
  ConnectFirst: [1117, 'Connect first.', { raised: false }],
  CannotChangeLocalHostNow: [1119, 'LocalHost cannot change while a connection is in progress.', { raised: false }],
  ConnectionDropped: [1120, 'The server closed the TCP connection without a DISCONNECT message.'],
  // ---- sockets (Winsock numbering, as documented; the OS's errno is mapped by socketErrorCode)
  Interrupted: [10004, 'Interrupted system call.'],
  BadFileNumber: [10009, 'Bad file descriptor.'],
  AccessDenied: [10013, 'Access denied (a file others may read, a proxy that refused the credentials, a privileged port).'],
  BadAddress: [10014, 'Bad address.'],
  BadArgument: [10022, 'Invalid argument: a bad option, setting or value.'],
  TooManyFiles: [10024, 'Too many open files.'],
  SocketWouldBlock: [10035, 'Operation would block.'],
  InProgress: [10036, 'Operation now in progress.'],
  AlreadyInProgress: [10037, 'Operation already in progress.'],
  NotSocket: [10038, 'Socket operation on something that is not a socket.'],
  DestinationRequired: [10039, 'Destination address required.'],
  MessageTooLong: [10040, 'Message too long.'],
  WrongProtocolType: [10041, 'Protocol wrong type for socket.'],
  BadProtocolOption: [10042, 'Bad protocol option.'],
  ProtocolNotSupported: [10043, 'Protocol not supported.'],
  SocketTypeNotSupported: [10044, 'Socket type not supported.'],
  OperationNotSupported: [10045, 'Operation not supported on socket.'],
  ProtocolFamilyNotSupported: [10046, 'Protocol family not supported.'],
  AddressFamilyNotSupported: [10047, 'Address family not supported by the protocol family.'],
  AddressInUse: [10048, 'Address already in use.'],
  AddressNotAvailable: [10049, 'Cannot assign the requested address.'],
  NetworkDown: [10050, 'Network is down.'],
  NetworkUnreachable: [10051, 'Network is unreachable.'],
  NetworkReset: [10052, 'The network dropped the connection on reset.'],
  ConnectionAborted: [10053, 'Connection aborted by this host.'],
  ConnectionReset: [10054, 'Connection reset by the peer.'],
  NoBufferSpace: [10055, 'No buffer space available.'],
  AlreadySocketConnected: [10056, 'Socket is already connected.'],
  NotSocketConnected: [10057, 'Socket is not connected (for the tunnel: reconnecting a forwarding gave up).'],
  SocketShutdown: [10058, 'Cannot send after socket shutdown.'],
  TooManyReferences: [10059, 'Too many references.'],
  SocketTimeout: [10060, 'Connection timed out.'],
  ConnectionRefused: [10061, 'Connection refused.'],
  SymlinkLoop: [10062, 'Too many levels of symbolic links.'],
  NameTooLong: [10063, 'File name too long.'],
  HostDown: [10064, 'Host is down.'],
  HostUnreachable: [10065, 'No route to host.'],
  DirectoryNotEmpty: [10066, 'Directory not empty.'],
  TooManyProcesses: [10067, 'Too many processes.'],
  TooManyUsers: [10068, 'Too many users.'],
  QuotaExceeded: [10069, 'Disk quota exceeded.'],
  StaleHandle: [10070, 'Stale file handle.'],
  RemotePathTooDeep: [10071, 'Too many levels of remote in path.'],
  NetworkSubsystemUnavailable: [10091, 'Network subsystem unavailable (Winsock).', { raised: false }],
  WinsockVersion: [10092, 'Winsock version out of range.', { raised: false }],
  WinsockNotLoaded: [10093, 'Winsock not initialised.', { raised: false }],
  HostNotFound: [11001, 'Host not found.'],
  HostNotFoundTryAgain: [11002, 'Host not found for now (a temporary DNS failure; try again).'],
  DnsFailure: [11003, 'The name server failed for good (FORMERR, REFUSED, NOTIMP, SERVFAIL).'],
  NoAddressOfFamily: [11004, 'The name exists but has no address of the family asked for (UseIPv6).'],
} as const satisfies Record<string, readonly [number, string] | readonly [number, string, { raised: boolean }]>;

type Table = typeof ERROR_TABLE;

/** The documented error numbers by name (`Code.AuthFailed` is 1032). */
export const Code = {
  ...(Object.fromEntries(Object.entries(ERROR_TABLE).map(([name, [code]]) => [name, code])) as { readonly [K in keyof Table]: Table[K][0] }),
  /** The tunnel's own name for 10057: a forwarding that reconnecting could not bring back. */
  TunnelReconnectLimit: ERROR_TABLE.NotSocketConnected[0],
} as const;

/** One row of the table, for documentation and tests. */
export interface ErrorCodeRow {
  name: string;
  code: number;
  meaning: string;
  /** False where the code is documented for something revtun has no counterpart of. */
  raised: boolean;
}

export function errorCodeRows(): ErrorCodeRow[] {
  return Object.entries(ERROR_TABLE).map(([name, row]) => ({
    name,
    code: row[0],
    meaning: row[1],
    raised: (row as readonly unknown[])[2] === undefined ? true : (row[2] as { raised: boolean }).raised,
  }));
}

/** One of the documented numeric error codes (the values of `Code`). */
export type ErrorCode = (typeof Code)[keyof typeof Code];

/** Who caused the failure: our own side (bad options, local I/O) or the SSH peer. */
export type ErrorOrigin = 'local' | 'peer';

/**
 * The one error class of revtun: every failure carries its documented numeric `code` and its
 * `origin` (our own side, or the SSH peer). Messages never contain secrets.
 */
export class SshError extends Error {
  override readonly name = 'SshError';

  /**
   * The peer ended the connection normally (a DISCONNECT "by application"): the connection is
   * gone, and a tunnel still reconnects, but it is not reported as an error (status 0, "OK").
   */
  readonly normalClose: boolean;

  constructor(
    readonly code: number,
    message: string,
    readonly origin: ErrorOrigin = 'local',
    options?: { cause?: unknown; normalClose?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.normalClose = options?.normalClose ?? false;
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

/**
 * The documented socket number for each errno name Node reports (POSIX names; the documented
 * numbers are Winsock's, which follow BSD's order). getaddrinfo failures arrive as ENOTFOUND
 * (Node folds EAI_NONAME and EAI_NODATA into it), EAI_AGAIN and EAI_FAIL; c-ares (dns.resolve)
 * reports its own names.
 */
const SOCKET_ERRORS: Readonly<Record<string, number>> = {
  EINTR: Code.Interrupted,
  EBADF: Code.BadFileNumber,
  EACCES: Code.AccessDenied,
  EPERM: Code.AccessDenied,
  EFAULT: Code.BadAddress,
  EINVAL: Code.BadArgument,
  EMFILE: Code.TooManyFiles,
  ENFILE: Code.TooManyFiles,
  EAGAIN: Code.SocketWouldBlock,
  EWOULDBLOCK: Code.SocketWouldBlock,
  EINPROGRESS: Code.InProgress,
  EALREADY: Code.AlreadyInProgress,
  ENOTSOCK: Code.NotSocket,
  EDESTADDRREQ: Code.DestinationRequired,
  EMSGSIZE: Code.MessageTooLong,
  EPROTOTYPE: Code.WrongProtocolType,
  ENOPROTOOPT: Code.BadProtocolOption,
  EPROTONOSUPPORT: Code.ProtocolNotSupported,
  ESOCKTNOSUPPORT: Code.SocketTypeNotSupported,
  EOPNOTSUPP: Code.OperationNotSupported,
  ENOTSUP: Code.OperationNotSupported,
  EPFNOSUPPORT: Code.ProtocolFamilyNotSupported,
  EAFNOSUPPORT: Code.AddressFamilyNotSupported,
  EADDRINUSE: Code.AddressInUse,
  EADDRNOTAVAIL: Code.AddressNotAvailable,
  ENETDOWN: Code.NetworkDown,
  ENETUNREACH: Code.NetworkUnreachable,
  ENETRESET: Code.NetworkReset,
  ECONNABORTED: Code.ConnectionAborted,
  ECONNRESET: Code.ConnectionReset,
  EPIPE: Code.ConnectionReset,
  ENOBUFS: Code.NoBufferSpace,
  EISCONN: Code.AlreadySocketConnected,
  ENOTCONN: Code.NotSocketConnected,
  ESHUTDOWN: Code.SocketShutdown,
  ETOOMANYREFS: Code.TooManyReferences,
  ETIMEDOUT: Code.SocketTimeout,
  ECONNREFUSED: Code.ConnectionRefused,
  ELOOP: Code.SymlinkLoop,
  ENAMETOOLONG: Code.NameTooLong,
  EHOSTDOWN: Code.HostDown,
  EHOSTUNREACH: Code.HostUnreachable,
  ENOTEMPTY: Code.DirectoryNotEmpty,
  EPROCLIM: Code.TooManyProcesses,
  EUSERS: Code.TooManyUsers,
  EDQUOT: Code.QuotaExceeded,
  ESTALE: Code.StaleHandle,
  EREMOTE: Code.RemotePathTooDeep,
  // Name resolution.
  ENOTFOUND: Code.HostNotFound,
  EAI_NONAME: Code.HostNotFound,
  EAI_AGAIN: Code.HostNotFoundTryAgain,
  ETIMEOUT: Code.HostNotFoundTryAgain,
  EAI_FAIL: Code.DnsFailure,
  ESERVFAIL: Code.DnsFailure,
  EREFUSED: Code.DnsFailure,
  EFORMERR: Code.DnsFailure,
  ENOTIMP: Code.DnsFailure,
  EAI_NODATA: Code.NoAddressOfFamily,
  ENODATA: Code.NoAddressOfFamily,
  EAI_ADDRFAMILY: Code.NoAddressOfFamily,
};

/** Maps a Node.js socket error code (ECONNREFUSED, ...) to the documented socket error number (1036 when it has none). */
export function socketErrorCode(systemCode: string | undefined): number {
  return (systemCode !== undefined && Object.hasOwn(SOCKET_ERRORS, systemCode) ? SOCKET_ERRORS[systemCode] : undefined) ?? Code.ConnectionFailed;
}

/** Any thrown value as an SshError (unexpected ones as 1036, with the original as cause). */
export function asSshError(error: unknown): SshError {
  return error instanceof SshError ? error : new SshError(Code.ConnectionFailed, String((error as Error)?.message ?? error), 'local', { cause: error });
}
