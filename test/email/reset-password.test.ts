import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { assertInvalidToken, codes, loginRaw, me, PASSWORD, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  countRows,
  latestToken,
  outbox,
  refusal,
  registerVerified,
  registerWithEmail,
  requestReset,
  RESET_SUBJECT,
  resetPassword,
} from "./email-helpers.js";

const NEW_PASSWORD = "a brand new passphrase";

for (const kind of DATABASES) {
  describe(`password reset (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it("mails a reset link to a verified address, and the link sets a new password and signs in", async () => {
      const user = await registerVerified(t, "forgetful", "forgetful@example.com");
      assert.deepEqual((await requestReset(t, "Forgetful@Example.com")).body, { data: { requestPasswordReset: true } });
      const mails = (await outbox(t, "forgetful@example.com")).filter((row) => row.subject === RESET_SUBJECT);
      assert.equal(mails.length, 1);
      assert.equal(mails[0]!.status, "queued");
      assert.match(mails[0]!.text_body, /http:\/\/localhost:\d+\/reset-password#token=prt_[A-Za-z0-9_-]{43}/);
      assert.match(mails[0]!.html_body, /<a href="http:\/\/localhost:\d+\/reset-password#token=prt_/);
      const token = await latestToken(t, "forgetful@example.com", RESET_SUBJECT);

      const res = await resetPassword(t, { token, newPassword: NEW_PASSWORD });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const payload = res.body.data.resetPassword;
      assert.equal(payload.user.username, "forgetful");
      assert.equal(payload.tokenType, "Bearer");
      assert.equal((await me(t, payload.accessToken)).body.data.me.id, user.userId);
      // The old password no longer works, the new one does; the old session is over.
      assert.deepEqual(codes(await loginRaw(t, "forgetful")), ["UNAUTHENTICATED"]);
      assert.equal((await loginRaw(t, "forgetful", { password: NEW_PASSWORD })).body.errors, undefined);
      assertInvalidToken(await me(t, user.accessToken), { reason: "SESSION_ENDED" });
      const notices = (await outbox(t, "forgetful@example.com")).filter(
        (r) => r.subject === "Your password was changed",
      );
      assert.equal(notices.length, 1);
      assert.equal(notices[0]!.status, "queued");
    });

    it("refuses a used token with RESET_TOKEN_INVALID and changes nothing", async () => {
      await registerVerified(t, "twice", "twice@example.com");
      await requestReset(t, "twice@example.com");
      const token = await latestToken(t, "twice@example.com", RESET_SUBJECT);
      assert.equal((await resetPassword(t, { token, newPassword: NEW_PASSWORD })).body.errors, undefined);
      const before = await countRows(t, "sessions");
      const again = await resetPassword(t, { token, newPassword: "yet another passphrase" });
      assert.deepEqual(refusal(again), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      assert.equal(again.body.data, null);
      assert.equal(await countRows(t, "sessions"), before);
      assert.equal((await loginRaw(t, "twice", { password: NEW_PASSWORD })).body.errors, undefined);
    });

    it("answers true for an unknown address and an unverified one, writing a suppressed row and no token", async () => {
      await registerWithEmail(t, "unverified", "unverified@example.com");
      const tokens = await countRows(t, "email_tokens");
      for (const address of ["nobody@example.com", "unverified@example.com"]) {
        const before = (await outbox(t, address)).length;
        assert.deepEqual((await requestReset(t, address)).body, { data: { requestPasswordReset: true } });
        const rows = await outbox(t, address);
        assert.equal(rows.length, before + 1);
        assert.equal(rows[rows.length - 1]!.status, "suppressed");
        assert.equal(rows[rows.length - 1]!.subject, RESET_SUBJECT);
      }
      assert.equal(await countRows(t, "email_tokens"), tokens);
    });

    it("refuses an unknown token, a token of the wrong shape and a verification token with RESET_TOKEN_INVALID", async () => {
      await registerUser(t, "bystander");
      for (const token of [
        "prt_" + "A".repeat(43),
        "nonsense",
        "evt_" + "A".repeat(43),
        "prt_" + "A".repeat(100_000),
      ]) {
        const res = await resetPassword(t, { token, newPassword: NEW_PASSWORD });
        assert.deepEqual(refusal(res), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      }
      assert.equal((await loginRaw(t, "bystander", { password: PASSWORD })).body.errors, undefined);
    });
  });
}
