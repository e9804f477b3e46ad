import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { assertInvalidToken, codes, login, loginRaw, me, PASSWORD, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  countRows,
  fate,
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
const ROOT = { username: "root", password: "root password 1" };

/** An API token of the user's (a fresh session token is needed to make one). */
async function createApiToken(t: TestApp, accessToken: string): Promise<string> {
  const res = await t.gql(`mutation { createApiToken(input: { name: "script", scopes: [PROFILE_READ] }) { token } }`, {
    token: accessToken,
  });
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data.createApiToken.token;
}

/** The audit rows of `type` for the user, newest first, as the ADMIN reads them. */
async function auditOf(t: TestApp, userId: string, type: string): Promise<Array<{ detail: string | null }>> {
  const admin = await login(t, ROOT.username, { password: ROOT.password });
  const res = await t.gql(`query($id: ID!, $type: String) { auditEvents(userId: $id, type: $type) { detail } }`, {
    token: admin.accessToken,
    variables: { id: userId, type },
  });
  return res.body.data.auditEvents;
}

for (const kind of DATABASES) {
  describe(`password reset (${kind})`, () => {
    let clockOffsetMs = 0;
    const t = useTestApp(kind, {
      env: { EMAIL_REQUESTS_MAX_PER_IP: "100000", ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password },
      now: () => Date.now() + clockOffsetMs,
    });

    it("mails a reset link to a verified address, and the link sets a new password and signs in", async () => {
      const user = await registerVerified(t, "forgetful", "forgetful@example.com");
      assert.deepEqual((await requestReset(t, "Forgetful@Example.com")).body, { data: { requestPasswordReset: true } });
      const mails = (await outbox(t, "forgetful@example.com")).filter((row) => row.subject === RESET_SUBJECT);
      assert.equal(mails.length, 1);
      assert.equal(fate(mails[0]!.status), "mailed");
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
      assert.equal(fate(notices[0]!.status), "mailed");
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

    it("ends every session and API token of the user, and audits PASSWORD_RESET with what it ended", async () => {
      const user = await registerVerified(t, "holder", "holder@example.com");
      const second = await login(t, "holder");
      const apiToken = await createApiToken(t, user.accessToken);
      assert.equal((await me(t, apiToken)).status, 200);
      await requestReset(t, "holder@example.com");
      const token = await latestToken(t, "holder@example.com", RESET_SUBJECT);
      const res = await resetPassword(t, { token, newPassword: NEW_PASSWORD });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assertInvalidToken(await me(t, user.accessToken), { reason: "SESSION_ENDED" });
      assertInvalidToken(await me(t, second.accessToken), { reason: "SESSION_ENDED" });
      assertInvalidToken(await me(t, apiToken), { reason: "API_TOKEN_REVOKED" });
      assert.equal((await me(t, res.body.data.resetPassword.accessToken)).status, 200);
      assert.deepEqual(await auditOf(t, user.userId, "PASSWORD_RESET"), [{ detail: "sessions=2 apiTokens=1" }]);
      assert.deepEqual(await auditOf(t, user.userId, "PASSWORD_RESET_REQUESTED"), [{ detail: "expires=1800" }]);
    });

    it("returns the session in cookie mode like login: the refresh token in an HttpOnly cookie, null in the body", async () => {
      await registerVerified(t, "cookie-eater", "cookie@example.com");
      await requestReset(t, "cookie@example.com");
      const token = await latestToken(t, "cookie@example.com", RESET_SUBJECT);
      const res = await resetPassword(t, { token, newPassword: NEW_PASSWORD, useCookie: true });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.resetPassword.refreshToken, null);
      const cookies = res.headers.getSetCookie();
      assert.equal(cookies.length, 1);
      assert.match(cookies[0]!, /^refresh-token=rt_[A-Za-z0-9_-]{43}; /);
      assert.match(cookies[0]!, /HttpOnly/);
      assert.match(cookies[0]!, /SameSite=Strict/);
    });

    it("voids an older link when a newer one is requested, and every link once a reset is done", async () => {
      await registerVerified(t, "repeater", "repeater@example.com");
      await requestReset(t, "repeater@example.com");
      const older = await latestToken(t, "repeater@example.com", RESET_SUBJECT);
      await requestReset(t, "repeater@example.com");
      const newer = await latestToken(t, "repeater@example.com", RESET_SUBJECT);
      assert.notEqual(older, newer);
      const voided = await resetPassword(t, { token: older, newPassword: NEW_PASSWORD });
      assert.deepEqual(refusal(voided), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      assert.equal((await resetPassword(t, { token: newer, newPassword: NEW_PASSWORD })).body.errors, undefined);
      const spent = await resetPassword(t, { token: newer, newPassword: "third passphrase" });
      assert.deepEqual(refusal(spent), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      // The voided link changed nothing: the reset set NEW_PASSWORD, and the spent one nothing after it.
      assert.equal((await loginRaw(t, "repeater", { password: NEW_PASSWORD })).body.errors, undefined);
    });

    it("voids the links mailed before a login with the password, and only those", async () => {
      await registerVerified(t, "remembers", "remembers@example.com");
      await requestReset(t, "remembers@example.com");
      const beforeLogin = await latestToken(t, "remembers@example.com", RESET_SUBJECT);
      await login(t, "remembers");
      const afterLogin = await resetPassword(t, { token: beforeLogin, newPassword: NEW_PASSWORD });
      assert.deepEqual(refusal(afterLogin), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      assert.equal((await loginRaw(t, "remembers")).body.errors, undefined, "the refused link changed nothing");
      // A link requested after the login works.
      await requestReset(t, "remembers@example.com");
      const fresh = await latestToken(t, "remembers@example.com", RESET_SUBJECT);
      assert.notEqual(fresh, beforeLogin);
      assert.equal((await resetPassword(t, { token: fresh, newPassword: NEW_PASSWORD })).body.errors, undefined);
    });

    it("voids the links mailed before a changePassword", async () => {
      await registerVerified(t, "changes", "changes@example.com");
      const session = await login(t, "changes");
      await requestReset(t, "changes@example.com");
      const link = await latestToken(t, "changes@example.com", RESET_SUBJECT);
      const changed = await t.gql(`mutation($i: ChangePasswordInput!) { changePassword(input: $i) }`, {
        token: session.accessToken,
        variables: { i: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD } },
      });
      assert.equal(changed.body.errors, undefined, JSON.stringify(changed.body.errors));
      const refused = await resetPassword(t, { token: link, newPassword: "a third passphrase" });
      assert.deepEqual(refusal(refused), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      assert.equal((await loginRaw(t, "changes", { password: NEW_PASSWORD })).body.errors, undefined);
    });

    it("refuses an expired link with RESET_TOKEN_INVALID and leaves the password as it was", async () => {
      await registerVerified(t, "latecomer", "latecomer@example.com");
      await requestReset(t, "latecomer@example.com");
      const token = await latestToken(t, "latecomer@example.com", RESET_SUBJECT);
      clockOffsetMs = 30 * 60 * 1000 + 1000;
      try {
        const res = await resetPassword(t, { token, newPassword: NEW_PASSWORD });
        assert.deepEqual(refusal(res), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      } finally {
        clockOffsetMs = 0;
      }
      assert.equal((await loginRaw(t, "latecomer")).body.errors, undefined);
    });

    it("refuses a new password that breaks the rules with BAD_USER_INPUT, leaving the link usable", async () => {
      await registerVerified(t, "rulebreaker", "rules@example.com");
      await requestReset(t, "rules@example.com");
      const token = await latestToken(t, "rules@example.com", RESET_SUBJECT);
      for (const newPassword of ["short", "p".repeat(129)]) {
        const res = await resetPassword(t, { token, newPassword });
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
        assert.deepEqual(
          res.body.errors?.[0]?.extensions?.fields.map((f: { field: string }) => f.field),
          ["newPassword"],
        );
      }
      assert.equal((await resetPassword(t, { token, newPassword: NEW_PASSWORD })).body.errors, undefined);
    });

    it("refuses an address that is not one, or longer than 254 characters, with BAD_USER_INPUT before any work", async () => {
      const rows = (await outbox(t)).length;
      for (const email of ["not an address", "a@b", "@example.com", `${"a".repeat(64)}@${"d".repeat(186)}.com`]) {
        const res = await requestReset(t, email);
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"], email);
        assert.equal(res.body.errors?.[0]?.extensions?.fields[0].field, "email");
      }
      assert.equal((await outbox(t)).length, rows);
    });
  });
}
