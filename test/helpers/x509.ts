// X.509 certificates for the RFC 6187 host key tests, made as an administrator makes them:
// `openssl req` for a CA and for each server's request, `openssl x509 -req` to sign it, and
// `openssl ca` where the validity window must lie in the past (openssl x509 in OpenSSL 3.0
// only counts days from now).

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type X509KeyKind = 'ec-256' | 'ec-384' | 'ec-521' | 'rsa-2048' | 'rsa-1024' | 'dsa';

export interface X509Identity {
  keyPath: string;
  certPath: string;
  /** The certificate in PEM. */
  pem: string;
  /** The certificate in DER. */
  der: Uint8Array;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function keyArgs(kind: X509KeyKind, dir: string, name: string): string[] {
  switch (kind) {
    case 'ec-256':
      return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
    case 'ec-384':
      return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1'];
    case 'ec-521':
      return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp521r1'];
    case 'rsa-2048':
      return ['-newkey', 'rsa:2048'];
    case 'rsa-1024':
      return ['-newkey', 'rsa:1024'];
    case 'dsa': {
      const params = join(dir, `${name}.dsaparam`);
      // ssh-dss signs with a 160-bit q (RFC 4253 §6.6); OpenSSL 3's dsaparam would pick 224.
      openssl(['genpkey', '-genparam', '-algorithm', 'DSA', '-pkeyopt', 'dsa_paramgen_bits:1024', '-pkeyopt', 'dsa_paramgen_q_bits:160', '-out', params], dir);
      return ['-newkey', `dsa:${params}`];
    }
  }
}

function read(keyPath: string, certPath: string): X509Identity {
  const pem = readFileSync(certPath, 'utf8');
  const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  return { keyPath, certPath, pem, der: new Uint8Array(Buffer.from(body, 'base64')) };
}

/** A self-signed CA certificate, "/O=revtun test/CN=<cn>", valid for 30 days from now. */
export function makeCa(dir: string, name: string, cn: string, kind: X509KeyKind = 'ec-256'): X509Identity {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.pem`);
  openssl(
    [
      'req',
      '-x509',
      ...keyArgs(kind, dir, name),
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '30',
      '-subj',
      `/O=revtun test/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return read(keyPath, certPath);
}

export interface LeafOptions {
  cn: string;
  /** subjectAltName value, e.g. "DNS:localhost,IP:127.0.0.1". */
  altNames: string;
  kind?: X509KeyKind;
  /** A validity window in openssl ca's YYYYMMDDHHMMSSZ form; by default 10 days from now. */
  notBefore?: string;
  notAfter?: string;
  /** extendedKeyUsage; id-kp-secureShellServer by default. */
  extendedKeyUsage?: string;
  /** Sign as an intermediate CA rather than a server. */
  ca?: boolean;
  /** The extension lines themselves (openssl's -extfile form), instead of the CA or server ones. */
  extensions?: string[];
}

/** A certificate signed by `issuer`, for a new key. */
export function makeLeaf(dir: string, name: string, issuer: X509Identity, options: LeafOptions): X509Identity {
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const certPath = join(dir, `${name}.pem`);
  const extPath = join(dir, `${name}.ext`);
  openssl(['req', ...keyArgs(options.kind ?? 'ec-256', dir, name), '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', `/O=revtun test/CN=${options.cn}`], dir);
  const extensions = options.extensions
    ? options.extensions
    : options.ca
      ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign']
      : [`subjectAltName=${options.altNames}`, 'basicConstraints=CA:FALSE', `extendedKeyUsage=${options.extendedKeyUsage ?? '1.3.6.1.5.5.7.3.22'}`];
  writeFileSync(extPath, extensions.join('\n') + '\n');
  if (options.notBefore === undefined) {
    openssl(['x509', '-req', '-in', csrPath, '-CA', issuer.certPath, '-CAkey', issuer.keyPath, '-CAcreateserial', '-days', '10', '-extfile', extPath, '-out', certPath], dir);
  } else {
    // openssl ca takes any window; it wants a little database of its own.
    const caDir = join(dir, `${name}.ca`);
    execFileSync('mkdir', ['-p', caDir]);
    writeFileSync(join(caDir, 'index.txt'), '');
    writeFileSync(join(caDir, 'serial'), '1000\n');
    writeFileSync(
      join(caDir, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = test_ca',
        '[test_ca]',
        `database = ${caDir}/index.txt`,
        `new_certs_dir = ${caDir}`,
        `serial = ${caDir}/serial`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        '[any]',
        'organizationName = optional',
        'commonName = supplied',
      ].join('\n') + '\n',
    );
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        join(caDir, 'ca.cnf'),
        '-cert',
        issuer.certPath,
        '-keyfile',
        issuer.keyPath,
        '-in',
        csrPath,
        '-out',
        certPath,
        '-startdate',
        options.notBefore,
        '-enddate',
        options.notAfter!,
        '-extfile',
        extPath,
        '-notext',
      ],
      dir,
    );
  }
  return read(keyPath, certPath);
}

/** A PEM file holding `chain` in order (the server's certificate first). */
export function chainFile(dir: string, name: string, chain: X509Identity[]): string {
  const path = join(dir, `${name}.chain.pem`);
  writeFileSync(path, chain.map((c) => c.pem.trim()).join('\n') + '\n');
  return path;
}
