// The one duration format of this service: a whole number with a unit, never a bare number.
const DURATION_UNITS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/**
 * Parses a duration with a unit (`900s`, `15m`, `1h`, `30d`) into seconds.
 * A bare number is refused on purpose: `JWT_ACCESS_TOKEN_EXPIRES=900` is ambiguous
 * (seconds? milliseconds?) and has caused year-long tokens in the wild.
 */
export function parseDuration(value: string): number | undefined {
  const match = /^(\d{1,9})(s|m|h|d)$/.exec(value.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * DURATION_UNITS[match[2] as keyof typeof DURATION_UNITS];
  return seconds > 0 ? seconds : undefined;
}

/**
 * Parses a duration with a unit, milliseconds allowed (`500ms`, `5s`, `1m`), into milliseconds.
 * Like {@link parseDuration}, a bare number is refused.
 */
export function parseDurationMs(value: string): number | undefined {
  const match = /^(\d{1,9})ms$/.exec(value.trim());
  if (match) return Number(match[1]) > 0 ? Number(match[1]) : undefined;
  const seconds = parseDuration(value);
  return seconds === undefined ? undefined : seconds * 1000;
}
