import fs from 'node:fs';
import path from 'node:path';

const REPO_ROOT = path.resolve(import.meta.dirname, `..`, `..`);

/** bundle/rollbridge-linux-x64, the binary `npm run build` produces; throws when it has not been built. */
export function getBinaryPath(repoRoot: string = REPO_ROOT): string {
  const binary = path.join(repoRoot, `bundle`, `rollbridge-linux-x64`);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(binary);
  } catch {
    throw new Error(`The rollbridge binary ${binary} does not exist: run \`npm run build\` first`);
  }
  if (!stat.isFile() || (stat.mode & 0o111) === 0) {
    throw new Error(`${binary} is not an executable file: run \`npm run build\` again`);
  }
  return binary;
}
