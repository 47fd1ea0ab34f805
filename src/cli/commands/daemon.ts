import path from 'node:path';
import {Command, Option} from 'clipanion';
import {BaseCommand} from '../base-command.ts';
import {getVersionInfo} from '../version.ts';

export class DaemonCommand extends BaseCommand {
  static paths = [[`daemon`]];

  static usage = Command.Usage({
    description: `Run the supervisor and the proxy in the foreground`,
    details: `
      Binds the proxy port (\`proxy.host\`/\`proxy.port\`) and the control socket (\`control.path\`), then
      waits for deploys. Writes one JSON line per event on stdout. SIGINT/SIGTERM stop every managed
      process gracefully and exit 0. Use it as a systemd \`ExecStart\`; \`ensure-daemon\` starts it detached.
    `,
    examples: [
      [`Run the daemon for ./rollbridge.js`, `$0 daemon`],
      [`Run it for a config elsewhere`, `$0 daemon --config /etc/rollbridge/app.js`],
    ],
  });

  proxyDeferred = Option.Boolean(`--proxy-deferred`, false, {hidden: true, description: `Start without binding the proxy port (used by legacy-takeover while a legacy app holds it)`});

  controlPath = Option.String(`--control-path`, {hidden: true, description: `Bind the control socket here until a takeover moves it to control.path (the upgrade from a rollbridge 0.1 daemon on control.path)`});

  successor = Option.Boolean(`--successor`, false, {hidden: true, description: `Take over from the daemon that started this one (ensure-daemon --replace)`});

  async run(): Promise<number> {
    const config = await this.loadConfig({notices: true});
    // Loaded on demand: the daemon side (proxy, supervisor, deploy path) costs start-up time that
    // every other command would pay for nothing (the binary's `--version` goal is 50 ms).
    const {Daemon} = await import('../../daemon/daemon.ts');
    const {installSignalHandlers} = await import('../../daemon/shutdown.ts');
    const daemon = await Daemon.start({config, env: this.context.env, stdout: this.context.stdout, version: getVersionInfo(), proxyDeferred: this.proxyDeferred, successor: this.successor, ...(this.controlPath === undefined ? {} : {controlPath: path.resolve(this.context.cwd, this.controlPath)})});
    const code = await installSignalHandlers(daemon);
    // Processes handed to the successor may still hold handles of ours: leave now.
    if (daemon.handedOver) process.exit(code);
    return code;
  }
}
