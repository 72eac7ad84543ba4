// gssapi-with-mic and gssapi-keyex (RFC 4462 §3, §4) in the user authentication state machine:
// the message codec, the exchange driven message by message with the GSSAPI calls answered
// as the Session would answer them, messages in the wrong state, the server's error messages
// and error token, and the security contexts' lifetimes (GssapiContexts).

import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../ts/protocol/wire.js';
import { MSG, ServiceAccept, UserauthFailure } from '../../../ts/protocol/messages.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { UserAuth, type AuthOptions, type CredentialRequest } from '../../../ts/protocol/auth.js';
import {
  GssapiContexts,
  GssapiError,
  GssapiErrtok,
  GssapiMic,
  gssapiMicData,
  GssapiResponse,
  GssapiToken,
  KRB5_MECHANISM_OID,
  type GssapiSource,
  type GssSecurityContext,
} from '../../../ts/protocol/auth-gssapi.js';

const SESSION_ID = Uint8Array.from({ length: 32 }, (_, i) => i);
const bytes = (text: string) => new TextEncoder().encode(text);
const failure = (methods: string[], partialSuccess = false) => UserauthFailure.encode({ methods, partialSuccess });
const SUCCESS = Uint8Array.of(MSG.USERAUTH_SUCCESS);

/** A UserAuth with the sent payloads and credential requests recorded. */
function harness(overrides: Partial<AuthOptions> = {}, gssKex = false) {
  const sent: Uint8Array[] = [];
  const requests: CredentialRequest[] = [];
  const statuses: string[] = [];
  let nextId = 1;
  const source: GssapiSource = {
    target: 'host@server.test',
    createContext: () => {
      throw new Error('not used here');
    },
  };
  const auth = new UserAuth(
    { username: 'alice', methods: ['gssapi-with-mic'], publicKeySignatureAlgorithms: [], repeatMethods: false, gssapi: source, ...overrides },
    {
      sessionId: SESSION_ID,
      serverSignatureAlgorithms: () => undefined,
      send: (payload) => sent.push(payload),
      banner: () => undefined,
      status: (message) => statuses.push(message),
      request: (body) => {
        const request = { ...body, id: nextId++ } as CredentialRequest;
        requests.push(request);
        return request.id;
      },
      gssapiKeyExchanged: () => gssKex,
    },
  );
  auth.start();
  auth.handle(MSG.SERVICE_ACCEPT, ServiceAccept.encode({ service: 'ssh-userauth' }));
  return { auth, sent, requests, statuses, last: () => sent[sent.length - 1]!, lastRequest: () => requests[requests.length - 1]! };
}

/** Past "none": the server lists the methods, and the GSSAPI request goes out. */
function started(methods = ['gssapi-with-mic'], overrides: Partial<AuthOptions> = {}, gssKex = false) {
  const h = harness(overrides, gssKex);
  h.auth.handle(MSG.USERAUTH_FAILURE, failure(methods));
  return h;
}

function deliver(h: ReturnType<typeof harness>, payload: Uint8Array): boolean {
  return h.auth.handle(payload[0]!, payload);
}

function answer(h: ReturnType<typeof harness>, body: Parameters<UserAuth['answer']>[0]): void {
  const request = h.lastRequest();
  expect(h.auth.answerProblem(request.id, body)).toBeNull();
  h.auth.answer(body);
}

function thrown(work: () => unknown): SshError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(SshError);
    return error as SshError;
  }
  throw new Error('expected an SshError');
}

describe('message codec', () => {
  it('encodes and decodes each message, rejecting trailing bytes', () => {
    const token = Uint8Array.of(1, 2, 3);
    expect(GssapiToken.decode(GssapiToken.encode({ token })).token).toEqual(token);
    expect(GssapiMic.decode(GssapiMic.encode({ mic: token })).mic).toEqual(token);
    expect(GssapiErrtok.decode(GssapiErrtok.encode({ token })).token).toEqual(token);
    expect(GssapiResponse.decode(GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID })).mechanism).toEqual(KRB5_MECHANISM_OID);
    const error = GssapiError.encode({ major: 0xd0000, minor: 7, message: 'no such principal', language: new Uint8Array(0) });
    expect(GssapiError.decode(error)).toMatchObject({ major: 0xd0000, minor: 7, message: 'no such principal' });
    expect(() => GssapiToken.decode(Uint8Array.of(...GssapiToken.encode({ token }), 0))).toThrow(SshError);
  });

  it('the MIC covers the session id and a USERAUTH_REQUEST header for the method (RFC 4462 §3.5)', () => {
    const data = gssapiMicData(SESSION_ID, 'alice', 'gssapi-with-mic');
    const r = new Reader(data);
    expect(r.string()).toEqual(SESSION_ID);
    expect(r.byte()).toBe(MSG.USERAUTH_REQUEST);
    expect(new TextDecoder().decode(r.string())).toBe('alice');
    expect(new TextDecoder().decode(r.string())).toBe('ssh-connection');
    expect(new TextDecoder().decode(r.string())).toBe('gssapi-with-mic');
    r.done('MIC data');
  });

  it('the Kerberos 5 OID is 1.2.840.113554.1.2.2 in DER', () => {
    expect(Buffer.from(KRB5_MECHANISM_OID).toString('hex')).toBe('06092a864886f712010202');
  });
});

describe('gssapi-with-mic exchange', () => {
  it('runs request, response, tokens both ways, then the MIC, and succeeds', () => {
    const h = started();
    // RFC 4462 §3.2: the request names one mechanism, Kerberos 5.
    const request = new Reader(h.last());
    expect(request.byte()).toBe(MSG.USERAUTH_REQUEST);
    expect([request.utf8(), request.utf8(), request.utf8()]).toEqual(['alice', 'ssh-connection', 'gssapi-with-mic']);
    expect(request.uint32()).toBe(1);
    expect(request.string()).toEqual(KRB5_MECHANISM_OID);
    request.done('request');

    deliver(h, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    expect(h.lastRequest()).toMatchObject({ kind: 'gssapiToken', purpose: 'userauth', input: null });
    answer(h, { kind: 'gssapiToken', token: bytes('AP-REQ'), complete: false });
    expect(GssapiToken.decode(h.last()).token).toEqual(bytes('AP-REQ'));

    deliver(h, GssapiToken.encode({ token: bytes('AP-REP') }));
    expect(h.lastRequest()).toMatchObject({ kind: 'gssapiToken', input: bytes('AP-REP') });
    const sentBefore = h.sent.length;
    answer(h, { kind: 'gssapiToken', token: new Uint8Array(0), complete: true, delegated: true });
    expect(h.sent.length).toBe(sentBefore); // an empty final token is not sent
    expect(h.statuses).toContain('GSSAPI credentials delegated to the server');
    expect(h.lastRequest()).toMatchObject({ kind: 'gssapiMic', purpose: 'userauth', data: gssapiMicData(SESSION_ID, 'alice', 'gssapi-with-mic') });

    answer(h, { kind: 'gssapiMic', mic: bytes('MIC') });
    expect(GssapiMic.decode(h.last()).mic).toEqual(bytes('MIC'));
    expect(deliver(h, SUCCESS)).toBe(true);
    expect(h.auth.done).toBe(true);
  });

  it('a response naming a mechanism that was not offered is a protocol error', () => {
    const h = started();
    const other = Uint8Array.from([0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]); // SPNEGO
    expect(thrown(() => deliver(h, GssapiResponse.encode({ mechanism: other }))).code).toBe(Code.ProtocolError);
  });

  it('method messages are decoded only where they are expected', () => {
    // A token before the response; a response while a token is awaited; SUCCESS before the MIC.
    expect(thrown(() => deliver(started(), GssapiToken.encode({ token: bytes('x') }))).code).toBe(Code.ProtocolError);
    const waiting = started();
    deliver(waiting, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    expect(thrown(() => deliver(waiting, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }))).message).toMatch(/unexpected message 60 .*awaitToken/);
    const early = started();
    deliver(early, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    answer(early, { kind: 'gssapiToken', token: bytes('t'), complete: false });
    expect(thrown(() => deliver(early, SUCCESS)).code).toBe(Code.ProtocolError);
    expect(thrown(() => deliver(early, GssapiMic.encode({ mic: bytes('m') }))).code).toBe(Code.ProtocolError);
    // 63 (EXCHANGE_COMPLETE) and 66 (MIC) go from client to server only.
    expect(thrown(() => deliver(early, Uint8Array.of(63))).message).toMatch(/unexpected message 63 during gssapi-with-mic authentication \(expectToken\)/);
  });

  it('a local GSSAPI failure moves on to the next method, and the final error quotes it', () => {
    const h = started(['gssapi-with-mic', 'password'], { methods: ['gssapi-with-mic', 'password'], password: 'pw' });
    deliver(h, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    answer(h, { kind: 'gssapiToken', token: null, complete: false, reason: 'No Kerberos credentials available' });
    expect(h.lastRequest()).toMatchObject({ kind: 'password' }); // the password method is next
    answer(h, { kind: 'password', password: 'pw' });
    const error = thrown(() => deliver(h, failure(['gssapi-with-mic', 'password'])));
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gssapi-with-mic: No Kerberos credentials available/);
  });

  it("the server's GSSAPI_ERROR text is in the failure that follows", () => {
    const h = started();
    deliver(h, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    answer(h, { kind: 'gssapiToken', token: bytes('t'), complete: false });
    deliver(h, GssapiError.encode({ major: 0xd0000, minor: 5, message: 'Wrong principal\r\nin request', language: new Uint8Array(0) }));
    const error = thrown(() => deliver(h, failure(['gssapi-with-mic'])));
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gssapi-with-mic: the server said: Wrong principal {2}in request \(major 851968, minor 5\)/);
  });

  it("the server's error token goes to the context for its text; a FAILURE arriving meanwhile waits for it", () => {
    const h = started();
    deliver(h, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    answer(h, { kind: 'gssapiToken', token: bytes('t'), complete: false });
    deliver(h, GssapiErrtok.encode({ token: bytes('KRB-ERROR') }));
    expect(h.lastRequest()).toMatchObject({ kind: 'gssapiToken', purpose: 'userauth', input: bytes('KRB-ERROR') });
    expect(deliver(h, failure(['gssapi-with-mic']))).toBe(false); // held
    const error = thrown(() => answer(h, { kind: 'gssapiToken', token: null, complete: false, reason: 'Clock skew too great' }));
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toMatch(/gssapi-with-mic: the server said: Clock skew too great/);
  });

  it('answers for no waiting request, or of the wrong kind, are refused without harm', () => {
    const h = started();
    expect(h.auth.answerProblem(99, { kind: 'gssapiMic', mic: null })).toMatch(/no credential request 99/);
    deliver(h, GssapiResponse.encode({ mechanism: KRB5_MECHANISM_OID }));
    expect(h.auth.answerProblem(h.lastRequest().id, { kind: 'gssapiMic', mic: null })).toMatch(/wants a gssapiToken answer/);
  });

  it('is not tried without a GSSAPI source', () => {
    const h = harness({ gssapi: undefined, methods: ['gssapi-with-mic'] });
    expect(thrown(() => deliver(h, failure(['gssapi-with-mic']))).code).toBe(Code.AuthFailed);
  });
});

describe('gssapi-keyex', () => {
  it('is tried only after a GSSAPI key exchange, with a MIC from its context (RFC 4462 §4)', () => {
    const withoutKex = harness({ methods: ['gssapi-keyex'] }, false);
    expect(thrown(() => deliver(withoutKex, failure(['gssapi-keyex']))).message).toMatch(/still allows: gssapi-keyex/);

    const h = started(['gssapi-keyex'], { methods: ['gssapi-keyex'] }, true);
    expect(h.lastRequest()).toMatchObject({ kind: 'gssapiMic', purpose: 'kex', data: gssapiMicData(SESSION_ID, 'alice', 'gssapi-keyex') });
    answer(h, { kind: 'gssapiMic', mic: bytes('MIC') });
    const request = new Reader(h.last());
    expect(request.byte()).toBe(MSG.USERAUTH_REQUEST);
    expect([request.utf8(), request.utf8(), request.utf8()]).toEqual(['alice', 'ssh-connection', 'gssapi-keyex']);
    expect(request.string()).toEqual(bytes('MIC'));
    request.done('gssapi-keyex request');
    expect(deliver(h, SUCCESS)).toBe(true);
  });

  it('messages 60-66 are not part of gssapi-keyex', () => {
    const h = started(['gssapi-keyex'], { methods: ['gssapi-keyex'] }, true);
    answer(h, { kind: 'gssapiMic', mic: bytes('MIC') });
    expect(thrown(() => deliver(h, GssapiToken.encode({ token: bytes('x') }))).code).toBe(Code.ProtocolError);
  });
});

describe('GssapiContexts', () => {
  /** Contexts that record their calls; `failStep` makes step() reject. */
  function source(options: { failStep?: boolean } = {}) {
    const made: { steps: (Uint8Array | null)[]; disposed: number }[] = [];
    const gss: GssapiSource = {
      target: 'host@server.test',
      createContext(): GssSecurityContext {
        const record = { steps: [] as (Uint8Array | null)[], disposed: 0 };
        made.push(record);
        return {
          step: async (input) => {
            record.steps.push(input);
            if (options.failStep) throw new Error('Server not found in Kerberos database');
            return { token: bytes(`token${record.steps.length}`), complete: input !== null, delegated: false };
          },
          getMic: (data) => new Writer(64).string(data).finish(),
          verifyMic: () => undefined,
          dispose: () => record.disposed++,
        };
      },
    };
    return { gss, made };
  }

  it('a request without input starts a fresh context; the userauth MIC is its last use', async () => {
    const { gss, made } = source();
    const contexts = new GssapiContexts(gss);
    expect(await contexts.answer({ kind: 'gssapiToken', id: 1, purpose: 'userauth', input: null })).toMatchObject({ token: bytes('token1'), complete: false });
    expect(await contexts.answer({ kind: 'gssapiToken', id: 2, purpose: 'userauth', input: bytes('in') })).toMatchObject({ complete: true });
    expect(made).toHaveLength(1);
    expect((await contexts.answer({ kind: 'gssapiMic', id: 3, purpose: 'userauth', data: bytes('d') })).kind).toBe('gssapiMic');
    expect(made[0]!.disposed).toBe(1);
    expect(await contexts.answer({ kind: 'gssapiMic', id: 4, purpose: 'userauth', data: bytes('d') })).toMatchObject({ mic: null, reason: expect.stringMatching(/no established GSSAPI context/) });
  });

  it('a failed step disposes its context and answers with the reason, naming the target', async () => {
    const { gss, made } = source({ failStep: true });
    const answer = await new GssapiContexts(gss).answer({ kind: 'gssapiToken', id: 1, purpose: 'userauth', input: null });
    expect(answer).toMatchObject({ token: null, reason: 'GSSAPI context for host@server.test: Server not found in Kerberos database' });
    expect(made[0]!.disposed).toBe(1);
  });

  it('the key exchange context outlives user authentication until dispose()', async () => {
    const { gss, made } = source();
    const contexts = new GssapiContexts(gss);
    await contexts.answer({ kind: 'gssapiToken', id: 1, purpose: 'kex', input: null });
    await contexts.answer({ kind: 'gssapiToken', id: 2, purpose: 'userauth', input: null });
    expect(await contexts.answer({ kind: 'gssapiVerifyMic', id: 3, data: bytes('h'), mic: bytes('m') })).toEqual({ kind: 'gssapiVerifyMic', valid: true });
    await contexts.answer({ kind: 'gssapiMic', id: 4, purpose: 'kex', data: bytes('d') });
    expect(made.map((m) => m.disposed)).toEqual([0, 0]);
    contexts.dispose();
    expect(made.map((m) => m.disposed)).toEqual([1, 1]);
  });
});
