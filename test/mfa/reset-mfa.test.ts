import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { rootToken, withRoot } from "../helpers/admin.js";
import {
  assertInvalidToken,
  claimsOf,
  codes,
  type GraphQLResponse,
  login,
  loginRaw,
  me,
  refresh,
  registerUser,
} from "../helpers/api.js";
import { type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { auditDetails, enrollUser, mfaSteps, signInAal2, verifyMfaRaw, wrongTotp } from "../helpers/mfa.js";
import { type ProcessResult, runNode } from "../helpers/processes.js";
import { connect } from "../helpers/ws.js";

// Next to this file's compiled output, wherever the build put it.
const CLI = new URL("../../src/cli.js", import.meta.url);

const RESET = `mutation($id: ID!) { resetUserMfa(userId: $id) }`;

/** A passkey row as passkeys/ writes one: resetUserMfa must remove it with the rest. */
async function addPasskeyRow(t: TestApp, userId: string): Promise<void> {
  await t.app.database.db
    .insertInto("passkeys")
    .values({
      id: randomUUID(),
      user_id: userId,
      credential_id: randomUUID(),
      public_key: "pk",
      device_type: "singleDevice",
      name: "laptop",
      created_at: new Date().toISOString(),
    })
    .execute();
}

async function factorRows(t: TestApp, userId: string): Promise<Record<string, number>> {
  const count = async (table: "mfa_totp" | "mfa_recovery_codes" | "passkeys") =>
    (await t.app.database.db.selectFrom(table).select("user_id").where("user_id", "=", userId).execute()).length;
  return { totp: await count("mfa_totp"), codes: await count("mfa_recovery_codes"), passkeys: await count("passkeys") };
}

/** Asks `me` on `t` every 10 ms until it is a 401 or two seconds have passed since `since`. */
async function refusedAfter(t: TestApp, token: string, since: number): Promise<{ res: GraphQLResponse; ms: number }> {
  for (;;) {
    const res = await me(t, token);
    const ms = performance.now() - since;
    if (res.status === 401 || ms >= 2000) return { res, ms };
    await sleep(10);
  }
}

for (const kind of DATABASES) {
  describe(`disableTotp and resetUserMfa (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ JWT_SECRET_KEY: "" }));

    it("disableTotp needs a valid code, then removes TOTP and recovery codes and ends the user's other sessions", async () => {
      const user = await registerUser(t, "disabler");
      const enrolled = await enrollUser(t, user.accessToken);
      const session = await signInAal2(t, "disabler", enrolled);
      const other = await signInAal2(t, "disabler", enrolled);
      const before = await mfaSteps(t);
      const wrong = await t.gql(`mutation($c: String!) { disableTotp(code: $c) }`, {
        token: session.accessToken,
        variables: { c: wrongTotp(enrolled.secret) },
      });
      assert.equal(wrong.body.errors?.[0]?.extensions?.fields?.[0]?.rule, "valid");
      assert.deepEqual(await factorRows(t, user.userId), { totp: 1, codes: 10, passkeys: 0 });
      const res = await t.gql(`mutation($c: String!) { disableTotp(code: $c) }`, {
        token: session.accessToken,
        variables: { c: enrolled.recoveryCodes[5] },
      });
      assert.deepEqual(res.body, { data: { disableTotp: true } });
      assert.deepEqual(await factorRows(t, user.userId), { totp: 0, codes: 0, passkeys: 0 });
      for (const token of [user.accessToken, other.accessToken])
        assertInvalidToken(await me(t, token), { reason: "SESSION_ENDED" });
      assert.equal((await me(t, session.accessToken)).status, 200, "the caller's session stays");
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_DISABLED"), ["method=totp recoveryCodes=10 sessions=2"]);
      assert.equal((await mfaSteps(t))["totp/removed"], (before["totp/removed"] ?? 0) + 1);
      // A password alone signs in again, owing nothing.
      const plain = await loginRaw(t, "disabler");
      assert.equal(claimsOf(plain.body.data.login.accessToken).aal, "aal1");
      assert.equal(claimsOf(plain.body.data.login.accessToken).mfa_pending, undefined);
      const again = await t.gql(`mutation($c: String!) { disableTotp(code: $c) }`, {
        token: session.accessToken,
        variables: { c: "123456" },
      });
      assert.equal(again.body.errors?.[0]?.extensions?.fields?.[0]?.rule, "enabled");
    });

    it("needs the second factor proven (AAL2) and a fresh token for disableTotp and regenerateRecoveryCodes", async () => {
      const user = await registerUser(t, "step-up");
      const enrolled = await enrollUser(t, user.accessToken);
      const pending = await login(t, "step-up");
      for (const operation of [`mutation { regenerateRecoveryCodes }`, `mutation { disableTotp(code: "123456") }`]) {
        const res = await t.gql(operation, { token: pending.accessToken });
        assert.deepEqual(codes(res), ["FORBIDDEN"], operation);
        assert.equal(res.body.errors?.[0]?.extensions?.reason, "MFA_REQUIRED");
      }
      const raised = await signInAal2(t, "step-up", enrolled);
      const refreshed = await refresh(t, raised.refreshToken);
      const stale = await t.gql(`mutation { regenerateRecoveryCodes }`, { token: refreshed.accessToken });
      assert.deepEqual(codes(stale), ["FRESH_TOKEN_REQUIRED"]);
      assert.deepEqual(await factorRows(t, user.userId), { totp: 1, codes: 10, passkeys: 0 }, "nothing changed");
      const done = await t.gql(`mutation { regenerateRecoveryCodes }`, { token: raised.accessToken });
      assert.equal(done.body.data?.regenerateRecoveryCodes?.length, 10, JSON.stringify(done.body.errors));
    });

    it("resetUserMfa (ADMIN) removes every factor and ends every session of the user; audited with the admin", async () => {
      const admin = await rootToken(t);
      const user = await registerUser(t, "locked-out-mfa");
      const enrolled = await enrollUser(t, user.accessToken);
      await addPasskeyRow(t, user.userId);
      const pending = await login(t, "locked-out-mfa");
      assert.deepEqual(await factorRows(t, user.userId), { totp: 1, codes: 10, passkeys: 1 });
      // An ADMIN sees who has a second factor and how many codes are left (one query for the page).
      const seen = async () =>
        (
          (await t.gql(`{ users(first: 100) { id mfaEnabled recoveryCodesRemaining } }`, { token: admin })).body.data
            .users as Array<{ id: string }>
        ).find((u) => u.id === user.userId);
      assert.deepEqual(await seen(), { id: user.userId, mfaEnabled: true, recoveryCodesRemaining: 10 });
      const byUser = await t.gql(RESET, { token: user.accessToken, variables: { id: user.userId } });
      assert.deepEqual(codes(byUser), ["FORBIDDEN"]);
      assert.equal(byUser.body.errors?.[0]?.extensions?.reason, "ROLE");
      const unknown = await t.gql(RESET, { token: admin, variables: { id: randomUUID() } });
      assert.deepEqual(codes(unknown), ["NOT_FOUND"]);
      const res = await t.gql(RESET, { token: admin, variables: { id: user.userId } });
      assert.deepEqual(res.body, { data: { resetUserMfa: true } });
      assert.deepEqual(await factorRows(t, user.userId), { totp: 0, codes: 0, passkeys: 0 });
      assert.deepEqual(await seen(), { id: user.userId, mfaEnabled: false, recoveryCodesRemaining: 0 });
      for (const token of [user.accessToken, pending.accessToken])
        assertInvalidToken(await me(t, token), { reason: "SESSION_ENDED" });
      const [detail] = await auditDetails(t, user.userId, "MFA_RESET_BY_ADMIN");
      const adminId = (await t.gql(`{ me { id } }`, { token: admin })).body.data.me.id;
      assert.equal(detail, `by=${adminId} totp=1 recoveryCodes=10 passkeys=1 sessions=2`);
      // The old codes are gone with the factor; a password alone signs in at AAL1.
      const fresh = await loginRaw(t, "locked-out-mfa");
      assert.equal(fresh.body.errors, undefined);
      assert.deepEqual(codes(await verifyMfaRaw(t, fresh.body.data.login.accessToken, enrolled.recoveryCodes[0]!)), [
        "BAD_USER_INPUT",
      ]);
    });

    it("npm run cli -- users reset-mfa --username U does the same, audited by=CLI", async () => {
      const user = await registerUser(t, "cli-reset");
      await enrollUser(t, user.accessToken);
      const cli = (args: string[]): Promise<ProcessResult> =>
        runNode(CLI, args, { env: t.database.env, cwd: t.database.dataDir });
      const result = await cli(["users", "reset-mfa", "--username", "CLI-RESET"]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { id: user.userId, username: "cli-reset", mfaReset: true });
      assert.deepEqual(await factorRows(t, user.userId), { totp: 0, codes: 0, passkeys: 0 });
      // The server learns of it like of another instance's change.
      assertInvalidToken((await refusedAfter(t, user.accessToken, performance.now())).res, { reason: "SESSION_ENDED" });
      assert.deepEqual(await auditDetails(t, user.userId, "MFA_RESET_BY_ADMIN"), [
        "by=CLI totp=1 recoveryCodes=10 passkeys=0 sessions=1",
      ]);
      const missing = await cli(["users", "reset-mfa", "--username", "nobody-here"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no user named "nobody-here"/);
    });
  });

  describe(`resetUserMfa seen by a second instance (${kind})`, () => {
    const [a, b] = useTwoTestApps(kind, withRoot());

    it("refuses the user's token (401 SESSION_ENDED) and closes their subscription (4403) on instance B within a second", async (tc) => {
      const user = await registerUser(a, "far-mfa");
      const enrolled = await enrollUser(a, user.accessToken);
      const session = await signInAal2(b, "far-mfa", enrolled);
      assert.equal((await me(b, session.accessToken)).status, 200);
      const ws = connect(b.url, { token: session.accessToken });
      await ws.connected;
      const admin = await rootToken(a);
      const started = performance.now();
      const res = await a.gql(RESET, { token: admin, variables: { id: user.userId } });
      const answered = performance.now();
      assert.deepEqual(res.body, { data: { resetUserMfa: true } });
      const refused = await refusedAfter(b, session.accessToken, started);
      assertInvalidToken(refused.res, { reason: "SESSION_ENDED" });
      const closed = await Promise.race([ws.closed, sleep(2000).then(() => undefined)]);
      assert.ok(closed, "the subscription socket closed");
      assert.equal(closed.code, 4403);
      assert.equal(closed.reason, "SESSION_ENDED");
      // Times from sending resetUserMfa to A; B is first asked once A has answered.
      const message =
        `[${kind}] resetUserMfa sent to A, answered after ${(answered - started).toFixed(0)} ms; on B the token ` +
        `was refused after ${refused.ms.toFixed(0)} ms, its socket closed (4403) after ${(closed.at - started).toFixed(0)} ms`;
      tc.diagnostic(message);
      console.log(message);
      assert.ok(refused.ms < 1000, message);
      assert.ok(closed.at - started < 1000, message);
    });
  });
}
