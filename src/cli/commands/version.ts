import {Command, Option} from 'clipanion';
import type {CliContext} from '../context.ts';
import {formatVersion, getVersionInfo} from '../version.ts';

export class VersionCommand extends Command<CliContext> {
  static paths = [[`--version`], [`-v`], [`version`]];

  static usage = Command.Usage({
    description: `Print the version, the commit it was built from and the Node.js version inside`,
    examples: [[`Print the version`, `$0 --version`], [`As JSON`, `$0 version --json`]],
  });

  json = Option.Boolean(`--json`, false, {description: `Print {version, commit, node} as JSON (also ROLLBRIDGE_OUTPUT=json)`});

  async execute(): Promise<number> {
    this.context.stdout.write(formatVersion(getVersionInfo(), this.json || this.context.output === `json`));
    return 0;
  }
}
