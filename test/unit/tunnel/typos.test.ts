// Mistakes plain JavaScript would let through silently: a property the class does not have,
// and a listener for an event that does not exist. Both are TypeErrors, with the name.

import { describe, expect, it } from 'vitest';
import { SSHReverseTunnel } from '../../../ts/index.js';
import { TUNNEL_EVENT_NAMES } from '../../../ts/tunnel/events.js';

describe('misspelt names', () => {
  it('assigning a property the tunnel does not have throws (ES modules are strict)', () => {
    const t = new SSHReverseTunnel() as unknown as Record<string, unknown>;
    expect(() => {
      t.sshhost = 'example.com';
    }).toThrow(TypeError);
    expect('sshhost' in t).toBe(false);
    t.sshHost = 'example.com'; // the real one still works
    expect(t.sshHost).toBe('example.com');
  });

  it('a subclass may still add fields of its own', () => {
    class Mine extends SSHReverseTunnel {
      label = 'mine';
    }
    expect(new Mine().label).toBe('mine');
  });

  it('listening for an event that does not exist throws, naming it; every documented one is accepted', () => {
    const t = new SSHReverseTunnel();
    const on = t.on.bind(t) as (event: string, listener: () => void) => unknown;
    expect(() => on('sshServerAuthenticaton', () => undefined)).toThrow(/no event named 'sshServerAuthenticaton'/);
    for (const name of TUNNEL_EVENT_NAMES) expect(() => on(name, () => undefined)).not.toThrow();
  });
});
