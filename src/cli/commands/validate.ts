import {Command} from 'clipanion';
import {formatValidationReport, validateConfigFile} from '../../config/load.ts';
import {BaseCommand} from '../base-command.ts';

export class ValidateCommand extends BaseCommand {
  static paths = [[`validate`]];

  static usage = Command.Usage({
    description: `Check the config file and report every issue at once, each with a fix`,
    details: `
      Loads the config (\`rollbridge.js\`, then \`rollbridge.json\`, or \`--config\`), validates every field
      and cross-field rule, and lists all issues numbered with a \`Fix:\` line. Unknown keys are reported
      as warnings with a did-you-mean suggestion. Exits 1 when the config is invalid.

      Once the fields are valid it also checks what a deploy would trip over: every \`{{ key }}\` in a
      process's command, cwd and env values must name a template key (the same check the deploy and
      \`doctor --release-path\` make; \`{{env.NAME}}\` is left to them), an issue otherwise; and a proxied
      process on a single fixed port is a warning, since each deploy starts the new release beside the
      running one and would find the port taken.
    `,
    examples: [[`Validate ./rollbridge.js`, `$0 validate`], [`Validate another file, as JSON`, `$0 validate --config deploy/rollbridge.json --json`]],
  });

  async run(): Promise<number> {
    const result = await validateConfigFile({cwd: this.context.cwd, configPath: this.configPath});
    const report = formatValidationReport(result, {json: this.json});
    if (report.stdout) this.context.stdout.write(report.stdout);
    if (report.stderr) this.context.stderr.write(report.stderr);
    return report.exitCode;
  }
}
