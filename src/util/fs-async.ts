import fs from 'node:fs';
import {promisify} from 'node:util';

/**
 * node:fs's callback functions as promises, for the daemon's code. node:fs/promises would load its
 * FileHandle and what that brings (readline, the REPL's history): 0.9 MB more idle daemon RSS
 * (docs/benchmarks.md, memory notes). Files are plain descriptors here.
 */
export const fsAsync = {
  chmod: promisify(fs.chmod),
  chown: promisify(fs.chown),
  close: promisify(fs.close),
  fsync: promisify(fs.fsync),
  link: promisify(fs.link),
  lstat: promisify(fs.lstat),
  mkdir: promisify(fs.mkdir),
  open: promisify(fs.open),
  rename: promisify(fs.rename),
  rm: promisify(fs.rm),
  unlink: promisify(fs.unlink),
  writeFile: promisify(fs.writeFile),
};
