/**
 * `date.toISOString()` without V8's date cache: V8's own toISOString asks ICU for the local time zone
 * first, which pages in ICU's time-zone data from the binary (+0.8 MB of the daemon's RSS, for a string
 * that is UTC anyway). Same output for every time a Date can hold; throws the same RangeError on an
 * invalid one.
 */
export function isoTime(date: Date | number = Date.now()): string {
  const time = typeof date === `number` ? new Date(date) : date;
  if (Number.isNaN(time.getTime())) throw new RangeError(`Invalid time value`);
  const year = time.getUTCFullYear();
  const yyyy = year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? `-` : `+`}${pad(Math.abs(year), 6)}`;
  return `${yyyy}-${pad(time.getUTCMonth() + 1, 2)}-${pad(time.getUTCDate(), 2)}T${pad(time.getUTCHours(), 2)}:${pad(time.getUTCMinutes(), 2)}:${pad(time.getUTCSeconds(), 2)}.${pad(time.getUTCMilliseconds(), 3)}Z`;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, `0`);
}
