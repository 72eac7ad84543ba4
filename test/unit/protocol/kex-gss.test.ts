// The GSSAPI key exchange (RFC 4462 §2, RFC 8732) on its own: the method names' mechanism
// suffix, the message codec, and the client state machine driven message by message with
// its GSSAPI calls answered by hand, including the exchange hash the MIC must cover.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Writer } from '../../../ts/protocol/wire.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { KRB5_MECHANISM_OID, type GssapiSource } from '../../../ts/protocol/auth-gssapi.js';
import { Pair, PASSWORD, TestServer } from '../../helpers/peer.js';
import { decodeKexgssComplete, encodeKexgssInit, GSS_KEX_ALGORITHMS, GssKexMethod, KexgssContinue, KexgssError, KexgssHostkey, KRB5_KEX_SUFFIX } from '../../../ts/protocol/kex-gss.js';

const provider = new NodeCryptoProvider();
const bytes = (text: string) => new TextEncoder().encode(text);
const context = {
  provider,
  clientVersion: 'SSH-2.0-revtun_test',
  serverVersion: 'SSH-2.0-OpenSSH_9.2p1',
  clientKexInit: bytes('client kexinit'),
  serverKexInit: bytes('server kexinit'),
  groupBits: { min: 2048, preferred: 3072, max: 8192 },
};
const CURVE = `gss-curve25519-sha256-${KRB5_KEX_SUFFIX}`;

function complete(f: Uint8Array, mic: Uint8Array, token: Uint8Array | null, ecdh = true): Uint8Array {
  const w = new Writer(256).byte(32);
  if (ecdh) w.string(f);
  else w.mpint(f);
  w.string(mic).boolean(token !== null);
  if (token) w.string(token);
  return w.finish();
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

describe('names and codec', () => {
  it('the suffix is base64(MD5(DER of the Kerberos 5 OID)), as RFC 4462 §2 names the methods', () => {
    expect(createHash('md5').update(KRB5_MECHANISM_OID).digest('base64')).toBe(KRB5_KEX_SUFFIX);
    expect(GSS_KEX_ALGORITHMS).toEqual([CURVE, `gss-nistp256-sha256-${KRB5_KEX_SUFFIX}`, `gss-group14-sha256-${KRB5_KEX_SUFFIX}`]);
  });

  it('KEXGSS_INIT carries e as an mpint for MODP, Q_C as a string for the curves', () => {
    const value = Uint8Array.of(0x80, 1);
    expect([...encodeKexgssInit(false, bytes('t'), value)]).toEqual([30, 0, 0, 0, 1, 116, 0, 0, 0, 3, 0, 0x80, 1]);
    expect([...encodeKexgssInit(true, bytes('t'), value)]).toEqual([30, 0, 0, 0, 1, 116, 0, 0, 0, 2, 0x80, 1]);
  });

  it('KEXGSS_COMPLETE with and without the final token; trailing bytes are refused', () => {
    expect(decodeKexgssComplete(true, complete(bytes('Q'), bytes('mic'), bytes('tok')))).toEqual({ f: bytes('Q'), mic: bytes('mic'), token: bytes('tok') });
    expect(decodeKexgssComplete(true, complete(bytes('Q'), bytes('mic'), null)).token).toBeNull();
    expect(() => decodeKexgssComplete(true, Uint8Array.of(...complete(bytes('Q'), bytes('m'), null), 9))).toThrow(SshError);
  });
});

describe('the client state machine', () => {
  /** A server half for curve25519: its key agreement and what it would put in COMPLETE. */
  function serverSide() {
    const agreement = provider.keyAgreement({ kind: 'x25519' });
    return { agreement };
  }

  it('token, INIT, the final token in COMPLETE, then the MIC check over H; the outcome follows', () => {
    const method = new GssKexMethod(CURVE, context);
    const start = method.start();
    expect(start.send).toEqual([]);
    expect(start.request).toEqual({ kind: 'gssapiToken', purpose: 'kex', input: null });
    expect(method.pendingKind).toBe('gssapiToken');

    const init = method.answer({ kind: 'gssapiToken', token: bytes('AP-REQ'), complete: false });
    expect(init.send).toHaveLength(1);
    expect(init.send[0]![0]).toBe(30);
    const clientPublic = init.send[0]!.subarray(1 + 4 + 6 + 4); // number, token, Q_C length
    expect(clientPublic).toHaveLength(32);

    const server = serverSide();
    const hostKey = bytes('host key blob');
    expect(method.handle(KexgssHostkey.encode({ hostKey })).send).toEqual([]);
    const last = method.handle(complete(server.agreement.publicValue, bytes('MIC of H'), bytes('AP-REP')));
    expect(last.request).toEqual({ kind: 'gssapiToken', purpose: 'kex', input: bytes('AP-REP') });

    const check = method.answer({ kind: 'gssapiToken', token: new Uint8Array(0), complete: true });
    expect(check.request?.kind).toBe('gssapiVerifyMic');
    const secret = server.agreement.computeSecret(clientPublic);
    const expectedH = provider.hash(
      'sha256',
      new Writer(1024)
        .string(context.clientVersion)
        .string(context.serverVersion)
        .string(context.clientKexInit)
        .string(context.serverKexInit)
        .string(hostKey)
        .string(clientPublic)
        .string(server.agreement.publicValue)
        .mpint(secret)
        .finish(),
    );
    expect(check.request).toEqual({ kind: 'gssapiVerifyMic', data: expectedH, mic: bytes('MIC of H') });

    method.answer({ kind: 'gssapiVerifyMic', valid: true });
    expect(method.gssOutcome).toEqual({ hostKey, sharedSecret: secret, exchangeHash: expectedH });
  });

  it('a MIC that does not verify fails the exchange with 1031', () => {
    const method = new GssKexMethod(CURVE, context);
    method.start();
    method.answer({ kind: 'gssapiToken', token: bytes('t'), complete: false });
    method.handle(complete(serverSide().agreement.publicValue, bytes('bad'), bytes('last')));
    method.answer({ kind: 'gssapiToken', token: new Uint8Array(0), complete: true });
    const error = thrown(() => method.answer({ kind: 'gssapiVerifyMic', valid: false, reason: 'Token has been modified' }));
    expect(error.code).toBe(Code.HostKeyVerifyFailed);
    expect(error.message).toMatch(/Token has been modified/);
    expect(method.gssOutcome).toBeNull();
  });

  it('a CONTINUE round trip sends our next token back', () => {
    const method = new GssKexMethod(CURVE, context);
    method.start();
    method.answer({ kind: 'gssapiToken', token: bytes('first'), complete: false });
    expect(method.handle(KexgssContinue.encode({ token: bytes('server token') })).request).toEqual({ kind: 'gssapiToken', purpose: 'kex', input: bytes('server token') });
    expect(method.answer({ kind: 'gssapiToken', token: bytes('second'), complete: true }).send).toEqual([KexgssContinue.encode({ token: bytes('second') })]);
    // Established now: COMPLETE comes without a token and goes straight to the MIC check.
    expect(method.handle(complete(serverSide().agreement.publicValue, bytes('mic'), null)).request?.kind).toBe('gssapiVerifyMic');
  });

  it('messages while a GSSAPI call is under way, or out of order, are protocol errors', () => {
    const method = new GssKexMethod(CURVE, context);
    method.start();
    expect(thrown(() => method.handle(KexgssContinue.encode({ token: bytes('x') }))).message).toMatch(/while a GSSAPI call is under way/);
    method.answer({ kind: 'gssapiToken', token: bytes('t'), complete: true });
    expect(thrown(() => method.handle(KexgssContinue.encode({ token: bytes('x') }))).code).toBe(Code.ProtocolError);
    expect(thrown(() => method.handle(Uint8Array.of(40))).message).toMatch(/unexpected message 40/);
  });

  it("our context's failure and the server's KEXGSS_ERROR end the exchange with 1032 and the reason", () => {
    const failing = new GssKexMethod(CURVE, context);
    failing.start();
    expect(thrown(() => failing.answer({ kind: 'gssapiToken', token: null, complete: false, reason: 'No Kerberos credentials available' })).message).toBe(
      'GSSAPI key exchange: No Kerberos credentials available',
    );
    const refused = new GssKexMethod(CURVE, context);
    refused.start();
    refused.answer({ kind: 'gssapiToken', token: bytes('t'), complete: false });
    const error = thrown(() => refused.handle(KexgssError.encode({ major: 0xd0000, minor: 3, message: 'Wrong principal\n', language: new Uint8Array(0) })));
    expect(error.code).toBe(Code.AuthFailed);
    expect(error.message).toBe('GSSAPI key exchange failed on the server: Wrong principal (major 851968, minor 3)');
  });

  it('an unknown mechanism suffix is not a method', () => {
    expect(() => new GssKexMethod('gss-curve25519-sha256-AAAAAAAAAAAAAAAAAAAAAA==', context)).toThrow(/not implemented/);
  });
});

describe('in the client core', () => {
  const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest();
  /** GSSAPI contexts that take the server's one token and check its MIC as sha256(H). */
  function source(tokensSeen: (Uint8Array | null)[]): GssapiSource {
    return {
      target: 'host@server.test',
      createContext: () => ({
        step: async (input) => {
          tokensSeen.push(input);
          return input === null ? { token: bytes('AP-REQ'), complete: false, delegated: false } : { token: new Uint8Array(0), complete: true, delegated: false };
        },
        getMic: () => new Uint8Array(0),
        verifyMic: (data, mic) => {
          if (!Buffer.from(mic).equals(sha256(data))) throw new Error('Token has been modified');
        },
        dispose: () => undefined,
      }),
    };
  }

  function pair(mic: (h: Uint8Array) => Uint8Array, tokensSeen: (Uint8Array | null)[], byteAtATime = false): Pair {
    const server = new TestServer({ gssKex: { name: CURVE, token: bytes('AP-REP'), mic } });
    const p = new Pair(server, {
      algorithms: { kex: [CURVE, 'curve25519-sha256'], hostKey: ['ssh-ed25519', 'null'], cipher: ['aes128-gcm@openssh.com'], mac: ['hmac-sha2-256'], compression: ['none'] },
      auth: { username: 'u', methods: ['password'], password: PASSWORD, publicKeySignatureAlgorithms: [], repeatMethods: false, gssapi: source(tokensSeen) },
    });
    p.byteAtATime = byteAtATime;
    return p;
  }

  // Regression: COMPLETE and NEWKEYS came in one read while the context was still reading the
  // server's last token; NEWKEYS was taken as "outside a key exchange" and the logon failed.
  for (const byteAtATime of [false, true]) {
    it(`reads nothing while a GSSAPI call is out, so NEWKEYS right after COMPLETE waits for it${byteAtATime ? ' (bytes one at a time)' : ''}`, async () => {
      const tokensSeen: (Uint8Array | null)[] = [];
      const p = pair(sha256, tokensSeen, byteAtATime);
      p.start();
      await p.settle();
      expect(p.closedWith).toBeUndefined();
      expect(tokensSeen).toEqual([null, bytes('AP-REP')]);
      const exchanged = p.events.find((e) => e.type === 'keysExchanged');
      expect(exchanged?.type === 'keysExchanged' && exchanged.negotiated.kex).toBe(CURVE);
      expect(p.events.some((e) => e.type === 'status' && e.message === `GSSAPI key exchange ${CURVE}: the server's MIC over the exchange hash verifies`)).toBe(true);
      expect(p.has('authenticated')).toBe(true);
    });
  }

  it('a server MIC that does not verify ends the connection with 1031 before NEWKEYS is sent', async () => {
    const p = pair(() => bytes('forged'), []);
    p.start();
    await p.settle();
    expect(p.closedWith?.code).toBe(Code.HostKeyVerifyFailed);
    expect(p.closedWith?.message).toMatch(/does not verify: Token has been modified/);
    expect(p.server.received).not.toContain(21); // no NEWKEYS from the client
  });
});
