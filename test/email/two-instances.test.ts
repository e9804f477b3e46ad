import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { assertInvalidToken, type GraphQLResponse, login, me } from "../helpers/api.js";
import { type TestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { latestToken, registerVerified, requestReset, RESET_SUBJECT, resetPassword } from "./email-helpers.js";

/** The contract: ended credentials are refused on every instance within one second. */
const WITHIN_MS = 1000;

/** Asks `me` on `t` with `token` every 10 ms until it is a 401 or WITHIN_MS have passed since `since`. */
async function refusedWithin(t: TestApp, token: string, since: number): Promise<{ res: GraphQLResponse; ms: number }> {
  for (;;) {
    const res = await me(t, token);
    const ms = Math.round(performance.now() - since);
    if (res.status === 401 || ms >= WITHIN_MS) return { res, ms };
    await sleep(10);
  }
}

for (const kind of DATABASES) {
  describe(`a password reset seen by a second instance (${kind})`, () => {
    const [a, b] = useTwoTestApps(kind, { env: { EMAIL_REQUESTS_MAX_PER_IP: "100000" } });

    it("refuses on instance B, within a second, the sessions and API tokens a reset on instance A ended", async (tc) => {
      const user = await registerVerified(a, "far-away", "far-away@example.com");
      const other = await login(b, "far-away");
      const created = await a.gql(
        `mutation { createApiToken(input: { name: "cron", scopes: [PROFILE_READ] }) { token } }`,
        {
          token: user.accessToken,
        },
      );
      const apiToken = created.body.data.createApiToken.token as string;
      for (const token of [user.accessToken, other.accessToken, apiToken])
        assert.equal((await me(b, token)).status, 200);

      await requestReset(a, "far-away@example.com");
      const res = await resetPassword(a, {
        token: await latestToken(a, "far-away@example.com", RESET_SUBJECT),
        newPassword: "reset on instance A",
      });
      const answeredAt = performance.now();
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));

      const session = await refusedWithin(b, user.accessToken, answeredAt);
      assertInvalidToken(session.res, { reason: "SESSION_ENDED" });
      const otherSession = await refusedWithin(b, other.accessToken, answeredAt);
      assertInvalidToken(otherSession.res, { reason: "SESSION_ENDED" });
      const api = await refusedWithin(b, apiToken, answeredAt);
      assertInvalidToken(api.res, { reason: "API_TOKEN_REVOKED" });
      // The reset's own session works on B.
      assert.equal((await me(b, res.body.data.resetPassword.accessToken)).status, 200);
      const message = `[${kind}] reset on A -> 401 on B: session ${session.ms} ms, API token ${api.ms} ms after A answered`;
      tc.diagnostic(message);
      console.log(message);
    });
  });
}
