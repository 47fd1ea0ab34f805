// Build step (child process of build.ts, run by the embedded Node with the binary's V8 flags, which the cache
// must match): runs the CLI bundle through the commands a deploy script uses, against a config whose control
// socket does not exist, then writes V8's code cache of the bundle, functions compiled during the runs
// included. Usage: train-code-cache.ts <cli asset (wrapped bundle)> <cache file> <work dir>
import fs from 'node:fs';
import path from 'node:path';
import {Writable} from 'node:stream';
import {runCliScript} from './cli-script.ts';

/** Each run starts like a real one (config read and checked, command parsed, connect attempted) and fails at the connect. */
export const TRAINING_RUNS: readonly string[][] = [
  [`status`, `--json`],
  [`status`],
  [`deploy`, `--release-path`, `release`, `--json`],
  [`deploy`, `--release-path`, `release`],
  [`rollback`, `--json`],
];

const [bundle, cacheFile, workDir] = process.argv.slice(2);
if (bundle === undefined || cacheFile === undefined || workDir === undefined) {
  process.stderr.write(`usage: train-code-cache.ts <cli asset (wrapped bundle)> <cache file> <work dir>\n`);
  process.exit(2);
}
fs.mkdirSync(path.join(workDir, `release`), {recursive: true});
fs.writeFileSync(path.join(workDir, `rollbridge.json`), `${JSON.stringify({
  application: `rollbridge-training`,
  control: {path: path.join(workDir, `no-daemon.sock`)},
  proxy: {host: `127.0.0.1`, port: 0},
  statePath: path.join(workDir, `state.json`),
  processes: [{id: `web`, command: `node server.js`, policy: `proxied`, port: {from: 47_300, to: 47_309}}],
})}\n`);

const {cli, script} = runCliScript(fs.readFileSync(bundle, `latin1`), {filename: path.resolve(bundle)});
const discard = () => new Writable({write: (_chunk, _encoding, callback) => callback()});
const codes: number[] = [];
for (const argv of TRAINING_RUNS) {
  codes.push(await cli.runCli(argv, {cwd: workDir, env: {}, stdout: discard(), stderr: discard(), selfCommand: {file: process.execPath, args: [], standalone: true}, output: `auto`}));
}
// Every run must have failed at the connect (exit 1): a 0 would mean a daemon answered, a 2 a usage error.
if (codes.some((code) => code !== 1)) {
  process.stderr.write(`training runs exited ${codes.join(`, `)}, expected 1 each (no daemon)\n`);
  process.exit(1);
}
fs.writeFileSync(cacheFile, script.createCachedData());
