import fs from 'node:fs';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {randomBytes} from '../util/random-bytes.ts';

/**
 * The token file beside the control socket (mode 0600): whoever can read it is the daemon's user (or
 * root), and only they may ask the daemon to hand over to a successor (product §8: the retirement
 * request is authenticated, unlike upstream's retire-owner which accepted any well-formed token).
 */
export function tokenPathOf(controlPath: string): string {
  return `${controlPath}.token`;
}

/** Writes a fresh token (temp file 0600, renamed into place); returns it. */
export function writeToken(controlPath: string): string {
  const token = randomBytes(32).toString(`hex`);
  const target = tokenPathOf(controlPath);
  const temp = `${target}.${process.pid}.tmp`;
  fs.writeFileSync(temp, `${token}\n`, {mode: 0o600});
  fs.renameSync(temp, target);
  return token;
}

/** Removes the token file if it still holds our token (a successor may have written its own). */
export function removeToken(controlPath: string, token: string): void {
  try {
    if (fs.readFileSync(tokenPathOf(controlPath), `utf8`).trim() === token) fs.rmSync(tokenPathOf(controlPath), {force: true});
  } catch {
    // Gone already.
  }
}

/** Reads the running daemon's token: ERR_DAEMON_REPLACE_REFUSED when this user may not. */
export function readToken(controlPath: string): string {
  const tokenPath = tokenPathOf(controlPath);
  try {
    return fs.readFileSync(tokenPath, `utf8`).trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RollbridgeError(ErrorCode.DAEMON_REPLACE_REFUSED, `Cannot read the daemon's replacement token ${tokenPath}: ${code ?? (error as Error).message}`, {
      fix: code === `EACCES` ? `Run "rollbridge ensure-daemon --replace" as the daemon's user (or root)` : `Restart the daemon with "rollbridge shutdown" and "rollbridge ensure-daemon" (a daemon of an older build writes no token)`,
      details: {tokenPath, code},
    });
  }
}
