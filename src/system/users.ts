import fs from 'node:fs';
import {ErrorCode} from '../errors/codes.ts';
import {RollbridgeError} from '../errors/rollbridge-error.ts';

export type IdLookupOptions = {
  /** @default `/etc/passwd` for users, `/etc/group` for groups */
  databasePath?: string;
};

/**
 * A uid from a numeric id (number or digits) or a user name looked up in /etc/passwd.
 * NSS sources (LDAP, sssd) are not consulted, like upstream: such users need a numeric id.
 */
export function resolveUserId(nameOrId: string | number, options: IdLookupOptions = {}): number {
  const databasePath = options.databasePath ?? `/etc/passwd`;
  return resolveId(nameOrId, databasePath, () => new RollbridgeError(ErrorCode.USER_UNKNOWN, `User "${nameOrId}" not found in ${databasePath}`, {
    fix: `Use a numeric id in control.owner (names are looked up in ${databasePath} only)`,
    details: {user: nameOrId, databasePath},
  }));
}

/** A gid from a numeric id (number or digits) or a group name looked up in /etc/group. */
export function resolveGroupId(nameOrId: string | number, options: IdLookupOptions = {}): number {
  const databasePath = options.databasePath ?? `/etc/group`;
  return resolveId(nameOrId, databasePath, () => new RollbridgeError(ErrorCode.GROUP_UNKNOWN, `Group "${nameOrId}" not found in ${databasePath}`, {
    fix: `Use a numeric id in control.group (names are looked up in ${databasePath} only)`,
    details: {group: nameOrId, databasePath},
  }));
}

function resolveId(nameOrId: string | number, databasePath: string, notFound: () => RollbridgeError): number {
  if (typeof nameOrId === `number`) {
    if (Number.isSafeInteger(nameOrId) && nameOrId >= 0) return nameOrId;
    throw notFound();
  }
  const trimmed = nameOrId.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  if (trimmed === ``) throw notFound();
  const id = tryFindId(trimmed, databasePath);
  if (id === null) throw notFound();
  return id;
}

/** Both files share the layout `name:password:id:...`. */
function tryFindId(name: string, databasePath: string): number | null {
  let content: string;
  try {
    content = fs.readFileSync(databasePath, `utf8`);
  } catch {
    return null;
  }
  for (const line of content.split(`\n`)) {
    if (line.startsWith(`#`)) continue;
    const [entryName, , id] = line.split(`:`);
    if (entryName === name && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  return null;
}
