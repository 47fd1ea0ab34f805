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

/** Both files share the layout `name:password:id:...`: each entry as [name, id]. */
function readEntries(databasePath: string): Array<[string, string]> {
  let content: string;
  try {
    content = fs.readFileSync(databasePath, `utf8`);
  } catch {
    return [];
  }
  const entries: Array<[string, string]> = [];
  for (const line of content.split(`\n`)) {
    if (line.startsWith(`#`)) continue;
    const [name, , id] = line.split(`:`);
    if (name && id !== undefined && /^\d+$/.test(id)) entries.push([name, id]);
  }
  return entries;
}

function tryFindId(name: string, databasePath: string): number | null {
  const entry = readEntries(databasePath).find(([entryName]) => entryName === name);
  return entry ? Number(entry[1]) : null;
}

/** The reverse lookup: the name of a uid in /etc/passwd (or `databasePath`), null when it has none. */
export function findUserName(uid: number, options: IdLookupOptions = {}): string | null {
  return readEntries(options.databasePath ?? `/etc/passwd`).find(([, id]) => id === String(uid))?.[0] ?? null;
}

/** The name of a gid in /etc/group (or `databasePath`), null when it has none. */
export function findGroupName(gid: number, options: IdLookupOptions = {}): string | null {
  return readEntries(options.databasePath ?? `/etc/group`).find(([, id]) => id === String(gid))?.[0] ?? null;
}
