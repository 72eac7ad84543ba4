import { describe, expect, it } from 'vitest';
import { algorithmLists, canonicalSettingName, DEFAULT_KEX, matchesVersionPattern, parseBool, parseSettingValue, preferCertificateAlgorithms, SETTINGS } from '../../../ts/tunnel/settings.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { matchesPromptPattern } from '../../../ts/protocol/auth.js';

describe('settings', () => {
  it('offers no SHA-1 key exchange by default: they exist for servers that list them only', () => {
    expect(DEFAULT_KEX.filter((name) => name.endsWith('-sha1'))).toEqual([]);
    expect(SETTINGS['SSHKeyExchangeAlgorithms']!.default).not.toMatch(/sha1/);
  });

  it('finds documented names case-insensitively', () => {
    expect(canonicalSettingName('maxwindowsize')).toBe('MaxWindowSize');
    expect(canonicalSettingName('NoSuchSetting')).toBeUndefined();
    expect(canonicalSettingName('autoreconnect')).toBe('AutoReconnect');
    expect(canonicalSettingName('maxtransferrate')).toBe('MaxTransferRate');
    expect(canonicalSettingName('LINGERTIME')).toBe('LingerTime');
  });

  it('reconnects by default, keeps links alive by default, and range-checks the retry settings', () => {
    expect(SETTINGS.AutoReconnect!.default).toBe(1);
    expect(SETTINGS.MaxRetryCount!.default).toBe(0);
    expect(SETTINGS.RetryInterval!.default).toBe(5);
    expect(SETTINGS.SSHKeepAliveInterval!.default).toBe(30);
    expect(SETTINGS.SSHKeepAliveCountMax!.default).toBe(5);
    expect(SETTINGS.TCPKeepAlive!.default).toBe(true);
    expect(() => parseSettingValue('AutoReconnect', '3')).toThrow();
    expect(() => parseSettingValue('RetryInterval', '-1')).toThrow();
  });

  it('parses booleans the documented ways', () => {
    for (const t of ['True', 'yes', '1', 'ON']) expect(parseBool(t)).toBe(true);
    for (const f of ['false', 'No', '0']) expect(parseBool(f)).toBe(false);
    expect(() => parseBool('perhaps')).toThrow();
  });

  it('checks ranges and accepts hex integers', () => {
    expect(parseSettingValue('PreferredDHGroupBits', '4096')).toBe(4096);
    expect(() => parseSettingValue('PreferredDHGroupBits', '1024')).toThrow(/outside/);
    expect(parseSettingValue('KeyRenegotiationThreshold', '0x100000')).toBe(1048576);
    // TCP_KEEPIDLE takes at most 32 767 s; above it the kernel refused and Node said nothing.
    expect(parseSettingValue('KeepAliveTime', '32767000')).toBe(32_767_000);
    expect(() => parseSettingValue('KeepAliveTime', '32767001')).toThrow(/outside/);
  });

  it('matches SSHVersionPattern globs', () => {
    const patterns = '*SSH-1.99-*,*SSH-2.0-*';
    expect(matchesVersionPattern(patterns, 'SSH-2.0-OpenSSH_9.2')).toBe(true);
    expect(matchesVersionPattern(patterns, 'SSH-1.99-Old')).toBe(true);
    expect(matchesVersionPattern(patterns, 'SSH-1.5-Older')).toBe(false);
  });
});

describe('DataPlane', () => {
  it('is native by default, and takes native or js only', () => {
    expect(SETTINGS['DataPlane']).toMatchObject({ default: 'native', choices: ['native', 'js'] });
  });
});

describe('PasswordPrompt patterns', () => {
  it.each([
    ['*assword*', 'Password: ', true],
    ['C*t', 'Coast', true],
    ['C?t', 'Cat', true],
    ['C?t', 'Coat', false],
    ['[a-c]x', 'bx', true],
    ['[a-c]x', 'dx', false],
    ['[0-9,a-d,f]1', 'f1', true],
    ['[[]Something].txt', '[Something].txt', true],
    ['\\*literal', '*literal', true],
    ['\\*literal', 'xliteral', false],
  ])('%s vs %j -> %s', (pattern, text, expected) => {
    expect(matchesPromptPattern(pattern, text)).toBe(expected);
  });
});

describe('host key algorithms with a trusted CA', () => {
  it('puts the certificate form of each listed algorithm first, in the list order', () => {
    expect(preferCertificateAlgorithms('ssh-ed25519,rsa-sha2-512')).toBe('ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,ssh-ed25519,rsa-sha2-512');
  });

  it('leaves a certificate algorithm the user placed where it is, and adds none for an unknown name', () => {
    expect(preferCertificateAlgorithms('ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,x-unknown')).toBe('ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,x-unknown');
  });

  it('negotiates the certificate algorithms, and SSHAcceptServerCAKey is no longer refused as not implemented', () => {
    const lists = algorithmLists(new NodeCryptoProvider(), {
      kex: 'curve25519-sha256',
      hostKey: 'ecdsa-sha2-nistp384-cert-v01@openssh.com,ssh-ed25519',
      cipher: 'aes128-ctr',
      mac: 'hmac-sha2-256',
      compression: 'none',
    });
    expect(lists.hostKey).toEqual(['ecdsa-sha2-nistp384-cert-v01@openssh.com', 'ssh-ed25519']);
    expect(canonicalSettingName('sshacceptservercakey')).toBe('SSHAcceptServerCAKey');
    expect(() => parseSettingValue('SSHAcceptServerCAKey', 'not a key')).toThrow(expect.objectContaining({ code: 10022 }));
  });
});
