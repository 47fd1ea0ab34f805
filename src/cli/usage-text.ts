import {Cli} from 'clipanion';
import type {CommandClass} from 'clipanion';
import type {CliContext} from './context.ts';

/** What a flag's value is called in help (`--process <id>`); other flags use the last word of their name. */
const VALUE_NAMES: Record<string, string> = {
  '--config': `path`,
  '--process': `id`,
  '--watch': `duration`,
  '--cooldown': `duration`,
  '--check-timeout': `duration`,
  '--lines': `n`,
  '--limit': `n`,
  '--connections': `n`,
  '--websockets': `n`,
};

/** One option of a command, as the parser knows it. */
export type OptionSpec = {names: string[]; takesValue: boolean; required: boolean; /** As help writes it: `<path>`. */ value: string | undefined};

/**
 * The CLI with readable usage text: clipanion writes a flag's value as `#0` and leaves required flags out of
 * a command's detailed Usage line. Here values are named (`--release-path <path>`), a required flag is
 * written bare and also appears on the Usage line (`rollbridge deploy --release-path <path> [options]`).
 * Everything that prints usage (help, `definitions()` for docs/cli.md and completion) goes through here.
 */
export class RollbridgeCli extends Cli<CliContext> {
  /** The options of a registered command, from clipanion's own description of it (hidden ones left out). */
  optionsOf(commandClass: CommandClass<CliContext>): OptionSpec[] {
    const {usage, options} = super.getUsageByRegistration(commandClass, {detailed: true, inlineOptions: false});
    const specs = options.map((option) => parseDefinition(option.definition, option.required));
    // Options without a description stay on the usage line: `[--flag #0]` or `<--flag #0>`.
    for (const match of usage.matchAll(/([[<])(-[^\]>]*)[\]>]/g)) specs.push(parseDefinition(match[2] ?? ``, match[1] === `<`));
    return specs;
  }

  protected override getUsageByIndex(n: number, opts?: {detailed?: boolean; inlineOptions?: boolean}): {usage: string; options: Array<{definition: string; description: string; required: boolean}>} {
    const result = super.getUsageByIndex(n, opts);
    const options = result.options.map((option) => ({...option, definition: nameValues(option.definition)}));
    let usage = nameValues(result.usage.replace(/<(-[^>]*?#\d+)>/g, `$1`));
    if (opts?.inlineOptions === false) {
      // `rollbridge deploy --release-path <path> [options]`: required flags, then the rest, then positionals.
      const required = options.filter((option) => option.required).map((option) => option.definition.replace(/^-\w,/, ``));
      const optional = options.length > required.length;
      const words = usage.split(` `);
      const firstPositional = words.findIndex((word, index) => index > 0 && (/^[<[]/.test(word) || word === `...`));
      const head = firstPositional === -1 ? words : words.slice(0, firstPositional);
      const positionals = firstPositional === -1 ? [] : words.slice(firstPositional);
      usage = [...head, ...required, ...optional ? [`[options]`] : [], ...positionals].join(` `);
    }
    return {usage, options};
  }
}

/** `-c,--config #0` → `-c,--config <path>`; `--release-path #0` → `--release-path <path>`. */
function nameValues(text: string): string {
  return text.replace(/((?:-\w,)?(--?[\w-]+))((?: #\d+)+)/g, (_match, names: string, long: string, values: string) => {
    const name = VALUE_NAMES[long] ?? long.replace(/^-+/, ``).split(`-`).at(-1) ?? `value`;
    return `${names}${values.trim().split(/\s+/).map(() => ` <${name}>`).join(``)}`;
  });
}

function parseDefinition(definition: string, required: boolean): OptionSpec {
  const [names = ``, ...values] = definition.trim().split(/\s+/);
  return {names: names.split(`,`), takesValue: values.length > 0, required, value: values[0]};
}
