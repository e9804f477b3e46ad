/** Length bounds from the public contract, in characters (Unicode code points). */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

/**
 * Why `password` breaks the contract's rules, or undefined when it is acceptable.
 * No composition rules (NIST SP 800-63B); the upper bound exists so that huge inputs are refused
 * before any hashing work is spent on them, and nothing is ever silently truncated.
 */
export function checkPasswordRules(password: string): string | undefined {
  // Count code points so that an emoji counts once, as a person would count it.
  let length = 0;
  for (const _ of password) {
    length += 1;
    if (length > PASSWORD_MAX_LENGTH) return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
  }
  if (length < PASSWORD_MIN_LENGTH) return `must be at least ${PASSWORD_MIN_LENGTH} characters`;
  return undefined;
}
