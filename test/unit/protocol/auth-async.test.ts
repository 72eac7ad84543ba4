// Authentication that waits: the core asks for passwords, keyboard-interactive answers, a
// key's public half and signatures as credentialRequest events and goes on when they are
// answered, however much later. Answers that match no waiting request fail as values; a
// server that speaks while nothing of ours is out is a protocol error; a signer that fails
// passes its key over.

import { describe, expect, it } from 'vitest';
import { Writer } from '../../../ts/protocol/wire.js';
import { MSG } from '../../../ts/protocol/messages.js';
import { createSigner } from '../../../ts/crypto/keys.js';
import type { AuthOptions, CredentialRequest, PublicKeyIdentity, Signer } from '../../../ts/protocol/auth.js';
import { Pair, PASSWORD, TestServer, randomEd25519Key } from '../../helpers/peer.js';

function ed25519Signer(): Signer {
  return createSigner(randomEd25519Key());
}

/** A signer whose signatures come later, when the test says so. */
function laterSigner(inner: Signer) {
  const waiting: (() => void)[] = [];
  const signer: Signer = {
    publicKey: inner.publicKey,
    keyType: inner.keyType,
    sign: (algorithm, data) => new Promise((resolve) => waiting.push(() => resolve(inner.sign(algorithm, data) as Uint8Array))),
  };
  return {
    signer,
    release: () => {
      for (const go of waiting.splice(0)) go();
    },
    get pending() {
      return waiting.length;
    },
  };
}

const identity = (name: string, signer: Signer, publicKnown = true): PublicKeyIdentity => ({
  name,
  publicKey: publicKnown ? { blob: signer.publicKey, keyType: signer.keyType } : null,
  load: () => ({ ok: true, signer }),
});

function auth(overrides: Partial<AuthOptions>): AuthOptions {
  return { username: 'u', methods: ['publickey'], identities: [], publicKeySignatureAlgorithms: ['ssh-ed25519'], repeatMethods: false, ...overrides };
}

const requestsOf = (pair: Pair) => pair.events.filter((e) => e.type === 'credentialRequest').map((e) => (e as { request: CredentialRequest }).request);

describe('authentication that waits for its credentials', () => {
  it('a signature that comes later: nothing goes out meanwhile, then the signed request, then success', async () => {
    const key = ed25519Signer();
    const later = laterSigner(key);
    const pair = new Pair(new TestServer({ authorizedKeys: [key.publicKey] }), { auth: auth({ identities: [identity('agent key', later.signer)] }) });
    pair.start();
    expect(pair.has('authenticated')).toBe(false);
    expect(later.pending).toBe(1);
    expect(pair.server.publicKeyRequests.map((r) => r.signed)).toEqual([false]); // the query, PK_OK, and a wait
    expect(requestsOf(pair).map((r) => r.kind)).toEqual(['signature']);
    later.release();
    await pair.settle();
    expect(pair.has('authenticated')).toBe(true);
    expect(pair.server.publicKeyRequests.map((r) => r.signed)).toEqual([false, true]);
  });

  it('a password from a provider that answers later', async () => {
    let answer: (value: string) => void = () => undefined;
    const pair = new Pair(new TestServer(), { auth: auth({ methods: ['password'], password: () => new Promise<string>((resolve) => (answer = resolve)) }) });
    pair.start();
    expect(pair.has('authenticated')).toBe(false);
    answer(PASSWORD);
    await pair.settle();
    expect(pair.has('authenticated')).toBe(true);
  });

  it('a signer that fails passes its key over; the next key logs on', async () => {
    const refusing: Signer = { ...ed25519Signer(), sign: () => Promise.reject(new Error('agent refused operation')) };
    const good = ed25519Signer();
    const pair = new Pair(new TestServer({ authorizedKeys: [refusing.publicKey, good.publicKey] }), {
      auth: auth({ identities: [identity('refusing', refusing), identity('good', good)] }),
    });
    pair.start();
    await pair.settle();
    expect(pair.has('authenticated')).toBe(true);
    const status = pair.events.filter((e) => e.type === 'status').map((e) => (e as { message: string }).message);
    expect(status).toContain('not using key refusing: cannot sign with the ssh-ed25519 key: agent refused operation');
  });

  it('a key whose public half comes only with loading it: asked for, then signed at once', () => {
    const key = ed25519Signer();
    const pair = new Pair(new TestServer({ authorizedKeys: [key.publicKey] }), { auth: auth({ identities: [identity('hidden', key, false)] }) });
    pair.start();
    expect(pair.has('authenticated')).toBe(true);
    expect(requestsOf(pair).map((r) => r.kind)).toEqual(['publicKey', 'signature']);
    expect(pair.server.publicKeyRequests.map((r) => r.signed)).toEqual([true]);
  });

  it('an answer for no waiting request, or of the wrong kind, fails as a value and the connection goes on', () => {
    const key = ed25519Signer();
    const later = laterSigner(key);
    const pair = new Pair(new TestServer({ authorizedKeys: [key.publicKey] }), { auth: auth({ identities: [identity('k', later.signer)] }) });
    pair.manualCredentials = true;
    pair.start();
    const [request] = requestsOf(pair);
    expect(request?.kind).toBe('signature');
    const stray = pair.client.answerCredential(request!.id + 1, { kind: 'signature', signature: new Uint8Array(4) });
    expect(stray.ok).toBe(false);
    const wrongKind = pair.client.answerCredential(request!.id, { kind: 'password', password: 'x' });
    expect(wrongKind.ok).toBe(false);
    expect(pair.closedWith).toBeUndefined();
    // The real answer still works.
    const signature = key.sign('ssh-ed25519', (request as Extract<CredentialRequest, { kind: 'signature' }>).data) as Uint8Array;
    expect(pair.client.answerCredential(request!.id, { kind: 'signature', signature }).ok).toBe(true);
    pair.run();
    expect(pair.has('authenticated')).toBe(true);
    // Answered once: the same id again is stray.
    expect(pair.client.answerCredential(request!.id, { kind: 'signature', signature }).ok).toBe(false);
  });

  it('the server speaking while we wait for a credential is a protocol error (1027)', () => {
    const pair = new Pair(new TestServer(), { auth: auth({ methods: ['password'], password: () => new Promise<string>(() => undefined) }) });
    pair.start();
    expect(requestsOf(pair).map((r) => r.kind)).toEqual(['password']);
    pair.server.send(new Writer().byte(MSG.USERAUTH_SUCCESS).finish());
    pair.run();
    expect(pair.closedWith?.code).toBe(1027);
  });

  it('keyboard-interactive answers that come later', async () => {
    let answer: (responses: string[]) => void = () => undefined;
    const seen: string[][] = [];
    const pair = new Pair(new TestServer({ keyboardInteractive: { prompts: ['Code: ', 'PIN: '], answers: ['123456', '0000'] } }), {
      auth: auth({
        methods: ['keyboard-interactive'],
        keyboardInteractive: (request) => {
          seen.push(request.prompts.map((p) => p.prompt));
          return new Promise<string[]>((resolve) => (answer = resolve));
        },
      }),
    });
    pair.start();
    expect(seen).toEqual([['Code: ', 'PIN: ']]);
    expect(pair.has('authenticated')).toBe(false);
    answer(['123456', '0000']);
    await pair.settle();
    expect(pair.has('authenticated')).toBe(true);
  });

  it('keyboard-interactive with no answers to give moves on to the next method', async () => {
    const pair = new Pair(new TestServer({ keyboardInteractive: { prompts: ['Code: '], answers: ['1'] } }), {
      auth: auth({ methods: ['keyboard-interactive', 'password'], password: PASSWORD, keyboardInteractive: () => Promise.reject(new Error('nobody at the keyboard')) }),
    });
    pair.start();
    await pair.settle();
    expect(pair.has('authenticated')).toBe(true);
    expect(requestsOf(pair).map((r) => r.kind)).toEqual(['keyboardInteractive', 'password']);
  });
});
