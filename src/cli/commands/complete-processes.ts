import {Command, Option} from 'clipanion';
import {loadConfig} from '../../config/load.ts';
import type {CliContext} from '../context.ts';

/**
 * What shell completion offers after `--process` (hidden: no usage, so help does not list it): the ids of
 * the config's processes, one per line, with `id#n` for each replica. Prints nothing when the config does
 * not load: a completion never shows an error.
 */
export class CompleteProcessesCommand extends Command<CliContext> {
  static paths = [[`__complete-processes`]];

  configPath = Option.String(`-c,--config`);

  async execute(): Promise<number> {
    try {
      const {config} = await loadConfig({cwd: this.context.cwd, configPath: this.configPath});
      const ids = config.processes.flatMap((process) => [process.id, ...process.replicas > 1 ? Array.from({length: process.replicas}, (_, index) => `${process.id}#${index}`) : []]);
      this.context.stdout.write(ids.map((id) => `${id}\n`).join(``));
    } catch {
      // No config here, or an invalid one: nothing to offer.
    }
    return 0;
  }
}
