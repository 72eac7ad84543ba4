// User authentication (RFC 4252) with the none, password (§8), publickey (§7) and
// keyboard-interactive (RFC 4256) methods. Message 60 means something different for each
// method, so it is decoded only by the method that is in progress. The state machine asks
// the server which methods remain after each failure and tries the next one it has
// credentials for; when none is left the error names what the server would still accept.
// Publickey goes through every key in turn, offering each before signing with it
// (./auth-publickey.ts); gssapi-with-mic and gssapi-keyex (RFC 4462) run in ./auth-gssapi.ts.
//
// The core never waits on the application: a password, keyboard-interactive answers, a key's
// public half and a signature are asked for as credential requests (the `credentialRequest`
// event), and authentication goes on when SshClientCore.answerCredential brings the answer,
// now or later (a prompt, an agent). ./auth-answer.ts answers them from AuthOptions' sources.

import { Reader, Writer, equalBytes } from './wire.js';
import { SshError, Code } from './errors.js';
import { MSG, ServiceAccept, ServiceRequest, UserauthBanner, UserauthFailure, UserauthInfoRequest, UserauthPasswdChangeReq, UserauthPkOk, UserauthSuccess } from './messages.js';
import {
  isAuthLimitDisconnect,
  publicKeyQuery,
  publicKeySignedData,
  signatureAlgorithmsForKey,
  signedPublicKeyRequest,
  signingAlgorithm,
  type KeyInPlay,
  type PublicKeyIdentity,
} from './auth-publickey.js';

import { GssapiExchange, type GssapiAnswer, type GssapiOutcome, type GssapiRequest, type GssapiSource } from './auth-gssapi.js';

export { loadedIdentity, type ImmediateSigner, type LoadedSigner, type PublicKeyIdentity, type Signer } from './auth-publickey.js';

export interface KeyboardPrompt {
  prompt: string;
  echo: boolean;
}

export interface KeyboardInteractiveRequest {
  name: string;
  instructions: string;
  prompts: KeyboardPrompt[];
}

export type AuthMethodName = 'none' | 'password' | 'publickey' | 'keyboard-interactive' | 'gssapi-with-mic' | 'gssapi-keyex';

/**
 * What authentication may use. The core reads only whether each source is there (and each
 * key's name and public half); it never calls them. It asks for what it needs with credential
 * requests, which ./auth-answer.ts answers from these sources (the Session does that).
 */
export interface AuthOptions {
  username: string;
  /** Methods to try, in order. */
  methods: AuthMethodName[];
  /** The password, or a function asked the first time one is needed (undefined: none to give). */
  password?: string | (() => string | undefined | Promise<string | undefined>) | undefined;
  /** Keys for publickey, tried in this order within the one connection. */
  identities?: PublicKeyIdentity[] | undefined;
  /** Signature algorithms allowed for publickey auth (SSHPubKeyAuthSigAlgorithms). */
  publicKeySignatureAlgorithms: string[];
  /** Answers keyboard-interactive prompts; returns one response per prompt. */
  keyboardInteractive?: ((request: KeyboardInteractiveRequest) => string[] | Promise<string[]>) | undefined;
  /** Keep trying a method the server lists again after it already failed. */
  repeatMethods: boolean;
  /**
   * Custom authentication (amCustom): the application writes every request itself. Given
   * each server message of user authentication (SERVICE_ACCEPT first), it returns the next
   * message to send (a payload numbered 50-79), or null to give up. `methods` is not used.
   */
  custom?: ((serverMessage: Uint8Array) => Uint8Array | null | Promise<Uint8Array | null>) | undefined;
  /** GSSAPI (Kerberos) security contexts, for gssapi-with-mic and gssapi-keyex. */
  gssapi?: GssapiSource | undefined;
}

/** What the core asks the application for during authentication; answer with answerCredential. */
export type CredentialRequest =
  | { kind: 'password'; id: number }
  | { kind: 'keyboardInteractive'; id: number; request: KeyboardInteractiveRequest }
  /** The public half of identities[identity], whose public half was not known beforehand. */
  | { kind: 'publicKey'; id: number; identity: number }
  /** A signature by identities[identity] (whose public half is `publicKey`) over `data`. */
  | { kind: 'signature'; id: number; identity: number; publicKey: Uint8Array; algorithm: string; data: Uint8Array }
  /** Custom authentication: the next message to send after `serverMessage`. */
  | { kind: 'custom'; id: number; serverMessage: Uint8Array }
  /** A GSSAPI call: a token, a MIC, a MIC check (./auth-gssapi.ts). */
  | GssapiRequest;

/** Distributes Omit over a union, keeping each member's own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
export type CredentialRequestBody = WithoutId<CredentialRequest>;

/**
 * An answer to a credential request. `undefined` / null means none can be had: the method (or
 * the key, with `reason`) is passed over and authentication goes on with the next.
 */
export type CredentialAnswer =
  | { kind: 'password'; password: string | undefined }
  | { kind: 'keyboardInteractive'; responses: string[] | null }
  | { kind: 'publicKey'; publicKey: { blob: Uint8Array; keyType: string } | null; reason?: string }
  | { kind: 'signature'; signature: Uint8Array | null; reason?: string }
  | { kind: 'custom'; message: Uint8Array | null }
  | GssapiAnswer;

export interface AuthContext {
  sessionId: Uint8Array;
  /** server-sig-algs from EXT_INFO, if the server sent it. */
  serverSignatureAlgorithms: () => string[] | undefined;
  send(payload: Uint8Array): void;
  banner(text: string): void;
  status(message: string): void;
  /** Emits a credential request; returns its id. */
  request(request: CredentialRequestBody): number;
  /** Whether the key exchange was a GSSAPI one (RFC 4462 §2), whose context gssapi-keyex uses. */
  gssapiKeyExchanged?: () => boolean;
}

type AuthState =
  | { kind: 'expectServiceAccept' }
  | { kind: 'expectResult'; method: 'none' | 'password' }
  | { kind: 'expectInfoRequest' }
  /** A key was offered without a signature: PK_OK (it may sign) or FAILURE. */
  | { kind: 'expectPkOk'; key: KeyInPlay; algorithm: string }
  /** A signed publickey request is out: SUCCESS or FAILURE. */
  | { kind: 'expectSignedResult'; key: KeyInPlay; algorithm: string }
  /** Waiting for the password, to send it (password method) or to answer `prompts` with it. */
  | { kind: 'awaitPassword'; id: number; purpose: 'password' | 'keyboardInteractive'; prompts: number }
  | { kind: 'awaitResponses'; id: number; prompts: number }
  | { kind: 'awaitPublicKey'; id: number; index: number }
  | { kind: 'awaitSignature'; id: number; key: KeyInPlay; algorithm: string }
  /** Custom authentication: the application's next message is awaited, then the server's answer. */
  | { kind: 'awaitCustom'; id: number }
  | { kind: 'expectCustomReply' }
  /** A gssapi-with-mic or gssapi-keyex attempt, which reads its own messages. */
  | { kind: 'gssapi'; exchange: GssapiExchange }
  | { kind: 'done' };

export class UserAuth {
  private state: AuthState = { kind: 'expectServiceAccept' };
  private readonly tried = new Set<AuthMethodName>();
  private serverMethods: string[] | null = null;
  /** The password once answered (asked for at most once per connection). */
  private resolvedPassword: { value: string | undefined } | null = null;
  /** The next of options.identities to offer. */
  private nextIdentity = 0;
  /** Keys offered so far, by name; the failure message lists them. */
  private readonly offeredKeys: string[] = [];
  /** Keys passed over, with why; the failure message lists them too. */
  private readonly unusableKeys: string[] = [];
  /** Why GSSAPI did not get us in, by method; the failure message says it. */
  private readonly gssapiProblems = new Map<string, string>();

  constructor(
    private readonly options: AuthOptions,
    private readonly ctx: AuthContext,
  ) {}

  get done(): boolean {
    return this.state.kind === 'done';
  }

  /** Sends ssh-userauth service request (RFC 4253 §10). */
  start(): void {
    this.ctx.send(ServiceRequest.encode({ service: 'ssh-userauth' }));
  }

  /**
   * The error for a DISCONNECT that arrives while a request is out: an authentication failure
   * when the server ended authentication (MaxAuthTries), else null (an ordinary disconnect).
   */
  disconnectError(reason: number, description: string): SshError | null {
    const kind = this.state.kind;
    if (kind === 'done' || kind === 'expectServiceAccept' || !isAuthLimitDisconnect(reason, description)) return null;
    return new SshError(Code.AuthFailed, `authentication failed for user "${this.options.username}": the server ended authentication (${description})${this.keySummary()}`, 'peer');
  }

  /** Handles one message numbered 5-79. Returns true when authentication succeeded. */
  handle(id: number, payload: Uint8Array): boolean {
    if (id === MSG.USERAUTH_BANNER) {
      this.ctx.banner(UserauthBanner.decode(payload).text);
      return false;
    }
    const state = this.state;
    switch (state.kind) {
      case 'expectServiceAccept': {
        if (id !== MSG.SERVICE_ACCEPT || ServiceAccept.decode(payload).service !== 'ssh-userauth') break;
        if (this.options.custom) this.requestCustom(payload);
        else this.sendNone();
        return false;
      }
      case 'expectCustomReply': {
        if (id === MSG.USERAUTH_SUCCESS) {
          UserauthSuccess.decode(payload);
          this.state = { kind: 'done' };
          return true;
        }
        if (id >= 50 && id <= 79) {
          this.requestCustom(payload);
          return false;
        }
        break;
      }
      case 'expectResult':
      case 'expectInfoRequest':
      case 'expectPkOk':
      case 'expectSignedResult': {
        if (id === MSG.USERAUTH_SUCCESS) {
          UserauthSuccess.decode(payload);
          this.state = { kind: 'done' };
          return true;
        }
        if (id === MSG.USERAUTH_FAILURE) {
          const failure = UserauthFailure.decode(payload);
          this.serverMethods = failure.methods;
          if (failure.partialSuccess) this.ctx.status('partial success; the server wants another method');
          if (state.kind === 'expectPkOk' || state.kind === 'expectSignedResult') {
            this.publicKeyRefused(state, failure.methods, failure.partialSuccess);
          } else {
            this.next();
          }
          return false;
        }
        if (id === 60 || id === 61) {
          this.handleMethodSpecific(id, payload);
          return false;
        }
        break;
      }
      case 'gssapi':
        if (id === MSG.USERAUTH_SUCCESS || id === MSG.USERAUTH_FAILURE || (id >= 60 && id <= 79)) return this.afterGssapi(state.exchange, state.exchange.handle(id, payload));
        break;
      case 'awaitPassword':
      case 'awaitResponses':
      case 'awaitPublicKey':
      case 'awaitSignature':
      case 'awaitCustom':
        // We have no request out while the application is asked: the server has nothing to say.
        break;
      case 'done':
        break;
    }
    throw new SshError(Code.ProtocolError, `unexpected message ${id} during user authentication (${state.kind})`, 'peer');
  }

  private requestHeader(method: string, capacity = 128): Writer {
    return new Writer(capacity).byte(MSG.USERAUTH_REQUEST).string(this.options.username).string('ssh-connection').string(method);
  }

  private sendNone(): void {
    this.tried.add('none');
    this.state = { kind: 'expectResult', method: 'none' };
    this.ctx.status('trying authentication method none');
    this.ctx.send(this.requestHeader('none').finish());
  }

  /** Picks the next method: in our order, listed by the server, with credentials, not yet failed. */
  private next(): void {
    const allowed = this.serverMethods ?? [];
    for (const method of this.options.methods) {
      if (method === 'none') continue;
      if (!allowed.includes(method)) continue;
      if (this.tried.has(method) && !this.options.repeatMethods) continue;
      if (!this.hasCredentials(method)) continue;
      this.tried.add(method);
      this.ctx.status(`trying authentication method ${method}`);
      this.send(method);
      return;
    }
    const offered = allowed.length ? allowed.join(', ') : 'none';
    throw new SshError(Code.AuthFailed, `authentication failed for user "${this.options.username}"; the server still allows: ${offered}${this.keySummary()}`, 'peer');
  }

  /** "; keys offered: a, b; not used: c (why)", or nothing when no key was in play. */
  private keySummary(): string {
    let text = '';
    if (this.offeredKeys.length) text += `; keys offered: ${this.offeredKeys.join(', ')}`;
    if (this.unusableKeys.length) text += `; keys not used: ${this.unusableKeys.join('; ')}`;
    for (const [method, problem] of this.gssapiProblems) text += `; ${method}: ${problem}`;
    return text;
  }

  private hasCredentials(method: AuthMethodName): boolean {
    switch (method) {
      case 'password':
        return this.options.password !== undefined;
      case 'publickey':
        return this.nextIdentity < (this.options.identities?.length ?? 0);
      case 'keyboard-interactive':
        return this.options.keyboardInteractive !== undefined || this.options.password !== undefined;
      case 'gssapi-with-mic':
        return this.options.gssapi !== undefined;
      case 'gssapi-keyex':
        return this.options.gssapi !== undefined && (this.ctx.gssapiKeyExchanged?.() ?? false);
      case 'none':
        return true;
    }
  }

  private send(method: AuthMethodName): void {
    switch (method) {
      case 'password':
        this.withPassword('password', 0);
        return;
      case 'keyboard-interactive':
        this.state = { kind: 'expectInfoRequest' };
        this.ctx.send(this.requestHeader('keyboard-interactive').string('').string('').finish());
        return;
      case 'publickey':
        if (!this.offerNextKey()) this.next();
        return;
      case 'gssapi-with-mic':
      case 'gssapi-keyex':
        this.state = { kind: 'gssapi', exchange: new GssapiExchange(method, this.options.username, this.ctx) };
        return;
      case 'none':
        this.sendNone();
        return;
    }
  }

  /** Carries out what the GSSAPI exchange decided; true when authentication succeeded. */
  private afterGssapi(exchange: GssapiExchange, outcome: GssapiOutcome): boolean {
    switch (outcome.kind) {
      case 'continue':
        return false;
      case 'success':
        this.state = { kind: 'done' };
        return true;
      case 'failure': {
        const failure = UserauthFailure.decode(outcome.payload);
        this.serverMethods = failure.methods;
        if (failure.partialSuccess) this.ctx.status('partial success; the server wants another method');
        else this.gssapiProblems.set(exchange.method, exchange.refusal);
        this.next();
        return false;
      }
      case 'abandon':
        this.ctx.status(`${exchange.method} cannot go on: ${outcome.reason}`);
        this.gssapiProblems.set(exchange.method, outcome.reason);
        this.next();
        return false;
    }
  }

  /** Uses the password (asked for once per connection): sends it, or answers `prompts` with it. */
  private withPassword(purpose: 'password' | 'keyboardInteractive', prompts: number): void {
    if (this.resolvedPassword) {
      this.usePassword(purpose, prompts, this.resolvedPassword.value);
      return;
    }
    const id = this.ctx.request({ kind: 'password' });
    this.state = { kind: 'awaitPassword', id, purpose, prompts };
  }

  private usePassword(purpose: 'password' | 'keyboardInteractive', prompts: number, password: string | undefined): void {
    if (purpose === 'keyboardInteractive') {
      this.sendResponses(new Array<string>(prompts).fill(password ?? ''), prompts);
      return;
    }
    if (password === undefined) {
      this.ctx.status('no password available; skipping password authentication');
      this.next();
      return;
    }
    this.state = { kind: 'expectResult', method: 'password' };
    this.ctx.send(this.requestHeader('password').boolean(false).string(password).finish());
  }

  private passOver(name: string, reason: string): void {
    this.ctx.status(`not using key ${name}: ${reason}`);
    this.unusableKeys.push(`${name} (${reason})`);
  }

  /**
   * Puts the next usable key in play: a query for a key whose public half is known, else a
   * request for its public half (the key is then loaded, and signs at once). False when no key
   * is left.
   */
  private offerNextKey(): boolean {
    const identities = this.options.identities ?? [];
    while (this.nextIdentity < identities.length) {
      const index = this.nextIdentity++;
      const identity = identities[index]!;
      if (!identity.publicKey) {
        this.ctx.status(`trying private key: ${identity.name}`);
        const id = this.ctx.request({ kind: 'publicKey', identity: index });
        this.state = { kind: 'awaitPublicKey', id, index };
        return true;
      }
      if (this.putInPlay(index, identity.publicKey, false)) return true;
    }
    return false;
  }

  /** The next key, or else the next method. */
  private continueWithKeys(): void {
    if (!this.offerNextKey()) this.next();
  }

  /** Offers identities[index] (or, with `signNow`, asks for its signature at once); false if it cannot be used. */
  private putInPlay(index: number, known: { blob: Uint8Array; keyType: string }, signNow: boolean): boolean {
    const name = this.options.identities![index]!.name;
    const algorithmsLeft = signatureAlgorithmsForKey(known.keyType, this.options.publicKeySignatureAlgorithms, this.ctx.serverSignatureAlgorithms());
    if (algorithmsLeft.length === 0) {
      this.passOver(name, `no allowed signature algorithm for a ${known.keyType} key`);
      return false;
    }
    this.offeredKeys.push(name);
    const key: KeyInPlay = { index, name, blob: known.blob, keyType: known.keyType, algorithmsLeft };
    if (signNow) this.requestSignature(key, key.algorithmsLeft.shift()!);
    else this.sendQuery(key);
    return true;
  }

  private sendQuery(key: KeyInPlay): void {
    const algorithm = key.algorithmsLeft.shift()!;
    this.ctx.status(`offering public key: ${key.name} (${algorithm})`);
    this.state = { kind: 'expectPkOk', key, algorithm };
    this.ctx.send(publicKeyQuery(this.requestHeader('publickey', 1024), algorithm, key.blob));
  }

  /** Asks for the key's signature over the request (RFC 4252 §7); the request goes out with the answer. */
  private requestSignature(key: KeyInPlay, algorithm: string): void {
    const data = publicKeySignedData(this.ctx.sessionId, this.options.username, algorithm, key.blob);
    const id = this.ctx.request({ kind: 'signature', identity: key.index, publicKey: key.blob, algorithm: signingAlgorithm(algorithm), data });
    this.state = { kind: 'awaitSignature', id, key, algorithm };
  }

  /**
   * Why an answer cannot be taken (no such request is waiting, or it answers another kind),
   * or null. Checked before answer(): a stray answer is the caller's mistake, not the
   * connection's end.
   */
  answerProblem(id: number, answer: CredentialAnswer): string | null {
    const state = this.state;
    const expected: Partial<Record<AuthState['kind'], CredentialAnswer['kind']>> = {
      awaitPassword: 'password',
      awaitResponses: 'keyboardInteractive',
      awaitPublicKey: 'publicKey',
      awaitSignature: 'signature',
      awaitCustom: 'custom',
    };
    const pending = state.kind === 'gssapi' ? state.exchange.pending : null;
    const kind = pending ? pending.kind : expected[state.kind];
    const waitingId = pending ? pending.id : 'id' in state ? state.id : undefined;
    if (!kind || waitingId !== id) return `no credential request ${id} is waiting for an answer`;
    if (answer.kind !== kind) return `credential request ${id} wants a ${kind} answer, not ${answer.kind}`;
    return null;
  }

  /** Goes on with an answer that answerProblem() accepted. */
  answer(answer: CredentialAnswer): void {
    const state = this.state;
    switch (state.kind) {
      case 'awaitPassword':
        if (answer.kind !== 'password') return;
        this.resolvedPassword = { value: answer.password };
        this.usePassword(state.purpose, state.prompts, answer.password);
        return;
      case 'awaitResponses':
        if (answer.kind !== 'keyboardInteractive') return;
        if (answer.responses === null) {
          // RFC 4252 §5: a new request abandons the exchange under way.
          this.ctx.status('no keyboard-interactive answers; trying the next method');
          this.next();
          return;
        }
        this.sendResponses(answer.responses, state.prompts);
        return;
      case 'awaitPublicKey': {
        if (answer.kind !== 'publicKey') return;
        const name = this.options.identities![state.index]!.name;
        if (!answer.publicKey) {
          this.passOver(name, answer.reason ?? 'the key cannot be loaded');
          this.continueWithKeys();
          return;
        }
        if (!this.putInPlay(state.index, answer.publicKey, true)) this.continueWithKeys();
        return;
      }
      case 'awaitSignature': {
        if (answer.kind !== 'signature') return;
        if (!answer.signature) {
          this.passOver(state.key.name, answer.reason ?? 'it could not sign');
          this.continueWithKeys();
          return;
        }
        this.state = { kind: 'expectSignedResult', key: state.key, algorithm: state.algorithm };
        this.ctx.send(signedPublicKeyRequest(this.requestHeader('publickey', 1024), state.algorithm, state.key.blob, answer.signature));
        return;
      }
      case 'awaitCustom': {
        if (answer.kind !== 'custom') return;
        const message = answer.message;
        if (!message || message.length === 0) {
          throw new SshError(Code.AuthFailed, `custom authentication for user "${this.options.username}" gave up`, 'local');
        }
        // Only user authentication messages (RFC 4250 §4.1.2: 50-79) may be written by hand here.
        if (message[0]! < 50 || message[0]! > 79) {
          throw new SshError(Code.AuthFailed, `custom authentication wrote message ${message[0]}, which is not a user authentication message (50-79)`, 'local');
        }
        this.state = { kind: 'expectCustomReply' };
        this.ctx.send(message);
        return;
      }
      case 'gssapi':
        if (answer.kind === 'gssapiToken' || answer.kind === 'gssapiMic' || answer.kind === 'gssapiVerifyMic') this.afterGssapi(state.exchange, state.exchange.answer(answer));
        return;
      default:
        return;
    }
  }

  private requestCustom(serverMessage: Uint8Array): void {
    const id = this.ctx.request({ kind: 'custom', serverMessage: serverMessage.slice() });
    this.state = { kind: 'awaitCustom', id };
  }

  /**
   * FAILURE for the key in play: the same key with its next signature algorithm (a query again
   * if it was a query), else the next key, else the next method. After a partial success the
   * key did count, and the server's list says what comes next.
   */
  private publicKeyRefused(state: Extract<AuthState, { kind: 'expectPkOk' | 'expectSignedResult' }>, methods: string[], partialSuccess: boolean): void {
    if (partialSuccess || !methods.includes('publickey')) {
      this.next();
      return;
    }
    const { key } = state;
    if (key.algorithmsLeft.length > 0) {
      this.ctx.status(`retrying public key ${key.name} with ${key.algorithmsLeft[0]}`);
      if (state.kind === 'expectPkOk') this.sendQuery(key);
      else this.requestSignature(key, key.algorithmsLeft.shift()!);
      return;
    }
    this.continueWithKeys();
  }

  private handleMethodSpecific(id: number, payload: Uint8Array): void {
    const state = this.state;
    if (state.kind === 'expectInfoRequest' && id === MSG.USERAUTH_INFO_REQUEST) {
      this.answerInfoRequest(UserauthInfoRequest.decode(payload).body);
      return;
    }
    if (state.kind === 'expectResult' && state.method === 'password' && id === MSG.USERAUTH_PASSWD_CHANGEREQ) {
      const change = UserauthPasswdChangeReq.decode(payload);
      throw new SshError(Code.AuthFailed, `the server requires a password change: ${change.prompt}`, 'peer');
    }
    if (state.kind === 'expectPkOk' && id === MSG.USERAUTH_PK_OK) {
      // RFC 4252 §7: PK_OK repeats the algorithm and the blob of the query it answers.
      const accepted = UserauthPkOk.decode(payload);
      if (accepted.algorithm !== state.algorithm || !equalBytes(accepted.publicKey, state.key.blob)) {
        throw new SshError(Code.ProtocolError, 'SSH_MSG_USERAUTH_PK_OK for a key or algorithm that was not offered', 'peer');
      }
      this.ctx.status(`server accepts key: ${state.key.name}`);
      this.requestSignature(state.key, state.algorithm);
      return;
    }
    const method = state.kind === 'expectResult' ? state.method : state.kind === 'expectInfoRequest' ? 'keyboard-interactive' : 'publickey';
    throw new SshError(Code.ProtocolError, `unexpected message ${id} during ${method} authentication`, 'peer');
  }

  private answerInfoRequest(body: Uint8Array): void {
    const r = new Reader(body);
    const name = r.utf8();
    const instructions = r.utf8();
    r.string(); // language tag (deprecated)
    const count = r.uint32();
    if (count > 64) throw new SshError(Code.ProtocolError, `keyboard-interactive request with ${count} prompts`, 'peer');
    const prompts: KeyboardPrompt[] = [];
    for (let i = 0; i < count; i++) prompts.push({ prompt: r.utf8(), echo: r.boolean() });
    r.done('SSH_MSG_USERAUTH_INFO_REQUEST');
    if (prompts.length === 0) {
      this.sendResponses([], 0);
    } else if (this.options.keyboardInteractive) {
      const id = this.ctx.request({ kind: 'keyboardInteractive', request: { name, instructions, prompts } });
      this.state = { kind: 'awaitResponses', id, prompts: prompts.length };
    } else {
      this.withPassword('keyboardInteractive', prompts.length); // each prompt gets the password
    }
  }

  private sendResponses(responses: string[], prompts: number): void {
    if (responses.length !== prompts) {
      throw new SshError(Code.AuthFailed, `keyboard-interactive: ${prompts} prompts but ${responses.length} responses`, 'local');
    }
    const w = new Writer(64).byte(MSG.USERAUTH_INFO_RESPONSE).uint32(responses.length);
    for (const response of responses) w.string(response);
    this.state = { kind: 'expectInfoRequest' };
    this.ctx.send(w.finish());
  }
}

/**
 * PasswordPrompt pattern match: `?` one character, `*` any run, `[a-z,0-9]` a set of
 * ranges, `\` makes the next character literal.
 */
export function matchesPromptPattern(pattern: string, text: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\' && i + 1 < pattern.length) {
      re += escapeRegex(pattern[++i]!);
    } else if (c === '?') {
      re += '.';
    } else if (c === '*') {
      re += '.*';
    } else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      const body = pattern.slice(i + 1, close);
      const parts = body.split(',').filter((p) => p !== '');
      re += '(?:' + parts.map((p) => (/^.-.$/.test(p) ? `[${escapeRegex(p[0]!)}-${escapeRegex(p[2]!)}]` : escapeRegex(p))).join('|') + ')';
      i = close;
    } else {
      re += escapeRegex(c);
    }
  }
  return new RegExp(re + '$', 's').test(text);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
