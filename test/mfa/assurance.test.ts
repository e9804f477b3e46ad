import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { claimsOf, PASSWORD, refreshRaw, registerUser } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const PAYLOAD = "accessToken refreshToken assurance mfaRequired user { id }";

function loginPayload(t: TestApp, username: string) {
  return t.gql(`mutation($input: LoginInput!) { login(input: $input) { ${PAYLOAD} } }`, {
    variables: { input: { username, password: PASSWORD } },
  });
}

/** Gives the user a second factor the way the stores record one: a confirmed TOTP row, or a passkey row. */
async function giveSecondFactor(t: TestApp, userId: string, kind: "totp" | "passkey"): Promise<void> {
  const now = new Date().toISOString();
  const db = t.app.database.db;
  if (kind === "totp") {
    await db
      .insertInto("mfa_totp")
      .values({ user_id: userId, secret_enc: "k1:test", created_at: now, confirmed_at: now })
      .execute();
  } else {
    await db
      .insertInto("passkeys")
      .values({
        id: `pk-${userId}`,
        user_id: userId,
        credential_id: `cred-${userId}`,
        public_key: "AA",
        device_type: "singleDevice",
        name: "test key",
        created_at: now,
      })
      .execute();
  }
}

for (const kind of DATABASES) {
  describe(`the assurance of every session, decided where its tokens are issued (${kind})`, () => {
    const t = useTestApp(kind);

    it("gives a user without a second factor AAL1 with nothing owed, as before: aal1 and amr pwd in the token", async () => {
      await registerUser(t, "plain");
      const res = await loginPayload(t, "plain");
      const payload = res.body.data.login;
      assert.equal(payload.assurance, "AAL1");
      assert.equal(payload.mfaRequired, false);
      const claims = claimsOf(payload.accessToken);
      assert.equal(claims.aal, "aal1");
      assert.deepEqual(claims.amr, ["pwd"]);
      assert.equal(claims.mfa_pending, undefined);
    });

    for (const factor of ["totp", "passkey"] as const) {
      it(`makes a password sign-in of a user with a ${factor} an AAL1 session that owes it, and a refresh keeps it so`, async () => {
        const user = await registerUser(t, `with-${factor}`);
        await giveSecondFactor(t, user.userId, factor);
        const payload = (await loginPayload(t, `with-${factor}`)).body.data.login;
        assert.equal(payload.assurance, "AAL1");
        assert.equal(payload.mfaRequired, true);
        assert.equal(claimsOf(payload.accessToken).aal, "aal1");
        assert.equal(claimsOf(payload.accessToken).mfa_pending, true);

        const refreshed = await refreshRaw(t, payload.refreshToken);
        assert.equal(refreshed.body.errors, undefined);
        const again = await t.gql(`mutation($r: String!) { refreshToken(refreshToken: $r) { ${PAYLOAD} } }`, {
          variables: { r: refreshed.body.data.refreshToken.refreshToken },
        });
        const next = again.body.data.refreshToken;
        assert.equal(next.assurance, "AAL1", "a refresh never raises a session");
        assert.equal(next.mfaRequired, true);
        assert.equal(claimsOf(next.accessToken).mfa_pending, true);
        const row = await t.app.database.db
          .selectFrom("sessions")
          .select(["aal", "amr", "mfa_pending"])
          .where("id", "=", claimsOf(next.accessToken).sid)
          .executeTakeFirstOrThrow();
        assert.deepEqual({ ...row, mfa_pending: Number(row.mfa_pending) }, { aal: 1, amr: "pwd", mfa_pending: 1 });
      });
    }

    it("leaves the sessions started before the factor as they were (the factor's enrollment ends them, not this rule)", async () => {
      const user = await registerUser(t, "before");
      await giveSecondFactor(t, user.userId, "totp");
      const refreshed = await refreshRaw(t, user.refreshToken);
      assert.equal(claimsOf(refreshed.body.data.refreshToken.accessToken).mfa_pending, undefined);
    });

    it("does not count an unconfirmed TOTP enrollment as a second factor", async () => {
      const user = await registerUser(t, "unconfirmed");
      await t.app.database.db
        .insertInto("mfa_totp")
        .values({
          user_id: user.userId,
          secret_enc: "k1:test",
          created_at: new Date().toISOString(),
          confirmed_at: null,
        })
        .execute();
      const payload = (await loginPayload(t, "unconfirmed")).body.data.login;
      assert.equal(payload.mfaRequired, false);
    });
  });
}
