import {createProcessContext, parseOutputMode} from './cli/context.ts';
import {writeVersionFastPath} from './cli/version.ts';

const argv = process.argv.slice(2);
// `--version` needs none of the CLI: it is answered before the commands (clipanion, config, control
// protocol) are loaded, which is most of its start-up time. Everything else loads the whole CLI.
// No top-level await: the bundle is CommonJS (one file inside the standalone binary).
if (!writeVersionFastPath(argv, parseOutputMode(process.env.ROLLBRIDGE_OUTPUT), process.stdout)) {
  void import('./cli/cli.ts').then(({runCli}) => runCli(argv, createProcessContext())).then((code) => {
    process.exitCode = code;
  });
}
