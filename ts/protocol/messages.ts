// Message numbers and typed schemas for every SSH message the client sends or receives.
// A schema encodes and decodes one message; decoding rejects trailing bytes. Numbers 30-49
// (key exchange) and 60-79 (user authentication) mean different things per method, so their
// schemas are only ever decoded by the state that expects them.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';

export const MSG = {
  // RFC 4253 §12 transport
  DISCONNECT: 1,
  IGNORE: 2,
  UNIMPLEMENTED: 3,
  DEBUG: 4,
  SERVICE_REQUEST: 5,
  SERVICE_ACCEPT: 6,
  EXT_INFO: 7, // RFC 8308
  KEXINIT: 20,
  NEWKEYS: 21,
  // Key exchange method specific (RFC 4253 §8, RFC 5656, RFC 8731)
  KEXDH_INIT: 30,
  KEXDH_REPLY: 31,
  // RFC 4419 group exchange
  KEX_DH_GEX_GROUP: 31,
  KEX_DH_GEX_INIT: 32,
  KEX_DH_GEX_REPLY: 33,
  KEX_DH_GEX_REQUEST: 34,
  // RFC 4252 §6 user authentication
  USERAUTH_REQUEST: 50,
  USERAUTH_FAILURE: 51,
  USERAUTH_SUCCESS: 52,
  USERAUTH_BANNER: 53,
  USERAUTH_PK_OK: 60,
  USERAUTH_PASSWD_CHANGEREQ: 60,
  USERAUTH_INFO_REQUEST: 60, // RFC 4256
  USERAUTH_INFO_RESPONSE: 61,
  // RFC 4254 §9 connection
  GLOBAL_REQUEST: 80,
  REQUEST_SUCCESS: 81,
  REQUEST_FAILURE: 82,
  CHANNEL_OPEN: 90,
  CHANNEL_OPEN_CONFIRMATION: 91,
  CHANNEL_OPEN_FAILURE: 92,
  CHANNEL_WINDOW_ADJUST: 93,
  CHANNEL_DATA: 94,
  CHANNEL_EXTENDED_DATA: 95,
  CHANNEL_EOF: 96,
  CHANNEL_CLOSE: 97,
  CHANNEL_REQUEST: 98,
  CHANNEL_SUCCESS: 99,
  CHANNEL_FAILURE: 100,
} as const;

type FieldType = 'byte' | 'boolean' | 'uint32' | 'uint64' | 'string' | 'utf8' | 'mpint' | 'nameList' | 'rest' | 'cookie';

type FieldValue<T extends FieldType> = T extends 'byte' | 'uint32'
  ? number
  : T extends 'boolean'
    ? boolean
    : T extends 'uint64'
      ? bigint
      : T extends 'utf8'
        ? string
        : T extends 'nameList'
          ? string[]
          : Uint8Array;

type Fields = Readonly<Record<string, FieldType>>;
export type Decoded<F extends Fields> = { -readonly [K in keyof F]: FieldValue<F[K]> };

export interface MessageSchema<F extends Fields> {
  readonly id: number;
  readonly name: string;
  encode(values: Decoded<F>): Uint8Array;
  /** Decodes a whole payload (starting with the message number). */
  decode(payload: Uint8Array): Decoded<F>;
}

function writeField(w: Writer, type: FieldType, value: unknown): void {
  switch (type) {
    case 'byte':
      w.byte(value as number);
      break;
    case 'boolean':
      w.boolean(value as boolean);
      break;
    case 'uint32':
      w.uint32(value as number);
      break;
    case 'uint64':
      w.uint64(value as bigint);
      break;
    case 'string':
    case 'utf8':
      w.string(value as Uint8Array | string);
      break;
    case 'mpint':
      w.mpint(value as Uint8Array);
      break;
    case 'nameList':
      w.nameList(value as string[]);
      break;
    case 'cookie':
    case 'rest':
      w.raw(value as Uint8Array);
      break;
  }
}

function readField(r: Reader, type: FieldType): unknown {
  switch (type) {
    case 'byte':
      return r.byte();
    case 'boolean':
      return r.boolean();
    case 'uint32':
      return r.uint32();
    case 'uint64':
      return r.uint64();
    case 'string':
      return r.string();
    case 'utf8':
      return r.utf8();
    case 'mpint':
      return r.mpint();
    case 'nameList':
      return r.nameList();
    case 'cookie': {
      const out = new Uint8Array(16);
      for (let i = 0; i < 16; i++) out[i] = r.byte();
      return out;
    }
    case 'rest':
      return r.rest();
  }
}

export function message<F extends Fields>(id: number, name: string, fields: F): MessageSchema<F> {
  const entries = Object.entries(fields) as [string, FieldType][];
  return {
    id,
    name,
    encode(values) {
      const w = new Writer(64);
      w.byte(id);
      for (const [key, type] of entries) writeField(w, type, (values as Record<string, unknown>)[key]);
      return w.finish();
    },
    decode(payload) {
      const r = new Reader(payload);
      const got = r.byte();
      if (got !== id) {
        throw new SshError(Code.ProtocolError, `expected ${name} (${id}), got message ${got}`, 'peer');
      }
      const out: Record<string, unknown> = {};
      for (const [key, type] of entries) out[key] = readField(r, type);
      r.done(name);
      return out as Decoded<F>;
    },
  };
}

// RFC 4253 §11
export const Disconnect = message(MSG.DISCONNECT, 'SSH_MSG_DISCONNECT', {
  reason: 'uint32',
  description: 'string',
  language: 'string',
});
export const Unimplemented = message(MSG.UNIMPLEMENTED, 'SSH_MSG_UNIMPLEMENTED', { sequence: 'uint32' });
export const Ignore = message(MSG.IGNORE, 'SSH_MSG_IGNORE', { data: 'string' });
export const Debug = message(MSG.DEBUG, 'SSH_MSG_DEBUG', { alwaysDisplay: 'boolean', text: 'string', language: 'string' });
// RFC 4253 §10
export const ServiceRequest = message(MSG.SERVICE_REQUEST, 'SSH_MSG_SERVICE_REQUEST', { service: 'utf8' });
export const ServiceAccept = message(MSG.SERVICE_ACCEPT, 'SSH_MSG_SERVICE_ACCEPT', { service: 'utf8' });
// RFC 8308 §2.3 (extensions are decoded by the transport)
export const ExtInfo = message(MSG.EXT_INFO, 'SSH_MSG_EXT_INFO', { extensions: 'rest' });

// RFC 4253 §7.1
export const KexInit = message(MSG.KEXINIT, 'SSH_MSG_KEXINIT', {
  cookie: 'cookie',
  kexAlgorithms: 'nameList',
  hostKeyAlgorithms: 'nameList',
  ciphersClientToServer: 'nameList',
  ciphersServerToClient: 'nameList',
  macsClientToServer: 'nameList',
  macsServerToClient: 'nameList',
  compressionClientToServer: 'nameList',
  compressionServerToClient: 'nameList',
  languagesClientToServer: 'nameList',
  languagesServerToClient: 'nameList',
  firstKexPacketFollows: 'boolean',
  reserved: 'uint32',
});
export type KexInitMessage = Decoded<typeof KexInit extends MessageSchema<infer F> ? F : never>;
export const NewKeys = message(MSG.NEWKEYS, 'SSH_MSG_NEWKEYS', {});

// RFC 5656 §4 / RFC 8731 §3 (ECDH and curve25519), RFC 4253 §8 (fixed-group DH)
export const KexEcdhInit = message(MSG.KEXDH_INIT, 'SSH_MSG_KEX_ECDH_INIT', { clientPublic: 'string' });
export const KexEcdhReply = message(MSG.KEXDH_REPLY, 'SSH_MSG_KEX_ECDH_REPLY', {
  hostKey: 'string',
  serverPublic: 'string',
  signature: 'string',
});
export const KexDhInit = message(MSG.KEXDH_INIT, 'SSH_MSG_KEXDH_INIT', { e: 'mpint' });
export const KexDhReply = message(MSG.KEXDH_REPLY, 'SSH_MSG_KEXDH_REPLY', {
  hostKey: 'string',
  f: 'mpint',
  signature: 'string',
});
// RFC 4419 §3
export const KexGexRequest = message(MSG.KEX_DH_GEX_REQUEST, 'SSH_MSG_KEX_DH_GEX_REQUEST', {
  min: 'uint32',
  preferred: 'uint32',
  max: 'uint32',
});
export const KexGexGroup = message(MSG.KEX_DH_GEX_GROUP, 'SSH_MSG_KEX_DH_GEX_GROUP', { p: 'mpint', g: 'mpint' });
export const KexGexInit = message(MSG.KEX_DH_GEX_INIT, 'SSH_MSG_KEX_DH_GEX_INIT', { e: 'mpint' });
export const KexGexReply = message(MSG.KEX_DH_GEX_REPLY, 'SSH_MSG_KEX_DH_GEX_REPLY', {
  hostKey: 'string',
  f: 'mpint',
  signature: 'string',
});

// RFC 4252 §5 (the method-specific tail is written by each auth method)
export const UserauthFailure = message(MSG.USERAUTH_FAILURE, 'SSH_MSG_USERAUTH_FAILURE', {
  methods: 'nameList',
  partialSuccess: 'boolean',
});
export const UserauthSuccess = message(MSG.USERAUTH_SUCCESS, 'SSH_MSG_USERAUTH_SUCCESS', {});
export const UserauthBanner = message(MSG.USERAUTH_BANNER, 'SSH_MSG_USERAUTH_BANNER', {
  text: 'utf8',
  language: 'string',
});
// RFC 4252 §7
export const UserauthPkOk = message(MSG.USERAUTH_PK_OK, 'SSH_MSG_USERAUTH_PK_OK', {
  algorithm: 'utf8',
  publicKey: 'string',
});
// RFC 4252 §8
export const UserauthPasswdChangeReq = message(MSG.USERAUTH_PASSWD_CHANGEREQ, 'SSH_MSG_USERAUTH_PASSWD_CHANGEREQ', {
  prompt: 'utf8',
  language: 'string',
});
// RFC 4256 §3.2 (prompts are decoded by the keyboard-interactive method)
export const UserauthInfoRequest = message(MSG.USERAUTH_INFO_REQUEST, 'SSH_MSG_USERAUTH_INFO_REQUEST', {
  body: 'rest',
});

// RFC 4254 §4
export const GlobalRequest = message(MSG.GLOBAL_REQUEST, 'SSH_MSG_GLOBAL_REQUEST', {
  name: 'utf8',
  wantReply: 'boolean',
  data: 'rest',
});
export const RequestSuccess = message(MSG.REQUEST_SUCCESS, 'SSH_MSG_REQUEST_SUCCESS', { data: 'rest' });
export const RequestFailure = message(MSG.REQUEST_FAILURE, 'SSH_MSG_REQUEST_FAILURE', {});

// RFC 4254 §5.1
export const ChannelOpen = message(MSG.CHANNEL_OPEN, 'SSH_MSG_CHANNEL_OPEN', {
  type: 'utf8',
  senderChannel: 'uint32',
  initialWindow: 'uint32',
  maxPacket: 'uint32',
  data: 'rest',
});
export const ChannelOpenConfirmation = message(MSG.CHANNEL_OPEN_CONFIRMATION, 'SSH_MSG_CHANNEL_OPEN_CONFIRMATION', {
  recipientChannel: 'uint32',
  senderChannel: 'uint32',
  initialWindow: 'uint32',
  maxPacket: 'uint32',
  data: 'rest',
});
export const ChannelOpenFailure = message(MSG.CHANNEL_OPEN_FAILURE, 'SSH_MSG_CHANNEL_OPEN_FAILURE', {
  recipientChannel: 'uint32',
  reason: 'uint32',
  description: 'utf8',
  language: 'string',
});
export const ChannelOpenFailureReason = {
  AdministrativelyProhibited: 1,
  ConnectFailed: 2,
  UnknownChannelType: 3,
  ResourceShortage: 4,
} as const;
// RFC 4254 §5.2
export const ChannelWindowAdjust = message(MSG.CHANNEL_WINDOW_ADJUST, 'SSH_MSG_CHANNEL_WINDOW_ADJUST', {
  recipientChannel: 'uint32',
  bytesToAdd: 'uint32',
});
export const ChannelData = message(MSG.CHANNEL_DATA, 'SSH_MSG_CHANNEL_DATA', {
  recipientChannel: 'uint32',
  data: 'string',
});
export const ChannelExtendedData = message(MSG.CHANNEL_EXTENDED_DATA, 'SSH_MSG_CHANNEL_EXTENDED_DATA', {
  recipientChannel: 'uint32',
  dataType: 'uint32',
  data: 'string',
});
// RFC 4254 §5.3
export const ChannelEof = message(MSG.CHANNEL_EOF, 'SSH_MSG_CHANNEL_EOF', { recipientChannel: 'uint32' });
export const ChannelClose = message(MSG.CHANNEL_CLOSE, 'SSH_MSG_CHANNEL_CLOSE', { recipientChannel: 'uint32' });
// RFC 4254 §5.4
export const ChannelRequest = message(MSG.CHANNEL_REQUEST, 'SSH_MSG_CHANNEL_REQUEST', {
  recipientChannel: 'uint32',
  type: 'utf8',
  wantReply: 'boolean',
  data: 'rest',
});
export const ChannelSuccess = message(MSG.CHANNEL_SUCCESS, 'SSH_MSG_CHANNEL_SUCCESS', { recipientChannel: 'uint32' });
export const ChannelFailure = message(MSG.CHANNEL_FAILURE, 'SSH_MSG_CHANNEL_FAILURE', { recipientChannel: 'uint32' });

// RFC 4254 §7.2: the type-specific part of a forwarded-tcpip CHANNEL_OPEN
export const ForwardedTcpipData = {
  decode(data: Uint8Array) {
    const r = new Reader(data);
    const out = {
      connectedAddress: r.utf8(),
      connectedPort: r.uint32(),
      originAddress: r.utf8(),
      originPort: r.uint32(),
    };
    r.done('forwarded-tcpip channel data');
    return out;
  },
};

// RFC 4254 §7.2: the type-specific part of a direct-tcpip CHANNEL_OPEN (a connection the
// client asks the server to make: how a jump host carries the next hop)
export const DirectTcpipData = {
  encode(fields: { host: string; port: number; originAddress: string; originPort: number }): Uint8Array {
    return new Writer(32 + (fields.host.length + fields.originAddress.length) * 3).string(fields.host).uint32(fields.port).string(fields.originAddress).uint32(fields.originPort).finish();
  },
};

const NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(MSG)) if (!NAMES.has(value)) NAMES.set(value, name);

/** Short name of a message number for logs; numbers without a name print as hex. */
export function messageName(id: number): string {
  return NAMES.get(id) ?? `0x${id.toString(16)}`;
}
