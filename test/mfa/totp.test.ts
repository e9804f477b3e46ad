import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  assertInvalidToken,
  claimsOf,
  codes,
  login,
  loginRaw,
  me,
  refresh,
  refreshRaw,
  registerUser,
} from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  auditDetails,
  confirmTotpRaw,
  enrollTotp,
  enrollTotpRaw,
  enrollUser,
  mfaSteps,
  stepAt,
  TOTP_PERIOD_MS,
  totpForStep,
  verifyMfa,
  verifyMfaRaw,
  wrongTotp,
} from "../helpers/mfa.js";

/** The BAD_USER_INPUT every wrong, reused or malformed code gets. */
function assertInvalidCode(res: { body: { data?: any; errors?: any[] } }): void {
  assert.deepEqual(codes(res as never), ["BAD_USER_INPUT"]);
  assert.deepEqual(res.body.errors?.[0]?.extensions?.fields, [
    { field: "code", rule: "valid", message: "is not a valid code" },
  ]);
}

for (const kind of DATABASES) {
  describe(`TOTP (${kind})`, () => {
    // The app's clock runs with the wall clock, moved on by whole steps where a test needs new codes.
    let shift = 0;
    const now = () => Date.now() + shift;
    const t = useTestApp(kind, { now });
    const row = (userId: string) =>
      t.app.database.db.selectFrom("mfa_totp").selectAll().where("user_id", "=", userId).executeTakeFirst();

    it("enrolls with a base32 secret and an otpauth URI, stores the secret only encrypted, and is no factor until confirmed", async () => {
      const user = await registerUser(t, "enroller");
      const { secret, otpauthUri } = await enrollTotp(t, user.accessToken);
      assert.match(secret, /^[A-Z2-7]{32}$/, "160 bits in base32 without padding");
      const uri = new URL(otpauthUri);
      assert.equal(uri.protocol, "otpauth:");
      assert.equal(uri.host, "totp");
      assert.equal(decodeURIComponent(uri.pathname), "/graphql-token-auth:enroller");
      assert.deepEqual(Object.fromEntries(uri.searchParams), {
        issuer: "graphql-token-auth",
        algorithm: "SHA1",
        secret,
        period: "30",
        digits: "6",
      });
      const stored = await row(user.userId);
      assert.ok(stored);
      assert.equal(stored.confirmed_at, null);
      assert.match(stored.secret_enc, /^v1\.[0-9a-f]{8}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      assert.ok(!stored.secret_enc.includes(secret));
      // The generated key is private to the server.
      assert.equal(statSync(join(t.database.dataDir, "mfa-key")).mode & 0o777, 0o600);
      // Unconfirmed: a password still signs in at AAL1 with nothing owed.
      const res = await loginRaw(t, "enroller");
      assert.equal(claimsOf(res.body.data.login.accessToken).aal, "aal1");
      assert.equal(claimsOf(res.body.data.login.accessToken).mfa_pending, undefined);
      const flags = await t.gql(`{ me { mfaEnabled recoveryCodesRemaining } }`, { token: user.accessToken });
      assert.deepEqual(flags.body.data, { me: { mfaEnabled: false, recoveryCodesRemaining: 0 } });
    });

    it("replaces an unconfirmed enrollment: the first secret's code no longer confirms, the second's does", async () => {
      const user = await registerUser(t, "re-enroller");
      const first = await enrollTotp(t, user.accessToken);
      const second = await enrollTotp(t, user.accessToken);
      assert.notEqual(first.secret, second.secret);
      const step = stepAt(now());
      const stale = await confirmTotpRaw(t, user.accessToken, totpForStep(first.secret, step));
      assertInvalidCode(stale);
      assert.equal((await row(user.userId))?.confirmed_at, null, "a wrong code confirms nothing");
      const res = await confirmTotpRaw(t, user.accessToken, totpForStep(second.secret, step));
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.confirmTotp.length, 10);
    });

    it("needs a fresh session token to enroll, and refuses a second enrollment once confirmed", async () => {
      const user = await registerUser(t, "stale-enroller");
      const refreshed = await refresh(t, user.refreshToken);
      assert.deepEqual(codes(await enrollTotpRaw(t, refreshed.accessToken)), ["FRESH_TOKEN_REQUIRED"]);
      await enrollUser(t, user.accessToken, { now });
      const again = await enrollTotpRaw(t, user.accessToken);
      assert.deepEqual(codes(again), ["BAD_USER_INPUT"]);
      assert.deepEqual(again.body.errors?.[0]?.extensions?.fields, [
        { field: "totp", rule: "enabled", message: "is already enabled: disable it (disableTotp) to enroll again" },
      ]);
      const noPending = await confirmTotpRaw(t, user.accessToken, "123456");
      assert.equal(noPending.body.errors?.[0]?.extensions?.fields?.[0]?.rule, "pending");
    });

    it("confirms: 10 recovery codes, the session AAL2 with a new refresh token, the user's other sessions ended, audited", async () => {
      const user = await registerUser(t, "confirmer");
      const other = await login(t, "confirmer");
      const before = await mfaSteps(t);
      const enrolled = await enrollUser(t, user.accessToken, { now });
      assert.equal(new Set(enrolled.recoveryCodes).size, 10);
      const session = await t.app.database.db
        .selectFrom("sessions")
        .select(["aal", "amr", "mfa_pending"])
        .where("id", "=", claimsOf(user.accessToken).sid)
        .executeTakeFirstOrThrow();
      assert.deepEqual(
        { ...session, aal: Number(session.aal), mfa_pending: Number(session.mfa_pending) },
        {
          aal: 2,
          amr: "pwd otp",
          mfa_pending: 0,
        },
      );
      // The AAL1 refresh token is spent; the other (password-only) session ended.
      assert.deepEqual(codes(await refreshRaw(t, user.refreshToken)), ["UNAUTHENTICATED"]);
      assertInvalidToken(await me(t, other.accessToken), { reason: "SESSION_ENDED" });
      assert.equal((await me(t, user.accessToken)).status, 200, "the current session stays");
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_ENROLLED"), ["method=totp sessions=1"]);
      assert.equal((await mfaSteps(t))["totp/enrolled"], (before["totp/enrolled"] ?? 0) + 1);
      const flags = await t.gql(`{ me { mfaEnabled recoveryCodesRemaining } }`, { token: user.accessToken });
      assert.deepEqual(flags.body.data, { me: { mfaEnabled: true, recoveryCodesRemaining: 10 } });
    });

    it("signs in with a password at AAL1 owing the factor, and verifyMfa raises that session to AAL2", async () => {
      const user = await registerUser(t, "verifier");
      const enrolled = await enrollUser(t, user.accessToken, { now });
      const pending = await loginRaw(t, "verifier");
      const claims = claimsOf(pending.body.data.login.accessToken);
      assert.equal(claims.aal, "aal1");
      assert.equal(claims.mfa_pending, true);
      const payload = await verifyMfa(t, pending.body.data.login.accessToken, enrolled.nextCode());
      assert.equal(payload.assurance, "AAL2");
      assert.equal(payload.mfaRequired, false);
      const raised = claimsOf(payload.accessToken);
      assert.equal(raised.sid, claims.sid, "the same session");
      assert.equal(raised.aal, "aal2");
      assert.deepEqual(raised.amr, ["pwd", "otp"]);
      assert.deepEqual(codes(await refreshRaw(t, pending.body.data.login.refreshToken)), ["UNAUTHENTICATED"]);
      assert.equal(claimsOf((await refresh(t, payload.refreshToken)).accessToken).aal, "aal2");
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_VERIFIED"), ["method=totp"]);
    });

    it("accepts each code once per user, even from another session, and one step either side but not two", async () => {
      const user = await registerUser(t, "once-only");
      const enrolled = await enrollUser(t, user.accessToken, { now });
      const a = await login(t, "once-only");
      const b = await login(t, "once-only");
      // The confirming code's step is spent: the same code again is refused.
      assertInvalidCode(await verifyMfaRaw(t, a.accessToken, totpForStep(enrolled.secret, enrolled.lastStep)));
      const code = enrolled.nextCode();
      assert.equal((await verifyMfa(t, a.accessToken, code)).assurance, "AAL2");
      assertInvalidCode(await verifyMfaRaw(t, b.accessToken, code));
      // Later, a code of the current step minus two is too old; minus one still works.
      shift += 3 * TOTP_PERIOD_MS;
      const step = stepAt(now());
      assertInvalidCode(await verifyMfaRaw(t, b.accessToken, totpForStep(enrolled.secret, step - 2)));
      assert.equal((await verifyMfa(t, b.accessToken, totpForStep(enrolled.secret, step - 1))).assurance, "AAL2");
      const c = await login(t, "once-only");
      assertInvalidCode(await verifyMfaRaw(t, c.accessToken, totpForStep(enrolled.secret, step + 2)));
      assert.equal((await verifyMfa(t, c.accessToken, totpForStep(enrolled.secret, step + 1))).assurance, "AAL2");
      // Step + 1 was accepted: the current step's code, earlier, is refused from then on.
      const d = await login(t, "once-only");
      assertInvalidCode(await verifyMfaRaw(t, d.accessToken, totpForStep(enrolled.secret, step)));
      assertInvalidCode(await verifyMfaRaw(t, d.accessToken, "12345"));
      assertInvalidCode(await verifyMfaRaw(t, d.accessToken, wrongTotp(enrolled.secret, now())));
      assert.deepEqual(codes(await verifyMfaRaw(t, d.accessToken, "1".repeat(65))), ["BAD_USER_INPUT"]);
    });

    it("refuses a wrong code, audited and counted, and takes codes with spaces as apps show them", async () => {
      const user = await registerUser(t, "typo");
      const enrolled = await enrollUser(t, user.accessToken, { now });
      const before = await mfaSteps(t);
      const pending = await login(t, "typo");
      assertInvalidCode(await verifyMfaRaw(t, pending.accessToken, wrongTotp(enrolled.secret, now())));
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_FAILED"), ["reason=WRONG_CODE kind=totp"]);
      assert.equal((await mfaSteps(t))["totp/failed"], (before["totp/failed"] ?? 0) + 1);
      const code = enrolled.nextCode();
      const spaced = `${code.slice(0, 3)} ${code.slice(3)}`;
      assert.equal((await verifyMfa(t, pending.accessToken, spaced)).assurance, "AAL2");
    });
  });
}
