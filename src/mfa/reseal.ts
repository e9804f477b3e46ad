import type { Logger } from "pino";

import type { SecretBox } from "./secret-box.js";
import type { TotpStore } from "./totp.store.js";

/** Secrets sealed again per batch, and batches per run: what a run leaves goes on the next. */
const RESEAL_BATCH = 200;
const RESEAL_MAX_BATCHES = 25;

/**
 * Key rotation's second half, run with the hourly chores: every TOTP secret sealed under a key
 * other than the current (first) one of MFA_ENCRYPTION_KEYS is opened and sealed again under it,
 * unless it changed meanwhile. Once a run finds none, the old key can leave MFA_ENCRYPTION_KEYS.
 * A secret whose key is gone is logged (by user id) and skipped. Returns how many were sealed again.
 */
export async function resealSecrets(store: TotpStore, box: SecretBox, logger: Logger): Promise<number> {
  let after = "";
  let resealed = 0;
  for (let batch = 0; batch < RESEAL_MAX_BATCHES; batch++) {
    const users = await store.sealedWithOtherKeys(box.currentKeyId, after, RESEAL_BATCH);
    for (const userId of users) {
      const row = await store.find(userId);
      if (!row) continue;
      try {
        await store.reseal(userId, row.secretEnc, box.seal(box.open(row.secretEnc, userId).plain, userId));
        resealed++;
      } catch (error) {
        logger.error({ userId, err: { message: (error as Error).message } }, "a TOTP secret could not be opened");
      }
    }
    if (users.length < RESEAL_BATCH) break;
    after = users[users.length - 1]!;
  }
  if (resealed > 0) logger.info({ resealed, keyId: box.currentKeyId }, "TOTP secrets sealed under the current key");
  return resealed;
}
