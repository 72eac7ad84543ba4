// Prints one closing line, "N passed, N failed, N skipped", after vitest's own report, so
// tools that read a run's last line see the counts.

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
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
