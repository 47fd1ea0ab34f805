import {Command} from 'clipanion';
import {BaseCommand} from '../base-command.ts';
import {formatDuration, formatTable} from '../render.ts';

type ProcessStatusView = {id?: string; state?: string; pid?: number; port?: number; uptimeMs?: number; restarts?: number};
type ReleaseView = {releaseId: string; state: string; connections?: {http: number; websocket: number}; ports?: Record<string, number>; processes?: ProcessStatusView[]};

export class StatusCommand extends BaseCommand {
  static paths = [[`status`]];

  static usage = Command.Usage({
    description: `Show the daemon's state: releases, processes, services, singletons, proxy`,
    details: `
      A table on a terminal; the full status document as JSON with \`--json\` or when stdout is not a
      terminal (the rollbridge 0.1 shape: activeReleaseId, application, control, proxy, releases,
      services, singletons, plus daemon and daemonRuntime).
    `,
    examples: [[`Show the status`, `$0 status`], [`As JSON, for scripts`, `$0 status --json`]],
  });

  async run(): Promise<number> {
    const config = await this.loadConfig();
    const client = await this.connect(config);
    let status: Record<string, unknown>;
    try {
      status = await client.call(`status`, {}) as Record<string, unknown>;
    } finally {
      client.close();
    }
    if (this.json || !this.isTTY) {
      this.writeJson({status: `success`, ...status});
      return 0;
    }
    this.writeLine(renderStatus(status));
    return 0;
  }
}

export function renderStatus(status: Record<string, unknown>): string {
  const proxy = status.proxy as {host: string; port: number};
  const daemon = status.daemon as {pid?: number; uptimeMs?: number; deploying?: string | null} | undefined;
  const lines = [
    `rollbridge "${String(status.application)}": proxy ${proxy.host}:${proxy.port}, active release ${String(status.activeReleaseId ?? `none`)}` +
      (daemon ? `, daemon pid ${daemon.pid} up ${formatDuration(daemon.uptimeMs)}` : ``) +
      (daemon?.deploying ? `, ${daemon.deploying} in progress` : ``),
    ``,
  ];
  const rows: string[][] = [];
  const addRow = (where: string, process: ProcessStatusView, extra = ``) => {
    rows.push([where, process.id ?? `?`, process.state ?? `?`, process.pid === undefined ? `-` : String(process.pid), process.port === undefined ? `-` : String(process.port), process.state === `running` ? formatDuration(process.uptimeMs) : `-`, String(process.restarts ?? 0), extra]);
  };
  for (const release of (status.releases as ReleaseView[] | undefined) ?? []) {
    const connections = release.connections ? `${release.connections.http} http, ${release.connections.websocket} ws` : ``;
    for (const process of release.processes ?? []) addRow(`${release.releaseId} (${release.state})`, process, process === release.processes?.at(-1) ? connections : ``);
  }
  for (const service of (status.services as Array<{id: string; port?: number; process: ProcessStatusView}> | undefined) ?? []) addRow(`service`, {...service.process, port: service.port});
  for (const singleton of (status.singletons as Array<{id: string; process: ProcessStatusView}> | undefined) ?? []) addRow(`singleton`, singleton.process);
  lines.push(rows.length > 0 ? formatTable([`RELEASE`, `PROCESS`, `STATE`, `PID`, `PORT`, `UPTIME`, `RESTARTS`, `CONNECTIONS`], rows) : `No managed processes. Deploy with "rollbridge deploy --release-path <dir>".`);
  return lines.join(`\n`);
}
