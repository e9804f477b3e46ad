import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { EmailTokenStore } from "../../src/email/email-token.store.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  countRows,
  latestToken,
  registerVerified,
  registerWithEmail,
  requestReset,
  RESET_SUBJECT,
  resetPassword,
} from "./email-helpers.js";

for (const kind of DATABASES) {
  describe(`pruning email_tokens (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it("deletes expired links (spent and voided ones once their lifetime is over) and keeps live ones", async () => {
      await registerVerified(t, "pruned", "pruned@example.com");
      await requestReset(t, "pruned@example.com");
      await requestReset(t, "pruned@example.com");
      await resetPassword(t, {
        token: await latestToken(t, "pruned@example.com", RESET_SUBJECT),
        newPassword: "after the reset",
      });
      await registerWithEmail(t, "waiting", "waiting@example.com");
      // One spent verification, two reset links (one voided, one spent), one live verification.
      assert.equal(await countRows(t, "email_tokens"), 4);
      const store = new EmailTokenStore(t.app.database.db);
      assert.equal(await store.prune(new Date()), 0, "nothing has expired yet");
      // Past the reset links' 30 minutes, before the verifications' 24 hours.
      assert.equal(await store.prune(new Date(Date.now() + 31 * 60 * 1000)), 2);
      assert.equal(await countRows(t, "email_tokens"), 2);
      assert.equal(await store.prune(new Date(Date.now() + 25 * 60 * 60 * 1000)), 2);
      assert.equal(await countRows(t, "email_tokens"), 0);
    });
  });
}
