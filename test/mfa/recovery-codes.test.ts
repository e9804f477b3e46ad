import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";

import { claimsOf, codes, login, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import {
  auditDetails,
  enrollUser,
  mfaSteps,
  RECOVERY_CODE_SHAPE,
  totpForStep,
  verifyMfa,
  verifyMfaRaw,
} from "../helpers/mfa.js";

/** Sessions racing one code: the brief's six. */
const RACERS = 6;

function assertInvalidCode(res: { body: { errors?: any[] } }): void {
  assert.deepEqual(codes(res as never), ["BAD_USER_INPUT"]);
  assert.equal(res.body.errors?.[0]?.extensions?.fields?.[0]?.rule, "valid");
}

for (const kind of DATABASES) {
  describe(`recovery codes (${kind})`, () => {
    const t = useTestApp(kind);
    // One after the other: concurrent logins of one name would run into the login throttle.
    const pendingSessions = async (username: string) => {
      const sessions = [];
      for (let i = 0; i < RACERS; i++) sessions.push(await login(t, username));
      for (const s of sessions) assert.equal(claimsOf(s.accessToken).mfa_pending, true);
      return sessions;
    };
    const remaining = async (token: string) =>
      (await t.gql(`{ me { recoveryCodesRemaining } }`, { token })).body.data.me.recoveryCodesRemaining;

    it("are 10 distinct codes of 60 random bits, shown grouped, stored only as SHA-256 hashes", async () => {
      const user = await registerUser(t, "code-keeper");
      const { recoveryCodes } = await enrollUser(t, user.accessToken);
      assert.equal(recoveryCodes.length, 10);
      assert.equal(new Set(recoveryCodes).size, 10);
      for (const code of recoveryCodes) assert.match(code, RECOVERY_CODE_SHAPE, "12 base32 characters: 60 bits");
      const rows = await t.app.database.db
        .selectFrom("mfa_recovery_codes")
        .select(["code_hash", "used_at"])
        .where("user_id", "=", user.userId)
        .execute();
      const expected = recoveryCodes.map((c) => createHash("sha256").update(c.replace(/-/g, "")).digest("hex"));
      assert.deepEqual(rows.map((r: { code_hash: string }) => r.code_hash).sort(), expected.sort());
      assert.ok(rows.every((r: { used_at: unknown }) => r.used_at === null));
    });

    it("raise a session with a code in any case, with or without dashes, once; the count left is the user's to see", async () => {
      const user = await registerUser(t, "recoverer");
      const enrolled = await enrollUser(t, user.accessToken);
      const before = await mfaSteps(t);
      const pending = await login(t, "recoverer");
      const code = enrolled.recoveryCodes[3]!;
      const payload = await verifyMfa(t, pending.accessToken, code.replace(/-/g, "").toUpperCase());
      assert.equal(payload.assurance, "AAL2");
      assert.deepEqual(claimsOf(payload.accessToken).amr, ["pwd", "recovery"]);
      assert.equal((await mfaSteps(t))["recovery/verified"], (before["recovery/verified"] ?? 0) + 1);
      assert.deepEqual(await auditDetails(t, user.userId, "RECOVERY_CODE_USED"), ["remaining=9"]);
      assert.equal(await remaining(payload.accessToken), 9);
      // Spent: refused as it was given, and as shown.
      const again = await login(t, "recoverer");
      assertInvalidCode(await verifyMfaRaw(t, again.accessToken, code));
      // Another user sees null and false through a post's author; the user sees the count.
      const stranger = await registerUser(t, "stranger");
      const post = await t.gql(`mutation { createPost(input: { title: "t", body: "b" }) { id } }`, {
        token: payload.accessToken,
      });
      assert.equal(post.body.errors, undefined, JSON.stringify(post.body.errors));
      const viaAuthor = await t.gql(
        `query($id: ID!) { post(id: $id) { author { mfaEnabled recoveryCodesRemaining } } }`,
        { token: stranger.accessToken, variables: { id: post.body.data.createPost.id } },
      );
      assert.deepEqual(viaAuthor.body.data, { post: { author: { mfaEnabled: false, recoveryCodesRemaining: null } } });
      const own = await t.gql(`query($id: ID!) { post(id: $id) { author { mfaEnabled recoveryCodesRemaining } } }`, {
        token: payload.accessToken,
        variables: { id: post.body.data.createPost.id },
      });
      assert.deepEqual(own.body.data, { post: { author: { mfaEnabled: true, recoveryCodesRemaining: 9 } } });
    });

    it("regenerateRecoveryCodes replaces every code: the old ones stop working, 10 new ones do", async () => {
      const user = await registerUser(t, "regenerator");
      const enrolled = await enrollUser(t, user.accessToken);
      const res = await t.gql(`mutation { regenerateRecoveryCodes }`, { token: user.accessToken });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const fresh: string[] = res.body.data.regenerateRecoveryCodes;
      assert.equal(fresh.length, 10);
      assert.equal(fresh.filter((c) => enrolled.recoveryCodes.includes(c)).length, 0);
      assert.equal(await remaining(user.accessToken), 10);
      const pending = await login(t, "regenerator");
      assertInvalidCode(await verifyMfaRaw(t, pending.accessToken, enrolled.recoveryCodes[0]!));
      assert.equal((await verifyMfa(t, pending.accessToken, fresh[0]!)).assurance, "AAL2");
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_ENROLLED"), [
        "method=totp sessions=0",
        "method=recovery codes=10",
      ]);
      // Without a second factor there is nothing to recover.
      const plain = await registerUser(t, "no-factor");
      const refused = await t.gql(`mutation { regenerateRecoveryCodes }`, { token: plain.accessToken });
      assert.deepEqual(refused.body.errors?.[0]?.extensions?.fields, [
        {
          field: "recoveryCodes",
          rule: "secondFactor",
          message: "need a second factor: enroll TOTP or a passkey first",
        },
      ]);
    });

    it(`lets exactly one of ${RACERS} pending sessions racing one recovery code become AAL2`, async (tc) => {
      const user = await registerUser(t, "recovery-racer");
      const enrolled = await enrollUser(t, user.accessToken);
      const sessions = await pendingSessions("recovery-racer");
      const code = enrolled.recoveryCodes[0]!;
      const results = await Promise.all(sessions.map((s) => verifyMfaRaw(t, s.accessToken, code)));
      const winners = results.filter((r) => r.body.data?.verifyMfa?.assurance === "AAL2");
      const refused = results.filter((r) => codes(r)[0] === "BAD_USER_INPUT");
      const message = `[${kind}] ${RACERS} sessions racing one recovery code: ${winners.length} AAL2, ${refused.length} refused`;
      tc.diagnostic(message);
      console.log(message);
      assert.equal(winners.length, 1);
      assert.equal(refused.length, RACERS - 1);
      const used = await t.app.database.db
        .selectFrom("mfa_recovery_codes")
        .select("used_at")
        .where("user_id", "=", user.userId)
        .where("used_at", "is not", null)
        .execute();
      assert.equal(used.length, 1);
      assert.deepEqual(await auditDetails(t, user.userId, "RECOVERY_CODE_USED"), ["remaining=9"]);
    });

    it(`lets exactly one of ${RACERS} pending sessions racing one TOTP code become AAL2`, async (tc) => {
      const user = await registerUser(t, "totp-racer");
      const enrolled = await enrollUser(t, user.accessToken);
      const sessions = await pendingSessions("totp-racer");
      const code = totpForStep(enrolled.secret, enrolled.lastStep + 1);
      const results = await Promise.all(sessions.map((s) => verifyMfaRaw(t, s.accessToken, code)));
      const winners = results.filter((r) => r.body.data?.verifyMfa?.assurance === "AAL2");
      const refused = results.filter((r) => codes(r)[0] === "BAD_USER_INPUT");
      const message = `[${kind}] ${RACERS} sessions racing one TOTP code: ${winners.length} AAL2, ${refused.length} refused`;
      tc.diagnostic(message);
      console.log(message);
      assert.equal(winners.length, 1);
      assert.equal(refused.length, RACERS - 1);
    });
  });
}
