// Prints one closing line, "N passed, N failed, N skipped", after vitest's own report, so
// tools that read a run's last line see the counts. With REVTUN_TEST_TALLY naming a file, the
// counts are also appended to it, one line per run: scripts/test.sh runs vitest once per Node
// version and closes with the sum.

import { appendFileSync } from 'node:fs';
import type { Reporter } from 'vitest/reporters';

type Task = { type: string; result?: { state?: string }; mode?: string; tasks?: Task[] };

export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const visit = (task: Task) => {
      if (task.tasks) task.tasks.forEach(visit);
      if (task.type !== 'test') return;
      const state = task.result?.state;
      if (state === 'pass') passed++;
      else if (state === 'fail') failed++;
      else skipped++;
    };
    files.forEach(visit);
    // A file that failed to load has no tests but must still count as a failure.
    for (const file of files) if (file.result?.state === 'fail' && !(file.tasks ?? []).length) failed++;
    const line = `${passed} passed, ${failed} failed, ${skipped} skipped`;
    process.stdout.write(`\n${line}\n`);
    const tally = process.env['REVTUN_TEST_TALLY'];
    if (tally) appendFileSync(tally, `${line}\n`);
  }
}
