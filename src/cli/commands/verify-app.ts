import {Command} from 'clipanion';
import type {CliContext} from '../context.ts';

/** The built-in app `verify` deploys (hidden: no usage, so help does not list it). */
export class VerifyAppCommand extends Command<CliContext> {
  static paths = [[`__verify-app`]];

  async execute(): Promise<number> {
    const {runVerifyApp} = await import('../../verify/verify-app.ts');
    await runVerifyApp(this.context.env);
    return 0;
  }
}
