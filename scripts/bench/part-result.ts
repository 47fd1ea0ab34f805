// The shape every benchmark part returns, and the context it runs in.
import type {RollbridgeCli} from './rollbridge-cli.ts';

export const PART_NAMES = [`throughput`, `deploys`, `websockets`, `lifecycle`, `latency`, `startup`, `memory`, `deploys-memory`, `recovery`, `crash`, `upgrade`] as const;
export type PartName = typeof PART_NAMES[number];

export type Check = {
  /** What is compared, e.g. `proxy/direct req/s ratio`. */
  name: string;
  measured: string;
  goal: string;
  pass: boolean;
};

export type Table = {title?: string; header: string[]; rows: string[][]};

export type PartResult = {
  part: PartName;
  title: string;
  /** PASS when every check passed; ERROR when the part could not run to the end. */
  status: `PASS` | `FAIL` | `ERROR` | `SKIPPED`;
  /** ISO time the part started. */
  startedAt: string;
  durationS: number;
  rollbridge: string;
  tables: Table[];
  checks: Check[];
  /** What the product did wrong (failed requests, slow deploys, wrong close codes …), with evidence. */
  findings: string[];
  /** How it was measured, caveats. */
  notes: string[];
  data: Record<string, unknown>;
};

export type BenchContext = {
  cli: RollbridgeCli;
  /** A short temp directory for this part (removed by the runner). */
  workDir: string;
  log: (line: string) => void;
};

export function check(name: string, measured: string, goal: string, pass: boolean): Check {
  return {name, measured, goal, pass};
}
