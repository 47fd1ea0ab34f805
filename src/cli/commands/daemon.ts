import path from 'node:path';
import {Command, Option} from 'clipanion';
import {childBaseEnv} from '../../config/daemon-env.ts';
import type {BootstrapRequest} from '../../daemon/daemon.ts';
import {ErrorCode} from '../../errors/codes.ts';
import {RollbridgeError, isRollbridgeError} from '../../errors/rollbridge-error.ts';
import {BaseCommand} from '../base-command.ts';
import {isReleaseId} from '../options.ts';
import {getVersionInfo} from '../version.ts';

export class DaemonCommand extends BaseCommand {
  static paths = [[`daemon`]];

  static usage = Command.Usage({
    description: `Run the supervisor and the proxy in the foreground`,
    details: `
      Binds the proxy port (\`proxy.host\`/\`proxy.port\`) and the control socket (\`control.path\`), then
      waits for deploys. Writes one JSON line per event on stdout. SIGINT/SIGTERM stop every managed
      process gracefully and exit 0. Use it as a systemd \`ExecStart\` as \`rollbridge --node-options=--no-maglev daemon …\`
      (the daemon's own V8 flag, as \`ensure-daemon\` passes it; docs/operations.md); \`ensure-daemon\` starts it detached.

      With \`--release-path\` (rollbridge 0.1's boot-time bootstrap) the daemon deploys that release after
      binding the proxy port (which answers 503 meanwhile) and before the control socket opens, so no
      other deploy can overlap it; \`status.bootstrap\` reports it (\`releaseId\`, \`releasePath\`, \`revision\`,
      \`outcome\`, \`startedAt\`, \`durationMs\`). When the release re-adopted from the state file is that
      same release, it is kept (\`outcome: already-active\`). A failed boot-time deploy stops what it
      started and exits 1; SIGINT/SIGTERM meanwhile stop everything once the deploy settles and exit 0.
      0.1's \`--boot-attestation\` and \`--takeover-owner\` are refused: \`ensure-daemon --replace\` replaces a
      running daemon without downtime, \`deploy --ensure-daemon\` takes over from a 0.1 daemon.
    `,
    examples: [
      [`Run the daemon for ./rollbridge.js`, `$0 daemon`],
      [`Run it for a config elsewhere`, `$0 daemon --config /etc/rollbridge/app.js`],
      [`Start an exact release at boot (systemd ExecStart)`, `$0 --node-options=--no-maglev daemon --config /etc/rollbridge/app.js --release-path /srv/app/releases/42 --release-id 42 --revision 3f2a9c1`],
    ],
  });

  releasePath = Option.String(`--release-path`, {description: `Deploy this release before the control socket opens (boot-time bootstrap; made absolute against the current directory)`});
  releaseId = Option.String(`--release-id`, {validator: isReleaseId, description: `With --release-path: the release id (default: --revision, else the UTC time as 17 digits)`});
  revision = Option.String(`--revision`, {description: `With --release-path: the revision recorded with the release (default: the release id)`});
  bootAttestation = Option.String(`--boot-attestation`, {hidden: true, description: `rollbridge 0.1's attested owner takeover: refused (see ensure-daemon --replace)`});
  takeoverOwner = Option.Boolean(`--takeover-owner`, false, {hidden: true, description: `rollbridge 0.1's attested owner takeover: refused (see ensure-daemon --replace)`});

  proxyDeferred = Option.Boolean(`--proxy-deferred`, false, {hidden: true, description: `Start without binding the proxy port (used by legacy-takeover while a legacy app holds it)`});

  controlPath = Option.String(`--control-path`, {hidden: true, description: `Bind the control socket here until a takeover moves it to control.path (the upgrade from a rollbridge 0.1 daemon on control.path)`});

  successor = Option.Boolean(`--successor`, false, {hidden: true, description: `Take over from the daemon that started this one (ensure-daemon --replace)`});

  async run(): Promise<number> {
    const bootstrap = this.#bootstrapRequest();
    const config = await this.loadConfig({notices: true});
    // Loaded on demand: the daemon side (proxy, supervisor, deploy path) costs start-up time that
    // every other command would pay for nothing (the binary's `--version` goal is 50 ms).
    const {Daemon} = await import('../../daemon/daemon.ts');
    const {installSignalHandlers} = await import('../../daemon/shutdown.ts');
    // The processes get the environment without the daemon's own malloc settings (config/daemon-env.ts).
    const daemon = await Daemon.start({config, env: childBaseEnv(this.context.env), stdout: this.context.stdout, version: getVersionInfo(), proxyDeferred: this.proxyDeferred, successor: this.successor, ...(this.controlPath === undefined ? {} : {controlPath: path.resolve(this.context.cwd, this.controlPath)}), bootstrap}).catch((error: unknown) => {
      // A signal during the boot-time deploy: everything was stopped, as a shutdown would.
      if (isRollbridgeError(error) && error.code === ErrorCode.DAEMON_SHUTTING_DOWN) return null;
      throw error;
    });
    if (daemon === null) return 0;
    const code = await installSignalHandlers(daemon);
    // Processes handed to the successor may still hold handles of ours: leave now.
    if (daemon.handedOver) process.exit(code);
    return code;
  }

  /** The boot-time release, checked before the config is read or anything binds. */
  #bootstrapRequest(): BootstrapRequest | undefined {
    for (const [flag, given] of [[`--takeover-owner`, this.takeoverOwner], [`--boot-attestation`, this.bootAttestation !== undefined]] as const) {
      if (!given) continue;
      throw new RollbridgeError(ErrorCode.USAGE, `daemon ${flag} (rollbridge 0.1's attested owner takeover) is not supported`, {
        fix: `Drop ${flag}: "rollbridge ensure-daemon --replace" replaces a running daemon with this build without downtime, and "rollbridge deploy --ensure-daemon" (or "rollbridge ensure-daemon") takes over from a rollbridge 0.1 daemon; "daemon --release-path <dir> --release-id <id> --revision <sha>" still starts a release at boot`,
        details: {flag},
      });
    }
    if (this.releasePath === undefined) {
      const stray = this.releaseId !== undefined ? `--release-id` : this.revision !== undefined ? `--revision` : null;
      if (stray !== null) {
        throw new RollbridgeError(ErrorCode.USAGE, `daemon ${stray} only applies to the boot-time release, which needs --release-path`, {
          fix: `Add --release-path <dir> (the release to start at boot), or drop ${stray}`,
        });
      }
      return undefined;
    }
    return {releasePath: path.resolve(this.context.cwd, this.releasePath), releaseId: this.releaseId, revision: this.revision};
  }
}
