// PKCS#12 stores for the tests, made by the tools people make them with: a key and a
// self-signed certificate from `openssl req -x509`, packed by `openssl pkcs12 -export`
// (OpenSSL 3's defaults, or -legacy), several stores merged into one by Java's keytool; and
// the OpenSSH public key line of each key from `ssh-keygen -i -m PKCS8`, for authorized_keys.

import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PfxStore {
  path: string;
  der: Buffer;
  password: string;
  /** The OpenSSH public key line of the key in the store. */
  publicLine: string;
  /** The certificate subject as openssl writes it (`/C=US/O=…/CN=…`). */
  subject: string;
}

export interface PfxOptions {
  key: 'rsa' | 'ec-p256' | 'ec-p384';
  /** openssl's form: "/C=US/O=Example/CN=deploy". */
  subject: string;
  password: string;
  /** `openssl pkcs12 -legacy`: RC2/3DES bags and a SHA-1 MAC, as OpenSSL 1.x wrote them. */
  legacy?: boolean;
  /** More `openssl pkcs12 -export` options (-nomac, -keypbe NONE, ...). */
  exportOptions?: string[];
  /** Certificate extensions, as `openssl req -addext` takes them ("keyUsage=digitalSignature"). */
  extensions?: string[];
}

const NEW_KEY: Record<PfxOptions['key'], string[]> = {
  rsa: ['-newkey', 'rsa:2048'],
  'ec-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ec-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
};

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The OpenSSH public key line for the key in PEM file `keyPath`. */
export function opensshPublicLine(dir: string, keyPath: string, name: string): string {
  const publicPem = join(dir, `${name}.pub.pem`);
  run('openssl', ['pkey', '-in', keyPath, '-pubout', '-out', publicPem]);
  return run('ssh-keygen', ['-i', '-m', 'PKCS8', '-f', publicPem]).trim();
}

/** A store with one key and its self-signed certificate, written to `dir/name.p12`. */
export function makePfx(dir: string, name: string, options: PfxOptions): PfxStore {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  const path = join(dir, `${name}.p12`);
  const extensions = (options.extensions ?? []).flatMap((e) => ['-addext', e]);
  run('openssl', ['req', '-x509', ...NEW_KEY[options.key], '-nodes', '-keyout', keyPath, '-out', certPath, '-subj', options.subject, '-days', '30', ...extensions]);
  run('openssl', [
    'pkcs12',
    '-export',
    ...(options.legacy ? ['-legacy'] : []),
    ...(options.exportOptions ?? []),
    '-inkey',
    keyPath,
    '-in',
    certPath,
    '-out',
    path,
    '-passout',
    `pass:${options.password}`,
  ]);
  chmodSync(path, 0o600);
  return { path, der: readFileSync(path), password: options.password, publicLine: opensshPublicLine(dir, keyPath, name), subject: options.subject };
}

/** A store holding only `store`'s certificate, no key (`openssl pkcs12 -export -nokeys`). */
export function certificateOnlyPfx(dir: string, name: string, store: PfxStore): string {
  const path = join(dir, `${name}.p12`);
  const certPath = store.path.replace(/\.p12$/, '.crt');
  run('openssl', ['pkcs12', '-export', '-nokeys', '-in', certPath, '-out', path, '-passout', `pass:${store.password}`]);
  return path;
}

/** One store holding the entries of several (same password), merged by keytool in this order. */
export function mergePfx(dir: string, name: string, stores: PfxStore[], password: string): { path: string; der: Buffer } {
  const path = join(dir, `${name}.p12`);
  stores.forEach((store, i) => {
    run('keytool', [
      '-importkeystore',
      '-noprompt',
      '-srckeystore',
      store.path,
      '-srcstoretype',
      'PKCS12',
      '-srcstorepass',
      store.password,
      '-srcalias',
      '1',
      '-destkeystore',
      path,
      '-deststoretype',
      'PKCS12',
      '-deststorepass',
      password,
      '-destalias',
      `entry${i}`,
    ]);
  });
  chmodSync(path, 0o600); // keytool leaves it as the umask says; revtun, like ssh, wants 0600
  return { path, der: readFileSync(path) };
}
