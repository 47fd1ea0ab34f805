import fs from 'node:fs';

/**
 * The rotation every log file of rollbridge follows (process logs, the access log): a file larger
 * than `logs.maxBytes` becomes `<file>.1`, older copies shift up to `<file>.<files>` and the oldest
 * is dropped. This makes room for the new `<file>.1`; the caller then fills it (a copy, or a rename of
 * the file itself). With `files` = 0 nothing is kept.
 */
export function shiftRotatedFiles(file: string, files: number): void {
  if (files <= 0) return;
  for (let index = files - 1; index >= 1; index--) renameIfExists(`${file}.${index}`, `${file}.${index + 1}`);
}

function renameIfExists(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== `ENOENT`) throw error;
  }
}
