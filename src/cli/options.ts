import * as t from 'typanion';

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = {ms: 1, s: 1_000, m: 60_000, h: 3_600_000};

/** Parses `250ms`, `10s`, `2m`, `1h` or a bare number of milliseconds. */
export function parseDurationMs(value: string): number | null {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) return null;
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? `ms`] ?? 1));
}

export const isReleaseId = t.cascade(t.isString(), [t.matchesRegExp(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/)]);

export const isPositiveInteger = t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]);
