import * as t from 'typanion';

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = {ms: 1, s: 1_000, m: 60_000, h: 3_600_000};

/** Parses `250ms`, `10s`, `2m`, `1h` or a bare number of milliseconds. */
export function parseDurationMs(value: string): number | null {
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) return null;
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? `ms`] ?? 1));
}

const SINCE_DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const SINCE_UNIT_MS: Record<string, number> = {...UNIT_MS, d: 86_400_000};
const ISO_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * `--since`: a duration back from `now` with its unit (`90s`, `5m`, `2h`, `1d`) or an ISO 8601 time
 * (`2026-12-01T18:00:00Z`, `2026-12-01T19:00:00+01:00`; local time without a zone, midnight UTC for a
 * date alone); null when it is neither.
 */
export function parseSinceTime(value: string, now: Date): Date | null {
  const trimmed = value.trim();
  const duration = SINCE_DURATION_PATTERN.exec(trimmed);
  if (duration) return new Date(now.getTime() - Math.round(Number(duration[1]) * (SINCE_UNIT_MS[duration[2] ?? `s`] ?? 1)));
  if (!ISO_TIME_PATTERN.test(trimmed)) return null;
  const time = Date.parse(trimmed);
  return Number.isNaN(time) ? null : new Date(time);
}

export const isReleaseId = t.cascade(t.isString(), [t.matchesRegExp(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/)]);

export const isPositiveInteger = t.cascade(t.isNumber(), [t.isInteger(), t.isAtLeast(1)]);
