// User authentication (RFC 4252) with the none, password (§8), publickey (§7) and
// keyboard-interactive (RFC 4256) methods. Message 60 means something different for each
// method, so it is decoded only by the method that is in progress. The state machine asks
// the server which methods remain after each failure and tries the next one it has
// credentials for; when none is left the error names what the server would still accept.

import { Reader, Writer } from './wire.js';
import { SshError, Code } from './errors.js';
import {
  MSG,
  ServiceAccept,
  ServiceRequest,
  UserauthBanner,
  UserauthFailure,
  UserauthInfoRequest,
  UserauthPasswdChangeReq,
  UserauthPkOk,
  UserauthSuccess,
} from './messages.js';
import { signatureAlgorithmsFor } from './publickey.js';

/** A private key that can sign; the protocol never sees the key material itself. */
export interface Signer {
  /** The SSH public key blob. */
  readonly publicKey: Uint8Array;
  /** ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ... */
  readonly keyType: string;
  /** Returns an SSH signature blob made with `algorithm` over `data`. */
  sign(algorithm: string, data: Uint8Array): Uint8Array;
}

export interface KeyboardPrompt {
  prompt: string;
  echo: boolean;
}

export interface KeyboardInteractiveRequest {
  name: string;
  instructions: string;
  prompts: KeyboardPrompt[];
}

export type AuthMethodName = 'none' | 'password' | 'publickey' | 'keyboard-interactive';

export interface AuthOptions {
  username: string;
  /** Methods to try, in order. */
  methods: AuthMethodName[];
  /** The password, or a function asked the first time one is needed (undefined: none to give). */
  password?: string | (() => string | undefined) | undefined;
  signer?: Signer | undefined;
  /** Signature algorithms allowed for publickey auth (SSHPubKeyAuthSigAlgorithms). */
  publicKeySignatureAlgorithms: string[];
  /** Answers keyboard-interactive prompts; returns one response per prompt. */
  keyboardInteractive?: ((request: KeyboardInteractiveRequest) => string[]) | undefined;
  /** Keep trying a method the server lists again after it already failed. */
  repeatMethods: boolean;
}

export interface AuthContext {
  sessionId: Uint8Array;
  /** server-sig-algs from EXT_INFO, if the server sent it. */
  serverSignatureAlgorithms: () => string[] | undefined;
  send(payload: Uint8Array): void;
  banner(text: string): void;
  status(message: string): void;
}

type AuthState =
  | { kind: 'expectServiceAccept' }
  | { kind: 'expectResult'; method: AuthMethodName }
  | { kind: 'expectInfoRequest' }
  | { kind: 'done' };

export class UserAuth {
  private state: AuthState = { kind: 'expectServiceAccept' };
  private readonly tried = new Set<AuthMethodName>();
  private serverMethods: string[] | null = null;
  /**
   * Signature algorithms still to try for the key. A server may advertise rsa-sha2-512 in
   * server-sig-algs yet accept only rsa-sha2-256 (OpenSSH with PubkeyAcceptedAlgorithms does),
   * so a refused RSA signature is retried with the next algorithm before moving on.
   */
  private signatureAlgorithmsLeft: string[] | null = null;
  private resolvedPassword: { value: string | undefined } | null = null;

  constructor(
    private readonly options: AuthOptions,
    private readonly ctx: AuthContext,
  ) {}

  /** The password, asking the application's callback at most once. */
  private password(): string | undefined {
    const source = this.options.password;
    if (typeof source !== 'function') return source;
    this.resolvedPassword ??= { value: source() };
    return this.resolvedPassword.value;
  }

  get done(): boolean {
    return this.state.kind === 'done';
  }

  /** Sends ssh-userauth service request (RFC 4253 §10). */
  start(): void {
    this.ctx.send(ServiceRequest.encode({ service: 'ssh-userauth' }));
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
        this.sendNone();
        return false;
      }
      case 'expectResult':
      case 'expectInfoRequest': {
        if (id === MSG.USERAUTH_SUCCESS) {
          UserauthSuccess.decode(payload);
          this.state = { kind: 'done' };
          return true;
        }
        if (id === MSG.USERAUTH_FAILURE) {
          const failure = UserauthFailure.decode(payload);
          this.serverMethods = failure.methods;
          if (failure.partialSuccess) this.ctx.status('partial success; the server wants another method');
          if (this.retryPublicKey(state, failure.methods, failure.partialSuccess)) return false;
          this.next();
          return false;
        }
        if (id === 60 || id === 61) {
          this.handleMethodSpecific(id, payload);
          return false;
        }
        break;
      }
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
    throw new SshError(
      Code.AuthFailed,
      `authentication failed for user "${this.options.username}"; the server still allows: ${offered}`,
      'peer',
    );
  }

  private hasCredentials(method: AuthMethodName): boolean {
    switch (method) {
      case 'password':
        return this.options.password !== undefined;
      case 'publickey':
        return this.options.signer !== undefined;
      case 'keyboard-interactive':
        return this.options.keyboardInteractive !== undefined || this.options.password !== undefined;
      case 'none':
        return true;
    }
  }

  private send(method: AuthMethodName): void {
    switch (method) {
      case 'password': {
        const password = this.password();
        if (password === undefined) {
          this.ctx.status('no password available; skipping password authentication');
          this.next();
          return;
        }
        this.state = { kind: 'expectResult', method };
        this.ctx.send(this.requestHeader('password').boolean(false).string(password).finish());
        return;
      }
      case 'keyboard-interactive':
        this.state = { kind: 'expectInfoRequest' };
        this.ctx.send(this.requestHeader('keyboard-interactive').string('').string('').finish());
        return;
      case 'publickey':
        this.state = { kind: 'expectResult', method };
        this.sendSignedPublicKey();
        return;
      case 'none':
        this.sendNone();
        return;
    }
  }

  /**
   * RFC 8332 §3.2: for RSA keys, the rsa-sha2 algorithms the server advertises in
   * server-sig-algs, strongest first; without that extension, plain ssh-rsa.
   */
  private signatureAlgorithms(signer: Signer): string[] {
    const candidates = signatureAlgorithmsFor(signer.keyType).filter((a) => this.options.publicKeySignatureAlgorithms.includes(a));
    if (candidates.length === 0) {
      throw new SshError(Code.AuthFailed, `no allowed signature algorithm for a ${signer.keyType} key`, 'local');
    }
    if (signer.keyType !== 'ssh-rsa') return candidates.slice(0, 1);
    const serverAlgs = this.ctx.serverSignatureAlgorithms();
    if (serverAlgs) {
      const advertised = candidates.filter((a) => serverAlgs.includes(a));
      if (advertised.length > 0) return advertised;
    }
    return candidates.includes('ssh-rsa') ? ['ssh-rsa'] : candidates.slice(0, 1);
  }

  private retryPublicKey(state: AuthState, methods: string[], partialSuccess: boolean): boolean {
    if (state.kind !== 'expectResult' || state.method !== 'publickey' || partialSuccess) return false;
    if (!methods.includes('publickey') || !this.signatureAlgorithmsLeft?.length) return false;
    this.ctx.status(`retrying publickey with ${this.signatureAlgorithmsLeft[0]}`);
    this.sendSignedPublicKey();
    return true;
  }

  private sendSignedPublicKey(): void {
    const signer = this.options.signer!;
    this.signatureAlgorithmsLeft ??= this.signatureAlgorithms(signer);
    const algorithm = this.signatureAlgorithmsLeft.shift()!;
    const signed = new Writer(512)
      .string(this.ctx.sessionId)
      .byte(MSG.USERAUTH_REQUEST)
      .string(this.options.username)
      .string('ssh-connection')
      .string('publickey')
      .boolean(true)
      .string(algorithm)
      .string(signer.publicKey)
      .finish();
    let signature: Uint8Array;
    try {
      signature = signer.sign(algorithm, signed);
    } catch (cause) {
      throw new SshError(Code.CannotSign, `cannot sign with the ${signer.keyType} key: ${(cause as Error).message}`, 'local', { cause });
    }
    this.ctx.send(
      this.requestHeader('publickey', 1024).boolean(true).string(algorithm).string(signer.publicKey).string(signature).finish(),
    );
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
    if (state.kind === 'expectResult' && state.method === 'publickey' && id === MSG.USERAUTH_PK_OK) {
      UserauthPkOk.decode(payload); // only sent in reply to unsigned queries, which we do not make
      return;
    }
    throw new SshError(Code.ProtocolError, `unexpected message ${id} during ${state.kind === 'expectResult' ? state.method : 'keyboard-interactive'} authentication`, 'peer');
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
    let responses: string[];
    if (prompts.length === 0) {
      responses = [];
    } else if (this.options.keyboardInteractive) {
      responses = this.options.keyboardInteractive({ name, instructions, prompts });
    } else {
      responses = prompts.map(() => this.password() ?? '');
    }
    if (responses.length !== prompts.length) {
      throw new SshError(Code.AuthFailed, `keyboard-interactive: ${prompts.length} prompts but ${responses.length} responses`, 'local');
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
