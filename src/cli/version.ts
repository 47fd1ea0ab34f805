import packageJson from '../../package.json' with {type: 'json'};

// Replaced at bundle time by esbuild's `define`; absent when running from the sources.
declare const __ROLLBRIDGE_COMMIT__: string | undefined;

export type VersionInfo = {version: string; commit: string; node: string};

export function getVersionInfo(): VersionInfo {
  return {
    version: packageJson.version,
    commit: typeof __ROLLBRIDGE_COMMIT__ === `string` ? __ROLLBRIDGE_COMMIT__ : `dev`,
    node: process.version,
  };
}
