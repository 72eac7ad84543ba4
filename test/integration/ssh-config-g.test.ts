// revtun's ssh_config evaluation against the real thing: for every case in the corpus under
// test/fixtures/ssh-config/, `ssh -G -F file [options] host` (OpenSSH prints its resolved
// configuration and makes no connection) must print the same lines as formatResolved() for
// the keys revtun supports. The corpus is copied to a temporary directory first so that
// `@DIR@` in it can name absolute Include paths.

import { execFileSync } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig, SshConfigError } from '../../ts/cli/ssh-config.js';
import { FORMATTED_KEYS, formatResolved } from '../../ts/cli/ssh-config-format.js';

const fixtures = join(import.meta.dirname, '../fixtures/ssh-config');
const work = mkdtempSync(join(tmpdir(), 'revtun-ssh-config-'));
cpSync(fixtures, work, { recursive: true });
for (const entry of readdirSync(work, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile()) continue;
  const path = join(entry.parentPath, entry.name);
  writeFileSync(path, readFileSync(path, 'utf8').replaceAll('@DIR@', work), { mode: 0o600 });
}
afterAll(() => rmSync(work, { recursive: true, force: true }));

// ssh expands ~ from the password database, not $HOME; HOME still points elsewhere so that
// nothing from the machine's own ~/.ssh could leak in.
const home = userInfo().homedir;
const keys = new Set<string>(FORMATTED_KEYS);

/** A case's ssh options as resolveConfig's command-line entries: [flag, value] pairs. */
function commandLine(argv: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1]!;
    out.push([flag, value]);
  }
  return out;
}

function sshG(file: string, argv: string[]): string[] {
  const text = execFileSync('ssh', ['-G', '-F', file, ...argv], { encoding: 'utf8', env: { ...process.env, HOME: work }, stdio: ['ignore', 'pipe', 'pipe'] });
  return text.split('\n').filter((line) => keys.has(line.split(' ')[0]!));
}

function casesIn(dir: string) {
  return readdirSync(join(work, dir))
    .filter((name) => name.endsWith('.conf'))
    .flatMap((name) => [...readFileSync(join(work, dir, name), 'utf8').matchAll(/^# case: (.*)$/gm)].map((m) => ({ name: join(dir, name), argv: m[1]!.trim().split(/\s+/) })));
}
const cases = casesIn('.');
const errorCases = casesIn('errors');

describe('ssh -G agrees with formatResolved', () => {
  it('has a corpus', () => {
    expect(cases.length).toBeGreaterThan(30);
  });

  it.each(cases)('$name: $argv', ({ name, argv }) => {
    const file = join(work, name);
    const host = argv.at(-1)!;
    const resolved = resolveConfig({ host, configFile: file, commandLine: commandLine(argv.slice(0, -1)), homeDir: home, env: { ...process.env, HOME: work } });
    expect(formatResolved(resolved).filter((line) => keys.has(line.split(' ')[0]!))).toEqual(sshG(file, argv));
  });
});

describe('a bad configuration fails in both, naming the same file and line', () => {
  it.each(errorCases)('$name', ({ name, argv }) => {
    const file = join(work, name);
    const ssh = spawnSync('ssh', ['-G', '-F', file, ...argv], { encoding: 'utf8', env: { ...process.env, HOME: work } });
    expect(ssh.status).toBe(255);
    // ssh words it "FILE line N: ..." or "FILE: line N: ..."; the first such line is the first error.
    const first = /^(.*?):? line (\d+): /m.exec(ssh.stderr);
    expect(first, ssh.stderr).not.toBeNull();
    let error: unknown;
    try {
      resolveConfig({ host: argv.at(-1)!, configFile: file, homeDir: home });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SshConfigError);
    expect({ file: (error as SshConfigError).file, line: (error as SshConfigError).line }).toEqual({ file: first![1], line: Number(first![2]) });
  });
});
