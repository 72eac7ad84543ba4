import { describe, expect, it } from 'vitest';
import { defaultFirewallPort, describeProxy, isProxyException, matchesNoProxy, parseProxyUrl, proxyFromEnvironment, proxyFromSettings } from '../../../ts/net/proxy.js';

describe('proxy URLs', () => {
  it('takes curl’s schemes, default ports and percent-encoded credentials', () => {
    expect(parseProxyUrl('http://proxy.corp:3128')).toEqual({ type: 'http', host: 'proxy.corp', port: 3128 });
    expect(parseProxyUrl('proxy.corp')).toEqual({ type: 'http', host: 'proxy.corp', port: 80 });
    expect(parseProxyUrl('socks5h://u%40x:p%3Aw@[::1]')).toEqual({ type: 'socks5h', host: '::1', port: 1080, user: 'u@x', password: 'p:w' });
    expect(parseProxyUrl('socks4a://gw:1081').type).toBe('socks4a');
    expect(() => parseProxyUrl('ftp://x')).toThrow(expect.objectContaining({ code: 10022 }));
  });

  it('describes a proxy without its credentials', () => {
    expect(describeProxy(parseProxyUrl('socks5://user:secret@gw:1080'))).toBe('socks5 proxy gw:1080');
  });
});

describe('the Firewall* settings', () => {
  it('map the documented types, with their default ports', () => {
    expect([0, 1, 2, 3, 10].map(defaultFirewallPort)).toEqual([0, 80, 1080, 1080, 1080]);
    const base = { host: 'gw', port: 0, user: '', password: '', data: '' };
    expect(proxyFromSettings({ ...base, type: 0 })).toBeNull();
    expect(proxyFromSettings({ ...base, type: 1 })).toEqual({ type: 'http', host: 'gw', port: 80 });
    expect(proxyFromSettings({ ...base, type: 2 })?.type).toBe('socks4');
    expect(proxyFromSettings({ ...base, type: 3, user: 'u', password: 'p' })).toEqual({ type: 'socks5h', host: 'gw', port: 1080, user: 'u', password: 'p' });
    expect(proxyFromSettings({ ...base, type: 10, port: 9 })).toEqual({ type: 'socks4a', host: 'gw', port: 9 });
  });

  it('ProxyExceptionsList: semicolon-separated names and addresses, *.domain for a domain', () => {
    expect(isProxyException('Gateway.Example.com', 'other.org; gateway.example.com')).toBe(true);
    expect(isProxyException('a.b.example.com', '*.example.com')).toBe(true);
    expect(isProxyException('example.com', '*.example.com')).toBe(false);
    expect(isProxyException('10.1.2.3', '10.1.2.3')).toBe(true);
    expect(isProxyException('host', '')).toBe(false);
  });
});

describe('the environment, as curl reads it', () => {
  it('https_proxy before all_proxy, lower case before upper case', () => {
    expect(proxyFromEnvironment({ all_proxy: 'socks5h://a:1', https_proxy: 'http://b:2' }, 'h')?.host).toBe('b');
    expect(proxyFromEnvironment({ ALL_PROXY: 'socks5h://a:1' }, 'h')?.type).toBe('socks5h');
    expect(proxyFromEnvironment({ https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:1' }, 'h')?.host).toBe('low');
    expect(proxyFromEnvironment({}, 'h')).toBeNull();
  });

  it('no_proxy: *, names with their subdomains, addresses and IPv4 ranges', () => {
    expect(matchesNoProxy('anything', '*')).toBe(true);
    expect(matchesNoProxy('git.example.com', 'example.com')).toBe(true);
    expect(matchesNoProxy('git.example.com', '.example.com')).toBe(true);
    expect(matchesNoProxy('notexample.com', 'example.com')).toBe(false);
    expect(matchesNoProxy('192.168.4.9', '10.0.0.0/8, 192.168.0.0/16')).toBe(true);
    expect(matchesNoProxy('192.169.0.1', '192.168.0.0/16')).toBe(false);
    expect(proxyFromEnvironment({ all_proxy: 'socks5h://a:1', NO_PROXY: 'h' }, 'h')).toBeNull();
  });
});

describe('ProxyCommand tokens', () => {
  it('expands %h %p %r %n %% and refuses others', async () => {
    const { expandProxyCommand } = await import('../../../ts/net/proxy-command.js');
    const values = { host: 'gw.example.com', port: 2222, user: 'deploy', originalHost: 'gw' };
    expect(expandProxyCommand('nc -X connect -x proxy:3128 %h %p # %r@%n 100%%', values)).toBe('nc -X connect -x proxy:3128 gw.example.com 2222 # deploy@gw 100%');
    expect(() => expandProxyCommand('nc %h %x', values)).toThrow(expect.objectContaining({ code: 10022 }));
    expect(() => expandProxyCommand('nc %', values)).toThrow(expect.objectContaining({ code: 10022 }));
  });
});
