// The service options and the JSON event lines: LogFormat and MetricsListen values, --json,
// the keywords in ssh_config and `revtun -G`, and the exact shape of each line.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, UsageError } from '../../../ts/cli/args.js';
import { parseLogFormat, parseMetricsListen } from '../../../ts/cli/ops-options.js';
import { forwardSpecText, forwardTarget, formatJsonEvent } from '../../../ts/cli/json-log.js';
import { resolveConfig } from '../../../ts/cli/ssh-config.js';
import { formatResolved } from '../../../ts/cli/ssh-config-format.js';

describe('LogFormat', () => {
  it('is text unless json is asked for, in any case', () => {
    expect(parseLogFormat(undefined)).toBe('text');
    expect(parseLogFormat('JSON')).toBe('json');
    expect(parseLogFormat('text')).toBe('text');
  });
  it('refuses anything else with a usage error', () => {
    expect(() => parseLogFormat('yaml')).toThrow(UsageError);
  });
  it('--json is -o LogFormat=json, and a later -o LogFormat does not undo it (first one wins)', () => {
    const args = parseArgs(['--json', '-o', 'LogFormat=text', '-R', '0:localhost:80', 'host']);
    expect(args.options.get('logformat')).toBe('json');
    expect(args.commandLine).toContainEqual(['-o', 'LogFormat=json']);
  });
});

describe('MetricsListen', () => {
  it('takes port, host:port and [address]:port; a port alone is on 127.0.0.1', () => {
    expect(parseMetricsListen('9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseMetricsListen('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseMetricsListen('localhost:1')).toEqual({ host: 'localhost', port: 1 });
    expect(parseMetricsListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
  });
  it('absent or none: no server', () => {
    expect(parseMetricsListen(undefined)).toBeNull();
    expect(parseMetricsListen('none')).toBeNull();
  });
  it.each(['0', '65536', '::1:9464', 'host:', ':9464', 'host:port', '[::1]', ''])('refuses %j', (value) => {
    expect(() => parseMetricsListen(value)).toThrow(UsageError);
  });
});

describe('the keywords in ssh_config', () => {
  it('are read from a file like revtun settings, and printed by -G in lower case', () => {
    const dir = mkdtempSync(join(tmpdir(), 'revtun-ops-config-'));
    const file = join(dir, 'config');
    writeFileSync(file, 'Host gw\n  LogFormat json\n  MetricsListen 127.0.0.1:9464\n');
    const config = resolveConfig({ host: 'gw', configFile: file, commandLine: [], homeDir: dir, localUser: 'me', uid: 1000 });
    expect(config.revtunSettings.get('LogFormat')).toBe('json');
    expect(config.revtunSettings.get('MetricsListen')).toBe('127.0.0.1:9464');
    const printed = formatResolved(config);
    expect(printed).toContain('logformat json');
    expect(printed).toContain('metricslisten 127.0.0.1:9464');
  });
});

describe('JSON event lines', () => {
  it('start with time (ISO 8601) and event, then the fields in order', () => {
    const line = formatJsonEvent(new Date(Date.UTC(2026, 11, 2, 3, 4, 5, 6)), 'connection_closed', { channel: 3, bytesToTarget: 10, bytesFromTarget: 20 });
    expect(line).toBe('{"time":"2026-12-02T03:04:05.006Z","event":"connection_closed","channel":3,"bytesToTarget":10,"bytesFromTarget":20}');
  });
  it('name targets and -R specs as ssh writes them', () => {
    expect(forwardTarget('localhost', 80, false)).toBe('localhost:80');
    expect(forwardTarget('::1', 80, false)).toBe('[::1]:80');
    expect(forwardTarget('/run/app.sock', 0, false)).toBe('/run/app.sock');
    expect(forwardTarget('', 0, true)).toBe('socks');
    expect(forwardSpecText({ bindAddress: 'localhost', port: 0, host: '127.0.0.1', hostPort: 8080, dynamic: false })).toBe('localhost:0:127.0.0.1:8080');
    expect(forwardSpecText({ bindAddress: '::', port: 1080, host: '', hostPort: 0, dynamic: true })).toBe('[::]:1080');
    expect(forwardSpecText({ bindAddress: '/tmp/remote.sock', port: 0, host: '/run/app.sock', hostPort: 0, dynamic: false })).toBe('/tmp/remote.sock:/run/app.sock');
  });
});
