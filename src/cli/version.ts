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
