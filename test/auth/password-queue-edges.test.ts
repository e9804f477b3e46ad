// PASSWORD_QUEUE_MAX's refusal (503 SERVICE_UNAVAILABLE, before any password work) spends nothing a
// client would need for the retry: changePassword's and deleteAccount's WRITES_MAX_PER_USER unit and register's
// EMAIL_REQUESTS_MAX_PER_IP unit are given back, and resetPassword hashes before it checks the second
// factor, so the recovery code (or TOTP code) it was sent with still works.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { defaultPasswordThreads, PASSWORD_QUEUE_FULL_MESSAGE } from "../../src/users/passwords.js";
import {
  latestToken,
  registerVerified,
  registerWithEmailRaw,
  requestReset,
  RESET_SUBJECT,
} from "../email/email-helpers.js";
import { codes, type GraphQLResponse, loginRaw } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { enrollUser, MFA_PAYLOAD } from "../helpers/mfa.js";

// Far more requests at once than the threads and the one waiting place can take, whatever the cores.
const BURST = defaultPasswordThreads() * 8 + 24;
const WRONG = "not the password at all";

/** Whether `res` is the queue's refusal; fails the test on a 503 of any other shape. */
function refusedByQueue(res: GraphQLResponse): boolean {
  if (res.status !== 503) return false;
  assert.equal(res.headers.get("retry-after"), "5");
  assert.equal(res.body.errors?.[0]?.message, PASSWORD_QUEUE_FULL_MESSAGE);
  assert.deepEqual(codes(res), ["SERVICE_UNAVAILABLE"]);
  return true;
}

function changePassword(t: TestApp, token: string, currentPassword: string) {
  return t.gql(`mutation($input: ChangePasswordInput!) { changePassword(input: $input) }`, {
    token,
    variables: { input: { currentPassword, newPassword: "another long passphrase" } },
  });
}

function reset(t: TestApp, input: { token: string; newPassword: string; mfaCode: string }) {
  return t.gql(`mutation($input: ResetPasswordInput!) { resetPassword(input: $input) { ${MFA_PAYLOAD} } }`, {
    variables: { input },
  });
}

/**
 * Keeps `inFlight` failing logins of `username` under way until `stop` is called, so the queue of
 * password checks stays full: each answer starts the next login.
 */
function keepQueueFull(t: TestApp, username: string, inFlight: number): () => Promise<void> {
  let running = true;
  const lanes = Array.from({ length: inFlight }, async () => {
    while (running) await loginRaw(t, username, { password: WRONG });
  });
  return async () => {
    running = false;
    await Promise.all(lanes);
  };
}

for (const kind of DATABASES) {
  describe(`what a PASSWORD_QUEUE_MAX refusal spends (${kind})`, () => {
    const writesMax = BURST + 5;
    const t = useTestApp(kind, {
      env: {
        PASSWORD_QUEUE_MAX: "1",
        WRITES_MAX_PER_USER: String(writesMax),
        EMAIL_REQUESTS_MAX_PER_IP: String(BURST + 5),
        LOGIN_MAX_FAILURES_PER_USER_IP: "100000",
        LOGIN_MAX_FAILURES_PER_IP: "100000",
      },
    });

    /**
     * A burst of `attempt` (a wrong password each time) past the queue: some refused, the rest
     * BAD_USER_INPUT on `field`; then exactly writesMax - (those checked) more attempts are checked
     * before RATE_LIMITED, so only the checked ones were charged.
     */
    async function burstOnWrites(attempt: () => Promise<GraphQLResponse>, field: string): Promise<void> {
      const answers = await Promise.all(Array.from({ length: BURST }, attempt));
      let refused = 0;
      let checked = 0;
      for (const res of answers) {
        if (refusedByQueue(res)) refused++;
        else {
          assert.deepEqual(codes(res), ["BAD_USER_INPUT"], JSON.stringify(res.body.errors));
          assert.equal(res.body.errors![0]!.extensions!.fields[0].field, field);
          checked++;
        }
      }
      assert.ok(refused > 0, `some of ${BURST} refused`);
      for (let i = checked; i < writesMax; i++) {
        const res = await attempt();
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"], `attempt #${i + 1}: ${JSON.stringify(res.body.errors)}`);
      }
      assert.deepEqual(codes(await attempt()), ["RATE_LIMITED"]);
    }

    it("gives changePassword's WRITES_MAX_PER_USER unit back when the queue turns it away", async () => {
      const { token } = await t.register("changer");
      await burstOnWrites(() => changePassword(t, token, WRONG), "currentPassword");
    });

    it("gives deleteAccount's WRITES_MAX_PER_USER unit back when the queue turns it away", async () => {
      const { token } = await t.register("deleter");
      const deleteAccount = () =>
        t.gql(`mutation($password: String!) { deleteAccount(password: $password) }`, {
          token,
          variables: { password: WRONG },
        });
      await burstOnWrites(deleteAccount, "password");
    });

    it("gives register's EMAIL_REQUESTS_MAX_PER_IP unit back when the queue turns it away", async () => {
      const answers = await Promise.all(
        Array.from({ length: BURST }, (_, i) => registerWithEmailRaw(t, `burst-${i}`, `burst-${i}@example.com`)),
      );
      let refused = 0;
      let registered = 0;
      for (const res of answers) {
        if (refusedByQueue(res)) refused++;
        else {
          assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
          registered++;
        }
      }
      assert.ok(refused > 0, `some of ${BURST} refused`);
      for (let i = registered; i < BURST + 5; i++) {
        const res = await registerWithEmailRaw(t, `after-${i}`, `after-${i}@example.com`);
        assert.equal(res.body.errors, undefined, `registration #${i + 1}: ${JSON.stringify(res.body.errors)}`);
      }
      assert.deepEqual(codes(await registerWithEmailRaw(t, "one-too-many", "one-too-many@example.com")), [
        "RATE_LIMITED",
      ]);
    });
  });

  describe(`a resetPassword the password queue turns away (${kind})`, () => {
    const t = useTestApp(kind, {
      env: {
        PASSWORD_QUEUE_MAX: "1",
        EMAIL_REQUESTS_MAX_PER_IP: "100000",
        LOGIN_MAX_FAILURES_PER_USER_IP: "100000",
        LOGIN_MAX_FAILURES_PER_IP: "100000",
      },
    });

    it("leaves resetPassword's recovery code unspent when the queue turns the reset away", async () => {
      await t.register("pump");
      const user = await registerVerified(t, "resetter", "resetter@example.com");
      const { recoveryCodes } = await enrollUser(t, user.accessToken);
      // Each try needs the queue full when the reset's hash is asked for; a reset served anyway
      // (the queue had a place at that moment) spends its link and code, and the next try uses new ones.
      for (const [i, code] of recoveryCodes.slice(0, 5).entries()) {
        assert.equal((await requestReset(t, "resetter@example.com")).status, 200);
        const token = await latestToken(t, "resetter@example.com", RESET_SUBJECT);
        const stop = keepQueueFull(t, "pump", defaultPasswordThreads() * 4 + 8);
        const first = await reset(t, { token, newPassword: `passphrase number ${i}`, mfaCode: code });
        await stop();
        if (!refusedByQueue(first)) continue;
        const retry = await reset(t, { token, newPassword: `passphrase number ${i}`, mfaCode: code });
        assert.equal(retry.body.errors, undefined, JSON.stringify(retry.body.errors));
        assert.deepEqual(retry.body.data.resetPassword.user, { id: user.userId, username: "resetter" });
        assert.equal(retry.body.data.resetPassword.assurance, "AAL2");
        assert.equal((await loginRaw(t, "resetter", { password: `passphrase number ${i}` })).status, 200);
        return;
      }
      assert.fail("the queue never turned a reset away in 5 tries");
    });
  });
}
