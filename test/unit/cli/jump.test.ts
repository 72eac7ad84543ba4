// ProxyJump hop specs as ssh's parse_jump reads them.

import { describe, expect, it } from 'vitest';
import { parseJumpHop, parseJumpSpec } from '../../../ts/cli/jump.js';

describe('ProxyJump hops', () => {
  it('reads user@host:port, bracketed addresses, ssh:// URIs and bare hosts', () => {
    expect(parseJumpHop('bastion')).toEqual({ host: 'bastion' });
    expect(parseJumpHop('ops@bastion:2222')).toEqual({ user: 'ops', host: 'bastion', port: 2222 });
    expect(parseJumpHop('[2001:db8::1]:2200')).toEqual({ host: '2001:db8::1', port: 2200 });
    expect(parseJumpHop('2001:db8::1')).toEqual({ host: '2001:db8::1' });
    expect(parseJumpHop('ssh://me@gw.example:22/')).toEqual({ user: 'me', host: 'gw.example', port: 22 });
    expect(parseJumpHop('a@b@c')).toEqual({ user: 'a@b', host: 'c' });
  });

  it('splits a chain at commas, first hop first', () => {
    expect(parseJumpSpec('a,ops@b:2222')).toEqual([{ host: 'a' }, { user: 'ops', host: 'b', port: 2222 }]);
  });

  it('refuses an empty user or host and a port outside 1-65535', () => {
    for (const bad of ['root@', '@host', 'host:0', 'host:65536', 'host:x', '', ':22']) expect(() => parseJumpHop(bad), bad).toThrow(/Invalid ProxyJump/);
  });
});
