// Single use under concurrency: one passkey answer finished by N requests at once yields exactly one
// session (the challenge is spent by one conditional UPDATE … RETURNING), on SQLite and PostgreSQL;
// the same for a second factor and for a registration.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { login, registerUser, sessionOf } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  authenticator,
  enroll,
  finishRegistration,
  finishSignIn,
  PASSKEY_ENV,
  refusalOf,
  sessionsOf,
  startRegistration,
  startSignIn,
  verifyWithPasskey,
} from "../helpers/passkeys.js";

const N = 12;

function outcomes(results: Array<{ body: { data?: any; errors?: unknown[] } }>, field: string) {
  const won = results.filter((r) => r.body.data?.[field]);
  const lost = results.filter((r) => !r.body.data?.[field]).map((r) => refusalOf(r as never));
  return { won: won.length, lost };
}

for (const kind of DATABASES) {
  describe(`passkey challenges under concurrency (${kind})`, () => {
    const t = useTestApp(kind, { env: PASSKEY_ENV });

    it(`one sign-in answer finished ${N} times at once: exactly one session`, async () => {
      const user = await registerUser(t, "race-sign-in");
      const device = authenticator();
      await enroll(t, user.accessToken, device);
      const response = device.get(await startSignIn(t, "race-sign-in"));
      const results = await Promise.all(Array.from({ length: N }, () => finishSignIn(t, response)));
      const { won, lost } = outcomes(results, "finishPasskeySignIn");
      assert.equal(won, 1);
      assert.deepEqual(lost, Array(N - 1).fill("UNAUTHENTICATED BAD_CREDENTIALS"));
      const sessions = (await sessionsOf(t, user.userId)).filter((s) => s.amr === "passkey");
      assert.equal(sessions.length, 1);
    });

    it(`one second-factor answer sent ${N} times at once: raised once`, async () => {
      const user = await registerUser(t, "race-mfa");
      const device = authenticator();
      await enroll(t, user.accessToken, device);
      const pending = await login(t, "race-mfa");
      const response = device.get(await startSignIn(t, "race-mfa"));
      const results = await Promise.all(
        Array.from({ length: N }, () => verifyWithPasskey(t, pending.accessToken, response)),
      );
      const { won, lost } = outcomes(results, "verifyMfaWithPasskey");
      assert.equal(won, 1);
      assert.deepEqual(lost, Array(N - 1).fill("UNAUTHENTICATED BAD_CREDENTIALS"));
      const refreshTokens = await t.app.database.db
        .selectFrom("refresh_tokens")
        .select("id")
        .where("session_id", "=", sessionOf(pending.accessToken))
        .execute();
      assert.equal(refreshTokens.length, 1, "one refresh token: the raised session's new one");
    });

    it(`one registration answer finished ${N} times at once: one passkey`, async () => {
      const user = await registerUser(t, "race-register");
      const device = authenticator();
      const answer = device.create(await startRegistration(t, user.accessToken));
      const results = await Promise.all(
        Array.from({ length: N }, (_, i) => finishRegistration(t, user.accessToken, answer, `try ${i}`)),
      );
      const { won, lost } = outcomes(results, "finishPasskeyRegistration");
      assert.equal(won, 1);
      assert.deepEqual(lost, Array(N - 1).fill("BAD_USER_INPUT response:verified"));
      const rows = await t.app.database.db
        .selectFrom("passkeys")
        .select("id")
        .where("user_id", "=", user.userId)
        .execute();
      assert.equal(rows.length, 1);
    });
  });
}
