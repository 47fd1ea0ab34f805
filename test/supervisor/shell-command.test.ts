import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import test from 'node:test';
import {toShellScript} from '../../src/supervisor/shell-command.ts';

test(`a single simple command is exec'd by the shell`, () => {
  for (const command of [
    `python3 worker.py`,
    `node server.js --port 4001`,
    `"/opt/node/bin/node" "/srv/app/server.js"`,
    `bundle exec sidekiq -C config/sidekiq.yml`,
    `$HOME/bin/app --name 'a b' "$ROLLBRIDGE_PORT"`,
    `uvicorn app:main --port 4001 # the ASGI app`,
    `  gunicorn -w 2 app:app  `,
  ]) assert.equal(toShellScript(command), `exec ${command}`, command);
});

test(`lists, pipes, redirections, subshells, assignments, builtins and commands that exec already run unchanged`, () => {
  for (const command of [
    `cd app && node server.js`,
    `node a.js; node b.js`,
    `node server.js | tee out.log`,
    `node server.js > out.log 2>&1`,
    `node server.js &`,
    `(node server.js)`,
    'node `cat entry`',
    `node server.js\nnode other.js`,
    `PORT=4001 node server.js`,
    `exec node server.js`,
    `exit 0`,
    `echo ready`,
    `kill -TSTP $ROLLBRIDGE_PID`,
    `if true; then node a.js; fi`,
    `node 'unclosed`,
    ``,
  ]) assert.equal(toShellScript(command), command, command);
});

test(`quoted operators do not keep the shell`, () => {
  assert.equal(toShellScript(`node -e "a(); b | c"`), `exec node -e "a(); b | c"`);
  assert.equal(toShellScript(`printenv 'A;B'`), `exec printenv 'A;B'`);
  assert.equal(toShellScript(`node server.js --sep \\;`), `exec node server.js --sep \\;`);
});

test(`dash runs the exec'd command as the shell's own pid`, () => {
  const result = spawnSync(`/bin/sh`, [`-c`, toShellScript(`sh -c 'echo $$ $PPID'`)], {encoding: `utf8`});
  const [pid, ppid] = result.stdout.trim().split(` `).map(Number);
  // Without exec, the inner sh's parent would be the outer sh (a child of this test), not this process.
  assert.equal(ppid, process.pid);
  assert.ok(pid !== undefined && pid > 0);
});
