#!/usr/bin/env node
// Rewrites the generated tables of README.md (settings, defaults that differ from the reference,
// error codes) from the tables the code uses (dist/tunnel/settings-doc.js; run after a build).
// `--check` only reports whether the README is current (exit 1 when it is not).
import { readFileSync, writeFileSync } from 'node:fs';
import { regenerateReadme } from '../dist/tunnel/settings-doc.js';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const fresh = regenerateReadme(readme);
if (process.argv.includes('--check')) {
  if (fresh !== readme) {
    console.error('README.md is stale: run npm run docs');
    process.exit(1);
  }
} else if (fresh !== readme) {
  writeFileSync(path, fresh);
  console.error('docs-tables: README.md updated');
}
