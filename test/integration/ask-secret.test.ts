// The CLI's secret prompt (ts/cli/ask-secret.ts): asynchronous, so the event loop turns while
// it waits; on a real pseudo-terminal, echo off while the person types and back on however the
// prompt ends, an answer or Ctrl-C (the process then dies of SIGINT, as without the prompt);
// through SSH_ASKPASS without a terminal, as ssh asks.

import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { askSecret } from '../../ts/cli/ask-secret.js';

const root = resolve(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'revtun-ask-'));

interface PromptRun {
  sawPromptAndTick: boolean;
  echoDuring: boolean;
  echoAfter: boolean | string;
  signal: number | null;
  exit: number | null;
  output: string;
}

function onTerminal(mode: 'answer' | 'interrupt'): Promise<PromptRun> {
  return new Promise((done, fail) => {
    execFile('python3', [join(root, 'test/helpers/tty-prompt.py'), mode, join(root, 'dist')], { timeout: 60_000 }, (error, stdout) => {
      if (error) return fail(error);
      done(JSON.parse(stdout) as PromptRun);
    });
  });
}

describe('the secret prompt', () => {
  it('on a terminal: echo off while typing, the answer returned, echo back on, the event loop turning meanwhile', async () => {
    const run = await onTerminal('answer');
    expect(run.sawPromptAndTick).toBe(true); // a timer fired while the prompt waited
    expect(run.echoDuring).toBe(false);
    expect(run.echoAfter).toBe(true);
    expect(run.exit).toBe(0);
    const [before, result] = run.output.split('RESULT ');
    expect(before).not.toContain('hunter2'); // not echoed
    expect(JSON.parse(result!.trim()).answer).toBe('hunter2');
  });

  it('Ctrl-C at the prompt puts echo back and the process dies of SIGINT', async () => {
    const run = await onTerminal('interrupt');
    expect(run.echoDuring).toBe(false);
    expect(run.echoAfter).toBe(true);
    expect(run.signal).toBe(2);
    expect(run.output).not.toContain('RESULT');
  });

  it('through SSH_ASKPASS, without blocking the event loop', async () => {
    const askpass = join(dir, 'askpass.sh');
    // Answers only once the prompt's caller has shown it can run (the marker file exists); a
    // blocking prompt would leave it to give up after its bounded number of checks.
    const marker = join(dir, 'loop-ran');
    writeFileSync(askpass, `#!/bin/sh\ni=0\nwhile [ ! -e '${marker}' ] && [ $i -lt 1000000 ]; do i=$((i+1)); done\n[ -e '${marker}' ] && printf 'from askpass\\n' || printf 'gave up\\n'\n`, {
      mode: 0o755,
    });
    const saved = { askpass: process.env.SSH_ASKPASS, require: process.env.SSH_ASKPASS_REQUIRE };
    process.env.SSH_ASKPASS = askpass;
    process.env.SSH_ASKPASS_REQUIRE = 'force';
    try {
      const pending = askSecret('Password: ');
      // This runs only because askSecret returned while the program was still running.
      writeFileSync(marker, '');
      expect(await pending).toBe('from askpass');
    } finally {
      if (saved.askpass === undefined) delete process.env.SSH_ASKPASS;
      else process.env.SSH_ASKPASS = saved.askpass;
      if (saved.require === undefined) delete process.env.SSH_ASKPASS_REQUIRE;
      else process.env.SSH_ASKPASS_REQUIRE = saved.require;
    }
  });
});
