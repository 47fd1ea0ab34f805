// The `rollbridge` command of the npm package: runs the binary (ROLLBRIDGE_BIN, then the installed
// @rollbridge/<platform> package) with the same arguments and stdio; see run-inherited.ts for the exit
// code, signal and not-found behaviour.
import {runInherited} from '../run-inherited.ts';

const args = process.argv.slice(2);
runInherited(args, {json: args.includes(`--json`) || process.env.ROLLBRIDGE_OUTPUT === `json`});
