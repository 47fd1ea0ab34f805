// `npm test`: the whole suite, as CI runs it. Steps: typecheck, lint, build the standalone binary,
// the bare-host check, then every test file under test/ (unit, daemon, e2e on the binary).
// `npm run test:unit` (--unit) runs only the test files, against the sources (not those of test/e2e/ and
// test/integrations/, which need the binary).
import {spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, `..`);
const unitOnly = process.argv.includes(`--unit`);
const filters = process.argv.slice(2).filter((arg) => !arg.startsWith(`--`));

function step(name: string, command: string, args: string[]): void {
  const startedAt = Date.now();
  console.log(`\n== ${name}: ${[command, ...args].join(` `)}`);
  const result = spawnSync(command, args, {cwd: repo, stdio: `inherit`, env: process.env});
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  if (result.status !== 0) {
    console.error(`== ${name} FAILED after ${seconds}s (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
  console.log(`== ${name} ok (${seconds}s)`);
}

function listTests(dir: string): string[] {
  return fs.readdirSync(dir, {withFileTypes: true, recursive: true})
    .filter((entry) => entry.isFile() && entry.name.endsWith(`.test.ts`))
    .map((entry) => path.relative(repo, path.join(entry.parentPath, entry.name)))
    .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
    .sort();
}

const npm = process.platform === `win32` ? `npm.cmd` : `npm`;
if (!unitOnly) {
  step(`typecheck`, npm, [`run`, `-s`, `typecheck`]);
  step(`lint`, npm, [`run`, `-s`, `lint`]);
  step(`build`, npm, [`run`, `-s`, `build`, `--`, `--skip-compress`]);
}
if (!unitOnly && filters.length === 0 && fs.existsSync(path.join(repo, `scripts`, `bare-host.ts`))) {
  step(`bare host`, npm, [`run`, `-s`, `test:bare-host`]);
}
// Last, so the test runner's summary closes the output.
// --unit leaves out what runs the built binary: test/e2e/ and the integrations' tests.
const files = listTests(path.join(repo, `test`)).filter((file) => !unitOnly || !(file.startsWith(`test/e2e/`) || file.startsWith(`test/integrations/`)));
step(`tests (${files.length} files)`, process.execPath, [`--test`, `--test-concurrency=2`, `--test-timeout=180000`, ...files]);
