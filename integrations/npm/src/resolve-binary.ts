import fs from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {RollbridgeError} from './rollbridge-error.ts';

/** The platforms a `@rollbridge/<platform>` package exists for (glibc Linux). */
export const PLATFORM_PACKAGES: Readonly<Record<string, string>> = {
  'linux-x64': `@rollbridge/linux-x64`,
  'linux-arm64': `@rollbridge/linux-arm64`,
};

export type ResolveBinaryOptions = {
  /** Where ROLLBRIDGE_BIN is read. @default process.env */
  env?: Record<string, string | undefined>;
  /** ROLLBRIDGE_BIN is made absolute against this. @default process.cwd() */
  cwd?: string;
  platform?: string;
  arch?: string;
  /** A file inside this package: platform packages are resolved from here. */
  from?: string;
};

/**
 * The binary to run: `ROLLBRIDGE_BIN` when set, else the `rollbridge` file of the installed
 * `@rollbridge/<platform>-<arch>` package, else ERR_NPM_BINARY_NOT_FOUND naming both.
 */
export function resolveBinary(options: ResolveBinaryOptions = {}): string {
  const env = options.env ?? process.env;
  const fromEnv = env.ROLLBRIDGE_BIN;
  if (fromEnv !== undefined && fromEnv !== ``) {
    const file = path.resolve(options.cwd ?? process.cwd(), fromEnv);
    if (!isExecutableFile(file)) {
      throw new RollbridgeError(`ERR_NPM_BINARY_NOT_FOUND`, `ROLLBRIDGE_BIN is ${JSON.stringify(fromEnv)}, which is not an executable file`, {
        fix: `Set ROLLBRIDGE_BIN to the path of a rollbridge binary (chmod +x), or unset it to use the @rollbridge/<platform> package`,
        details: {rollbridgeBin: fromEnv},
      });
    }
    return file;
  }
  const platform = `${options.platform ?? process.platform}-${options.arch ?? process.arch}`;
  const packageName = PLATFORM_PACKAGES[platform];
  if (packageName === undefined) {
    throw new RollbridgeError(`ERR_NPM_BINARY_NOT_FOUND`, `rollbridge has no binary package for ${platform} (only ${Object.keys(PLATFORM_PACKAGES).join(`, `)}, glibc) and ROLLBRIDGE_BIN is not set`, {
      fix: `Set ROLLBRIDGE_BIN to the path of a rollbridge binary built for this machine`,
      details: {platform},
    });
  }
  const require = createRequire(options.from ?? import.meta.url);
  let packageJson: string;
  try {
    packageJson = require.resolve(`${packageName}/package.json`);
  } catch {
    throw new RollbridgeError(`ERR_NPM_BINARY_NOT_FOUND`, `The optional dependency ${packageName} is not installed and ROLLBRIDGE_BIN is not set`, {
      fix: `Install again without omitting optional dependencies (\`pnpm install\`, or \`npm install\` without --omit=optional); on musl (Alpine) there is no package: set ROLLBRIDGE_BIN to a rollbridge binary`,
      details: {platform, package: packageName},
    });
  }
  const binary = path.join(path.dirname(packageJson), `rollbridge`);
  if (!isExecutableFile(binary)) {
    throw new RollbridgeError(`ERR_NPM_BINARY_NOT_FOUND`, `${packageName} is installed but ${binary} is missing or not executable`, {
      fix: `Reinstall ${packageName} (remove node_modules and install again), or set ROLLBRIDGE_BIN to a rollbridge binary`,
      details: {platform, package: packageName, binary},
    });
  }
  return binary;
}

function isExecutableFile(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
