// GSSAPI (Kerberos 5) security contexts for SSH, on the native addon's binding of the
// system's MIT krb5 library (crates/revtun-napi/src/gssapi.rs). The addon opens
// libgssapi_krb5.so.2 only when asked, so a machine without Kerberos still loads it; GSSAPI
// is then refused with the reason. Without the addon (REVTUN_CRYPTO naming the WASM or
// node:crypto provider keeps it out of the process, or it was never built) GSSAPI is refused
// too: there is no GSSAPI in WASM or in node:crypto.
//
// Which name the server's service has (RFC 4462 §3.1's "host@<fqdn>", or a Kerberos principal
// from KerberosSPN) is worked out here too, from the documented settings.

import { createRequire } from 'node:module';
import { SshError, Code } from '../protocol/errors.js';
import type { GssapiSource, GssSecurityContext } from '../protocol/auth-gssapi.js';
import { isGssKex, NULL_HOST_KEY } from '../protocol/kex-gss.js';
import type { ClientOptions } from '../protocol/client.js';

interface NativeGssInitiator {
  step(input: Uint8Array | null): Promise<{ token: Uint8Array; complete: boolean; flags: number }>;
  getMic(data: Uint8Array): Uint8Array;
  verifyMic(data: Uint8Array, mic: Uint8Array): void;
  dispose(): void;
}

/** sshUser's credential from a password: acquired once, by the first context that steps. */
type NativeGssCredential = object;

interface NativeGssBinding {
  gssapiUnavailable(): string | null;
  GssCredential: new (user: string, password: string) => NativeGssCredential;
  GssInitiator: new (target: string, principal: boolean, delegate: boolean, credential: NativeGssCredential | null) => NativeGssInitiator;
}

// ret_flags bits (RFC 2744 §5.19): credentials delegated, mutual authentication, integrity.
const DELEGATED = 1;
const MUTUAL = 2;
const INTEGRITY = 32;

/** The server's service name as GSSAPI imports it. */
export interface GssTarget {
  /** "host@server.example" (host-based service), or a principal "host/server.example@REALM". */
  name: string;
  principal: boolean;
}

export interface KerberosSettings {
  /** The host the name is made from when no SPN is given (as connected to, or canonicalised). */
  host: string;
  /** KerberosSPN: "host/fqdn[@REALM]" (a principal), or "service@host" (host-based). */
  spn: string;
  /**
   * KerberosRealm: the realm of the server's principal (and of `user` with a password). It is
   * documented as the realm's DNS name (an AD domain name): Kerberos spells that in capitals.
   */
  realm: string;
  /** KerberosDelegation: ask for the credentials to be delegated (GSS_C_DELEG_FLAG). */
  delegate: boolean;
  /** Alternate credentials (sshUser with sshPassword) instead of the ticket cache. */
  user?: string;
  password?: string;
}

/**
 * The target name for the settings. With a realm and no SPN the name is the principal
 * host/<host>@<realm>, since a host-based name would take the realm from the host's
 * domain_realm mapping, which is what KerberosRealm is there to override.
 */
export function gssTarget(settings: Pick<KerberosSettings, 'host' | 'spn' | 'realm'>): GssTarget {
  const spn = settings.spn.trim();
  const realm = settings.realm.trim().toUpperCase();
  if (spn) {
    if (spn.includes('/')) return { name: spn.includes('@') || !realm ? spn : `${spn}@${realm}`, principal: true };
    if (spn.includes('@')) return { name: spn, principal: false };
    throw new SshError(Code.BadArgument, `KerberosSPN "${spn}" is neither a principal (host/fqdn[@REALM]) nor a service name (host@fqdn)`, 'local');
  }
  if (!settings.host) throw new SshError(Code.BadArgument, 'GSSAPI needs the server host name to name its service', 'local');
  return realm ? { name: `host/${settings.host}@${realm}`, principal: true } : { name: `host@${settings.host}`, principal: false };
}

let binding: NativeGssBinding | Error | null = null;

/** The addon's GSSAPI binding, or why there is none. */
function loadBinding(): NativeGssBinding | Error {
  const provider = (typeof process !== 'undefined' ? process.env['REVTUN_CRYPTO'] : undefined)?.trim().toLowerCase();
  if (provider && provider !== 'native') {
    return new Error(`the native addon is not in use (REVTUN_CRYPTO=${provider}), and GSSAPI needs it: neither WASM nor node:crypto has GSSAPI`);
  }
  if (binding) return binding;
  try {
    const require = createRequire(import.meta.url);
    binding = require('../../bindings/native.cjs') as NativeGssBinding;
    if (typeof binding.GssInitiator !== 'function') binding = new Error('the native addon was built without GSSAPI support');
  } catch (error) {
    binding = new Error(`the native addon did not load (${(error as Error).message.split('\n')[0]}), and GSSAPI needs it`);
  }
  return binding;
}

/**
 * A GSSAPI source for the settings, or SshError 1005 saying why GSSAPI cannot be used here.
 * 1005 ("selected algorithm unsupported") is the documented code closest to "the chosen
 * authentication mechanism is not available in this process": nothing was tried yet, so it is
 * not an authentication failure (1032), and the settings themselves are fine (not 10022).
 */
export function kerberosSource(settings: KerberosSettings): GssapiSource {
  const loaded = loadBinding();
  const unavailable = loaded instanceof Error ? loaded.message : loaded.gssapiUnavailable();
  if (unavailable !== null) throw new SshError(Code.UnsupportedAlgorithm, `GSSAPI (Kerberos) authentication is not available: ${unavailable}`, 'local');
  const native = loaded as NativeGssBinding;
  const target = gssTarget(settings);
  // One credential for every context of this connection (the probe, the key exchange,
  // gssapi-with-mic): the password goes to the KDC once, so a wrong one counts once against
  // an account lockout policy.
  const credential = settings.user && settings.password ? new native.GssCredential(userPrincipal(settings.user, settings.realm), settings.password) : null;
  return {
    target: target.name,
    createContext(): GssSecurityContext {
      const initiator = new native.GssInitiator(target.name, target.principal, settings.delegate, credential);
      return {
        async step(input) {
          const step = await initiator.step(input);
          // RFC 4462 §2.1 and §3.4: the context must authenticate the server and protect integrity.
          if (step.complete && (step.flags & (MUTUAL | INTEGRITY)) !== (MUTUAL | INTEGRITY)) {
            initiator.dispose();
            throw new Error('the GSSAPI context offers no mutual authentication or no integrity protection');
          }
          return { token: step.token, complete: step.complete, delegated: (step.flags & DELEGATED) !== 0 };
        },
        getMic: (data) => initiator.getMic(data),
        verifyMic: (data, mic) => initiator.verifyMic(data, mic),
        dispose: () => initiator.dispose(),
      };
    },
  };
}

/** sshUser as a principal: with KerberosRealm appended when it names none. */
function userPrincipal(user: string, realm: string): string {
  return user.includes('@') || !realm.trim() ? user : `${user}@${realm.trim().toUpperCase()}`;
}

/**
 * The options with the GSSAPI key exchanges (and the "null" host key) taken out unless a
 * context towards the server can be started now: what ssh does before offering them, since a
 * GSSAPI key exchange that fails (no ticket, an unknown service) ends the connection, where
 * an ordinary one would have let other authentication go on. The first token is thrown away;
 * the service ticket it brought stays in the ticket cache for the real exchange.
 */
export async function withoutUnusableGssKex(options: ClientOptions, log: (message: string) => void, timeoutSeconds: number): Promise<ClientOptions> {
  const offered = options.algorithms.kex.filter(isGssKex);
  if (offered.length === 0) return options;
  let problem = options.auth.gssapi ? null : 'GSSAPI is not available';
  if (!problem) {
    let context: GssSecurityContext | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      context = options.auth.gssapi!.createContext();
      // A KDC that does not answer leaves the exchanges out rather than holding up the logon.
      const late = new Promise<never>((_, reject) => {
        if (timeoutSeconds > 0) timer = setTimeout(() => reject(new Error(`no answer from the KDC within ${timeoutSeconds} s`)), timeoutSeconds * 1000);
      });
      await Promise.race([context.step(null), late]);
    } catch (error) {
      problem = (error as Error).message;
    } finally {
      clearTimeout(timer);
      context?.dispose(); // a step still running releases the context when it ends
    }
  }
  if (!problem) return options;
  log(`not offering the GSSAPI key exchanges: ${problem}`);
  const kex = options.algorithms.kex.filter((name) => !isGssKex(name));
  const hostKey = options.algorithms.hostKey.filter((name) => name !== NULL_HOST_KEY);
  if (kex.length === 0) throw new SshError(Code.UnsupportedAlgorithm, `only GSSAPI key exchanges are allowed, and GSSAPI cannot be used: ${problem}`, 'local');
  return { ...options, algorithms: { ...options.algorithms, kex, hostKey } };
}
