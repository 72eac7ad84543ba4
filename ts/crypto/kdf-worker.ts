// The password-based key derivations of encrypted key files, run off the event loop: Argon2
// (PuTTY PPK v3, ./ppk.ts) and bcrypt-pbkdf (OpenSSH's openssh-key-v1, ./keys.ts). Either costs
// 0.3-2 s of CPU by design; on the main thread that stalls every tunnel, timer and keep-alive
// in the process. Here each derivation runs in a node:worker_threads Worker, which Node, Bun
// and Deno all provide, so the event loop keeps turning and other tunnels keep their CPU.
//
// The worker is given its code as a string (`eval: true`) rather than a file: a worker file
// would have to exist as JavaScript next to whichever copy of this module is running, and the
// TypeScript sources that tests run have no such file (Node 20 does not strip types). The
// code only imports the same two packages the synchronous path uses (@noble/hashes' Argon2
// and bcrypt-pbkdf), resolved here and handed over by absolute path, so both paths compute
// with the same implementation. Where no worker can be started, the derivation runs here,
// synchronously, as it always did.
//
// Secrets: the passphrase goes to the worker and the derived bytes come back by message
// passing inside this process; neither is ever logged, and the copies here are zeroed once used.

import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { argon2d, argon2i, argon2id } from '@noble/hashes/argon2.js';
import { SshError, Code } from '../protocol/errors.js';

/** What a key file asks of its passphrase: the function and its parameters, read from the file. */
export type KdfRequest =
  | { kind: 'argon2'; variant: 'Argon2id' | 'Argon2i' | 'Argon2d'; memoryKib: number; passes: number; parallelism: number; salt: Uint8Array; length: number }
  | { kind: 'bcrypt'; rounds: number; salt: Uint8Array; length: number };

/** "Argon2id (8192 KiB, 5 passes)", "bcrypt-pbkdf (16 rounds)": for log lines. */
export function describeKdf(request: KdfRequest): string {
  if (request.kind === 'argon2') return `${request.variant} (${request.memoryKib} KiB, ${request.passes} passes)`;
  return `bcrypt-pbkdf (${request.rounds} rounds)`;
}

const require = createRequire(import.meta.url);

/** bcrypt-pbkdf is loaded on first use: compiling it costs a few MiB that plain keys never need. */
function bcryptPbkdf(): typeof import('bcrypt-pbkdf').default {
  return require('bcrypt-pbkdf') as typeof import('bcrypt-pbkdf').default;
}

const ARGON2 = { Argon2id: argon2id, Argon2i: argon2i, Argon2d: argon2d } as const;

/** The derivation, here and now (it blocks the event loop for as long as it takes). */
export function deriveSync(request: KdfRequest, passphrase: Uint8Array): Uint8Array {
  if (request.kind === 'argon2') {
    const { variant, memoryKib: m, passes: t, parallelism: p, salt, length } = request;
    return ARGON2[variant](passphrase, salt, { m, t, p, dkLen: length });
  }
  const out = new Uint8Array(request.length);
  if (bcryptPbkdf().pbkdf(passphrase, passphrase.length, request.salt, request.salt.length, out, out.length, request.rounds) !== 0) {
    throw new SshError(Code.AuthFailed, 'bcrypt-pbkdf failed (bad parameters in the key file)', 'local');
  }
  return out;
}

/**
 * The worker: one request in workerData, one message back ({ derived } or { error }), then it
 * ends. CommonJS, as eval'd worker code is; the packages come by absolute path.
 */
const WORKER_CODE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { request, passphrase, modules } = workerData;
  try {
    let derived;
    if (request.kind === 'argon2') {
      const argon2 = await import(modules.argon2);
      const fn = { Argon2id: argon2.argon2id, Argon2i: argon2.argon2i, Argon2d: argon2.argon2d }[request.variant];
      derived = fn(passphrase, request.salt, { m: request.memoryKib, t: request.passes, p: request.parallelism, dkLen: request.length });
    } else {
      derived = new Uint8Array(request.length);
      if (require(modules.bcrypt).pbkdf(passphrase, passphrase.length, request.salt, request.salt.length, derived, derived.length, request.rounds) !== 0) throw new Error('bcrypt-pbkdf failed (bad parameters in the key file)');
    }
    passphrase.fill(0);
    parentPort.postMessage({ derived });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
})();
`;

let modulePaths: { argon2: string; bcrypt: string } | null = null;
function workerModules(): { argon2: string; bcrypt: string } {
  modulePaths ??= { argon2: pathToFileURL(require.resolve('@noble/hashes/argon2.js')).href, bcrypt: require.resolve('bcrypt-pbkdf') };
  return modulePaths;
}

/**
 * The derivation in a worker thread. Rejects with SshError (AuthFailed) when it fails, or
 * BadState when `signal` aborts it (the worker is stopped at once). `passphrase` is not kept.
 */
export function deriveOffThread(request: KdfRequest, passphrase: Uint8Array, signal?: AbortSignal): Promise<Uint8Array> {
  if (signal?.aborted) return Promise.reject(new SshError(Code.BadState, 'key derivation abandoned', 'local'));
  let worker: Worker;
  try {
    worker = new Worker(WORKER_CODE, { eval: true, workerData: { request, passphrase, modules: workerModules() } });
  } catch {
    // No worker threads here (or none allowed): derive on this thread, as before.
    return new Promise((resolve, reject) => {
      try {
        resolve(deriveSync(request, passphrase));
      } catch (error) {
        reject(error);
      }
    });
  }
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      outcome();
    };
    const onAbort = () => finish(() => reject(new SshError(Code.BadState, 'key derivation abandoned', 'local')));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (message: { derived?: Uint8Array; error?: string }) => {
      if (message.derived instanceof Uint8Array) {
        const derived = message.derived;
        finish(() => resolve(derived));
      } else finish(() => reject(new SshError(Code.AuthFailed, `the key derivation failed: ${message.error ?? 'no result'}`, 'local')));
    });
    worker.once('error', (error) => finish(() => reject(new SshError(Code.AuthFailed, `the key derivation failed: ${error.message}`, 'local'))));
    worker.once('exit', (exitCode) => finish(() => reject(new SshError(Code.AuthFailed, `the key derivation's worker ended (exit code ${exitCode}) without a result`, 'local'))));
  });
}
