import {Command, Option} from 'clipanion';
import {ErrorCode} from '../../errors/codes.ts';
import {RollbridgeError} from '../../errors/rollbridge-error.ts';
import type {CliContext} from '../context.ts';
import {buildCompletionSpec, isSupportedShell, renderCompletionScript, SUPPORTED_SHELLS} from '../completion-scripts.ts';
import {renderError} from '../render.ts';
import {PROCESS_POLICIES} from '../../config/schema.ts';

export class CompletionCommand extends Command<CliContext> {
  static paths = [[`completion`]];

  static usage = Command.Usage({
    description: `Print a shell completion script (bash, zsh or fish)`,
    details: `
      The script is generated from the registered commands and their options: it completes command
      names, then each command's long flags; after a flag that takes a value it offers file names for
      paths (\`--release-path\`, \`--config\`, \`--daemon-log-path\`…), the policies after \`--policy\`, the
      config's process ids after \`--process\` (read from \`--config\` on the command line, else from the
      current directory; \`id#n\` for replicas), and nothing after a duration, a number or a URL. An
      unsupported shell is a usage error (exit 2).
    `,
    examples: [
      [`Enable completion in the current bash`, `source <($0 completion bash)`],
      [`Install it for bash`, `$0 completion bash > /etc/bash_completion.d/rollbridge`],
      [`Install it for zsh`, `$0 completion zsh > "\${fpath[1]}/_rollbridge"`],
      [`Install it for fish`, `$0 completion fish > ~/.config/fish/completions/rollbridge.fish`],
    ],
  });

  shell = Option.String({name: `shell`});

  async execute(): Promise<number> {
    try {
      if (!isSupportedShell(this.shell)) {
        throw new RollbridgeError(ErrorCode.USAGE, `Unsupported shell "${this.shell}"; supported shells: ${SUPPORTED_SHELLS.join(`, `)}`, {
          fix: `Run "${this.cli.binaryName} completion <shell>" with one of: ${SUPPORTED_SHELLS.join(`, `)}`,
          details: {shell: this.shell, supported: [...SUPPORTED_SHELLS]},
        });
      }
      const spec = buildCompletionSpec(this.cli.definitions(), {
        binaryName: this.cli.binaryName,
        positionalValues: {completion: SUPPORTED_SHELLS},
        flagValues: {'--policy': PROCESS_POLICIES, '--process': {command: `__complete-processes`}},
      });
      this.context.stdout.write(renderCompletionScript(this.shell, spec));
      return 0;
    } catch (error) {
      return renderError(error, {json: false, stdout: this.context.stdout, stderr: this.context.stderr});
    }
  }
}
