// A throwaway MIT Kerberos realm for the GSSAPI tests: Debian's krb5-kdc with its database,
// krb5.conf and kdc.conf in a temporary directory (found through KRB5_CONFIG and
// KRB5_KDC_PROFILE, so the machine's own Kerberos setup is never read or touched), the KDC on
// a free loopback port, a user principal with a password, host service principals with a
// keytab for sshd, and tickets got with kinit into ccaches of their own.
//
// Service names are taken as given: krb5.conf turns off DNS canonicalisation and reverse
// lookups (dns_canonicalize_hostname, rdns), so "host@127.0.0.1" means host/127.0.0.1 on any
// machine, whatever its /etc/hosts says about the name of 127.0.0.1.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForExit } from '../../ts/demo/sshd.js';
import { pollUntil } from './kernel.js';

export const REALM = 'REVTUN.TEST';

export interface Kdc {
  readonly realm: string;
  readonly port: number;
  readonly dir: string;
  /** The realm's krb5.conf: KRB5_CONFIG for every client and for sshd. */
  readonly krb5Config: string;
  /** The keytab holding every host principal: KRB5_KTNAME for sshd. */
  readonly keytab: string;
  /** The environment a Kerberos client (or sshd) of this realm needs, ccache aside. */
  readonly env: Record<string, string>;
  /** Adds `name@REALM` with this password. */
  addUser(name: string, password: string): void;
  /** Adds host/`host`@REALM with a random key, written to `keytab`. */
  addHost(host: string): void;
  /** kinit into a new ccache (forwardable, so that it can be delegated); returns its KRB5CCNAME. */
  kinit(user: string, password: string): string;
  /** A KRB5CCNAME naming a ccache that does not exist: no ticket at all. */
  emptyCcache(): string;
  /** What the KDC has logged so far. */
  log(): string;
  stop(): Promise<void>;
}

/** Runs a Kerberos tool with the realm's environment; its output on failure goes into the error. */
function run(command: string, args: string[], env: Record<string, string>, input?: string): string {
  try {
    return execFileSync(command, args, { env: { ...process.env, ...env }, input: input ?? '', encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startKdc(): Promise<Kdc> {
  for (const tool of ['/usr/sbin/krb5kdc', '/usr/sbin/kdb5_util', '/usr/sbin/kadmin.local', '/usr/bin/kinit']) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: scripts/setup.sh installs krb5-kdc, krb5-admin-server and krb5-user`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'revtun-kdc-'));
  const port = await freePort();
  const krb5Config = join(dir, 'krb5.conf');
  const kdcProfile = join(dir, 'kdc.conf');
  const keytab = join(dir, 'sshd.keytab');
  const kdcLog = join(dir, 'kdc.log');
  writeFileSync(
    krb5Config,
    [
      '[libdefaults]',
      `  default_realm = ${REALM}`,
      '  dns_lookup_kdc = false',
      '  dns_lookup_realm = false',
      '  dns_canonicalize_hostname = false',
      '  rdns = false',
      '  forwardable = true',
      // TCP only: the KDC listens on a port found free for TCP.
      '  udp_preference_limit = 1',
      '[realms]',
      `  ${REALM} = {`,
      `    kdc = 127.0.0.1:${port}`,
      '  }',
      '',
    ].join('\n'),
  );
  writeFileSync(
    kdcProfile,
    [
      '[kdcdefaults]',
      '  kdc_ports = ""',
      `  kdc_tcp_listen = 127.0.0.1:${port}`,
      '[realms]',
      `  ${REALM} = {`,
      `    database_name = ${join(dir, 'principal')}`,
      `    key_stash_file = ${join(dir, 'stash')}`,
      `    acl_file = ${join(dir, 'kadm5.acl')}`,
      `    kdc_listen = ""`,
      `    kdc_tcp_listen = 127.0.0.1:${port}`,
      '  }',
      '[logging]',
      `  kdc = FILE:${kdcLog}`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'kadm5.acl'), '');
  const env: Record<string, string> = { KRB5_CONFIG: krb5Config, KRB5_KDC_PROFILE: kdcProfile };
  run('/usr/sbin/kdb5_util', ['create', '-s', '-r', REALM, '-P', 'revtun test master key'], env);

  const child: ChildProcess = spawn('/usr/sbin/krb5kdc', ['-n', '-r', REALM], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  child.once('exit', () => (exited = true));
  let up = false;
  // No event says the KDC listens; its port accepting a connection does.
  await pollUntil(
    () => {
      if (exited) throw new Error(`krb5kdc exited: ${stderr}`);
      if (!up) void accepts(port).then((ok) => (up ||= ok));
      return up;
    },
    'krb5kdc to listen',
    { tries: 1000 },
  );

  let ccaches = 0;
  const kadmin = (query: string) => run('/usr/sbin/kadmin.local', ['-r', REALM, '-q', query], env);
  return {
    realm: REALM,
    port,
    dir,
    krb5Config,
    keytab,
    env,
    addUser(name, password) {
      kadmin(`addprinc -pw "${password}" ${name}@${REALM}`);
    },
    addHost(host) {
      kadmin(`addprinc -randkey host/${host}@${REALM}`);
      kadmin(`ktadd -k ${keytab} host/${host}@${REALM}`);
    },
    kinit(user, password) {
      const ccache = `FILE:${join(dir, `ccache-${++ccaches}`)}`;
      run('/usr/bin/kinit', ['-f', '-c', ccache, `${user}@${REALM}`], env, `${password}\n`);
      return ccache;
    },
    emptyCcache() {
      return `FILE:${join(dir, `ccache-${++ccaches}-none`)}`;
    },
    log() {
      return existsSync(kdcLog) ? readFileSync(kdcLog, 'utf8') : '';
    },
    async stop() {
      if (!exited && child.pid) {
        child.kill('SIGTERM');
        await waitForExit([child.pid], 'krb5kdc to exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
