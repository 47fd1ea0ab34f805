import {Command} from 'clipanion';
import {Daemon} from '../../daemon/daemon.ts';
import {installSignalHandlers} from '../../daemon/shutdown.ts';
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

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const daemon = await Daemon.start({config, env: this.context.env, stdout: this.context.stdout, version: getVersionInfo()});
    const stopped = installSignalHandlers(daemon);
    return stopped;
  }
}
