// Publickey authentication over several keys (RFC 4252 §7), the client core against the
// in-memory TestServer: each key is offered with a query and only the one answered with PK_OK
// is loaded and signs; refused keys give way to the next, then to the next method; the
// server's MaxAuthTries ends it with 1032; RSA keys retry the next signature algorithm.

import * as crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Writer } from '../../../ts/protocol/wire.js';
import { Disconnect, MSG } from '../../../ts/protocol/messages.js';
import { createSigner } from '../../../ts/crypto/keys.js';
import { loadedIdentity, type AuthOptions, type PublicKeyIdentity, type Signer } from '../../../ts/protocol/auth.js';
import { Pair, PASSWORD, TestServer, randomEd25519Key, type ServerHooks } from '../../helpers/peer.js';

const ED25519 = ['ssh-ed25519'];

function ed25519Signer(): Signer {
  return createSigner(randomEd25519Key());
}

/** An identity that records when it is loaded, and what the server had received by then. */
function watchedIdentity(name: string, signer: Signer, server: () => TestServer, options: { publicKnown?: boolean } = {}) {
  const loads: number[] = [];
  const identity: PublicKeyIdentity = {
    name,
    publicKey: options.publicKnown === false ? null : { blob: signer.publicKey, keyType: signer.keyType },
    load: () => {
      loads.push(server().publicKeyRequests.length);
      return { ok: true, signer };
    },
  };
  return { identity, loads };
}

function auth(identities: PublicKeyIdentity[], overrides: Partial<AuthOptions> = {}): AuthOptions {
  return { username: 'u', methods: ['publickey'], identities, publicKeySignatureAlgorithms: ED25519, repeatMethods: false, ...overrides };
}

function run(hooks: ServerHooks, options: AuthOptions, byteAtATime = false): Pair {
  const pair = new Pair(new TestServer(hooks), { auth: options });
  pair.byteAtATime = byteAtATime;
  return pair.start();
}

/** The requests as "query <n>" / "signed <n>", n being the key's index in `signers`. */
function requests(pair: Pair, signers: Signer[]): string[] {
  return pair.server.publicKeyRequests.map((r) => {
    const index = signers.findIndex((s) => Buffer.from(s.publicKey).equals(r.blob));
    return `${r.signed ? 'signed' : 'query'} ${index} ${r.algorithm}`;
  });
}

describe('publickey with several keys', () => {
  it('offers each key in turn and signs only with the one the server accepts', () => {
    const keys = [ed25519Signer(), ed25519Signer()];
    let pair: Pair | undefined;
    const first = watchedIdentity('first', keys[0]!, () => pair!.server);
    const second = watchedIdentity('second', keys[1]!, () => pair!.server);
    pair = new Pair(new TestServer({ authorizedKeys: [keys[1]!.publicKey] }), { auth: auth([first.identity, second.identity]) });
    pair.start();
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair, keys)).toEqual(['query 0 ssh-ed25519', 'query 1 ssh-ed25519', 'signed 1 ssh-ed25519']);
    expect(first.loads).toEqual([]); // refused: never loaded, so never asked for a passphrase
    expect(second.loads).toEqual([2]); // loaded after both queries, i.e. after PK_OK
  });

  it('does the same with every byte delivered separately', () => {
    const keys = [ed25519Signer(), ed25519Signer(), ed25519Signer()];
    const pair = run({ authorizedKeys: [keys[2]!.publicKey] }, auth(keys.map((k, i) => loadedIdentity(`k${i}`, k))), true);
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair, keys)).toEqual(['query 0 ssh-ed25519', 'query 1 ssh-ed25519', 'query 2 ssh-ed25519', 'signed 2 ssh-ed25519']);
  });

  it('a key whose public half is unknown is loaded at its turn and signs without a query', () => {
    const keys = [ed25519Signer(), ed25519Signer()];
    let pair: Pair | undefined;
    const hidden = watchedIdentity('hidden', keys[1]!, () => pair!.server, { publicKnown: false });
    pair = new Pair(new TestServer({ authorizedKeys: [keys[1]!.publicKey] }), { auth: auth([loadedIdentity('k0', keys[0]!), hidden.identity]) });
    pair.start();
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair, keys)).toEqual(['query 0 ssh-ed25519', 'signed 1 ssh-ed25519']);
    expect(hidden.loads).toEqual([1]);
  });

  it('an accepted key that cannot be loaded is passed over for the next one', () => {
    const keys = [ed25519Signer(), ed25519Signer()];
    const locked: PublicKeyIdentity = {
      name: 'locked',
      publicKey: { blob: keys[0]!.publicKey, keyType: 'ssh-ed25519' },
      load: () => ({ ok: false, reason: 'no passphrase given' }),
    };
    const pair = run({ authorizedKeys: keys.map((k) => k.publicKey) }, auth([locked, loadedIdentity('open', keys[1]!)]));
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair, keys)).toEqual(['query 0 ssh-ed25519', 'query 1 ssh-ed25519', 'signed 1 ssh-ed25519']);
  });

  it('a private key that does not match the public half it offered is not used to sign', () => {
    const offered = ed25519Signer();
    const other = ed25519Signer();
    const stale: PublicKeyIdentity = { name: 'stale.pub', publicKey: { blob: offered.publicKey, keyType: 'ssh-ed25519' }, load: () => ({ ok: true, signer: other }) };
    const pair = run({ authorizedKeys: [offered.publicKey] }, auth([stale]));
    expect(pair.closedWith?.code).toBe(1032);
    expect(pair.closedWith?.message).toMatch(/stale\.pub \(the private key does not match its public key\)/);
    expect(pair.server.publicKeyRequests.filter((r) => r.signed)).toEqual([]);
  });

  it('when every key is refused, 1032 names the keys offered and the methods left', () => {
    const keys = [ed25519Signer(), ed25519Signer()];
    const pair = run({ authorizedKeys: [] }, auth(keys.map((k, i) => loadedIdentity(`key-${i}`, k))));
    expect(pair.closedWith?.code).toBe(1032);
    expect(pair.closedWith?.message).toMatch(/still allows: publickey, password; keys offered: key-0, key-1$/);
    expect(requests(pair, keys)).toEqual(['query 0 ssh-ed25519', 'query 1 ssh-ed25519']);
    // The DISCONNECT tells the server the reason, not the names of local key files.
    const goodbye = Disconnect.decode(pair.server.receivedPayloads.at(-1)!);
    expect(goodbye.reason).toBe(14);
    expect(new TextDecoder().decode(goodbye.description)).not.toContain('key-0');
  });

  it('goes on to the password after the keys', () => {
    const keys = [ed25519Signer(), ed25519Signer()];
    const pair = run(
      { authorizedKeys: [] },
      auth(
        keys.map((k, i) => loadedIdentity(`key-${i}`, k)),
        { methods: ['publickey', 'password'], password: PASSWORD },
      ),
    );
    expect(pair.has('authenticated')).toBe(true);
    expect(pair.server.publicKeyRequests).toHaveLength(2);
    expect(pair.server.authFailures).toBe(2);
  });

  it("the server's MaxAuthTries ends it with 1032, and later keys are never offered", () => {
    const keys = [ed25519Signer(), ed25519Signer(), ed25519Signer(), ed25519Signer()];
    const pair = run({ authorizedKeys: [keys[3]!.publicKey], maxAuthTries: 3 }, auth(keys.map((k, i) => loadedIdentity(`key-${i}`, k))));
    expect(pair.closedWith?.code).toBe(1032);
    expect(pair.closedWith?.origin).toBe('peer');
    expect(pair.closedWith?.message).toMatch(/Too many authentication failures.*keys offered: key-0, key-1, key-2$/);
    expect(requests(pair, keys)).toEqual(['query 0 ssh-ed25519', 'query 1 ssh-ed25519', 'query 2 ssh-ed25519']);
  });

  it('a DISCONNECT for another reason during authentication stays 1001', () => {
    const key = ed25519Signer();
    const pair = run({ authorizedKeys: [], maxAuthTries: 1, disconnect: { reason: 11, description: 'server is shutting down' } }, auth([loadedIdentity('k', key)]));
    expect(pair.server.publicKeyRequests).toHaveLength(1);
    expect(pair.closedWith?.code).toBe(1001);
  });

  it('a PK_OK for a key that was not offered is a protocol error (1027)', () => {
    const key = ed25519Signer();
    const other = ed25519Signer();
    const pair = run({ authorizedKeys: [key.publicKey], pkOk: () => new Writer().byte(MSG.USERAUTH_PK_OK).string('ssh-ed25519').string(other.publicKey).finish() }, auth([loadedIdentity('k', key)]));
    expect(pair.closedWith?.code).toBe(1027);
    expect(pair.server.publicKeyRequests.filter((r) => r.signed)).toEqual([]);
  });

  it('a key type with no allowed signature algorithm is passed over, and said so', () => {
    const keys = [ed25519Signer(), ed25519Signer()];
    const pair = run({ authorizedKeys: [keys[1]!.publicKey] }, auth([loadedIdentity('k0', keys[0]!), loadedIdentity('k1', keys[1]!)], { publicKeySignatureAlgorithms: ['rsa-sha2-256'] }));
    expect(pair.closedWith?.code).toBe(1032);
    expect(pair.closedWith?.message).toMatch(/keys not used: k0 \(no allowed signature algorithm for a ssh-ed25519 key\); k1/);
    expect(pair.server.publicKeyRequests).toEqual([]);
  });
});

describe('RSA signature algorithms', () => {
  const rsa = createSigner(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  const serverSigAlgs = new Writer().byte(MSG.EXT_INFO).uint32(1).string('server-sig-algs').string('rsa-sha2-512,rsa-sha2-256,ssh-ed25519').finish();
  const rsaAlgorithms = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-ed25519'];

  it('a server that advertises rsa-sha2-512 but accepts only rsa-sha2-256: the query is retried with it', () => {
    const pair = run(
      { authorizedKeys: [rsa.publicKey], publicKeyAlgorithms: ['rsa-sha2-256'], afterNewKeys: [serverSigAlgs] },
      auth([loadedIdentity('rsa', rsa)], { publicKeySignatureAlgorithms: rsaAlgorithms }),
    );
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair, [rsa])).toEqual(['query 0 rsa-sha2-512', 'query 0 rsa-sha2-256', 'signed 0 rsa-sha2-256']);
  });

  it('a refused RSA key gives way to the next key once its algorithms are spent', () => {
    const ed = ed25519Signer();
    const pair = run({ authorizedKeys: [ed.publicKey], afterNewKeys: [serverSigAlgs] }, auth([loadedIdentity('rsa', rsa), loadedIdentity('ed', ed)], { publicKeySignatureAlgorithms: rsaAlgorithms }));
    expect(pair.has('authenticated')).toBe(true);
    expect(requests(pair, [rsa, ed])).toEqual(['query 0 rsa-sha2-512', 'query 0 rsa-sha2-256', 'query 1 ssh-ed25519', 'signed 1 ssh-ed25519']);
  });
});
