import {Command, Option} from 'clipanion';
import * as t from 'typanion';
import {BaseCommand} from '../base-command.ts';

export class VerifyCommand extends BaseCommand {
  static paths = [[`verify`]];

  static usage = Command.Usage({
    description: `Self-test this host: deploy a built-in app twice under load and count what was lost`,
    details: `
      Needs no config, no app and no Node.js: starts a private daemon (temp directory, ephemeral
      ports) whose release runs the binary's own tiny HTTP/WebSocket app, deploys it once, opens
      keep-alive HTTP load and WebSockets, deploys twice more, and reports failed requests, WebSocket
      survival (each must stay on its release until the drain deadline, then get close code 1001) and
      the deploy times. Exits 0 only if nothing was lost.
    `,
    examples: [[`Run the self-test`, `$0 verify`], [`As JSON, with more load`, `$0 verify --connections 32 --websockets 50 --json`]],
  });

  connections = Option.String(`--connections`, `8`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(1, 256)]), description: `Keep-alive HTTP connections sending requests during the deploys`});
  websockets = Option.String(`--websockets`, `10`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(0, 1000)]), description: `WebSockets kept open across the deploys`});
  drainTimeoutMs = Option.String(`--drain-timeout-ms`, `2000`, {validator: t.cascade(t.isNumber(), [t.isInteger(), t.isInInclusiveRange(100, 60000)]), description: `proxy.drainTimeoutMs of the test daemon`});

  async run(): Promise<number> {
    const human = !this.json;
    const {runVerify} = await import('../../verify/run-verify.ts');
    const report = await runVerify({
      self: this.context.selfCommand,
      env: this.context.env,
      connections: this.connections,
      websockets: this.websockets,
      drainTimeoutMs: this.drainTimeoutMs,
      onProgress: human ? (line) => this.writeLine(`  ${line}`) : undefined,
    });
    if (this.json) {
      this.writeJson(report);
    } else {
      this.writeLine(report.ok
        ? `✓ verify passed: ${report.requests} requests, 0 failed; ${report.websockets.opened} WebSockets kept until the drain deadline; deploys ${report.deploys.map((deploy) => `${deploy.durationMs} ms`).join(`, `)}`
        : `✗ verify FAILED: ${report.failedRequests} of ${report.requests} requests failed (${JSON.stringify(report.failures)}); WebSockets lost: ${report.websockets.lost} of ${report.websockets.opened}`);
    }
    return report.ok ? 0 : 1;
  }
}
