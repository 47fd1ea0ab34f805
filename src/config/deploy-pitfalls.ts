import {listTemplateIssues} from './template.ts';
import type {Config, ConfigIssue, ConfigWarning} from './types.ts';

/**
 * What the schema accepts but a deploy would trip over, for `validate` and `doctor`: template keys no
 * release can fill (issues: every deploy fails rendering them) and a proxied process on one fixed port
 * (a warning: rollbridge 0.1 accepted it and the first deploy works, but each later one starts the new
 * release beside the running one and finds the port taken).
 */
export function findDeployPitfalls(config: Config): {issues: ConfigIssue[]; warnings: ConfigWarning[]} {
  const warnings: ConfigWarning[] = [];
  config.processes.forEach((process, index) => {
    const {port} = process;
    if (process.policy !== `proxied` || port === undefined || port.from === 0 || port.to !== port.from || process.replicas > 1) return;
    const at = `processes[${index}]`;
    warnings.push({
      path: `${at}.port`,
      message: `Proxied process "${process.id}" has the single port ${port.from}: a deploy starts the new release beside the running one, finds ${port.from} taken and fails (ERR_PORT_RANGE_EXHAUSTED)`,
      fix: `Set ${at}.port to a range, e.g. {from: ${port.from}, to: ${Math.min(port.from + 9, 65_535)}} (or {from: 0, to: 0} for any free port), and start the process on the port it is given: {{port}} in ${at}.command, or $ROLLBRIDGE_PORT`,
    });
  });
  return {issues: listTemplateIssues(config), warnings};
}
