// Words that make `exec <word>` wrong: shell reserved words, and builtins (dash's and POSIX's) that are
// either not programs at all or behave differently as one (`echo` interprets escapes in dash only).
const NOT_EXECUTABLE = new Set([
  `!`, `{`, `}`, `[[`, `case`, `do`, `done`, `elif`, `else`, `esac`, `fi`, `for`, `function`, `if`, `in`, `select`, `then`, `until`, `while`,
  `.`, `:`, `[`, `alias`, `bg`, `break`, `cd`, `command`, `continue`, `echo`, `eval`, `exec`, `exit`, `export`, `false`, `fc`, `fg`,
  `getopts`, `hash`, `jobs`, `kill`, `local`, `printf`, `pwd`, `read`, `readonly`, `return`, `set`, `shift`, `source`, `test`, `times`,
  `trap`, `true`, `type`, `ulimit`, `umask`, `unalias`, `unset`, `wait`,
]);

// Outside quotes, these end or redirect a simple command (lists, pipes, subshells, redirections,
// backquoted substitution): such a command keeps its shell.
const OPERATORS = new Set([`;`, `&`, `|`, `<`, `>`, `(`, `)`, '`', `\n`]);

/**
 * The script `/bin/sh -c` runs for a process's command. A single simple command (one program with its
 * arguments: quotes and `$VAR` are fine, no `;`, `&&`, `|`, redirection, subshell or leading
 * `NAME=value`) gets `exec ` in front, so the shell replaces itself with the program: the pid (and
 * process group, `ROLLBRIDGE_PID`) is the app's and a signal sent to it reaches the app. dash, Debian's
 * `/bin/sh`, otherwise stays in front as the app's parent (bash execs the last command by itself).
 * Anything else runs unchanged.
 */
export function toShellScript(command: string): string {
  const first = firstWordOfSimpleCommand(command);
  if (first === null || NOT_EXECUTABLE.has(first) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(first)) return command;
  return `exec ${command}`;
}

/** The first word (as written) of a command that is one simple command, or null when it is not one. */
export function firstWordOfSimpleCommand(command: string): string | null {
  const text = command.trim();
  if (text === ``) return null;
  let quote: `'` | `"` | null = null;
  let firstEnd = -1;
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string;
    if (quote === `'`) {
      if (char === `'`) quote = null;
      continue;
    }
    if (char === `\\`) {
      // A backslash-newline joins lines; any other escaped character is an ordinary one.
      index++;
      continue;
    }
    if (quote === `"`) {
      if (char === `"`) quote = null;
      continue;
    }
    if (char === `'` || char === `"`) quote = char;
    else if (OPERATORS.has(char)) return null;
    else if (firstEnd === -1 && (char === ` ` || char === `\t`)) firstEnd = index;
  }
  if (quote !== null) return null;
  return firstEnd === -1 ? text : text.slice(0, firstEnd);
}
