import path from 'node:path';
import {Command, Option} from 'clipanion';
import {validateConfigFile} from '../../config/load.ts';
import {BaseCommand} from '../base-command.ts';
import {checkConfig, runEnvironmentChecks, runReleaseChecks} from '../doctor-checks.ts';
import type {DoctorCheck} from '../doctor-checks.ts';
import {isReleaseId} from '../options.ts';
import {plural} from '../render.ts';

export class DoctorCommand extends BaseCommand {
  static paths = [[`doctor`]];

  static usage = Command.Usage({
    description: `Pre-flight checks of the host: config, control socket, proxy port, state path, a release`,
    details: `
      Runs, in order: \`config\`, \`control socket\` (free, or held by this application's daemon),
      \`control socket user\` (which socket this user resolves to: \`control.path\`, or its own runtime
      directory \`$TMPDIR/rollbridge-<uid>\`, so \`sudo\` and a plain user differ; fails when a daemon for
      the same application answers in another user's runtime directory, which root can look into and other
      users only when it is not private), \`control socket directory\`, \`proxy port\` (a trial bind; a port held by this application's
      running daemon passes; a busy port names its holder: pid, command line and user, visible for
      another user's process only to root), and when \`statePath\` is set \`state path directory\` and
      \`orphaned processes\`. With \`--release-path\` it also checks \`release path\`, \`process templates\`
      (each process's command, cwd and env rendered with the low end of each port range and replica 0;
      \`{{env.NAME}}\` reads this shell's environment) and \`process working directories\`. An invalid
      config stops after the \`config\` check.

      Prints \`✓ <name>: <detail>\` or \`✗ <name>: <detail>\` per check; \`--json\` prints
      \`{checks: [{name, ok, detail}], ok}\`. Exits 1 when any check failed.
    `,
    examples: [
      [`Check the host before the first deploy`, `$0 doctor`],
      [`Also check a prepared release`, `$0 doctor --release-path /srv/app/releases/42 --revision 3f2a9c1`],
      [`As JSON, for scripts`, `$0 doctor --json`],
    ],
  });

  releasePath = Option.String(`--release-path`, {description: `Also check this release directory (made absolute against the current directory)`});
  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `Release id for templates (default: --revision, else the release path's basename)`});
  revision = Option.String(`--revision`, {description: `Revision for templates (default: the release id)`});

  async run(): Promise<number> {
    const checks = await this.#runChecks();
    const failed = checks.filter((check) => !check.ok).length;
    if (this.json) {
      this.writeJson({checks, ok: failed === 0});
    } else {
      for (const check of checks) this.writeLine(`${check.ok ? `✓` : `✗`} ${check.name}: ${check.detail}`);
      if (failed === 0) this.writeLine(`\nAll checks passed.`);
      else this.context.stderr.write(`\n${plural(failed, `check`)} failed.\n`);
    }
    return failed === 0 ? 0 : 1;
  }

  async #runChecks(): Promise<DoctorCheck[]> {
    const validation = await validateConfigFile({cwd: this.context.cwd, configPath: this.configPath});
    const configCheck = checkConfig(validation);
    const {config} = validation;
    if (!configCheck.ok || config === null) return [configCheck];
    if (!this.json) {
      for (const warning of validation.warnings) this.context.stderr.write(`warning: ${warning.message}\n  fix: ${warning.fix}\n`);
    }
    const checks = [configCheck, ...await runEnvironmentChecks(config, this.context.env)];
    if (this.releasePath !== undefined) {
      checks.push(...await runReleaseChecks(config, {
        releasePath: path.resolve(this.context.cwd, this.releasePath),
        releaseId: this.releaseId,
        revision: this.revision,
        env: this.context.env,
      }));
    }
    return checks;
  }
}
