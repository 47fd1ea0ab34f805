import os from 'node:os';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';
import {findUserName, resolveUserId} from '../system/users.ts';

/** The owner of the legacy processes: only processes with this real uid are discovered and stopped. */
export type LegacyUser = {name: string; uid: number};

/**
 * `legacyTakeover.user` (a name or a uid) as a name and a uid; unset means the user running rollbridge.
 * screen must run as the owner (`runuser -u NAME`), which needs a name: a uid without a passwd entry keeps
 * its digits as the name, and screen sessions of that user cannot be listed by root.
 */
export function resolveLegacyUser(value: string | number | undefined, options: {passwdPath?: string} = {}): LegacyUser {
  const passwdPath = options.passwdPath ?? `/etc/passwd`;
  if (value === undefined) return currentUser(passwdPath);
  let uid: number;
  try {
    uid = resolveUserId(value, {databasePath: passwdPath});
  } catch (error) {
    throw new RollbridgeError(ErrorCode.USER_UNKNOWN, `User "${value}" of legacyTakeover.user not found in ${passwdPath}`, {
      fix: `Set legacyTakeover.user to an existing user name or a numeric uid`,
      details: {user: value, databasePath: passwdPath},
      cause: error,
    });
  }
  const isName = typeof value === `string` && !/^\d+$/.test(value.trim());
  return {name: isName ? value.trim() : findUserName(uid, {databasePath: passwdPath}) ?? String(uid), uid};
}

function currentUser(passwdPath: string): LegacyUser {
  const uid = process.getuid?.() ?? -1;
  try {
    return {name: os.userInfo().username, uid};
  } catch {
    // os.userInfo() throws when the uid has no passwd entry (containers started with an arbitrary uid).
    return {name: findUserName(uid, {databasePath: passwdPath}) ?? String(uid), uid};
  }
}
