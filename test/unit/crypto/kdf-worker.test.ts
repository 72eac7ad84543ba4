// The key derivations of encrypted key files in a worker thread (ts/crypto/kdf-worker.ts): the
// same bytes as on this thread, the event loop turning meanwhile (turns counted, not time), and
// an abandoned derivation stopped.

import { describe, expect, it } from 'vitest';
import { deriveOffThread, deriveSync, describeKdf, type KdfRequest } from '../../../ts/crypto/kdf-worker.js';
import { SshError } from '../../../ts/protocol/errors.js';

const pass = Buffer.from('correct horse');
const argon2: KdfRequest = { kind: 'argon2', variant: 'Argon2id', memoryKib: 8192, passes: 2, parallelism: 1, salt: Buffer.alloc(16, 7), length: 80 };
const bcrypt: KdfRequest = { kind: 'bcrypt', rounds: 16, salt: Buffer.alloc(16, 3), length: 48 };

/** Counts event loop turns (setImmediate) while `work` is pending. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  try {
    return { value: await work(), turns };
  } finally {
    done = true;
  }
}

describe('key derivation in a worker thread', () => {
  it.each([
    ['Argon2id', argon2],
    ['Argon2i', { ...argon2, variant: 'Argon2i' } as KdfRequest],
    ['Argon2d', { ...argon2, variant: 'Argon2d', memoryKib: 64, passes: 1 } as KdfRequest],
    ['bcrypt-pbkdf', bcrypt],
  ])('%s gives the bytes the synchronous derivation gives, while the event loop turns', async (_name, request) => {
    const { value, turns } = await turnsDuring(() => deriveOffThread(request, pass));
    expect(Buffer.from(value).toString('hex')).toBe(Buffer.from(deriveSync(request, pass)).toString('hex'));
    expect(value.length).toBe(request.length);
    expect(turns).toBeGreaterThan(10);
  });

  it('leaves the passphrase given to it as it was', async () => {
    const mine = Buffer.from('mine');
    await deriveOffThread({ ...argon2, memoryKib: 64, passes: 1 }, mine);
    expect(mine.toString()).toBe('mine');
  });

  it('an abort stops the derivation with BadState', async () => {
    const abort = new AbortController();
    const pending = deriveOffThread({ ...argon2, memoryKib: 65536, passes: 8 }, pass, abort.signal);
    setImmediate(() => abort.abort());
    const error = await pending.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).message).toBe('key derivation abandoned');
    await expect(deriveOffThread(argon2, pass, abort.signal)).rejects.toThrow(/abandoned/);
  });

  it('bad parameters fail as an error, not a crash', async () => {
    await expect(deriveOffThread({ ...bcrypt, rounds: 0 }, pass)).rejects.toThrow(/bcrypt-pbkdf failed/);
  });

  it('names the derivation without its salt or passphrase', () => {
    expect(describeKdf(argon2)).toBe('Argon2id (8192 KiB, 2 passes)');
    expect(describeKdf(bcrypt)).toBe('bcrypt-pbkdf (16 rounds)');
  });
});
