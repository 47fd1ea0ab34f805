import packageJson from '../../package.json' with {type: 'json'};

// Replaced at bundle time by esbuild's `define`; absent when running from the sources. With the version
// defined, the package.json import is unused and esbuild leaves the file out of the binary.
declare const __ROLLBRIDGE_COMMIT__: string | undefined;
declare const __ROLLBRIDGE_VERSION__: string | undefined;

export type VersionInfo = {version: string; commit: string; node: string};

export function getVersionInfo(): VersionInfo {
  return {
    version: typeof __ROLLBRIDGE_VERSION__ === `string` ? __ROLLBRIDGE_VERSION__ : packageJson.version,
    commit: typeof __ROLLBRIDGE_COMMIT__ === `string` ? __ROLLBRIDGE_COMMIT__ : `dev`,
    node: process.version,
  };
}

/** The line `rollbridge --version` prints, or with `--json` (or ROLLBRIDGE_OUTPUT=json) the JSON of VersionInfo. */
export function formatVersion(info: VersionInfo, json: boolean): string {
  return json ? `${JSON.stringify(info)}\n` : `rollbridge ${info.version} (commit ${info.commit}, node ${info.node})\n`;
}

/**
 * main.ts's shortcut: answers `--version`, `-v` or `version` (with or without `--json`) exactly as the
 * version command does and returns true; returns false for anything else (and for an invalid
 * ROLLBRIDGE_OUTPUT, `null`, which the full CLI reports).
 */
export function writeVersionFastPath(argv: readonly string[], output: string | null, stdout: {write(chunk: string): unknown}): boolean {
  const [command, flag, ...rest] = argv;
  if (command !== `--version` && command !== `-v` && command !== `version`) return false;
  if (rest.length > 0 || (flag !== undefined && flag !== `--json`) || output === null) return false;
  stdout.write(formatVersion(getVersionInfo(), flag === `--json` || output === `json`));
  return true;
}
