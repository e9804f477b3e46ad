import { BadUserInputError } from "../errors.js";
import type { PasswordHasher } from "../users/index.js";

/**
 * changePassword's checks of the two passwords (BAD_USER_INPUT on `currentPassword` when it is not
 * the stored one, on `newPassword` when it is the same), then the new one's hash. Either call to the
 * hasher may be turned away with SERVICE_UNAVAILABLE (PASSWORD_QUEUE_MAX) before any work.
 */
export async function checkAndHash(
  passwords: PasswordHasher,
  currentHash: string,
  input: { currentPassword: string; newPassword: string },
): Promise<string> {
  if (!(await passwords.verify(currentHash, input.currentPassword))) {
    throw new BadUserInputError([
      { field: "currentPassword", rule: "matches", message: "is not the current password" },
    ]);
  }
  if (input.newPassword === input.currentPassword) {
    throw new BadUserInputError([
      { field: "newPassword", rule: "different", message: "must differ from the current password" },
    ]);
  }
  return passwords.hash(input.newPassword);
}
