// The CLI's host key decisions for host certificates, as ssh makes them: a @cert-authority
// line for the host trusts a valid certificate from its CA; @revoked revokes the CA key too;
// a certificate that cannot vouch for the host leaves its key to be judged as a plain key;
// and the certificate algorithms are asked for first only for hosts with a CA line.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CLI_HOST_KEY, decideHostKey, preferKnownKeyTypes, type HostKeyPolicy } from '../../../ts/cli/host-keys.js';
import { parseKnownHosts } from '../../../ts/tunnel/hostkeys.js';
import { describeHostCertificate, parseCertificate } from '../../../ts/protocol/certificates.js';
import { fingerprints } from '../../../ts/protocol/client.js';
import { NodeCryptoProvider } from '../../../ts/crypto/node.js';
import { generateKey } from '../../helpers/sshd.js';

const provider = new NodeCryptoProvider();
const dir = mkdtempSync(join(tmpdir(), 'revtun-cli-hostcert-'));
const ca = generateKey(dir, 'ca', 'ed25519');
const otherCa = generateKey(dir, 'other_ca', 'ed25519');
const host = generateKey(dir, 'host', 'ed25519');
const blobOf = (line: string) => new Uint8Array(Buffer.from(line.split(/\s+/)[1]!, 'base64'));

function certificate(principals: string, validity = 'always:forever') {
  execFileSync('ssh-keygen', ['-q', '-s', ca.privatePath, '-h', '-I', 'gw', '-n', principals, '-V', validity, `${host.privatePath}.pub`], { stdio: 'pipe' });
  const blob = blobOf(readFileSync(`${host.privatePath}-cert.pub`, 'utf8'));
  return describeHostCertificate(parseCertificate(blob), blob, (b) => fingerprints(provider, b), null);
}

function policy(lines: string[], strict: HostKeyPolicy['strict'] = 'yes'): HostKeyPolicy {
  return { entries: parseKnownHosts(lines.join('\n')), userFile: join(dir, 'unused_known_hosts'), strict };
}

const hostKey = blobOf(host.publicLine);
const key = (cert: ReturnType<typeof certificate>, name = 'gw.example.com') => ({ name, port: 22, shownHost: name, hostKey, sha256: fingerprints(provider, hostKey).sha256, certificate: cert });

describe('decideHostKey with a host certificate', () => {
  const valid = certificate('gw.example.com');

  it('trusts a valid certificate from a @cert-authority line whose patterns match the host', () => {
    expect(decideHostKey(policy([`@cert-authority *.example.com ${ca.publicLine}`]), key(valid))).toEqual({ accept: true });
  });

  it('does not trust a @cert-authority line for other hosts, nor another CA', () => {
    const elsewhere = decideHostKey(policy([`@cert-authority *.example.org ${ca.publicLine}`]), key(valid));
    expect(elsewhere.accept).toBe(false);
    expect(elsewhere.problem).toMatch(/signed by a CA that is not trusted .* No ssh-ed25519 host key is known for gw\.example\.com/);
    expect(decideHostKey(policy([`@cert-authority * ${otherCa.publicLine}`]), key(valid)).accept).toBe(false);
  });

  it('checks the principals against the name it is given (HostKeyAlias), not the certificate checks of the core', () => {
    expect(decideHostKey(policy([`@cert-authority * ${ca.publicLine}`]), key(valid, 'other.example.com')).problem).toMatch(/not valid for "other\.example\.com"/);
  });

  it('judges the validity window by the clock it is given', () => {
    const cert = certificate('gw.example.com', '20260101000000Z:20260201000000Z');
    const trusted = policy([`@cert-authority * ${ca.publicLine}`]);
    expect(decideHostKey(trusted, key(cert), Date.UTC(2026, 0, 15)).accept).toBe(true);
    expect(decideHostKey(trusted, key(cert), Date.UTC(2026, 1, 1)).problem).toMatch(/^Host certificate refused: the host certificate has expired/);
    expect(decideHostKey(trusted, key(cert), Date.UTC(2025, 11, 31)).problem).toMatch(/^Host certificate refused: the host certificate is not yet valid/);
  });

  it('refuses a certificate whose CA key, or whose certified key, is @revoked', () => {
    const revokedCa = decideHostKey(policy([`@cert-authority * ${ca.publicLine}`, `@revoked * ${ca.publicLine}`]), key(valid));
    expect(revokedCa.accept).toBe(false);
    expect(revokedCa.problem).toMatch(/the CA key of the host certificate \(ssh-ed25519 SHA256:\S+\) is marked as revoked/);
    expect(revokedCa.warning?.join('\n')).toMatch(/REVOKED HOST KEY DETECTED/);
    // Even with the key itself listed as a plain key: a revoked CA is not retried as a plain key.
    expect(decideHostKey(policy([`@revoked * ${ca.publicLine}`, `gw.example.com ${host.publicLine}`]), key(valid)).accept).toBe(false);
    expect(decideHostKey(policy([`@cert-authority * ${ca.publicLine}`, `@revoked * ${host.publicLine}`]), key(valid)).problem).toMatch(/certified host key is marked as revoked/);
  });

  it('falls back to the plain key as ssh does, reporting the certificate problem', () => {
    const expired = certificate('gw.example.com', '20200101000000Z:20200201000000Z');
    const decision = decideHostKey(policy([`@cert-authority * ${ca.publicLine}`, `gw.example.com ${host.publicLine}`]), key(expired));
    expect(decision.accept).toBe(true);
    expect(decision.warning).toEqual([expect.stringMatching(/^Host certificate refused: the host certificate has expired/)]);
  });
});

describe('preferKnownKeyTypes with @cert-authority lines', () => {
  it('puts the certificate algorithms first for a host with a CA line, and leaves other hosts alone', () => {
    const p = policy([`@cert-authority [gw]:2222 ${ca.publicLine}`]);
    const forGw = preferKnownKeyTypes(p, 'gw', 2222, DEFAULT_CLI_HOST_KEY);
    expect(forGw.slice(0, 6)).toEqual([
      'ssh-ed25519-cert-v01@openssh.com',
      'ecdsa-sha2-nistp256-cert-v01@openssh.com',
      'ecdsa-sha2-nistp384-cert-v01@openssh.com',
      'ecdsa-sha2-nistp521-cert-v01@openssh.com',
      'rsa-sha2-512-cert-v01@openssh.com',
      'rsa-sha2-256-cert-v01@openssh.com',
    ]);
    expect(forGw.slice(6)).toEqual(DEFAULT_CLI_HOST_KEY.filter((a) => !a.includes('-cert-')));
    expect(preferKnownKeyTypes(p, 'gw', 22, DEFAULT_CLI_HOST_KEY)).toEqual(DEFAULT_CLI_HOST_KEY);
  });

  it('then the types of the plain keys known for the host', () => {
    const p = policy([`@cert-authority gw ${ca.publicLine}`, `gw ecdsa-sha2-nistp256 ${Buffer.from('x').toString('base64')}`]);
    expect(preferKnownKeyTypes(p, 'gw', 22, DEFAULT_CLI_HOST_KEY).slice(6, 7)).toEqual(['ecdsa-sha2-nistp256']);
  });
});
