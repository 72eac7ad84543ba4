// Algorithm negotiation (RFC 4253 §7.1), the key exchange methods (RFC 4253 §8 fixed
// groups, RFC 4419 group exchange, RFC 5656 ECDH, RFC 8731 curve25519), the exchange hash
// and key derivation (RFC 4253 §7.2). Each method is a small state machine fed the
// method-specific messages 30-49; it ends with the server's host key, signature and the
// shared secret, which the client core then verifies.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import { KexDhInit, KexDhReply, KexEcdhInit, KexEcdhReply, KexGexGroup, KexGexInit, KexGexReply, KexGexRequest, type KexInitMessage } from './messages.js';
import type { CryptoProvider, HashName, KeyAgreement, KeyAgreementKind } from '../crypto/provider.js';
import { HYBRID_KEX_METHODS, createHybridKexMethod } from './kex-hybrid.js';

export const STRICT_KEX_CLIENT = 'kex-strict-c-v00@openssh.com';
export const STRICT_KEX_SERVER = 'kex-strict-s-v00@openssh.com';
export const EXT_INFO_CLIENT = 'ext-info-c';

interface KexFamily {
  hash: HashName;
  /** 'hybrid': a post-quantum KEM with X25519 (./kex-hybrid.ts). */
  kind: 'ecdh' | 'dh' | 'gex' | 'hybrid';
  agreement?: KeyAgreementKind;
}

export const KEX_METHODS: Record<string, KexFamily> = {
  // Offered only when the crypto provider has the KEM (see hybridKexAvailable).
  ...Object.fromEntries(Object.entries(HYBRID_KEX_METHODS).map(([name, m]) => [name, { hash: m.hash, kind: 'hybrid' as const }])),
  'curve25519-sha256': { hash: 'sha256', kind: 'ecdh', agreement: { kind: 'x25519' } },
  'curve25519-sha256@libssh.org': { hash: 'sha256', kind: 'ecdh', agreement: { kind: 'x25519' } },
  'ecdh-sha2-nistp256': { hash: 'sha256', kind: 'ecdh', agreement: { kind: 'ecdh', curve: 'nistp256' } },
  'ecdh-sha2-nistp384': { hash: 'sha384', kind: 'ecdh', agreement: { kind: 'ecdh', curve: 'nistp384' } },
  'ecdh-sha2-nistp521': { hash: 'sha512', kind: 'ecdh', agreement: { kind: 'ecdh', curve: 'nistp521' } },
  'diffie-hellman-group14-sha256': { hash: 'sha256', kind: 'dh', agreement: { kind: 'modp', group: 'group14' } },
  'diffie-hellman-group16-sha512': { hash: 'sha512', kind: 'dh', agreement: { kind: 'modp', group: 'group16' } },
  'diffie-hellman-group18-sha512': { hash: 'sha512', kind: 'dh', agreement: { kind: 'modp', group: 'group18' } },
  // SHA-1 and the 1024-bit group: only when SSHKeyExchangeAlgorithms lists them (legacy servers).
  'diffie-hellman-group14-sha1': { hash: 'sha1', kind: 'dh', agreement: { kind: 'modp', group: 'group14' } },
  'diffie-hellman-group1-sha1': { hash: 'sha1', kind: 'dh', agreement: { kind: 'modp', group: 'group1' } },
  'diffie-hellman-group-exchange-sha256': { hash: 'sha256', kind: 'gex' },
  'diffie-hellman-group-exchange-sha1': { hash: 'sha1', kind: 'gex' },
};

/** The algorithms a key exchange settled on, per direction where they may differ (RFC 4253 §7.1). */
export interface Negotiated {
  kex: string;
  hostKey: string;
  cipherClientToServer: string;
  cipherServerToClient: string;
  macClientToServer: string | null;
  macServerToClient: string | null;
  compressionClientToServer: string;
  compressionServerToClient: string;
  strictKex: boolean;
  serverWantsExtInfo: boolean;
}

function pick(category: string, client: readonly string[], server: readonly string[]): string {
  for (const name of client) if (server.includes(name)) return name;
  throw new SshError(Code.NegotiationFailed, `no common ${category} algorithm (we offer ${client.join(',')}; the server offers ${server.join(',')})`, 'peer');
}

/** RFC 4253 §7.1: for each category, the first client algorithm the server also lists. */
export function negotiate(client: KexInitMessage, server: KexInitMessage, isAead: (cipher: string) => boolean): Negotiated {
  const pseudo = (n: string) => n === EXT_INFO_CLIENT || n.startsWith('kex-strict-');
  const kex = pick(
    'key exchange',
    client.kexAlgorithms.filter((n) => !pseudo(n)),
    server.kexAlgorithms,
  );
  const hostKey = pick('host key', client.hostKeyAlgorithms, server.hostKeyAlgorithms);
  const cipherClientToServer = pick('cipher (client to server)', client.ciphersClientToServer, server.ciphersClientToServer);
  const cipherServerToClient = pick('cipher (server to client)', client.ciphersServerToClient, server.ciphersServerToClient);
  const macClientToServer = isAead(cipherClientToServer) ? null : pick('MAC (client to server)', client.macsClientToServer, server.macsClientToServer);
  const macServerToClient = isAead(cipherServerToClient) ? null : pick('MAC (server to client)', client.macsServerToClient, server.macsServerToClient);
  return {
    kex,
    hostKey,
    cipherClientToServer,
    cipherServerToClient,
    macClientToServer,
    macServerToClient,
    compressionClientToServer: pick('compression (client to server)', client.compressionClientToServer, server.compressionClientToServer),
    compressionServerToClient: pick('compression (server to client)', client.compressionServerToClient, server.compressionServerToClient),
    strictKex: client.kexAlgorithms.includes(STRICT_KEX_CLIENT) && server.kexAlgorithms.includes(STRICT_KEX_SERVER),
    serverWantsExtInfo: server.kexAlgorithms.includes('ext-info-s'),
  };
}

/** What every method ends with: the server's signed view of the exchange. */
export interface KexOutcome {
  hostKey: Uint8Array;
  signature: Uint8Array;
  sharedSecret: Uint8Array;
  /** How K is encoded in the exchange hash and key derivation: mpint (RFC 4253) unless said. */
  sharedSecretEncoding?: SharedSecretEncoding;
  exchangeHash: Uint8Array;
}

/** The hybrid post-quantum methods send K as a string; all the others as an mpint. */
export type SharedSecretEncoding = 'mpint' | 'string';

export interface KexContext {
  provider: CryptoProvider;
  clientVersion: string;
  serverVersion: string;
  clientKexInit: Uint8Array;
  serverKexInit: Uint8Array;
  /** RFC 4419 sizes, from PreferredDHGroupBits. */
  groupBits: { min: number; preferred: number; max: number };
}

export interface KexStep {
  send: Uint8Array[];
  outcome?: KexOutcome;
}

export interface KexMethod {
  readonly hash: HashName;
  start(): KexStep;
  /** Handles one method-specific message (number 30-49). */
  handle(payload: Uint8Array): KexStep;
}

function exchangePrefix(ctx: KexContext, hostKey: Uint8Array): Writer {
  return new Writer(2048).string(ctx.clientVersion).string(ctx.serverVersion).string(ctx.clientKexInit).string(ctx.serverKexInit).string(hostKey);
}

export function createKexMethod(name: string, ctx: KexContext): KexMethod {
  const family = KEX_METHODS[name];
  if (!family) throw new SshError(Code.UnsupportedAlgorithm, `key exchange ${name} is not implemented`, 'local');
  const { provider } = ctx;
  switch (family.kind) {
    case 'hybrid':
      return createHybridKexMethod(name, provider, (hostKey) => exchangePrefix(ctx, hostKey));
    case 'ecdh':
    case 'dh': {
      // One round: send our value, get the server's value, host key and signature. ECDH and
      // curve25519 carry the values as strings (RFC 5656 §4), fixed-group DH as mpints (RFC 4253 §8).
      const ecdh = family.kind === 'ecdh';
      let agreement: KeyAgreement;
      return {
        hash: family.hash,
        start() {
          agreement = provider.keyAgreement(family.agreement!);
          const init = ecdh ? KexEcdhInit.encode({ clientPublic: agreement.publicValue }) : KexDhInit.encode({ e: agreement.publicValue });
          return { send: [init] };
        },
        handle(payload) {
          const reply = ecdh ? KexEcdhReply.decode(payload) : KexDhReply.decode(payload);
          const serverPublic = 'serverPublic' in reply ? reply.serverPublic : reply.f;
          const sharedSecret = agreement.computeSecret(serverPublic);
          const h = exchangePrefix(ctx, reply.hostKey);
          if (ecdh) h.string(agreement.publicValue).string(serverPublic);
          else h.mpint(agreement.publicValue).mpint(serverPublic);
          h.mpint(sharedSecret);
          return {
            send: [],
            outcome: { hostKey: reply.hostKey, signature: reply.signature, sharedSecret, exchangeHash: provider.hash(family.hash, h.finish()) },
          };
        },
      };
    }
    case 'gex': {
      let group: { p: Uint8Array; g: Uint8Array } | null = null;
      let agreement: KeyAgreement;
      const bits = ctx.groupBits;
      return {
        hash: family.hash,
        start() {
          return { send: [KexGexRequest.encode({ min: bits.min, preferred: bits.preferred, max: bits.max })] };
        },
        handle(payload) {
          if (!group) {
            const offered = KexGexGroup.decode(payload);
            const primeBits = bitLength(offered.p);
            if (primeBits < bits.min || primeBits > bits.max) {
              throw new SshError(Code.DhFailed, `server offered a ${primeBits}-bit DH group; ${bits.min} to ${bits.max} bits are allowed`, 'peer');
            }
            if (!isValidGenerator(offered.g, offered.p)) {
              throw new SshError(Code.DhFailed, 'server offered an invalid DH generator', 'peer');
            }
            group = offered;
            agreement = provider.keyAgreement({ kind: 'dh', prime: offered.p, generator: offered.g });
            return { send: [KexGexInit.encode({ e: agreement.publicValue })] };
          }
          const reply = KexGexReply.decode(payload);
          const sharedSecret = agreement.computeSecret(reply.f);
          const h = exchangePrefix(ctx, reply.hostKey)
            .uint32(bits.min)
            .uint32(bits.preferred)
            .uint32(bits.max)
            .mpint(group.p)
            .mpint(group.g)
            .mpint(agreement.publicValue)
            .mpint(reply.f)
            .mpint(sharedSecret)
            .finish();
          return {
            send: [],
            outcome: { hostKey: reply.hostKey, signature: reply.signature, sharedSecret, exchangeHash: provider.hash(family.hash, h) },
          };
        },
      };
    }
  }
}

function bitLength(magnitude: Uint8Array): number {
  if (magnitude.length === 0) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}

function isValidGenerator(g: Uint8Array, p: Uint8Array): boolean {
  // 1 < g < p - 1
  const gi = BigInt('0x' + (Array.from(g, (b) => b.toString(16).padStart(2, '0')).join('') || '0'));
  const pi = BigInt('0x' + (Array.from(p, (b) => b.toString(16).padStart(2, '0')).join('') || '0'));
  return gi > 1n && gi < pi - 1n && (pi & 1n) === 1n;
}

/** RFC 4253 §7.2: HASH(K || H || letter || session_id), extended until `length` bytes. */
export function deriveKey(
  provider: CryptoProvider,
  hash: HashName,
  sharedSecret: Uint8Array,
  exchangeHash: Uint8Array,
  letter: string,
  sessionId: Uint8Array,
  length: number,
  encoding: SharedSecretEncoding = 'mpint',
): Uint8Array {
  const writer = new Writer(sharedSecret.length + 8);
  const k = (encoding === 'string' ? writer.string(sharedSecret) : writer.mpint(sharedSecret)).finish();
  const out = new Uint8Array(length);
  let have = provider.hash(hash, k, exchangeHash, new Uint8Array([letter.charCodeAt(0)]), sessionId);
  let filled = Math.min(have.length, length);
  out.set(have.subarray(0, filled));
  while (filled < length) {
    have = provider.hash(hash, k, exchangeHash, out.subarray(0, filled));
    const n = Math.min(have.length, length - filled);
    out.set(have.subarray(0, n), filled);
    filled += n;
  }
  return out;
}

/** Decodes the extension list of SSH_MSG_EXT_INFO (RFC 8308 §2.3). */
export function parseExtensions(body: Uint8Array): Map<string, Uint8Array> {
  const r = new Reader(body);
  const count = r.uint32();
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) out.set(r.utf8(), r.string());
  r.done('SSH_MSG_EXT_INFO');
  return out;
}
