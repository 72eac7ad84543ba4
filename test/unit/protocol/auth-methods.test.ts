// The method-choosing part of user authentication (ts/protocol/auth.ts, RFC 4252 §5 and §8,
// RFC 4256), the client core against the in-memory TestServer: "none" first, then our methods
// in our order among those the server lists; the password asked for once; keyboard-interactive
// answered with it; a partial success, a banner, a password change request, a stray message;
// custom authentication. (Publickey over several keys is auth.test.ts; answers that come later
// are auth-async.test.ts.)

import { describe, expect, it } from 'vitest';
import { Reader, Writer } from '../../../ts/protocol/wire.js';
import { MSG, UserauthBanner, UserauthFailure, UserauthPasswdChangeReq } from '../../../ts/protocol/messages.js';
import type { AuthOptions } from '../../../ts/protocol/auth.js';
import { Code } from '../../../ts/protocol/errors.js';
import { Pair, PASSWORD, TestServer, type ServerHooks } from '../../helpers/peer.js';

function authOptions(overrides: Partial<AuthOptions> = {}): AuthOptions {
  return { username: 'u', methods: ['password'], password: PASSWORD, publicKeySignatureAlgorithms: [], repeatMethods: false, ...overrides };
}

/** The USERAUTH_REQUESTs the server received, as "method" (and, for password, "password:<the password>"). */
function requests(server: TestServer): string[] {
  return server.receivedPayloads
    .filter((p) => p[0] === MSG.USERAUTH_REQUEST)
    .map((p) => {
      const r = new Reader(p, 1);
      r.utf8(); // user
      r.utf8(); // service
      const method = r.utf8();
      if (method !== 'password') return method;
      r.boolean();
      return `password:${r.utf8()}`;
    });
}

type Userauth = (payload: Uint8Array) => void;
/**
 * Puts `answer` in front of the TestServer's handling of USERAUTH_REQUEST (its private
 * `userauth`); `answer` gets the default to fall back on.
 */
function interceptUserauth(server: TestServer, answer: (payload: Uint8Array, fallback: Userauth) => void): void {
  const target = server as unknown as { userauth: Userauth };
  const fallback = target.userauth.bind(server);
  target.userauth = (payload) => answer(payload, fallback);
}

function logOn(auth: AuthOptions, hooks: ServerHooks = {}, setup?: (server: TestServer) => void): Pair {
  const server = new TestServer(hooks);
  setup?.(server);
  return new Pair(server, { auth }).start();
}

const statuses = (pair: Pair) => pair.events.flatMap((e) => (e.type === 'status' ? [e.message] : []));
const credentialKinds = (pair: Pair) => pair.events.flatMap((e) => (e.type === 'credentialRequest' ? [e.request.kind] : []));

describe('choosing methods', () => {
  it('asks with "none" first, then the first of our methods the server lists, skipping the one it does not', () => {
    const pair = logOn(authOptions({ methods: ['keyboard-interactive', 'password'] }));
    expect(pair.has('authenticated')).toBe(true);
    // The TestServer lists publickey only with authorized keys and keyboard-interactive only with prompts.
    expect(requests(pair.server)).toEqual(['none', `password:${PASSWORD}`]);
    expect(statuses(pair)).toContain('trying authentication method password');
  });

  it('a wrong password fails once (no repeatMethods) with 1032 naming what the server still allows', () => {
    const pair = logOn(authOptions({ password: 'wrong' }));
    expect(requests(pair.server)).toEqual(['none', 'password:wrong']);
    expect(pair.closedWith?.code).toBe(Code.AuthFailed);
    expect(pair.closedWith?.message).toBe('authentication failed for user "u"; the server still allows: password');
    expect(pair.closedWith?.message).not.toContain('wrong'); // the password itself never appears
  });

  it('with repeatMethods the password is asked for once and sent again, until the server ends it (MaxAuthTries)', () => {
    const pair = logOn(authOptions({ password: 'wrong', repeatMethods: true }), { maxAuthTries: 3 });
    expect(requests(pair.server)).toEqual(['none', 'password:wrong', 'password:wrong', 'password:wrong']);
    expect(credentialKinds(pair)).toEqual(['password']);
    expect(pair.closedWith?.code).toBe(Code.AuthFailed);
    expect(pair.closedWith?.message).toContain('the server ended authentication (Too many authentication failures)');
  });

  it('a method with no credentials is passed over: keyboard-interactive without answers or password ends with 1032', () => {
    const pair = logOn(authOptions({ methods: ['keyboard-interactive'], password: undefined }), { keyboardInteractive: { prompts: ['Code: '], answers: ['1'] } });
    expect(requests(pair.server)).toEqual(['none']);
    expect(pair.closedWith?.code).toBe(Code.AuthFailed);
    expect(pair.closedWith?.message).toContain('the server still allows: keyboard-interactive, password');
  });
});

describe('keyboard-interactive (RFC 4256)', () => {
  it('without an answering function every prompt gets the password, which is asked for once', () => {
    const pair = logOn(authOptions({ methods: ['keyboard-interactive'] }), { keyboardInteractive: { prompts: ['Password: ', 'Again: '], answers: [PASSWORD, PASSWORD] } });
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair.server)).toEqual(['none', 'keyboard-interactive']);
    expect(credentialKinds(pair)).toEqual(['password']);
    const response = new Reader(
      pair.server.receivedPayloads.find((p) => p[0] === MSG.USERAUTH_INFO_RESPONSE)!,
      1,
    );
    expect([response.uint32(), response.utf8(), response.utf8()]).toEqual([2, PASSWORD, PASSWORD]);
  });

  it('an answering function gets the prompts, with their echo flags, and its answers go out', () => {
    const pair = logOn(authOptions({ methods: ['keyboard-interactive'], password: undefined, keyboardInteractive: () => ['4711'] }), {
      keyboardInteractive: { prompts: ['Token: '], answers: ['4711'] },
    });
    expect(pair.has('authenticated')).toBe(true);
    const asked = pair.events.find((e) => e.type === 'credentialRequest');
    expect(asked?.type === 'credentialRequest' && asked.request).toMatchObject({ kind: 'keyboardInteractive', request: { name: '', instructions: '', prompts: [{ prompt: 'Token: ', echo: false }] } });
  });

  it('an INFO_REQUEST with more than 64 prompts is a protocol error (1027), not 64 credential requests', () => {
    const pair = logOn(authOptions({ methods: ['keyboard-interactive'] }), { keyboardInteractive: { prompts: Array.from({ length: 65 }, (_, i) => `p${i}`), answers: [] } });
    expect(pair.closedWith?.code).toBe(Code.ProtocolError);
    expect(pair.closedWith?.message).toContain('65 prompts');
    expect(credentialKinds(pair)).toEqual([]);
  });
});

describe('what the server may say meanwhile', () => {
  it('a partial success goes on with a method the server names next, and says so', () => {
    const pair = logOn(authOptions({ methods: ['password', 'keyboard-interactive'] }), { keyboardInteractive: { prompts: ['Password: '], answers: [PASSWORD] } }, (server) =>
      interceptUserauth(server, (payload, fallback) => {
        // The password counts, but the server wants keyboard-interactive as well.
        if (requests(server).at(-1)?.startsWith('password:')) server.send(UserauthFailure.encode({ methods: ['keyboard-interactive'], partialSuccess: true }));
        else fallback(payload);
      }),
    );
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair.server)).toEqual(['none', `password:${PASSWORD}`, 'keyboard-interactive']);
    expect(statuses(pair)).toContain('partial success; the server wants another method');
  });

  it('a banner is an event with its text, at any point of authentication', () => {
    const pair = logOn(authOptions(), {}, (server) =>
      interceptUserauth(server, (payload, fallback) => {
        server.send(UserauthBanner.encode({ text: `before ${requests(server).length}`, language: new Uint8Array(0) }));
        fallback(payload);
      }),
    );
    expect(pair.has('authenticated')).toBe(true);
    expect(pair.events.filter((e) => e.type === 'banner')).toEqual([
      { type: 'banner', text: 'before 1' },
      { type: 'banner', text: 'before 2' },
    ]);
  });

  it('a password change request (§8) ends with 1032 giving the server’s prompt', () => {
    const pair = logOn(authOptions(), {}, (server) =>
      interceptUserauth(server, (payload, fallback) => {
        if (requests(server).at(-1)?.startsWith('password:')) server.send(UserauthPasswdChangeReq.encode({ prompt: 'Password expired', language: new Uint8Array(0) }));
        else fallback(payload);
      }),
    );
    expect(pair.closedWith?.code).toBe(Code.AuthFailed);
    expect(pair.closedWith?.message).toBe('the server requires a password change: Password expired');
  });

  it('message 60 in answer to "none" is a protocol error (1027): it means something only to a method in progress', () => {
    const pair = logOn(authOptions(), {}, (server) =>
      interceptUserauth(server, (payload, fallback) => {
        if (requests(server).at(-1) === 'none') server.send(new Writer().byte(60).string('x').string('').finish());
        else fallback(payload);
      }),
    );
    expect(pair.closedWith?.code).toBe(Code.ProtocolError);
    expect(pair.closedWith?.message).toBe('unexpected message 60 during none authentication');
  });
});

describe('custom authentication', () => {
  it('the application writes the requests: it sees SERVICE_ACCEPT, then each FAILURE, and its messages go out as written', () => {
    const seen: number[] = [];
    const request = (password: string) => new Writer().byte(MSG.USERAUTH_REQUEST).string('u').string('ssh-connection').string('password').boolean(false).string(password).finish();
    const pair = logOn(
      authOptions({
        custom: (serverMessage) => {
          seen.push(serverMessage[0]!);
          return request(seen.length === 1 ? 'first try' : PASSWORD);
        },
      }),
    );
    expect(pair.has('authenticated')).toBe(true);
    expect(seen).toEqual([MSG.SERVICE_ACCEPT, MSG.USERAUTH_FAILURE]);
    expect(requests(pair.server)).toEqual(['password:first try', `password:${PASSWORD}`]); // no "none" of ours
  });

  it('giving up (null) ends with 1032; a message outside 50-79 is refused with 1032 before it is sent', () => {
    const gaveUp = logOn(authOptions({ custom: () => null }));
    expect(gaveUp.closedWith?.code).toBe(Code.AuthFailed);
    expect(gaveUp.closedWith?.message).toBe('custom authentication for user "u" gave up');
    const stray = logOn(authOptions({ custom: () => new Writer().byte(MSG.GLOBAL_REQUEST).string('x').boolean(false).finish() }));
    expect(stray.closedWith?.code).toBe(Code.AuthFailed);
    expect(stray.closedWith?.message).toContain('message 80, which is not a user authentication message');
    expect(stray.server.received).not.toContain(MSG.GLOBAL_REQUEST);
  });
});
