/**
 * How deeply a JSON text nests, found with one pass over its bytes and no parsing, so that a body
 * of a million `[` costs about a millisecond to refuse instead of the 40× of a flat body that
 * building it would cost. Brackets inside strings do not count; escapes inside strings are
 * skipped. The text need not be valid JSON: the scan stops as soon as the limit is passed, and
 * whatever it does not refuse is left for the real parser to judge.
 */
export function jsonNestingExceeds(text: Buffer | string, maxDepth: number): boolean {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === 0x5c /* \ */) i++;
      else if (byte === 0x22 /* " */) inString = false;
      continue;
    }
    switch (byte) {
      case 0x22:
        inString = true;
        break;
      case 0x5b /* [ */:
      case 0x7b /* { */:
        if (++depth > maxDepth) return true;
        break;
      case 0x5d /* ] */:
      case 0x7d /* } */:
        depth--;
        break;
    }
  }
  return false;
}

/**
 * Deepest nesting a request body or WebSocket message may have. A GraphQL request is an object
 * whose variables hold this API's inputs (at most an input object with a list of enums: depth 4);
 * 32 leaves room for any client's extensions.
 */
export const JSON_MAX_NESTING = 32;
