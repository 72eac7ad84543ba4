// ssh's GSSAPI options for revtun's tunnel: GSSAPIAuthentication (-K) and GSSAPIKeyExchange
// turn Kerberos on next to the other methods, GSSAPIDelegateCredentials (-K, -k) asks for
// delegation, and the server's service is host@<name> where the name is GSSAPIServerIdentity,
// else with GSSAPITrustDns the host's canonical name from the resolver (its address looked up
// again, as ssh asks for the connected address's name), else the host name as given, which
// the GSSAPI library gets untouched. The ticket cache is the usual one (KRB5CCNAME).

import { lookup, lookupService } from 'node:dns/promises';
import type { SSHReverseTunnel } from '../tunnel/tunnel.js';
import type { ResolvedConfig } from './ssh-config.js';

/** Whether the configuration turns GSSAPI on at all. */
export function wantsGssapi(config: ResolvedConfig): boolean {
  return config.gssapiAuthentication || config.gssapiKeyExchange;
}

/** The name in host@<name> ssh would use for `host`; `debug` gets ssh's -v lines. */
export async function gssapiHostName(config: ResolvedConfig, host: string, debug: (line: string) => void): Promise<string> {
  if (config.gssapiServerIdentity) return config.gssapiServerIdentity;
  if (!config.gssapiTrustDns) return host;
  try {
    const { address } = await lookup(host);
    const { hostname } = await lookupService(address, 22);
    debug(`GSSAPITrustDns: ${host} is ${hostname}`);
    return hostname;
  } catch (error) {
    // As ssh falls back to the address when the name cannot be had.
    debug(`GSSAPITrustDns: no canonical name for ${host}: ${(error as Error).message}`);
    return host;
  }
}

/** Sets the tunnel's Kerberos settings and GSSAPI methods from the configuration. */
export async function applyGssapi(tunnel: SSHReverseTunnel, config: ResolvedConfig, host: string, debug: (line: string) => void): Promise<void> {
  tunnel.alsoGssapi = { withMic: config.gssapiAuthentication, keyExchange: config.gssapiKeyExchange };
  tunnel.config(`KerberosDelegation=${config.gssapiDelegateCredentials ? 'True' : 'False'}`);
  if (!wantsGssapi(config)) return;
  tunnel.config(`KerberosSPN=host@${await gssapiHostName(config, host, debug)}`);
}
