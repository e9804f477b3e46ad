import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";

import { latestToken, registerVerified, requestReset, RESET_SUBJECT } from "../email/email-helpers.js";
import { claimsOf, codes, loginRaw } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { auditDetails, enrollUser, MFA_PAYLOAD, wrongTotp } from "../helpers/mfa.js";

function reset(t: TestApp, input: { token: string; newPassword: string; mfaCode?: string }) {
  return t.gql(`mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { ${MFA_PAYLOAD} } }`, {
    variables: { input },
  });
}

/** The FORBIDDEN MFA_REQUIRED a reset without a valid second factor gets. */
function assertMfaRequired(res: Awaited<ReturnType<typeof reset>>): void {
  assert.deepEqual(codes(res), ["FORBIDDEN"]);
  assert.equal(res.body.errors?.[0]?.extensions?.reason, "MFA_REQUIRED");
  assert.equal(res.body.data, null);
}

async function passwordHash(t: TestApp, userId: string): Promise<string> {
  const row = await t.app.database.db
    .selectFrom("users")
    .select("password_hash")
    .where("id", "=", userId)
    .executeTakeFirstOrThrow();
  return row.password_hash;
}

async function resetLink(t: TestApp, email: string): Promise<string> {
  const asked = await requestReset(t, email);
  assert.deepEqual(asked.body, { data: { requestPasswordReset: true } });
  return latestToken(t, email, RESET_SUBJECT);
}

for (const kind of DATABASES) {
  describe(`resetPassword with a second factor (${kind})`, () => {
    const t = useTestApp(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it("refuses an enrolled user's reset without mfaCode or with a wrong one, leaving the link usable; a TOTP code then makes an AAL2 session", async () => {
      const user = await registerVerified(t, "reset-totp", "reset-totp@example.com");
      const enrolled = await enrollUser(t, user.accessToken);
      const token = await resetLink(t, "reset-totp@example.com");
      const hashBefore = await passwordHash(t, user.userId);
      assertMfaRequired(await reset(t, { token, newPassword: "a new passphrase" }));
      assertMfaRequired(
        await reset(t, { token, newPassword: "a new passphrase", mfaCode: wrongTotp(enrolled.secret) }),
      );
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_FAILED"), ["reason=WRONG_CODE kind=totp"]);
      // Nothing changed (a login would void the link, so the stored hash is read instead).
      assert.equal(await passwordHash(t, user.userId), hashBefore);
      const res = await reset(t, { token, newPassword: "a new passphrase", mfaCode: enrolled.nextCode() });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const payload = res.body.data.resetPassword;
      assert.equal(payload.assurance, "AAL2");
      assert.equal(payload.mfaRequired, false);
      assert.deepEqual(claimsOf(payload.accessToken).amr, ["reset", "otp"]);
      assert.equal((await loginRaw(t, "reset-totp", { password: "a new passphrase" })).body.errors, undefined);
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_VERIFIED"), ["method=totp"]);
    });

    it("takes a recovery code as mfaCode, spending it", async () => {
      const user = await registerVerified(t, "reset-recovery", "reset-recovery@example.com");
      const enrolled = await enrollUser(t, user.accessToken);
      const token = await resetLink(t, "reset-recovery@example.com");
      const code = enrolled.recoveryCodes[2]!;
      const res = await reset(t, { token, newPassword: "recovered passphrase", mfaCode: code });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.deepEqual(claimsOf(res.body.data.resetPassword.accessToken).amr, ["reset", "recovery"]);
      assert.deepEqual(await auditDetails(t, user.userId, "RECOVERY_CODE_USED"), ["remaining=9"]);
      const again = await resetLink(t, "reset-recovery@example.com");
      assertMfaRequired(await reset(t, { token: again, newPassword: "another passphrase", mfaCode: code }));
    });

    it("leaves a user without a second factor as before: no code needed, AAL1 with nothing owed", async () => {
      await registerVerified(t, "reset-plain", "reset-plain@example.com");
      const token = await resetLink(t, "reset-plain@example.com");
      const res = await reset(t, { token, newPassword: "plain new passphrase", mfaCode: "123456" });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.resetPassword.assurance, "AAL1");
      assert.equal(res.body.data.resetPassword.mfaRequired, false);
      assert.deepEqual(claimsOf(res.body.data.resetPassword.accessToken).amr, ["reset"]);
    });

    it("refuses a passkey-only user's reset with MFA_REQUIRED (they sign in with the passkey instead)", async () => {
      const user = await registerVerified(t, "reset-passkey", "reset-passkey@example.com");
      await t.app.database.db
        .insertInto("passkeys")
        .values({
          id: randomUUID(),
          user_id: user.userId,
          credential_id: randomUUID(),
          public_key: "pk",
          device_type: "multiDevice",
          name: "phone",
          created_at: new Date().toISOString(),
        })
        .execute();
      const token = await resetLink(t, "reset-passkey@example.com");
      const res = await reset(t, { token, newPassword: "passkey user passphrase", mfaCode: "123456" });
      assertMfaRequired(res);
      assert.match(res.body.errors?.[0]?.message ?? "", /passkeys only signs in with a passkey/);
    });
  });
}
