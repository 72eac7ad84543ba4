// An in-memory SSH server for unit tests of the client core: just enough of the server side
// (curve25519 or group14 key exchange with an ed25519 host key, or a GSSAPI one, service accept, password
// and publickey auth with sshd's MaxAuthTries, tcpip-forward) to reach every state, with hooks to misbehave at each step. `Pair`
// joins it to an SshClientCore and moves bytes until both sides are quiet.
//
// Its messages are encoded and decoded with the protocol's schemas (ts/protocol/messages.ts),
// so a test that breaks one of them reads as a schema change, not a typo in a byte offset. What
// the server must compute on its own stays written out here: the exchange hash input and the
// data a publickey signature covers. Built with the client's own helpers, a mistake in those
// would be made identically on both sides and no test would see it.

import * as crypto from 'node:crypto';
import { PacketTransport } from '../../ts/protocol/transport.js';
import { NodeCryptoProvider } from '../../ts/crypto/node.js';
import { Writer, Reader } from '../../ts/protocol/wire.js';
import {
  Disconnect,
  GlobalRequest,
  KexDhInit,
  KexDhReply,
  KexEcdhInit,
  KexEcdhReply,
  KexInit,
  MSG,
  NewKeys,
  RequestFailure,
  RequestSuccess,
  ServiceAccept,
  UserauthFailure,
  UserauthInfoRequest,
  UserauthPkOk,
  UserauthSuccess,
  type KexInitMessage,
} from '../../ts/protocol/messages.js';
import { deriveKey } from '../../ts/protocol/kex.js';
import { createSigner } from '../../ts/crypto/keys.js';
import { SshClientCore, type ClientEvent, type ClientOptions } from '../../ts/protocol/client.js';
import { credentialAnswerer, isPromise, type CredentialAnswerer } from '../../ts/protocol/auth-answer.js';
import type { CredentialAnswer } from '../../ts/protocol/auth.js';
import type { SshError } from '../../ts/protocol/errors.js';
import { CompressionSchedule } from '../../ts/protocol/compression.js';

const provider = new NodeCryptoProvider();
export const PASSWORD = 'pw';

export interface ServerHooks {
  /** Sent before the server's KEXINIT (e.g. an IGNORE to break strict kex). */
  beforeKexInit?: Uint8Array[];
  kexInit?: Partial<KexInitMessage>;
  strict?: boolean;
  /** Replace the server's ECDH public value. */
  serverPublic?: (real: Uint8Array) => Uint8Array;
  /** Replace the signature blob. */
  signature?: (real: Uint8Array) => Uint8Array;
  /** Replace the group14 f value. */
  dhF?: (real: Uint8Array) => Uint8Array;
  /** Messages sent right after our NEWKEYS. */
  afterNewKeys?: Uint8Array[];
  /** The host key (default: a fresh one per server). */
  hostKey?: crypto.KeyObject;
  /** Publickey auth: the key blobs that may log on (offering publickey along with password). */
  authorizedKeys?: Uint8Array[];
  /** Signature algorithms accepted for publickey (default: any). */
  publicKeyAlgorithms?: string[];
  /** As sshd's MaxAuthTries: after this many failed requests, DISCONNECT instead of FAILURE. */
  maxAuthTries?: number;
  /** The DISCONNECT sent at maxAuthTries (default: sshd's, reason 2 "Too many authentication failures"). */
  disconnect?: { reason: number; description: string };
  /** Replace the PK_OK the server sends for an accepted query. */
  pkOk?: (real: Uint8Array) => Uint8Array;
  /** Offer keyboard-interactive (RFC 4256) with these prompts; these answers log on. */
  keyboardInteractive?: { prompts: string[]; answers: string[] };
  /** The blob sent as the host key (default: hostKey's public blob), e.g. a certificate of hostKey. */
  hostKeyBlob?: Uint8Array;
  /**
   * Offer gss-curve25519-sha256 (RFC 4462 §2, RFC 8732) before the others, as a GSSAPI
   * acceptor that needs one token and answers with `token` and `mic(H)`, no host key sent.
   */
  gssKex?: { name: string; token: Uint8Array; mic: (exchangeHash: Uint8Array) => Uint8Array };
  /**
   * The one compression algorithm offered (default "none"), used from our NEWKEYS for what we
   * send and from the client's for what we read; zlib@openssh.com waits, as in sshd, until we
   * have sent USERAUTH_SUCCESS.
   */
  compression?: string;
}

/** One publickey request the TestServer received. */
export interface PublicKeyRequest {
  algorithm: string;
  blob: Uint8Array;
  signed: boolean;
}

/**
 * An Ed25519 private key from a random seed. Tests avoid generateKeyPairSync for these keys:
 * Node 20 can deadlock exporting such a key (see ts/crypto/node.ts).
 */
export function randomEd25519Key(): crypto.KeyObject {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), crypto.randomBytes(32)]);
  return crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}

/** A KEXINIT with one algorithm per list (ssh-ed25519, aes128-ctr, hmac-sha2-256, none). */
export function kexInit(overrides: Partial<KexInitMessage> = {}): KexInitMessage {
  return {
    cookie: crypto.randomBytes(16),
    kexAlgorithms: ['curve25519-sha256'],
    hostKeyAlgorithms: ['ssh-ed25519'],
    ciphersClientToServer: ['aes128-ctr'],
    ciphersServerToClient: ['aes128-ctr'],
    macsClientToServer: ['hmac-sha2-256'],
    macsServerToClient: ['hmac-sha2-256'],
    compressionClientToServer: ['none'],
    compressionServerToClient: ['none'],
    languagesClientToServer: [],
    languagesServerToClient: [],
    firstKexPacketFollows: false,
    reserved: 0,
    ...overrides,
  };
}

export class TestServer {
  readonly transport = new PacketTransport(
    (n) => crypto.randomBytes(n),
    (v) => v.startsWith('SSH-2.0-'),
  );
  readonly out: Uint8Array[] = [];
  readonly received: number[] = [];
  readonly receivedPayloads: Uint8Array[] = [];
  readonly version = 'SSH-2.0-TestServer_1.0';
  hostKey: crypto.KeyObject;
  signer: ReturnType<typeof createSigner>;
  private clientVersion = '';
  private clientKexInit: Uint8Array | null = null;
  private serverKexInit: Uint8Array | null = null;
  private sessionId: Uint8Array | null = null;
  private pendingKeys: { k: Uint8Array; h: Uint8Array; kex: string } | null = null;
  private negotiatedKex = 'curve25519-sha256';
  private versionSeen = false;
  strict = false;
  readonly publicKeyRequests: PublicKeyRequest[] = [];
  authFailures = 0;
  /** Handles a payload after authentication; default: forwarding requests succeed. */
  onConnection: (payload: Uint8Array) => void = (payload) => this.defaultConnection(payload);

  constructor(readonly hooks: ServerHooks = {}) {
    this.hostKey = hooks.hostKey ?? randomEd25519Key();
    this.signer = createSigner(this.hostKey);
  }

  start(): void {
    this.out.push(new TextEncoder().encode(`${this.version}\r\n`));
    for (const p of this.hooks.beforeKexInit ?? []) this.send(p);
    this.sendKexInit();
  }

  /** Signs the exchanges from now on with `key` (a server whose host key changed mid-connection). */
  useHostKey(key: crypto.KeyObject): void {
    this.hostKey = key;
    this.signer = createSigner(key);
  }

  /** Starts a re-exchange from the server's side. */
  rekey(): void {
    this.rekeyStartedByUs = true;
    this.sendKexInit();
  }

  private rekeyStartedByUs = false;

  private sendKexInit(): void {
    const init = kexInit({
      kexAlgorithms: [...(this.hooks.gssKex ? [this.hooks.gssKex.name] : []), 'curve25519-sha256', 'diffie-hellman-group14-sha256', ...(this.hooks.strict ? ['kex-strict-s-v00@openssh.com'] : [])],
      ciphersClientToServer: ['aes128-gcm@openssh.com', 'aes128-ctr'],
      ciphersServerToClient: ['aes128-gcm@openssh.com', 'aes128-ctr'],
      compressionClientToServer: [this.hooks.compression ?? 'none'],
      compressionServerToClient: [this.hooks.compression ?? 'none'],
      ...this.hooks.kexInit,
    });
    this.serverKexInit = KexInit.encode(init);
    this.send(this.serverKexInit);
  }

  send(payload: Uint8Array): void {
    this.out.push(this.transport.framePayload(payload));
  }

  /** Compression the way sshd schedules it (the same schedule as the client's, in the server role). */
  readonly compression = new CompressionSchedule(this.transport, 256 * 1024, () => undefined);

  /** USERAUTH_SUCCESS; a delayed compression starts right after it in both directions, as in sshd. */
  private sendUserAuthSuccess(): void {
    this.send(UserauthSuccess.encode({}));
    this.compression.userAuthenticated();
  }

  /** Sends a raw, already framed byte string (for malformed-packet tests). */
  sendRaw(bytes: Uint8Array): void {
    this.out.push(bytes);
  }

  receive(bytes: Uint8Array): void {
    this.transport.receive(bytes);
    if (!this.versionSeen) {
      const v = this.transport.readVersion();
      if (!v) return;
      this.versionSeen = true;
      this.clientVersion = v.serverVersion;
    }
    for (let p = this.transport.readPacket(); p; p = this.transport.readPacket()) this.handle(p);
  }

  private handle(payload: Uint8Array): void {
    const id = payload[0]!;
    this.received.push(id);
    this.receivedPayloads.push(payload.slice());
    switch (id) {
      case MSG.KEXINIT: {
        // A client-started re-exchange: answer with a KEXINIT of our own (RFC 4253 §9).
        if (this.sessionId && !this.rekeyStartedByUs) this.sendKexInit();
        this.rekeyStartedByUs = false;
        this.clientKexInit = payload.slice();
        const client = KexInit.decode(payload);
        this.strict = !!this.hooks.strict && client.kexAlgorithms.includes('kex-strict-c-v00@openssh.com');
        this.negotiatedKex = client.kexAlgorithms.find((k) => k === 'curve25519-sha256' || k === 'diffie-hellman-group14-sha256' || k === this.hooks.gssKex?.name) ?? '';
        return;
      }
      case MSG.KEXDH_INIT: // also KEX_ECDH_INIT and KEXGSS_INIT: which one, the negotiated method says
        return this.replyKex(payload);
      case MSG.NEWKEYS: {
        const keys = this.pendingKeys!;
        this.transport.setOpener(provider.createOpener(this.directionKeys(keys, true)));
        this.compression.incomingKeysChanged(this.hooks.compression ?? 'none');
        if (this.strict) this.transport.receiveSequence = 0;
        return;
      }
      case MSG.SERVICE_REQUEST:
        this.send(ServiceAccept.encode({ service: 'ssh-userauth' }));
        return;
      case MSG.USERAUTH_REQUEST:
        return this.userauth(payload);
      case MSG.USERAUTH_INFO_RESPONSE: {
        const r = new Reader(payload, 1);
        const answers = Array.from({ length: r.uint32() }, () => r.utf8());
        r.done('info response');
        if (JSON.stringify(answers) === JSON.stringify(this.hooks.keyboardInteractive?.answers)) {
          this.sendUserAuthSuccess();
          return;
        }
        this.sendUserAuthFailure();
        return;
      }
      default:
        this.onConnection(payload);
    }
  }

  private userauth(payload: Uint8Array): void {
    const r = new Reader(payload, 1);
    const user = r.utf8();
    r.utf8();
    const method = r.utf8();
    if (method === 'password') {
      r.boolean();
      if (r.utf8() === PASSWORD) {
        this.sendUserAuthSuccess();
        return;
      }
    }
    const kbd = this.hooks.keyboardInteractive;
    if (method === 'keyboard-interactive' && kbd) {
      // name, instruction, language tag, then each prompt with its echo flag (RFC 4256 §3.2)
      const body = new Writer().string('').string('').string('').uint32(kbd.prompts.length);
      for (const prompt of kbd.prompts) body.string(prompt).boolean(false);
      this.send(UserauthInfoRequest.encode({ body: body.finish() }));
      return;
    }
    if (method === 'publickey' && this.hooks.authorizedKeys) {
      const signed = r.boolean();
      const algorithm = r.utf8();
      const blob = r.string();
      this.publicKeyRequests.push({ algorithm, blob: blob.slice(), signed });
      const authorized = this.hooks.authorizedKeys.some((k) => Buffer.from(k).equals(blob));
      const algorithmOk = !this.hooks.publicKeyAlgorithms || this.hooks.publicKeyAlgorithms.includes(algorithm);
      if (authorized && algorithmOk && !signed) {
        const ok = UserauthPkOk.encode({ algorithm, publicKey: blob });
        this.send(this.hooks.pkOk ? this.hooks.pkOk(ok) : ok);
        return;
      }
      if (authorized && algorithmOk) {
        const signature = r.string();
        r.done('publickey request');
        const data = new Writer().string(this.sessionId!).byte(MSG.USERAUTH_REQUEST).string(user).string('ssh-connection').string('publickey').boolean(true).string(algorithm).string(blob).finish();
        if (provider.verify(blob, algorithm, signature, data)) {
          this.sendUserAuthSuccess();
          return;
        }
      }
    }
    // sshd counts every failed request but the first "none" and ends at MaxAuthTries.
    if (method !== 'none') this.authFailures++;
    if (this.hooks.maxAuthTries !== undefined && this.authFailures >= this.hooks.maxAuthTries) {
      const { reason, description } = this.hooks.disconnect ?? { reason: 2, description: 'Too many authentication failures' };
      this.send(Disconnect.encode({ reason, description: new TextEncoder().encode(description), language: new Uint8Array(0) }));
      return;
    }
    this.sendUserAuthFailure();
  }

  private sendUserAuthFailure(): void {
    this.send(UserauthFailure.encode({ methods: this.methods(), partialSuccess: false }));
  }

  private methods(): string[] {
    return [...(this.hooks.authorizedKeys ? ['publickey'] : []), ...(this.hooks.keyboardInteractive ? ['keyboard-interactive'] : []), 'password'];
  }

  private defaultConnection(payload: Uint8Array): void {
    if (payload[0] !== MSG.GLOBAL_REQUEST) return;
    const { name, wantReply, data } = GlobalRequest.decode(payload);
    if (!wantReply) return;
    const none = new Uint8Array(0);
    if (name === 'tcpip-forward') {
      // RFC 4254 §7.1: address to bind, port; a request for port 0 is answered with the port bound.
      const r = new Reader(data);
      r.utf8();
      const port = r.uint32();
      this.send(RequestSuccess.encode({ data: port === 0 ? new Writer().uint32(5555).finish() : none }));
    } else if (name === 'streamlocal-forward@openssh.com' || name === 'cancel-streamlocal-forward@openssh.com') {
      this.send(RequestSuccess.encode({ data: none }));
    } else {
      this.send(RequestFailure.encode({}));
    }
  }

  private replyKex(payload: Uint8Array): void {
    if (this.hooks.gssKex && this.negotiatedKex === this.hooks.gssKex.name) return this.replyGssKex(payload, this.hooks.gssKex);
    const hostKeyBlob = this.hooks.hostKeyBlob ?? this.signer.publicKey;
    // The exchange hash input (RFC 8731 §3.1 / RFC 4253 §8), up to the method's own values.
    const prefix = new Writer(4096).string(this.clientVersion).string(this.version).string(this.clientKexInit!).string(this.serverKexInit!).string(hostKeyBlob);
    const sign = (h: Uint8Array) => {
      const signature = this.signer.sign('ssh-ed25519', h);
      return this.hooks.signature ? this.hooks.signature(signature) : signature;
    };
    let k: Uint8Array;
    let h: Uint8Array;
    if (this.negotiatedKex === 'curve25519-sha256') {
      const qc = KexEcdhInit.decode(payload).clientPublic;
      const agreement = provider.keyAgreement({ kind: 'x25519' });
      k = agreement.computeSecret(qc);
      const qs = this.hooks.serverPublic ? this.hooks.serverPublic(agreement.publicValue) : agreement.publicValue;
      h = provider.hash('sha256', prefix.string(qc).string(qs).mpint(k).finish());
      this.send(KexEcdhReply.encode({ hostKey: hostKeyBlob, serverPublic: qs, signature: sign(h) }));
    } else {
      const e = KexDhInit.decode(payload).e;
      const agreement = provider.keyAgreement({ kind: 'modp', group: 'group14' });
      k = agreement.computeSecret(e);
      const f = this.hooks.dhF ? this.hooks.dhF(agreement.publicValue) : agreement.publicValue;
      h = provider.hash('sha256', prefix.mpint(e).mpint(f).mpint(k).finish());
      this.send(KexDhReply.encode({ hostKey: hostKeyBlob, f, signature: sign(h) }));
    }
    this.sessionId ??= h;
    this.send(NewKeys.encode({}));
    this.pendingKeys = { k, h, kex: this.negotiatedKex };
    this.transport.setSealer(provider.createSealer(this.directionKeys(this.pendingKeys, false)));
    this.compression.outgoingKeysChanged(this.hooks.compression ?? 'none');
    if (this.strict) this.transport.sendSequence = 0;
    for (const p of this.hooks.afterNewKeys ?? []) this.send(p);
  }

  /** KEXGSS_INIT (token, Q_C) → KEXGSS_COMPLETE (Q_S, MIC of H, the last token), then NEWKEYS, in one write. */
  private replyGssKex(payload: Uint8Array, gss: NonNullable<ServerHooks['gssKex']>): void {
    const r = new Reader(payload, 1);
    r.string(); // the client's token: this acceptor takes any
    const qc = r.string();
    r.done('KEXGSS_INIT');
    const agreement = provider.keyAgreement({ kind: 'x25519' });
    const k = agreement.computeSecret(qc);
    const h = provider.hash(
      'sha256',
      new Writer(4096)
        .string(this.clientVersion)
        .string(this.version)
        .string(this.clientKexInit!)
        .string(this.serverKexInit!)
        .string(new Uint8Array(0))
        .string(qc)
        .string(agreement.publicValue)
        .mpint(k)
        .finish(),
    );
    this.sessionId ??= h;
    this.send(new Writer().byte(32).string(agreement.publicValue).string(gss.mic(h)).boolean(true).string(gss.token).finish());
    this.send(NewKeys.encode({}));
    this.pendingKeys = { k, h, kex: this.negotiatedKex };
    this.transport.setSealer(provider.createSealer(this.directionKeys(this.pendingKeys, false)));
    this.compression.outgoingKeysChanged(this.hooks.compression ?? 'none');
    if (this.strict) this.transport.sendSequence = 0;
    for (const p of this.hooks.afterNewKeys ?? []) this.send(p);
  }

  private directionKeys(keys: { k: Uint8Array; h: Uint8Array }, clientToServer: boolean) {
    const d = (letter: string, n: number) => deriveKey(provider, 'sha256', keys.k, keys.h, letter, this.sessionId!, n);
    return {
      cipher: 'aes128-gcm@openssh.com',
      mac: null,
      iv: d(clientToServer ? 'A' : 'B', 12),
      key: d(clientToServer ? 'C' : 'D', 16),
      macKey: new Uint8Array(0),
    };
  }
}

export function clientOptions(overrides: Partial<ClientOptions> = {}): ClientOptions {
  return {
    provider,
    clientVersion: 'SSH-2.0-revtun_test',
    acceptServerVersion: (v) => v.startsWith('SSH-2.0-'),
    algorithms: {
      kex: ['curve25519-sha256', 'diffie-hellman-group14-sha256'],
      hostKey: ['ssh-ed25519'],
      cipher: ['aes128-gcm@openssh.com'],
      mac: ['hmac-sha2-256'],
      compression: ['none'],
    },
    strictKex: 1,
    dhGroupBits: 2048,
    rekeyBytes: 1 << 30,
    auth: { username: 'u', methods: ['password'], password: PASSWORD, publicKeySignatureAlgorithms: [], repeatMethods: false },
    verifyHostKey: () => true,
    channels: { maxWindow: 64 * 1024, maxPacket: 32 * 1024 },
    keepAliveInterval: 0,
    keepAliveCountMax: 3,
    ...overrides,
  };
}

/** A client core and a TestServer joined in memory. */
export class Pair {
  readonly client: SshClientCore;
  readonly events: ClientEvent[] = [];
  now = 1_000;

  /** Deliver bytes one at a time in both directions, to exercise every split point. */
  byteAtATime = false;
  /** Leave credentialRequest events to the test instead of answering them from the options. */
  manualCredentials = false;
  private readonly answerer: CredentialAnswerer;
  /** Answers whose sources answer later (Promises); settle() hands them over. */
  private answers: Promise<{ id: number; answer: CredentialAnswer }>[] = [];

  constructor(
    readonly server: TestServer,
    options: Partial<ClientOptions> = {},
  ) {
    const full = clientOptions(options);
    this.client = new SshClientCore(full);
    this.answerer = credentialAnswerer(full.auth);
  }

  /** Waits for credential answers still to come, hands them to the client, and runs; until none are left. */
  async settle(): Promise<this> {
    while (this.answers.length > 0) {
      for (const { id, answer } of await Promise.all(this.answers.splice(0))) this.client.answerCredential(id, answer);
      this.run();
    }
    return this;
  }

  private split(chunks: Uint8Array[]): Uint8Array[] {
    if (!this.byteAtATime) return chunks;
    const out: Uint8Array[] = [];
    for (const c of chunks) for (let i = 0; i < c.length; i++) out.push(c.subarray(i, i + 1));
    return out;
  }

  start(): this {
    this.client.start(this.now);
    this.server.start();
    return this.run();
  }

  /** Moves bytes both ways until nothing is left to move. */
  run(): this {
    for (let round = 0; round < 1000; round++) {
      let moved = false;
      const fromClient = this.client.pollTransmit();
      if (fromClient) {
        moved = true;
        for (const b of this.split(fromClient)) this.server.receive(b);
      }
      const fromServer = this.server.out.splice(0);
      if (fromServer.length) {
        moved = true;
        for (const b of this.split(fromServer)) this.client.receive(b, this.now);
      }
      for (let e = this.client.pollEvent(); e; e = this.client.pollEvent()) {
        this.events.push(e);
        if (e.type !== 'credentialRequest' || this.manualCredentials) continue;
        // The Session's part: answer from the options' sources; an answer still to come waits in `answers`.
        const id = e.request.id;
        const answer = this.answerer(e.request);
        if (isPromise(answer)) this.answers.push(answer.then((a) => ({ id, answer: a })));
        else this.client.answerCredential(id, answer);
        moved = true;
      }
      if (!moved) return this;
    }
    throw new Error('pair did not settle');
  }

  /** Asks for a forwarding of port 0 (the server grants 5555); returns the granted port or 0. */
  forward(): number {
    let port = 0;
    const sent = this.client.requestForwarding('', 0, (outcome) => {
      if (outcome.ok) port = outcome.grant.boundPort;
    });
    if (!sent.ok) throw sent.error;
    this.run();
    return port;
  }

  /** The error the client closed with, if it closed. */
  get closedWith(): SshError | null | undefined {
    const closed = this.events.find((e) => e.type === 'closed');
    return closed && closed.type === 'closed' ? closed.error : undefined;
  }

  has(type: ClientEvent['type']): boolean {
    return this.events.some((e) => e.type === type);
  }
}
