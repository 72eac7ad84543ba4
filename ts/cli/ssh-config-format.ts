// `revtun -G`: the resolved configuration in `ssh -G`'s format (readconf.c dump_client_config),
// for the keys revtun honours only, in ssh's order, so that `diff <(ssh -G host) <(revtun -G
// host)` shows nothing but the keys revtun does not print. revtun's own settings follow at the end.

import type { ForwardSpec, ResolvedConfig } from './ssh-config.js';

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

function formatForward(keyword: string, f: ForwardSpec): string {
  const listen = f.listenPath ?? (f.listenHost === undefined ? String(f.listenPort) : `[${f.listenHost}]:${f.listenPort}`);
  const connect = f.connectPath ?? (f.connectHost === undefined ? String(f.connectPort) : `[${f.connectHost}]:${f.connectPort}`);
  return `${keyword} ${listen} ${connect}`;
}

/**
 * The `ssh -G` lines (lowercase keyword, a space, the value) for the keys revtun supports:
 * yes/no flags, `true`/`false` where ssh prints those (StrictHostKeyChecking yes/no,
 * PubkeyAuthentication yes/no), comma-joined algorithm lists, one line per IdentityFile,
 * CertificateFile and RemoteForward, `none` for an unset ConnectTimeout.
 */
export function formatResolved(r: ResolvedConfig): string[] {
  const out: string[] = [];
  const put = (key: string, value: string | number | undefined) => {
    if (value !== undefined) out.push(`${key} ${value}`);
  };
  put('host', r.host);
  put('user', r.user);
  put('hostname', r.hostName);
  put('port', r.port);
  put('addressfamily', r.addressFamily);
  put('batchmode', yesNo(r.batchMode));
  put('compression', yesNo(r.compression));
  put('exitonforwardfailure', yesNo(r.exitOnForwardFailure));
  put('gssapiauthentication', yesNo(r.gssapiAuthentication));
  put('gssapikeyexchange', yesNo(r.gssapiKeyExchange));
  put('gssapidelegatecredentials', yesNo(r.gssapiDelegateCredentials));
  put('gssapitrustdns', yesNo(r.gssapiTrustDns));
  put('gssapiserveridentity', r.gssapiServerIdentity);
  put('identitiesonly', yesNo(r.identitiesOnly));
  put('kbdinteractiveauthentication', yesNo(r.kbdInteractiveAuthentication));
  put('passwordauthentication', yesNo(r.passwordAuthentication));
  put('pubkeyauthentication', { yes: 'true', no: 'false', unbound: 'unbound', 'host-bound': 'host-bound' }[r.pubkeyAuthentication]);
  put('forkafterauthentication', yesNo(r.forkAfterAuthentication));
  put('stricthostkeychecking', { yes: 'true', no: 'false', ask: 'ask', 'accept-new': 'accept-new' }[r.strictHostKeyChecking]);
  put('tcpkeepalive', yesNo(r.tcpKeepAlive));
  put('connectionattempts', r.connectionAttempts);
  put('serveralivecountmax', r.serverAliveCountMax);
  put('serveraliveinterval', r.serverAliveInterval);
  put('bindaddress', r.bindAddress);
  put('ciphers', r.ciphers.join(','));
  put('hostkeyalgorithms', r.hostKeyAlgorithms.join(','));
  put('hostkeyalias', r.hostKeyAlias);
  put('kexalgorithms', r.kexAlgorithms.join(','));
  put('loglevel', r.logLevel);
  put('macs', r.macs.join(','));
  put('pubkeyacceptedalgorithms', r.pubkeyAcceptedAlgorithms.join(','));
  for (const f of r.remoteForward) out.push(formatForward('remoteforward', f));
  for (const p of r.identityFile) put('identityfile', p);
  for (const p of r.certificateFile) put('certificatefile', p);
  put('identityagent', r.identityAgent);
  put('globalknownhostsfile', r.globalKnownHostsFile.join(' '));
  put('userknownhostsfile', r.userKnownHostsFile.join(' '));
  put('permitremoteopen', r.permitRemoteOpen ?? 'any');
  put('connecttimeout', r.connectTimeout ?? 'none');
  if (r.proxyJump !== undefined) put('proxyjump', r.proxyJump);
  else put('proxycommand', r.proxyCommand);
  for (const [name, value] of r.revtunSettings) put(name.toLowerCase(), value);
  return out;
}

/** The keywords {@link formatResolved} can print, for comparing with `ssh -G` output. */
export const FORMATTED_KEYS = [
  'host',
  'user',
  'hostname',
  'port',
  'addressfamily',
  'batchmode',
  'compression',
  'exitonforwardfailure',
  'gssapiauthentication',
  'gssapikeyexchange',
  'gssapidelegatecredentials',
  'gssapitrustdns',
  'gssapiserveridentity',
  'identitiesonly',
  'kbdinteractiveauthentication',
  'passwordauthentication',
  'pubkeyauthentication',
  'forkafterauthentication',
  'stricthostkeychecking',
  'tcpkeepalive',
  'connectionattempts',
  'serveralivecountmax',
  'serveraliveinterval',
  'bindaddress',
  'ciphers',
  'hostkeyalgorithms',
  'pubkeyacceptedalgorithms',
  'hostkeyalias',
  'kexalgorithms',
  'loglevel',
  'macs',
  'remoteforward',
  'identityfile',
  'certificatefile',
  'globalknownhostsfile',
  'userknownhostsfile',
  'permitremoteopen',
  'connecttimeout',
  'proxyjump',
  'proxycommand',
  'identityagent',
] as const;
