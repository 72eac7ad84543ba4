import { describe, expect, it } from 'vitest';
import { describePermitOpen, parsePermitRemoteOpen, permitsOpen } from '../../../ts/tunnel/permit-open.js';
import { SshError } from '../../../ts/protocol/errors.js';

describe('PermitRemoteOpen', () => {
  it('any permits everything, none nothing', () => {
    expect(permitsOpen(parsePermitRemoteOpen('any'), 'example.org', 443)).toBe(true);
    expect(permitsOpen(parsePermitRemoteOpen(['none']), '127.0.0.1', 80)).toBe(false);
  });

  it('an entry permits its own host and port only, names compared as written', () => {
    const policy = parsePermitRemoteOpen('localhost:8080 10.0.0.5:22');
    expect(permitsOpen(policy, 'localhost', 8080)).toBe(true);
    expect(permitsOpen(policy, '10.0.0.5', 22)).toBe(true);
    expect(permitsOpen(policy, 'localhost', 8081)).toBe(false);
    expect(permitsOpen(policy, '127.0.0.1', 8080)).toBe(false); // no lookups
    expect(permitsOpen(policy, 'LOCALHOST', 8080)).toBe(false); // as ssh's strcmp
    expect(permitsOpen(policy, '10.0.0.5', 8080)).toBe(false);
  });

  it('* stands for any host or any port, and nothing else is a pattern', () => {
    const policy = parsePermitRemoteOpen(['*:443', 'db.internal:*', '*.example.org:80']);
    expect(permitsOpen(policy, 'anything.at.all', 443)).toBe(true);
    expect(permitsOpen(policy, 'db.internal', 1)).toBe(true);
    expect(permitsOpen(policy, 'db.internal2', 1)).toBe(false);
    expect(permitsOpen(policy, 'www.example.org', 80)).toBe(false);
    expect(permitsOpen(parsePermitRemoteOpen('*:*'), 'x', 65535)).toBe(true);
  });

  it('an IPv6 entry in brackets matches its address however it is spelt', () => {
    const policy = parsePermitRemoteOpen('[::1]:22 [2001:db8::7]:*');
    expect(permitsOpen(policy, '::1', 22)).toBe(true);
    expect(permitsOpen(policy, '0:0:0:0:0:0:0:1', 22)).toBe(true);
    expect(permitsOpen(policy, '2001:0db8:0:0:0:0:0:7', 9)).toBe(true);
    expect(permitsOpen(policy, '::2', 22)).toBe(false);
    expect(describePermitOpen(policy)).toBe('[::1]:22 [2001:db8::7]:*');
  });

  it.each([
    ['', /empty/],
    ['any localhost:80', /"any" must appear alone/],
    ['localhost:80 none', /"none" must appear alone/],
    ['localhost', /bad port number/],
    ['localhost:0', /bad port number/],
    ['localhost:65536', /bad port number/],
    ['localhost:http', /bad port number/],
    ['[::1]', /bad port number/],
    ['[::1]x:2', /missing host/],
  ])('refuses %j with 10022: %s', (value, message) => {
    let error: unknown;
    try {
      parsePermitRemoteOpen(value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SshError);
    expect((error as SshError).code).toBe(10022);
    expect((error as SshError).message).toMatch(message);
  });
});
