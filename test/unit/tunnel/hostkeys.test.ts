import { describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { randomEd25519Key } from '../../helpers/peer.js';
import { checkKnownHosts, hostFieldMatches, hostKeyMatches, knownHostsLine, parseKnownHosts } from '../../../ts/tunnel/hostkeys.js';
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
