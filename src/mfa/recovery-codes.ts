import { createHash, randomBytes } from "node:crypto";

/** How many recovery codes a user holds after confirmTotp or regenerateRecoveryCodes. */
export const RECOVERY_CODE_COUNT = 10;
/** Lower-case base32 (RFC 4648's letters): 5 bits a character, no 0/1/8/9 to confuse with letters. */
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
/** 12 characters: 60 random bits, far beyond any guessing the wrong-code limits allow. */
const CODE_LENGTH = 12;
const GROUP = 4;
/** A recovery code as shown: its characters in groups of four, with dashes between. */
export const RECOVERY_CODE_SHOWN_LENGTH = CODE_LENGTH + CODE_LENGTH / GROUP - 1;

/** A new recovery code as shown to the user: `xxxx-xxxx-xxxx`. */
export function newRecoveryCode(): string {
  // 32 divides 256: each byte's low 5 bits are uniform.
  const chars = Array.from(randomBytes(CODE_LENGTH), (byte) => ALPHABET[byte & 31]).join("");
  return chars.match(new RegExp(`.{${GROUP}}`, "g"))!.join("-");
}

/** `input` as a recovery code (any case, dashes and spaces dropped), or undefined when it cannot be one. */
export function asRecoveryCode(input: string): string | undefined {
  const code = input.replace(/[\s-]/g, "").toLowerCase();
  return code.length === CODE_LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : undefined;
}

/**
 * What is stored of a recovery code: its SHA-256 (hex) in the normal form of {@link asRecoveryCode}.
 * 60 random bits need no salt or slow hash: no dictionary holds them.
 */
export function hashRecoveryCode(normalized: string): string {
  return createHash("sha256").update(normalized, "utf8").digest("hex");
}
