import { describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { randomEd25519Key } from '../../helpers/peer.js';
import { checkKnownHosts, hostFieldMatches, hostKeyMatches, knownHostAuthorities, knownHostsLine, parseCaKeys, parseKnownHosts } from '../../../ts/tunnel/hostkeys.js';
import { sshPublicKeyBlob } from '../../../ts/crypto/keys.js';
import { fingerprints } from '../../../ts/protocol/client.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import type { HostKeyInfo } from '../../../ts/protocol/client.js';

const provider = new NodeCryptoProvider();
function hostKey(): HostKeyInfo {
  const { blob, keyType } = sshPublicKeyBlob(randomEd25519Key());
  return { hostKey: blob, algorithm: keyType, keyType, fingerprints: fingerprints(provider, blob) };
}

describe('hostKeyMatches', () => {
  const info = hostKey();
  const b64 = Buffer.from(info.hostKey).toString('base64');
  it.each([
    ['an OpenSSH public key line', `ssh-ed25519 ${b64} comment`],
    ['a bare base64 blob', b64],
    ['SHA256:fingerprint', `SHA256:${info.fingerprints.sha256}`],
    ['a bare SHA256 fingerprint', info.fingerprints.sha256],
    ['MD5 hex with colons', info.fingerprints.md5],
    ['MD5: prefixed', `MD5:${info.fingerprints.md5}`],
    ['SHA1 hex', info.fingerprints.sha1.replace(/:/g, '')],
  ])('accepts %s', (_name, trusted) => {
    expect(hostKeyMatches(trusted, info)).toBe(true);
  });

  it('refuses another key in every form', () => {
    const other = hostKey();
    for (const f of [`ssh-ed25519 ${Buffer.from(other.hostKey).toString('base64')}`, `SHA256:${other.fingerprints.sha256}`, other.fingerprints.md5, '', 'garbage']) {
      expect(hostKeyMatches(f, info)).toBe(false);
    }
  });
});

describe('known_hosts', () => {
  const key = hostKey();
  const line = (name: string) => knownHostsLine(name, 22, 'ssh-ed25519', key.hostKey).replace(/^\S+/, name);

  it('matches plain, [host]:port, wildcard and hashed entries', () => {
    expect(checkKnownHosts(parseKnownHosts(line('gw.example.com')), 'gw.example.com', 22, key.hostKey)).toBe('match');
    expect(checkKnownHosts(parseKnownHosts(line('[gw]:2222')), 'gw', 2222, key.hostKey)).toBe('match');
    expect(checkKnownHosts(parseKnownHosts(line('[gw]:2222')), 'gw', 22, key.hostKey)).toBe('unknown');
    expect(checkKnownHosts(parseKnownHosts(line('*.example.com,!bad.example.com')), 'a.example.com', 22, key.hostKey)).toBe('match');
    expect(checkKnownHosts(parseKnownHosts(line('*.example.com,!bad.example.com')), 'bad.example.com', 22, key.hostKey)).toBe('unknown');
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[gw]:2222').digest('base64')}`;
    expect(hostFieldMatches(hashed, '[gw]:2222')).toBe(true);
    expect(checkKnownHosts(parseKnownHosts(line(hashed)), 'gw', 2222, key.hostKey)).toBe('match');
  });

  it('reports a different key for a known host as a mismatch, and @revoked keys as revoked', () => {
    const other = hostKey();
    expect(checkKnownHosts(parseKnownHosts(line('gw')), 'gw', 22, other.hostKey)).toBe('mismatch');
    const revoked = `@revoked ${line('gw')}`;
    expect(checkKnownHosts(parseKnownHosts(revoked), 'gw', 22, key.hostKey)).toBe('revoked');
  });

  // Regression: a @revoked line used to count only when it came before the host's good line,
  // so a revocation appended to known_hosts, or kept in the global file (read after the user's
  // file), was ignored. OpenSSH checks revocation over every file before anything else.
  describe('@revoked wins whatever the order or file', () => {
    const revoked = `@revoked ${line('gw')}`;

    it('when it comes after the good line for the host', () => {
      expect(checkKnownHosts(parseKnownHosts(`${line('gw')}\n${revoked}\n`), 'gw', 22, key.hostKey)).toBe('revoked');
    });

    it('when it comes before the good line for the host', () => {
      expect(checkKnownHosts(parseKnownHosts(`${revoked}\n${line('gw')}\n`), 'gw', 22, key.hostKey)).toBe('revoked');
    });

    it('when it sits in the global file and the good line in the user file', () => {
      const user = parseKnownHosts(line('gw'));
      const global = parseKnownHosts(`@revoked * ssh-ed25519 ${Buffer.from(key.hostKey).toString('base64')}`);
      expect(checkKnownHosts([...user, ...global], 'gw', 22, key.hostKey)).toBe('revoked');
    });

    it('for a host it has no plain entry for', () => {
      expect(checkKnownHosts(parseKnownHosts(revoked), 'gw', 22, key.hostKey)).toBe('revoked');
      const salt = randomBytes(20);
      const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[gw]:2222').digest('base64')}`;
      expect(checkKnownHosts(parseKnownHosts(`@revoked ${line(hashed)}`), 'gw', 2222, key.hostKey)).toBe('revoked');
    });

    it('but not for a host its patterns do not name, as in OpenSSH', () => {
      expect(checkKnownHosts(parseKnownHosts(`${line('gw')}\n@revoked ${line('other')}\n`), 'gw', 22, key.hostKey)).toBe('match');
    });

    it('and leaves other keys alone', () => {
      const other = hostKey();
      const entries = parseKnownHosts(`${revoked}\n${knownHostsLine('gw', 22, 'ssh-ed25519', other.hostKey)}\n`);
      expect(checkKnownHosts(entries, 'gw', 22, other.hostKey)).toBe('match');
    });
  });

  it('skips comments and malformed lines', () => {
    const entries = parseKnownHosts(`# comment\n\njust-one-field\n${line('gw')}\n`);
    expect(entries).toHaveLength(1);
  });
});

describe('SSHAcceptServerCAKey values', () => {
  const caKey = hostKey();
  const other = hostKey();
  const line = (info: HostKeyInfo, comment = '') => `ssh-ed25519 ${Buffer.from(info.hostKey).toString('base64')}${comment}`;

  it('takes key lines (with or without a comment) and bare blobs, one per line or comma-separated', () => {
    const keys = parseCaKeys(`${line(caKey, ' ca@example.com')}\n${Buffer.from(other.hostKey).toString('base64')}`);
    expect(keys.map((k) => Buffer.from(k).toString('hex'))).toEqual([caKey, other].map((k) => Buffer.from(k.hostKey).toString('hex')));
    expect(parseCaKeys(`${line(caKey)}, ${line(other)}`)).toHaveLength(2);
    expect(parseCaKeys('')).toEqual([]);
  });

  it('refuses what is not a public key with 10022, naming which entry', () => {
    expect(() => parseCaKeys(`${line(caKey)}\nssh-ed25519 AAAA`)).toThrow(expect.objectContaining({ code: 10022, message: expect.stringMatching(/CA key 2 .* is not a usable public key/) }));
    expect(() => parseCaKeys('SHA256:abcdef')).toThrow(/CA key 1 .* is not an OpenSSH public key line/);
  });
});

describe('@cert-authority and @revoked lines for host certificates', () => {
  const ca = hostKey();
  const b64 = (info: HostKeyInfo) => Buffer.from(info.hostKey).toString('base64');
  const entries = parseKnownHosts(
    [`@cert-authority *.example.com,!bad.example.com ssh-ed25519 ${b64(ca)}`, `@revoked bad.example.com ssh-ed25519 ${b64(ca)}`, `plain.example.com ssh-ed25519 ${b64(ca)}`].join('\n'),
  );

  it('gives the CA keys whose patterns match the host, and the revoked keys for it', () => {
    const forGw = knownHostAuthorities(entries, 'gw.example.com', 22);
    expect(forGw.caKeys).toHaveLength(1);
    expect(forGw.revokedKeys).toHaveLength(0);
    const forBad = knownHostAuthorities(entries, 'bad.example.com', 22);
    expect(forBad.caKeys).toHaveLength(0);
    expect(forBad.revokedKeys).toHaveLength(1);
    expect(knownHostAuthorities(entries, 'gw.example.org', 22).caKeys).toHaveLength(0);
  });

  it('never counts a @cert-authority line as a plain key for the host', () => {
    expect(checkKnownHosts(entries, 'gw.example.com', 22, ca.hostKey)).toBe('unknown');
  });
});
