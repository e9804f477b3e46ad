import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { login, loginRaw, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";
import { type ProcessResult, runNode } from "../helpers/processes.js";
import { refusal, resetPassword } from "./email-helpers.js";

// Next to this file's compiled output, wherever the build put it.
const CLI = new URL("../../src/cli.js", import.meta.url);
const ROOT = { username: "root", password: "root password 1" };

for (const kind of DATABASES) {
  describe(`npm run cli -- users reset-link (${kind})`, () => {
    const t = useTestApp(kind, {
      env: { JWT_SECRET_KEY: "", ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password },
    });
    const cli = (args: string[]): Promise<ProcessResult> =>
      runNode(CLI, args, { env: t.database.env, cwd: t.database.dataDir });

    it("prints a one-time reset link that sets the password; an older printed link is void; audited by=CLI", async () => {
      const user = await registerUser(t, "locked-out");
      const first = await cli(["users", "reset-link", "--username", "LOCKED-OUT"]);
      assert.equal(first.code, 0, first.stderr);
      const second = await cli(["users", "reset-link", "--username", "locked-out"]);
      assert.equal(second.code, 0, second.stderr);
      const linkShape = /^http:\/\/localhost:4000\/reset-password#token=(prt_[A-Za-z0-9_-]{43})\n$/;
      assert.match(first.stdout, linkShape);
      assert.match(second.stdout, linkShape);
      assert.doesNotMatch(first.stderr + second.stderr, /prt_/, "the token is only on stdout");
      const older = linkShape.exec(first.stdout)![1]!;
      const newer = linkShape.exec(second.stdout)![1]!;

      const voided = await resetPassword(t, { token: older, newPassword: "chosen by the user" });
      assert.deepEqual(refusal(voided), { codes: ["UNAUTHENTICATED"], reason: "RESET_TOKEN_INVALID" });
      const res = await resetPassword(t, { token: newer, newPassword: "chosen by the user" });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.resetPassword.user.id, user.userId);
      assert.equal((await loginRaw(t, "locked-out", { password: "chosen by the user" })).body.errors, undefined);
      const again = await resetPassword(t, { token: newer, newPassword: "another one" });
      assert.deepEqual(refusal(again).reason, "RESET_TOKEN_INVALID");

      const admin = await login(t, ROOT.username, { password: ROOT.password });
      const events = await t.gql(
        `query($id: ID!) { auditEvents(userId: $id, type: "PASSWORD_RESET_REQUESTED") { detail } }`,
        {
          token: admin.accessToken,
          variables: { id: user.userId },
        },
      );
      assert.deepEqual(events.body.data.auditEvents, [
        { detail: "by=CLI expires=1800" },
        { detail: "by=CLI expires=1800" },
      ]);
    });

    it("says so and exits 1 for an unknown user, printing no link", async () => {
      const result = await cli(["users", "reset-link", "--username", "nobody-here"]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^no user named "nobody-here"$/m);
      assert.equal(result.stdout, "");
      const usage = await cli(["users", "reset-link"]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /users reset-link needs --username/);
    });
  });
}
