// The CLI's GSSAPI options as ssh reads them: -K and -k set theirs outright (over -o and the
// files; the later flag wins), the keywords parse as ssh's flags, and the service name comes
// from GSSAPIServerIdentity, GSSAPITrustDns or the host as given. `ssh -G` itself checks the
// printed forms (test/fixtures/ssh-config/gssapi.conf in ssh-config-g.test.ts).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../../ts/cli/args.js';
import { resolveConfig, type SshConfigError, type ResolveOptions } from '../../../ts/cli/ssh-config.js';
import { gssapiHostName } from '../../../ts/cli/gssapi.js';

const dir = mkdtempSync(join(tmpdir(), 'revtun-gssapi-cli-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function resolveText(text: string, commandLine: ResolveOptions['commandLine'] = []) {
  const path = join(dir, `config${files++}`);
  writeFileSync(path, text, { mode: 0o600 });
  return resolveConfig({ host: 'server.example', configFile: path, homeDir: dir, localUser: 'me', uid: 1000, localHostname: 'box', env: {}, runExec: () => false, commandLine });
}

describe('GSSAPI options', () => {
  it('-K and -k go to the command line in order', () => {
    expect(parseArgs(['-Kk', '-R', '1:h:2', 'host']).commandLine).toEqual([
      ['-K', ''],
      ['-k', ''],
      ['-R', '1:h:2'],
    ]);
  });

  it('are off by default, as in ssh', () => {
    expect(resolveText('')).toMatchObject({ gssapiAuthentication: false, gssapiKeyExchange: false, gssapiDelegateCredentials: false, gssapiTrustDns: false });
    expect(resolveText('')).not.toHaveProperty('gssapiServerIdentity');
  });

  it('-K turns on authentication and delegation over -o and the files; a later -k turns delegation off again', () => {
    const file = 'GSSAPIAuthentication no\nGSSAPIDelegateCredentials no\n';
    expect(
      resolveText(file, [
        ['-o', 'GSSAPIDelegateCredentials=no'],
        ['-K', ''],
      ]),
    ).toMatchObject({ gssapiAuthentication: true, gssapiDelegateCredentials: true });
    expect(
      resolveText(file, [
        ['-K', ''],
        ['-k', ''],
      ]),
    ).toMatchObject({ gssapiAuthentication: true, gssapiDelegateCredentials: false });
    expect(resolveText('GSSAPIDelegateCredentials yes\n', [['-k', '']]).gssapiDelegateCredentials).toBe(false);
  });

  it('read the file keywords with the first value winning, and refuse bad values with ssh error', () => {
    const r = resolveText('GSSAPIKeyExchange yes\nGSSAPIKeyExchange no\nGSSAPITrustDns true\nGSSAPIServerIdentity Real.Example\n');
    expect(r).toMatchObject({ gssapiKeyExchange: true, gssapiTrustDns: true, gssapiServerIdentity: 'Real.Example' });
    const error = (() => {
      try {
        resolveText('GSSAPIAuthentication maybe\n');
      } catch (e) {
        return e as SshConfigError;
      }
      return null;
    })();
    expect(error?.message).toMatch(/line 1: unsupported option "maybe"/);
  });

  it('the service host: GSSAPIServerIdentity, else the host as given, else (GSSAPITrustDns) its name from the resolver', async () => {
    const debug: string[] = [];
    expect(await gssapiHostName(resolveText('GSSAPIServerIdentity id.example\nGSSAPITrustDns yes\n'), '127.0.0.1', (l) => debug.push(l))).toBe('id.example');
    expect(await gssapiHostName(resolveText(''), '127.0.0.1', (l) => debug.push(l))).toBe('127.0.0.1');
    // /etc/hosts names 127.0.0.1 localhost on any Debian.
    expect(await gssapiHostName(resolveText('GSSAPITrustDns yes\n'), '127.0.0.1', (l) => debug.push(l))).toBe('localhost');
    expect(debug).toEqual(['GSSAPITrustDns: 127.0.0.1 is localhost']);
  });
});
