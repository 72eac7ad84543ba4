// GSSAPI user authentication (RFC 4462 §3, gssapi-with-mic; §4, gssapi-keyex) with the
// Kerberos 5 mechanism. Messages 60-66 mean these things only while a gssapi-with-mic exchange
// is under way, so they are decoded here and nowhere else.
//
// The core does no GSSAPI itself: a GSSAPI call may wait on the KDC, so each one is asked for
// as a credential request (a token from the security context, a MIC), answered later by
// whoever holds the context (./auth-answer.ts, from AuthOptions.gssapi). The exchange is a
// small state machine owned by ./auth.ts, which hands it every message while it runs and gets
// back what to do next.

import { Writer, equalBytes } from './wire.js';
import { SshError, Code } from './errors.js';
import { MSG, message, UserauthSuccess } from './messages.js';

// RFC 4462 §3.9-3.12, numbered in the method-specific range of RFC 4252 §6. 63
// (EXCHANGE_COMPLETE) is what a client sends instead of a MIC when its context has no
// integrity protection; revtun requires integrity (../crypto/gssapi.ts), so it never does.
export const GSSAPI_MSG = {
  RESPONSE: 60,
  TOKEN: 61,
  ERROR: 64,
  ERRTOK: 65,
  MIC: 66,
} as const;

export const GssapiResponse = message(GSSAPI_MSG.RESPONSE, 'SSH_MSG_USERAUTH_GSSAPI_RESPONSE', { mechanism: 'string' });
export const GssapiToken = message(GSSAPI_MSG.TOKEN, 'SSH_MSG_USERAUTH_GSSAPI_TOKEN', { token: 'string' });
export const GssapiError = message(GSSAPI_MSG.ERROR, 'SSH_MSG_USERAUTH_GSSAPI_ERROR', {
  major: 'uint32',
  minor: 'uint32',
  message: 'utf8',
  language: 'string',
});
export const GssapiErrtok = message(GSSAPI_MSG.ERRTOK, 'SSH_MSG_USERAUTH_GSSAPI_ERRTOK', { token: 'string' });
export const GssapiMic = message(GSSAPI_MSG.MIC, 'SSH_MSG_USERAUTH_GSSAPI_MIC', { mic: 'string' });

/** The Kerberos 5 mechanism, 1.2.840.113554.1.2.2, DER-encoded with its tag as RFC 4462 §3.2 sends it. */
export const KRB5_MECHANISM_OID = Uint8Array.from([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02]);

/** One GSSAPI security context, initiated towards the server; ../crypto/gssapi.ts makes them. */
export interface GssSecurityContext {
  /** gss_init_sec_context with the server's token (null the first time). */
  step(input: Uint8Array | null): Promise<{ token: Uint8Array; complete: boolean; delegated: boolean }>;
  /** gss_get_mic over `data`. Throws with the GSSAPI error text. */
  getMic(data: Uint8Array): Uint8Array;
  /** gss_verify_mic; throws with the GSSAPI error text when `mic` is not the peer's over `data`. */
  verifyMic(data: Uint8Array, mic: Uint8Array): void;
  /** gss_delete_sec_context. */
  dispose(): void;
}

/** Where GSSAPI contexts come from (the core only checks that there is one). */
export interface GssapiSource {
  /** What logs and errors call the target ("host@example.com", "host/example.com@REALM"). */
  readonly target: string;
  /** Starts a fresh context towards the target; throws with the reason it cannot. */
  createContext(): GssSecurityContext;
}

/** Which context a request is about: the user authentication's, or the key exchange's (RFC 4462 §2). */
export type GssapiPurpose = 'userauth' | 'kex';

export type GssapiRequest =
  /** The next token of the `purpose` context; `input` null starts a fresh context. */
  | { kind: 'gssapiToken'; id: number; purpose: GssapiPurpose; input: Uint8Array | null }
  /** A MIC over `data` with the established `purpose` context. */
  | { kind: 'gssapiMic'; id: number; purpose: GssapiPurpose; data: Uint8Array }
  /** Whether `mic` is the server's MIC over `data` (the key exchange's context). */
  | { kind: 'gssapiVerifyMic'; id: number; data: Uint8Array; mic: Uint8Array };

/** null token / mic, or valid false: the call failed, and `reason` says why (GSSAPI's text). */
export type GssapiAnswer =
  | { kind: 'gssapiToken'; token: Uint8Array | null; complete: boolean; delegated?: boolean; reason?: string }
  | { kind: 'gssapiMic'; mic: Uint8Array | null; reason?: string }
  | { kind: 'gssapiVerifyMic'; valid: boolean; reason?: string };

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** What the exchange needs of user authentication (./auth.ts's AuthContext is one). */
export interface GssapiExchangeContext {
  sessionId: Uint8Array;
  send(payload: Uint8Array): void;
  status(message: string): void;
  request(request: WithoutId<GssapiRequest>): number;
}

/** What auth.ts does after the exchange handled a message or an answer. */
export type GssapiOutcome =
  | { kind: 'continue' }
  | { kind: 'success' }
  /** The server's USERAUTH_FAILURE, to be handled as any method's. */
  | { kind: 'failure'; payload: Uint8Array }
  /** This side cannot go on (no ticket, no such service): try the next method. */
  | { kind: 'abandon'; reason: string };

type ExchangeState =
  /** The request naming our mechanisms is out: RESPONSE, or FAILURE. */
  | { kind: 'expectResponse' }
  | { kind: 'awaitToken'; id: number }
  /** Our token is out and the context wants more: the server's TOKEN (or ERROR, ERRTOK, FAILURE). */
  | { kind: 'expectToken' }
  /** The server's error token is being read by the context for its text; a FAILURE may come meanwhile. */
  | { kind: 'awaitErrorText'; id: number; heldFailure: Uint8Array | null }
  | { kind: 'awaitMic'; id: number }
  /** The MIC (or the gssapi-keyex request) is out: SUCCESS or FAILURE. */
  | { kind: 'expectResult' };

/**
 * RFC 4462 §3.5: what the MIC covers, the session identifier and a USERAUTH_REQUEST header
 * for `method` (gssapi-with-mic, or gssapi-keyex in §4).
 */
export function gssapiMicData(sessionId: Uint8Array, username: string, method: 'gssapi-with-mic' | 'gssapi-keyex'): Uint8Array {
  return new Writer(256).string(sessionId).byte(MSG.USERAUTH_REQUEST).string(username).string('ssh-connection').string(method).finish();
}

function requestHeader(username: string, method: string): Writer {
  return new Writer(256).byte(MSG.USERAUTH_REQUEST).string(username).string('ssh-connection').string(method);
}

/** Printable text from the peer, for a message: no control characters, bounded. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 512);
}

/** One gssapi-with-mic or gssapi-keyex attempt. */
export class GssapiExchange {
  private state: ExchangeState;
  /** The server's SSH_MSG_USERAUTH_GSSAPI_ERROR text, if it sent one. */
  private serverError: string | null = null;

  /** Starts the attempt: sends the request (gssapi-with-mic), or asks for the MIC (gssapi-keyex). */
  constructor(
    readonly method: 'gssapi-with-mic' | 'gssapi-keyex',
    private readonly username: string,
    private readonly ctx: GssapiExchangeContext,
  ) {
    if (method === 'gssapi-with-mic') {
      // RFC 4462 §3.2: the mechanisms we support, one OID each; Kerberos 5 is the one here.
      this.state = { kind: 'expectResponse' };
      ctx.send(requestHeader(username, method).uint32(1).string(KRB5_MECHANISM_OID).finish());
    } else {
      // §4: no exchange, only a MIC with the key exchange's context.
      const id = ctx.request({ kind: 'gssapiMic', purpose: 'kex', data: gssapiMicData(ctx.sessionId, username, method) });
      this.state = { kind: 'awaitMic', id };
    }
  }

  /** The credential request waiting for an answer, or null. */
  get pending(): { id: number; kind: GssapiAnswer['kind'] } | null {
    const state = this.state;
    if (state.kind === 'awaitToken' || state.kind === 'awaitErrorText') return { id: state.id, kind: 'gssapiToken' };
    if (state.kind === 'awaitMic') return { id: state.id, kind: 'gssapiMic' };
    return null;
  }

  /** Why the server refused, for the failure message. */
  get refusal(): string {
    return this.serverError ? `the server said: ${this.serverError}` : 'the server refused it';
  }

  /** A message numbered 51, 52 or 60-79 from the server. */
  handle(id: number, payload: Uint8Array): GssapiOutcome {
    const state = this.state;
    if (id === MSG.USERAUTH_FAILURE) {
      if (state.kind === 'awaitErrorText') {
        state.heldFailure = payload;
        return { kind: 'continue' };
      }
      if (state.kind === 'expectResponse' || state.kind === 'expectToken' || state.kind === 'expectResult') return { kind: 'failure', payload };
    } else if (id === MSG.USERAUTH_SUCCESS) {
      if (state.kind === 'expectResult') {
        UserauthSuccess.decode(payload);
        return { kind: 'success' };
      }
    } else if (id === GSSAPI_MSG.ERROR) {
      // §3.8: informational; a FAILURE (or the exchange going on) follows.
      const error = GssapiError.decode(payload);
      this.serverError = `${printable(error.message).trim()} (major ${error.major}, minor ${error.minor})`;
      this.ctx.status(`GSSAPI error from the server: ${this.serverError}`);
      return { kind: 'continue' };
    } else if (this.method === 'gssapi-with-mic') {
      return this.handleExchangeMessage(id, payload);
    }
    throw new SshError(Code.ProtocolError, `unexpected message ${id} during ${this.method} authentication (${state.kind})`, 'peer');
  }

  private handleExchangeMessage(id: number, payload: Uint8Array): GssapiOutcome {
    const state = this.state;
    if (state.kind === 'expectResponse' && id === GSSAPI_MSG.RESPONSE) {
      // §3.3: the server picks one of the mechanisms we offered.
      const { mechanism } = GssapiResponse.decode(payload);
      if (!equalBytes(mechanism, KRB5_MECHANISM_OID)) {
        throw new SshError(Code.ProtocolError, 'SSH_MSG_USERAUTH_GSSAPI_RESPONSE names a mechanism that was not offered', 'peer');
      }
      this.requestToken(null);
      return { kind: 'continue' };
    }
    if (state.kind === 'expectToken' && id === GSSAPI_MSG.TOKEN) {
      this.requestToken(GssapiToken.decode(payload).token);
      return { kind: 'continue' };
    }
    if ((state.kind === 'expectToken' || state.kind === 'expectResponse') && id === GSSAPI_MSG.ERRTOK) {
      // §3.9: the server's context failed; our context reads its token, which gives the real
      // reason (a Kerberos error: wrong principal, skew, ...). A FAILURE follows.
      const { token } = GssapiErrtok.decode(payload);
      const request = this.ctx.request({ kind: 'gssapiToken', purpose: 'userauth', input: token });
      this.state = { kind: 'awaitErrorText', id: request, heldFailure: null };
      return { kind: 'continue' };
    }
    throw new SshError(Code.ProtocolError, `unexpected message ${id} during gssapi-with-mic authentication (${state.kind})`, 'peer');
  }

  private requestToken(input: Uint8Array | null): void {
    const id = this.ctx.request({ kind: 'gssapiToken', purpose: 'userauth', input });
    this.state = { kind: 'awaitToken', id };
  }

  /** Goes on with an answer to the pending request (auth.ts checked it is that one). */
  answer(answer: GssapiAnswer): GssapiOutcome {
    const state = this.state;
    if (state.kind === 'awaitErrorText' && answer.kind === 'gssapiToken') {
      this.serverError = answer.token === null && answer.reason ? answer.reason : 'it sent a GSSAPI error token';
      this.ctx.status(`the server rejected our GSSAPI token: ${this.serverError}`);
      this.state = { kind: 'expectResult' };
      return state.heldFailure ? { kind: 'failure', payload: state.heldFailure } : { kind: 'continue' };
    }
    if (state.kind === 'awaitToken' && answer.kind === 'gssapiToken') {
      if (!answer.token) return { kind: 'abandon', reason: answer.reason ?? 'the GSSAPI context failed' };
      if (answer.token.length > 0) this.ctx.send(GssapiToken.encode({ token: answer.token }));
      if (!answer.complete) {
        this.state = { kind: 'expectToken' };
        return { kind: 'continue' };
      }
      if (answer.delegated) this.ctx.status('GSSAPI credentials delegated to the server');
      // §3.5: with the context established, prove it with a MIC over the request.
      const id = this.ctx.request({ kind: 'gssapiMic', purpose: 'userauth', data: gssapiMicData(this.ctx.sessionId, this.username, this.method) });
      this.state = { kind: 'awaitMic', id };
      return { kind: 'continue' };
    }
    if (state.kind === 'awaitMic' && answer.kind === 'gssapiMic') {
      if (!answer.mic) return { kind: 'abandon', reason: answer.reason ?? 'the GSSAPI context could not make a MIC' };
      this.state = { kind: 'expectResult' };
      this.ctx.send(this.method === 'gssapi-with-mic' ? GssapiMic.encode({ mic: answer.mic }) : requestHeader(this.username, this.method).string(answer.mic).finish());
      return { kind: 'continue' };
    }
    return { kind: 'continue' };
  }
}

/**
 * The security contexts of one connection, by purpose, answering the core's GSSAPI requests.
 * A fresh token request (no input) replaces the purpose's context; a failed call disposes
 * it; dispose() ends them all when the connection closes. Nothing here throws: each failure
 * becomes an answer with its reason.
 */
export class GssapiContexts {
  private readonly contexts = new Map<GssapiPurpose, GssSecurityContext>();

  constructor(private readonly source: GssapiSource | undefined) {}

  async answer(request: GssapiRequest): Promise<GssapiAnswer> {
    const why = (error: unknown) => (error instanceof Error ? error.message : String(error));
    switch (request.kind) {
      case 'gssapiToken': {
        try {
          let context = this.contexts.get(request.purpose);
          if (request.input === null || !context) {
            this.drop(request.purpose);
            if (!this.source) throw new Error('no GSSAPI source');
            context = this.source.createContext();
            this.contexts.set(request.purpose, context);
          }
          const step = await context.step(request.input);
          return { kind: 'gssapiToken', token: step.token, complete: step.complete, delegated: step.delegated };
        } catch (error) {
          this.drop(request.purpose);
          return { kind: 'gssapiToken', token: null, complete: false, reason: `GSSAPI context for ${this.source?.target ?? 'the server'}: ${why(error)}` };
        }
      }
      case 'gssapiMic': {
        try {
          const context = this.contexts.get(request.purpose);
          if (!context) throw new Error(`no established GSSAPI context for ${request.purpose === 'kex' ? 'the key exchange' : 'user authentication'}`);
          const mic = context.getMic(request.data);
          // gssapi-with-mic's MIC is its context's last use.
          if (request.purpose === 'userauth') this.drop('userauth');
          return { kind: 'gssapiMic', mic };
        } catch (error) {
          this.drop(request.purpose);
          return { kind: 'gssapiMic', mic: null, reason: why(error) };
        }
      }
      case 'gssapiVerifyMic': {
        try {
          const context = this.contexts.get('kex');
          if (!context) throw new Error('no established GSSAPI context for the key exchange');
          context.verifyMic(request.data, request.mic);
          return { kind: 'gssapiVerifyMic', valid: true };
        } catch (error) {
          this.drop('kex');
          return { kind: 'gssapiVerifyMic', valid: false, reason: why(error) };
        }
      }
    }
  }

  dispose(): void {
    for (const purpose of [...this.contexts.keys()]) this.drop(purpose);
  }

  private drop(purpose: GssapiPurpose): void {
    const context = this.contexts.get(purpose);
    this.contexts.delete(purpose);
    try {
      context?.dispose();
    } catch {
      /* a context that cannot be released is already gone */
    }
  }
}
