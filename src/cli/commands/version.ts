import {Command, Option} from 'clipanion';
import type {CliContext} from '../context.ts';
import {getVersionInfo} from '../version.ts';

export class VersionCommand extends Command<CliContext> {
  static paths = [[`--version`], [`-v`], [`version`]];

  static usage = Command.Usage({
    description: `Print the version, the commit it was built from and the Node.js version inside`,
    examples: [[`Print the version`, `$0 --version`], [`As JSON`, `$0 version --json`]],
  });

  json = Option.Boolean(`--json`, false, {description: `Print {version, commit, node} as JSON (also ROLLBRIDGE_OUTPUT=json)`});

  async execute(): Promise<number> {
    const info = getVersionInfo();
    const json = this.json || this.context.output === `json`;
    this.context.stdout.write(json ? `${JSON.stringify(info)}\n` : `rollbridge ${info.version} (commit ${info.commit}, node ${info.node})\n`);
    return 0;
  }
}
