export const SUPPORTED_SHELLS = [`bash`, `zsh`, `fish`] as const;
export type Shell = (typeof SUPPORTED_SHELLS)[number];

/** The part of a clipanion `Definition` completion reads (`cli.definitions()` returns these). */
export type CommandDefinition = {
  path: string;
  description?: string | undefined;
  options: Array<{definition: string; description?: string | undefined}>;
};

/**
 * What is offered after a flag that takes a value: file names (`--release-path`, `--config`: flags named
 * `path` or `config`), fixed words (`--policy`), the words a hidden command prints (`--process`: the
 * config's process ids), or nothing (a duration, a number, a URL).
 */
export type FlagValues = {kind: `files`} | {kind: `words`; words: string[]} | {kind: `command`; command: string} | {kind: `none`};

export type CompletionFlag = {
  /** Long name with its dashes: `--release-path`. */
  name: string;
  /** One-letter alias without the dash: `c` for `-c,--config`. */
  short: string | undefined;
  takesValue: boolean;
  description: string;
  /** Only for a flag that takes a value. */
  values: FlagValues;
};

export type CompletionCommand = {
  name: string;
  description: string;
  flags: CompletionFlag[];
  /** Words completed for the first positional argument (e.g. the shells of `completion`). */
  values: string[];
};

export type CompletionSpec = {
  binaryName: string;
  commands: CompletionCommand[];
  /** Flags accepted before any command: `--help`, and `--version` when a command is registered under it. */
  rootFlags: string[];
};

export function isSupportedShell(value: string): value is Shell {
  return (SUPPORTED_SHELLS as readonly string[]).includes(value);
}

/**
 * What to complete, from the CLI's own definitions: so a new command or flag is completed without
 * touching this file. Commands without usage (hidden) are not in `definitions()`; a path that is only
 * a flag (`rollbridge --version`) becomes a root flag. Negated booleans (`--no-wait`) are offered when
 * the flag's description names them.
 */
export function buildCompletionSpec(definitions: CommandDefinition[], options: {binaryName: string; positionalValues?: Record<string, readonly string[]>; flagValues?: Record<string, readonly string[] | {command: string}>}): CompletionSpec {
  const commands = new Map<string, CompletionCommand>();
  const rootFlags = [`--help`];
  for (const definition of definitions) {
    const words = definition.path.split(/\s+/).slice(1);
    const name = words[0];
    if (name === undefined) continue;
    if (name.startsWith(`-`)) {
      if (name.startsWith(`--`) && !rootFlags.includes(name)) rootFlags.push(name);
      continue;
    }
    if (!/^[a-z][a-z0-9-]*$/.test(name) || commands.has(name)) continue;
    commands.set(name, {
      name,
      description: firstLine(definition.description),
      flags: [...definition.options.flatMap((option) => parseOption(option, options.flagValues ?? {})), helpFlag()],
      values: [...(options.positionalValues?.[name] ?? [])],
    });
  }
  return {binaryName: options.binaryName, commands: [...commands.values()], rootFlags};
}

export function renderCompletionScript(shell: Shell, spec: CompletionSpec): string {
  switch (shell) {
    case `bash`: return renderBash(spec);
    case `zsh`: return renderZsh(spec);
    case `fish`: return renderFish(spec);
  }
}

function parseOption(option: {definition: string; description?: string | undefined}, flagValues: Record<string, readonly string[] | {command: string}>): CompletionFlag[] {
  const [names = ``, ...rest] = option.definition.trim().split(/\s+/);
  const aliases = names.split(`,`);
  const short = aliases.find((alias) => /^-[A-Za-z0-9]$/.test(alias))?.slice(1);
  const description = firstLine(option.description);
  const takesValue = rest.length > 0;
  const flags: CompletionFlag[] = [];
  for (const alias of aliases.filter((candidate) => candidate.startsWith(`--`))) {
    flags.push({name: alias, short, takesValue, description, values: takesValue ? valuesOf(alias, flagValues) : {kind: `none`}});
    const negated = `--no-${alias.slice(2)}`;
    if (!takesValue && (option.description ?? ``).includes(negated)) flags.push({name: negated, short: undefined, takesValue: false, description, values: {kind: `none`}});
  }
  return flags;
}

function valuesOf(flag: string, flagValues: Record<string, readonly string[] | {command: string}>): FlagValues {
  const given = flagValues[flag];
  if (given !== undefined) return `command` in given ? {kind: `command`, command: given.command} : {kind: `words`, words: [...given]};
  return /(?:^--config|-path)$/.test(flag) ? {kind: `files`} : {kind: `none`};
}

function helpFlag(): CompletionFlag {
  return {name: `--help`, short: `h`, takesValue: false, description: `Show the command's usage and examples`, values: {kind: `none`}};
}

function firstLine(text: string | undefined): string {
  return (text ?? ``).trim().split(`\n`)[0]?.trim() ?? ``;
}

function functionName(spec: CompletionSpec): string {
  return `_${spec.binaryName.replace(/[^A-Za-z0-9_]/g, `_`)}`;
}

function renderBash(spec: CompletionSpec): string {
  const fn = functionName(spec);
  const cases = spec.commands.map((command) => [
    `    ${command.name})`,
    `      flags="${command.flags.map((flag) => flag.name).join(` `)}"`,
    `      value_flags=" ${command.flags.filter((flag) => flag.takesValue).flatMap((flag) => flag.short === undefined ? [flag.name] : [flag.name, `-${flag.short}`]).join(` `)} "`,
    `      values="${command.values.join(` `)}"`,
    ...bashFlagValues(command),
    `      ;;`,
  ].join(`\n`));
  return `# bash completion for ${spec.binaryName} (generated by "${spec.binaryName} completion bash")
# Install: ${spec.binaryName} completion bash > /etc/bash_completion.d/${spec.binaryName}
#      or: source <(${spec.binaryName} completion bash)
${renderBashValues(spec)}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local prev=""
  if (( COMP_CWORD > 0 )); then prev="\${COMP_WORDS[COMP_CWORD-1]}"; fi
  # "--flag=value": bash splits at "=", so the flag is the word before it.
  if [[ $cur == "=" ]]; then cur=""; fi
  if [[ $prev == "=" ]] && (( COMP_CWORD > 1 )); then prev="\${COMP_WORDS[COMP_CWORD-2]}"; fi
  if (( COMP_CWORD == 1 )); then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "${spec.rootFlags.join(` `)}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "${spec.commands.map((command) => command.name).join(` `)}" -- "$cur"))
    fi
    return 0
  fi
  local flags="" value_flags=" " file_flags=" " values=""
  case "\${COMP_WORDS[1]}" in
${cases.join(`\n`)}
  esac
  if [[ -n $prev && $value_flags == *" $prev "* ]]; then
    local IFS=$'\\n'
    if [[ $file_flags == *" $prev "* ]]; then
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$(${fn}_values "$prev")" -- "$cur"))
    fi
    return 0
  fi
  if [[ $cur == -* || -z $values ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
  fi
  return 0
}
complete -F ${fn} ${spec.binaryName}
`;
}

/** `file_flags`: the flags of a command after which file names are offered. */
function bashFlagValues(command: CompletionCommand): string[] {
  const files = command.flags.filter((flag) => flag.takesValue && flag.values.kind === `files`);
  return [`      file_flags=" ${files.flatMap((flag) => flag.short === undefined ? [flag.name] : [flag.name, `-${flag.short}`]).join(` `)} "`];
}

/**
 * `_<bin>_values FLAG`: the words offered after a flag with fixed values or values from a hidden command
 * (run as the completed command line's own binary, with its --config).
 */
function renderBashValues(spec: CompletionSpec): string {
  const fn = functionName(spec);
  const byFlag = new Map<string, FlagValues>();
  for (const command of spec.commands) {
    for (const flag of command.flags) {
      if (flag.values.kind === `words` || flag.values.kind === `command`) byFlag.set(flag.name, flag.values);
    }
  }
  const cases = [...byFlag].map(([name, values]) => values.kind !== `command`
    ? `    ${name}) printf '%s\\n' ${values.kind === `words` ? values.words.map(shellWord).join(` `) : ``} ;;`
    : `    ${name}) ${fn}_run ${shellWord(values.command)} ;;`);
  return `${fn}_run() {
  local config_args=() i
  for (( i = 2; i < COMP_CWORD; i++ )); do
    case "\${COMP_WORDS[i]}" in
      # bash splits --config=x into three words: --config, =, x.
      -c|--config) if [[ \${COMP_WORDS[i+1]} == "=" ]]; then config_args=(--config "\${COMP_WORDS[i+2]}"); else config_args=(--config "\${COMP_WORDS[i+1]}"); fi ;;
    esac
  done
  "\${COMP_WORDS[0]}" "$@" "\${config_args[@]}" 2>/dev/null
}
${fn}_values() {
  case "$1" in
${cases.join(`\n`)}
  esac
}`;
}

function shellWord(word: string): string {
  return /^[A-Za-z0-9_.#@%+:-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function renderZsh(spec: CompletionSpec): string {
  const fn = functionName(spec);
  const commandList = spec.commands.map((command) => `    ${zshQuote(`${command.name.replace(/:/g, `\\:`)}:${command.description}`)}`).join(`\n`);
  const cases = spec.commands.map((command) => {
    const specs = command.flags.map((flag) => zshQuote(`${flag.name}[${zshBracket(flag.description)}]${flag.takesValue ? `:${flag.name.slice(2)}:${zshAction(spec, flag.values)}` : ``}`));
    if (command.values.length > 0) specs.push(zshQuote(`1:value:(${command.values.join(` `)})`));
    return [`    ${command.name})`, `      _arguments -s \\`, ...specs.map((item, index) => `        ${item}${index < specs.length - 1 ? ` \\` : ``}`), `      ;;`].join(`\n`);
  });
  return `#compdef ${spec.binaryName}
# zsh completion for ${spec.binaryName} (generated by "${spec.binaryName} completion zsh")
# Install: ${spec.binaryName} completion zsh > "\${fpath[1]}/_${spec.binaryName}"
${fn}() {
  local -a commands
  commands=(
${commandList}
  )
  if (( CURRENT == 2 )); then
    if [[ $words[CURRENT] == -* ]]; then
      compadd -- ${spec.rootFlags.join(` `)}
    else
      _describe -t commands '${spec.binaryName} command' commands
    fi
    return
  fi
  local command=$words[2]
  shift words
  (( CURRENT-- ))
  case $command in
${cases.join(`\n`)}
  esac
}
if [[ $funcstack[1] == ${fn} ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${spec.binaryName}
fi
`;
}

function renderFish(spec: CompletionSpec): string {
  const bin = spec.binaryName;
  const names = spec.commands.map((command) => command.name).join(` `);
  const lines = [
    `# fish completion for ${bin} (generated by "${bin} completion fish")`,
    `# Install: ${bin} completion fish > ~/.config/fish/completions/${bin}.fish`,
    `complete -c ${bin} -f`,
    ...spec.rootFlags.map((flag) => `complete -c ${bin} -n ${fishQuote(`not __fish_seen_subcommand_from ${names}`)} -l ${flag.slice(2)}`),
  ];
  for (const command of spec.commands) {
    lines.push(`complete -c ${bin} -n ${fishQuote(`not __fish_seen_subcommand_from ${names}`)} -a ${command.name} -d ${fishQuote(command.description)}`);
    const when = fishQuote(`__fish_seen_subcommand_from ${command.name}`);
    for (const flag of command.flags) {
      const short = flag.short === undefined || flag.name.startsWith(`--no-`) ? `` : ` -s ${flag.short}`;
      lines.push(`complete -c ${bin} -n ${when}${short} -l ${flag.name.slice(2)}${flag.takesValue ? fishValues(bin, flag.values) : ``} -d ${fishQuote(flag.description)}`);
    }
    if (command.values.length > 0) lines.push(`complete -c ${bin} -n ${when} -a ${fishQuote(command.values.join(` `))}`);
  }
  return `${lines.join(`\n`)}\n`;
}

function zshAction(spec: CompletionSpec, values: FlagValues): string {
  switch (values.kind) {
    case `files`: return `_files`;
    case `words`: return `(${values.words.join(` `)})`;
    case `command`: return `{compadd -- \${(f)"$(${spec.binaryName} ${values.command} 2>/dev/null)"}}`;
    case `none`: return ` `;
  }
}

function fishValues(bin: string, values: FlagValues): string {
  switch (values.kind) {
    case `files`: return ` -r -F`;
    case `words`: return ` -r -f -a ${fishQuote(values.words.join(` `))}`;
    case `command`: return ` -r -f -a ${fishQuote(`(${bin} ${values.command} 2>/dev/null)`)}`;
    case `none`: return ` -r -f`;
  }
}

function zshQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Inside `--flag[description]` a bracket would end the description. */
function zshBracket(text: string): string {
  return text.replace(/\\/g, `\\\\`).replace(/\[/g, `(`).replace(/\]/g, `)`);
}

function fishQuote(text: string): string {
  return `'${text.replace(/\\/g, `\\\\`).replace(/'/g, `\\'`)}'`;
}
