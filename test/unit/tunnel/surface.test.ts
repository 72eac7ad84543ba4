// The documented surface, row by row: every property, method and event of the reference exists;
// every setting can be set, reads back what was set, refuses bad values with 10022 and returns
// to its default on reset(); read-only and not-yet-implemented settings say so; the README's
// generated tables are current and every setting has its documentation entry.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { SSHReverseTunnel } from '../../../ts/index.js';
import { NOT_YET, READ_ONLY, SETTINGS, formatSettingValue } from '../../../ts/tunnel/settings.js';
import { READS_BACK, sampleFor } from '../../helpers/setting-samples.js';
import { SETTING_DOCS, knownSettingNames, regenerateReadme } from '../../../ts/tunnel/settings-doc.js';
import { TUNNEL_EVENT_NAMES } from '../../../ts/tunnel/events.js';
import { Code } from '../../../ts/protocol/errors.js';

const reference = readFileSync(new URL('../../../../shared/reference/SSHReverseTunnel.txt', import.meta.url), 'utf8');
const headings = (kind: string) => [...reference.matchAll(new RegExp(`^([a-z0-9_]+) ${kind}$`, 'gm'))].map((m) => m[1]!);
/** ssh_cert_fingerprint_sha1 and sshCertFingerprintSHA1 compare equal. */
const squash = (name: string) => name.replace(/_/g, '').toLowerCase();

/** The fields of an sshChannels[] entry: the reference lists them as properties indexed by channel. */
const CHANNEL_FIELDS = ['bytes_sent', 'channel_id', 'connected_address', 'connected_port', 'forwarding_host', 'forwarding_port', 'origin_address', 'origin_port', 'service'];

describe('the documented members exist', () => {
  const tunnel = new SSHReverseTunnel();

  it('every property (the per-channel ones as fields of sshChannels[])', () => {
    const properties = headings('Property');
    expect(properties.length).toBeGreaterThan(60);
    const ours = new Set<string>();
    for (let o: object | null = tunnel; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const name of Object.getOwnPropertyNames(o)) ours.add(squash(name));
    }
    const missing = properties.filter((p) => !CHANNEL_FIELDS.includes(p) && !ours.has(squash(p)));
    expect(missing).toEqual([]);
  });

  it('every method', () => {
    const methods = headings('Method');
    expect(methods.length).toBeGreaterThan(10);
    const missing = methods.filter((m) => {
      const name = Object.getOwnPropertyNames(Object.getPrototypeOf(tunnel)).find((n) => squash(n) === squash(m));
      return !name || typeof (tunnel as unknown as Record<string, unknown>)[name] !== 'function';
    });
    expect(missing).toEqual([]);
  });

  it('every event', () => {
    const events = headings('Event').map((e) => e.replace(/^on_/, ''));
    expect(events.length).toBeGreaterThan(15);
    const ours = new Set(TUNNEL_EVENT_NAMES.map(squash));
    expect(events.filter((e) => !ours.has(squash(e)))).toEqual([]);
  });

  it('every documented setting is known to the code (implemented, read-only, a property, or refused as not yet)', () => {
    const documented = [...reference.matchAll(/^([A-Z][A-Za-z0-9]+)(\[[^\]]*\])?:[\s\u00a0]{2,}/gm)].map((m) => m[1]!);
    expect(documented.length).toBeGreaterThan(60);
    const known = new Set([...knownSettingNames(), 'ChannelDataEOL', 'MaxChannelDataLength', 'ChannelDataEOLFound', 'SSHKeyRenegotiate'].map(squash));
    expect([...new Set(documented)].filter((name) => !known.has(squash(name)))).toEqual([]);
  });
});

function badValuesFor(name: string): string[] {
  const spec = SETTINGS[name]!;
  if (spec.kind === 'bool') return ['maybe', ''];
  if (spec.kind === 'int') {
    return ['many', '1.5', ...(spec.max !== undefined ? [String(spec.max + 1)] : []), ...(spec.min !== undefined ? [String(spec.min - 1)] : []), ...(spec.intChoices ? ['4'] : [])];
  }
  if (spec.choices) return ['no-such-choice'];
  return [];
}

function codeOf(action: () => unknown): number | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: number }).code;
  }
  return undefined;
}

const writable = Object.keys(SETTINGS).filter((name) => name !== 'UseFIPSCompliantAPI');

describe('every writable setting', () => {
  it.each(writable)('%s: set, read back, refuse bad values with 10022, reset', (name) => {
    const tunnel = new SSHReverseTunnel();
    const defaultText = tunnel.config(name);
    const sample = sampleFor(name);
    tunnel.config(`${name}=${sample}`);
    const expected =
      READS_BACK[name]?.(sample) ??
      (name === 'UseInternalSecurityAPI' ? 'False' : formatSettingValue(sample === 'True' ? true : sample === 'False' ? false : SETTINGS[name]!.kind === 'int' ? Number(sample) : sample));
    expect(tunnel.config(name)).toBe(expected);
    expect(tunnel.config(name.toUpperCase())).toBe(expected); // names in any case
    expect(expected).not.toBe(defaultText);
    for (const bad of badValuesFor(name)) {
      expect(
        codeOf(() => tunnel.config(`${name}=${bad}`)),
        `${name}=${bad}`,
      ).toBe(Code.BadArgument);
      expect(tunnel.config(name), 'a refused value leaves the setting as it was').toBe(expected);
    }
    tunnel.reset();
    expect(tunnel.config(name)).toBe(defaultText);
  });

  it('UseFIPSCompliantAPI=True is refused with the reason where the runtime has no FIPS provider, and False is accepted', () => {
    const tunnel = new SSHReverseTunnel();
    let error: { code?: number; message?: string } | undefined;
    try {
      tunnel.config('UseFIPSCompliantAPI=True');
    } catch (e) {
      error = e as typeof error;
    }
    if (error) {
      expect(error.code).toBe(Code.BadArgument);
      expect(error.message).toMatch(/FIPS/);
      expect(tunnel.config('UseFIPSCompliantAPI')).toBe('False');
    } else {
      expect(tunnel.config('UseFIPSCompliantAPI')).toBe('True');
      tunnel.config('UseFIPSCompliantAPI=False');
    }
    tunnel.config('UseFIPSCompliantAPI=False');
    expect(tunnel.config('UseFIPSCompliantAPI')).toBe('False');
  });
});

describe('settings that cannot be set', () => {
  it.each(READ_ONLY)('%s is read-only: it reads, and setting it is 10022', (name) => {
    const tunnel = new SSHReverseTunnel();
    expect(typeof tunnel.config(name)).toBe('string');
    expect(codeOf(() => tunnel.config(`${name}=1`))).toBe(Code.BadArgument);
  });

  it.each([...NOT_YET])('%s is not implemented yet: reading or setting it is 10022, never a silent no-op', (name) => {
    const tunnel = new SSHReverseTunnel();
    expect(codeOf(() => tunnel.config(name))).toBe(Code.BadArgument);
    expect(codeOf(() => tunnel.config(`${name}=1`))).toBe(Code.BadArgument);
  });

  it('an unknown name is 10022, naming it', () => {
    const tunnel = new SSHReverseTunnel();
    expect(() => tunnel.config('NoSuchSetting=1')).toThrow(/NoSuchSetting/);
    expect(codeOf(() => tunnel.config('NoSuchSetting'))).toBe(Code.BadArgument);
  });
});

/** Settable properties, a sample value each, and what a bad value is refused with. */
const PROPERTIES: [name: string, sample: unknown, bad?: [value: unknown, code: number]][] = [
  ['sshHost', 'gateway.example'],
  ['sshPort', 2222, [0, Code.PortZero]],
  ['sshUser', 'deploy'],
  ['sshPassword', 'pw'],
  ['sshAuthMode', 3],
  ['sshCertStore', '/nonexistent/id_ed25519'],
  ['sshCertStorePassword', 'secret'],
  ['sshCertSubject', 'CN=me'],
  ['sshEncryptionAlgorithms', 'aes128-ctr'],
  ['sshCompressionAlgorithms', 'zlib@openssh.com,zlib,none'],
  ['timeout', 5],
  ['localHost', '127.0.0.1'],
  ['localPort', 40000],
  ['sshAcceptServerHostKey', 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU'],
  ['firewallType', 2, [7, Code.BadArgument]],
  ['firewallHost', 'proxy.example'],
  ['firewallPort', 3128, [70000, Code.BadArgument]],
  ['firewallUser', 'proxyuser'],
  ['firewallPassword', 'proxypass'],
  ['firewallAutoDetect', true],
];

describe('every settable property', () => {
  it.each(PROPERTIES)('%s: set, read back, reset', (name, sample, bad) => {
    const tunnel = new SSHReverseTunnel() as unknown as Record<string, unknown> & SSHReverseTunnel;
    const initial = tunnel[name];
    tunnel[name] = sample;
    expect(tunnel[name]).toEqual(sample);
    expect(sample).not.toEqual(initial);
    if (bad) {
      expect(codeOf(() => (tunnel[name] = bad[0]))).toBe(bad[1]);
      expect(tunnel[name]).toEqual(sample);
    }
    tunnel.reset();
    expect(tunnel[name]).toEqual(initial);
  });

  it('the firewall properties and the Firewall* settings are one value', () => {
    const tunnel = new SSHReverseTunnel();
    tunnel.firewallType = 3;
    expect(tunnel.config('FirewallType')).toBe('3');
    expect(tunnel.firewallPort).toBe(1080); // choosing a type sets its port, as documented
    tunnel.config('FirewallHost=proxy.example');
    expect(tunnel.firewallHost).toBe('proxy.example');
    tunnel.firewallPassword = 'hunter2';
    expect(tunnel.firewallPassword).toBe('hunter2');
    expect(tunnel.config('FirewallPassword')).toBe('********');
  });
});

describe('the README', () => {
  it('documents every setting (an entry in settings-doc.ts for each name, and none for a name that is gone)', () => {
    const known = new Set(knownSettingNames());
    expect(knownSettingNames().filter((name) => !SETTING_DOCS[name])).toEqual([]);
    expect(Object.keys(SETTING_DOCS).filter((name) => !known.has(name))).toEqual([]);
  });

  it('has current generated tables (run npm run docs after changing a setting or an error code)', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(regenerateReadme(readme) === readme).toBe(true);
  });
});
