/**
 * `npm run docs`: write docs/configuration.md from docs/configuration.template.md
 * and the schema in src/config/ (see src/config/reference.ts).
 * `--check` writes nothing and exits 1 when the committed file is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { OUTPUT_PATH, renderConfigReference } from '../src/config/reference.ts';

const generated = renderConfigReference();
if (process.argv.includes('--check')) {
  if (readFileSync(OUTPUT_PATH, 'utf8') !== generated) {
    process.stderr.write('docs/configuration.md is out of date: run npm run docs\n');
    process.exit(1);
  }
} else {
  writeFileSync(OUTPUT_PATH, generated);
  process.stdout.write('wrote docs/configuration.md\n');
}
