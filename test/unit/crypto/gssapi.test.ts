// How the documented Kerberos settings name the server's service (gssTarget): a host-based
// name from the host, a principal when a realm is given, KerberosSPN in either form.

import { describe, expect, it } from 'vitest';
import { gssTarget } from '../../../ts/crypto/gssapi.js';
import { Code, SshError } from '../../../ts/protocol/errors.js';

describe('gssTarget', () => {
  it('is host@<host> by default, as RFC 4462 §3.1 names the service', () => {
    expect(gssTarget({ host: 'gw.example.com', spn: '', realm: '' })).toEqual({ name: 'host@gw.example.com', principal: false });
  });

  it('with KerberosRealm, the principal host/<host>@REALM, the realm in capitals', () => {
    expect(gssTarget({ host: 'gw.example.com', spn: '', realm: 'corp.example.com' })).toEqual({ name: 'host/gw.example.com@CORP.EXAMPLE.COM', principal: true });
  });

  it('KerberosSPN as a principal gets the realm only when it names none; as service@host it is taken as it is', () => {
    expect(gssTarget({ host: 'h', spn: 'host/gw.example.com', realm: 'EXAMPLE.COM' })).toEqual({ name: 'host/gw.example.com@EXAMPLE.COM', principal: true });
    expect(gssTarget({ host: 'h', spn: 'host/gw.example.com@OTHER.COM', realm: 'EXAMPLE.COM' })).toEqual({ name: 'host/gw.example.com@OTHER.COM', principal: true });
    expect(gssTarget({ host: 'h', spn: 'host/gw.example.com', realm: '' })).toEqual({ name: 'host/gw.example.com', principal: true });
    expect(gssTarget({ host: 'h', spn: 'host@gw.example.com', realm: 'EXAMPLE.COM' })).toEqual({ name: 'host@gw.example.com', principal: false });
  });

  it('refuses an SPN of neither form, and no host at all, with 10022', () => {
    for (const settings of [
      { host: 'h', spn: 'gw.example.com', realm: '' },
      { host: '', spn: '', realm: '' },
    ]) {
      const error = (() => {
        try {
          gssTarget(settings);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(SshError);
      expect((error as SshError).code).toBe(Code.BadArgument);
    }
  });
});
