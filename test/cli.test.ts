import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { DEV_SECRET_FILE, loadKeyRing } from "../src/access/keys.js";
import { Role } from "../src/access/roles.js";
import { createTokenService } from "../src/access/tokens.js";
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../src/config.js";
import { loadConfig } from "../src/load-config.js";
import { listUsernames } from "./helpers/api.js";
import { useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";
import { payloadOf, withClaims } from "./helpers/jwt.js";
import { type ProcessResult, runNode } from "./helpers/processes.js";

// Next to this file's compiled output, wherever the build put it.
const CLI = new URL("../src/cli.js", import.meta.url);

const OPERATOR_PASSWORD = "operator password 1";
const STDIN_PASSWORD = "piped in password";
const SHORT_PASSWORD = "tiny pw";
const PASSWORDS = [OPERATOR_PASSWORD, STDIN_PASSWORD, SHORT_PASSWORD];

const LOGIN = `mutation($input: LoginInput!) { login(input: $input) { accessToken user { id username roles } } }`;

/** The line of `stderr` that reports a refused token. */
function invalidLine(result: ProcessResult): string | undefined {
  return result.stderr.split("\n").find((line) => line.startsWith("invalid:"));
}

for (const kind of DATABASES) {
  describe(`the operator CLI on the server's database (${kind})`, () => {
    // An empty JWT_SECRET_KEY counts as unset: the app generates the development secret in DATA_DIR.
    const t = useTestApp(kind, { env: { JWT_SECRET_KEY: "" } });
    let admin: string;
    const outputs: string[] = [];

    async function cli(args: string[], stdin?: string): Promise<ProcessResult> {
      const result = await runNode(CLI, args, { env: t.database.env, cwd: t.database.dataDir, stdin });
      outputs.push(result.stdout, result.stderr);
      return result;
    }

    const usernames = async () => (await listUsernames(t, admin)).sort();

    /** The server learns of a CLI change like of another instance's: the token is refused within a second (2 s allowed). */
    async function assertEndedWithinTwoSeconds(token: string): Promise<void> {
      const deadline = Date.now() + 2000;
      let refused = await t.gql(`{ me { username } }`, { token });
      while (refused.status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        refused = await t.gql(`{ me { username } }`, { token });
      }
      assert.equal(refused.status, 401);
      assert.equal(refused.body.errors?.[0]?.extensions?.reason, "SESSION_ENDED");
    }

    it("creates an ADMIN who can then log in over HTTP and list users", async () => {
      const result = await cli([
        "users",
        "create",
        "--username",
        "operator",
        "--password",
        OPERATOR_PASSWORD,
        "--role",
        "ADMIN",
      ]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines.length, 1, "stdout is one JSON line");
      const created = JSON.parse(lines[0]!);
      assert.deepEqual(Object.keys(created).sort(), ["id", "roles", "username"]);
      assert.equal(created.username, "operator");
      assert.deepEqual(created.roles, ["ADMIN", "USER"]);

      const login = await t.gql(LOGIN, { variables: { input: { username: "operator", password: OPERATOR_PASSWORD } } });
      assert.deepEqual(login.body.data.login.user, { id: created.id, username: "operator", roles: ["ADMIN", "USER"] });
      admin = login.body.data.login.accessToken;
      assert.deepEqual(await usernames(), ["operator"]);
    });

    it("audits the account it created as USER_CREATED by CLI, like register's REGISTERED", async () => {
      const res = await t.gql(`{ auditEvents(first: 100) { type userId username detail } }`, { token: admin });
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      const created = res.body.data.auditEvents.filter((e: { type: string }) => e.type === "USER_CREATED");
      assert.equal(created.length, 1);
      assert.equal(created[0].username, "operator");
      assert.match(created[0].userId, /^\d+$|^[0-9a-f-]{36}$/);
      assert.equal(created[0].detail, "roles=ADMIN,USER by=CLI");
    });

    it("gives a user created without --role only the USER role", async () => {
      const result = await cli(["users", "create", "--username", "plain", "--password", OPERATOR_PASSWORD]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout).roles, ["USER"]);
    });

    it("reads the password from standard input with --password-stdin, without its trailing newline", async () => {
      const result = await cli(["users", "create", "--username", "piper", "--password-stdin"], `${STDIN_PASSWORD}\n`);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).username, "piper");
      const login = await t.gql(LOGIN, { variables: { input: { username: "piper", password: STDIN_PASSWORD } } });
      assert.equal(login.body.data.login.user.username, "piper");
    });

    it("refuses a username already taken in another letter case with exit 1, naming username", async () => {
      const result = await cli(["users", "create", "--username", "OPERATOR", "--password", OPERATOR_PASSWORD]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^invalid username \(unique\): is already taken$/m);
      assert.deepEqual(await usernames(), ["operator", "piper", "plain"]);
    });

    it("refuses a short password with exit 1, naming password, and creates no user", async () => {
      const result = await cli(["users", "create", "--username", "shorty", "--password", SHORT_PASSWORD]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /^invalid password \(isPassword\): must be at least 8 characters$/m);
      assert.deepEqual(await usernames(), ["operator", "piper", "plain"]);
    });

    it("ends every session of a user with users revoke-sessions: their tokens are refused over HTTP, audited by CLI", async () => {
      const piper = await t.gql(LOGIN, { variables: { input: { username: "piper", password: STDIN_PASSWORD } } });
      const token = piper.body.data.login.accessToken as string;
      assert.equal((await t.gql(`{ me { username } }`, { token })).status, 200);
      const result = await cli(["users", "revoke-sessions", "--username", "PIPER"]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { ended: 2 }, "the stdin login of the earlier test and this one");
      // The server learns of it like of another instance's logout: within a second.
      await assertEndedWithinTwoSeconds(token);
      const events = await t.gql(`{ auditEvents(first: 100, type: "SESSIONS_REVOKED_BY_ADMIN") { username detail } }`, {
        token: admin,
      });
      assert.deepEqual(events.body.data.auditEvents, [{ username: "piper", detail: "ended=2 apiTokens=0 by=CLI" }]);
      const unknown = await cli(["users", "revoke-sessions", "--username", "nobody-here"]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^no user named "nobody-here"$/m);
      assert.equal(unknown.stdout, "");
    });

    it("disables and enables an account with users disable/enable: login says ACCOUNT_DISABLED meanwhile, audited by CLI", async () => {
      const loginPiper = (password: string) => t.gql(LOGIN, { variables: { input: { username: "piper", password } } });
      const token = (await loginPiper(STDIN_PASSWORD)).body.data.login.accessToken as string;
      const disabled = await cli(["users", "disable", "--username", "piper"]);
      assert.equal(disabled.code, 0, disabled.stderr);
      const piperId = JSON.parse(disabled.stdout).id;
      assert.deepEqual(JSON.parse(disabled.stdout), { id: piperId, username: "piper", disabled: true });
      const refusedLogin = await loginPiper(STDIN_PASSWORD);
      assert.equal(refusedLogin.body.data, null);
      assert.equal(refusedLogin.body.errors?.[0]?.extensions?.reason, "ACCOUNT_DISABLED");
      assert.equal((await loginPiper("a wrong password")).body.errors?.[0]?.extensions?.reason, "BAD_CREDENTIALS");
      // The session started before ends on the server within a second, as with revoke-sessions.
      await assertEndedWithinTwoSeconds(token);

      const enabled = await cli(["users", "enable", "--username", "Piper"]);
      assert.equal(enabled.code, 0, enabled.stderr);
      assert.deepEqual(JSON.parse(enabled.stdout), { id: piperId, username: "piper", disabled: false });
      assert.equal((await loginPiper(STDIN_PASSWORD)).body.data.login.user.username, "piper");
      const events = await t.gql(`{ auditEvents(first: 100, userId: "${piperId}") { type detail } }`, {
        token: admin,
      });
      assert.deepEqual(
        events.body.data.auditEvents.filter((e: { type: string }) => e.type.startsWith("ACCOUNT_")),
        [
          { type: "ACCOUNT_ENABLED", detail: "by=CLI" },
          { type: "ACCOUNT_DISABLED", detail: "ended=1 apiTokens=0 by=CLI" },
        ],
      );

      const lastAdmin = await cli(["users", "disable", "--username", "operator"]);
      assert.equal(lastAdmin.code, 1);
      assert.equal(lastAdmin.stdout, "");
      assert.match(lastAdmin.stderr, /^refused: cannot disable the last active admin$/m);
      const unknown = await cli(["users", "enable", "--username", "nobody-here"]);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^no user named "nobody-here"$/m);
      const usage = await cli(["users", "disable"]);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /^users disable needs --username$/m);
    });

    it("refuses an unknown role with exit 1 and names the roles there are", async () => {
      const result = await cli([
        "users",
        "create",
        "--username",
        "root2",
        "--password",
        OPERATOR_PASSWORD,
        "--role",
        "SUPERUSER",
      ]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, "");
      assert.equal(result.stderr, `unknown role "SUPERUSER": use USER or ADMIN\n`);
      assert.deepEqual(await usernames(), ["operator", "piper", "plain"]);
    });

    describe("with a token minted by the app", () => {
      let alice: { token: string; userId: string };
      before(async () => {
        alice = await t.register("alice");
      });

      it("decodes its header and claims, saying on stderr that nothing was verified", async () => {
        const result = await cli(["token", "decode", alice.token]);
        assert.equal(result.code, 0, result.stderr);
        const { header, payload } = JSON.parse(result.stdout);
        assert.deepEqual(Object.keys(header).sort(), ["alg", "kid", "typ"]);
        assert.equal(header.alg, "HS256");
        assert.equal(header.typ, "at+jwt");
        assert.match(header.kid, /^[A-Za-z0-9_-]{16}$/);
        assert.equal(payload.sub, alice.userId);
        assert.deepEqual(payload.roles, ["USER"]);
        assert.equal(payload.iss, DEFAULT_ISSUER);
        assert.equal(payload.aud, DEFAULT_AUDIENCE);
        assert.equal(payload.exp - payload.iat, 900);
        assert.match(result.stderr, /NOT verified/);
      });

      it("verifies it with the development secret from DATA_DIR and prints its claims", async () => {
        const result = await cli(["token", "verify", alice.token]);
        assert.equal(result.code, 0, result.stderr);
        const claims = JSON.parse(result.stdout);
        assert.equal(claims.sub, alice.userId);
        assert.deepEqual(claims.roles, ["USER"]);
        assert.equal(claims.fresh, true);
        assert.equal(claims.iss, DEFAULT_ISSUER);
        assert.equal(claims.aud, DEFAULT_AUDIENCE);
      });

      it("refuses it with SIGNATURE_INVALID once its payload is changed to claim ADMIN", async () => {
        const forged = withClaims(alice.token, { ...payloadOf(alice.token), roles: ["ADMIN", "USER"] });
        const result = await cli(["token", "verify", forged]);
        assert.equal(result.code, 1);
        assert.equal(result.stdout, "");
        assert.equal(invalidLine(result), "invalid: SIGNATURE_INVALID: signature verification failed");
      });

      it("refuses an expired token signed with the same key with EXPIRED", async () => {
        // The same keys the CLI will load from DATA_DIR, with a clock two hours behind.
        const config = loadConfig({ NODE_ENV: "test", ...t.database.env, JWT_SECRET_KEY: "" }, t.database.dataDir);
        const twoHoursAgo = Date.now() - 2 * 3600_000;
        const past = createTokenService(
          config,
          loadKeyRing(config, () => undefined),
          { now: () => twoHoursAgo },
        );
        const { token } = past.signAccessToken({
          userId: alice.userId,
          roles: [Role.USER],
          sessionId: randomUUID(),
          fresh: false,
        });
        const result = await cli(["token", "verify", token]);
        assert.equal(result.code, 1);
        assert.equal(result.stdout, "");
        assert.equal(invalidLine(result), `invalid: EXPIRED: "exp" claim timestamp check failed`);
      });
    });

    it("never printed a password on stdout or stderr", () => {
      assert.ok(outputs.length >= 16, "the commands above ran");
      for (const output of outputs) {
        for (const password of PASSWORDS) assert.ok(!output.includes(password), `a password appeared in: ${output}`);
      }
    });
  });
}

describe("the operator CLI's command line", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gta-cli-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runNode(CLI, args, { env: { DATA_DIR: dir, ...env }, cwd: dir });

  it("rotates generated RS256 keys: keys rotate prints the new kid, which then signs while the old key stays in the JWKS", async () => {
    const env = { JWT_ALGORITHM: "RS256", NODE_ENV: "test" };
    const first = await cli(["keys", "rotate"], env);
    assert.equal(first.code, 0, first.stderr);
    const second = await cli(["keys", "rotate"], env);
    assert.equal(second.code, 0, second.stderr);
    const a = JSON.parse(first.stdout) as { kid: string; alg: string };
    const b = JSON.parse(second.stdout) as { kid: string; alg: string };
    assert.equal(a.alg, "RS256");
    assert.notEqual(a.kid, b.kid);
    const config = loadConfig({ DATA_DIR: dir, ...env }, dir);
    const ring = loadKeyRing(config, () => undefined);
    assert.equal(ring.current.kid, b.kid, "the newest key signs");
    // The first rotation also created the initial key, so three keys are still within their grace.
    const published = ring.jwks().keys.map((k) => k.kid);
    assert.equal(published.length, 3);
    assert.ok(published.includes(a.kid) && published.includes(b.kid));
  });

  it("refuses keys rotate when the key comes from JWT_SECRET_KEY, exit 1, and says how to rotate it", async () => {
    const result = await cli(["keys", "rotate"], {
      JWT_SECRET_KEY: "k".repeat(8) + "abcdefghijklmnopqrstuvwxyz0123456789",
    });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^cannot rotate: keys come from JWT_SECRET_KEY: rotate by moving it to JWT_PREVIOUS_SECRET_KEYS/,
    );
    assert.equal(result.stdout, "");
  });

  it("prints the usage text on stdout for help and for no command, with exit 0", async () => {
    const help = await cli(["help"]);
    const none = await cli([]);
    assert.equal(help.code, 0);
    assert.equal(none.code, 0);
    assert.match(help.stdout, /^Usage: npm run cli -- <command>/);
    for (const command of [
      "users create",
      "users revoke-sessions",
      "users disable",
      "users enable",
      "token decode",
      "token verify",
    ])
      assert.ok(help.stdout.includes(command), command);
    assert.equal(none.stdout, help.stdout);
  });

  it("answers an unknown command with exit 2 and the usage text on stderr", async () => {
    const result = await cli(["keys", "shred"]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^unknown command: keys shred\n\nUsage: /);
  });

  it("answers users create without --username with exit 2", async () => {
    const result = await cli(["users", "create", "--password", OPERATOR_PASSWORD]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^users create needs --username$/m);
    assert.ok(!result.stderr.includes(OPERATOR_PASSWORD));
  });

  it("refuses to decode text that is not a JWT with exit 1", async () => {
    const result = await cli(["token", "decode", "not-a-token"]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^not a JWT: /);
  });

  it("reports each configuration problem on its own line with exit 1", async () => {
    const result = await cli(["token", "verify", "a.b.c"], { NODE_ENV: "production", JWT_ACCESS_TOKEN_EXPIRES: "900" });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.ok(lines.every((line) => line.startsWith("config error: ")));
    assert.ok(lines.some((line) => line.includes("JWT_ACCESS_TOKEN_EXPIRES")));
    assert.ok(lines.some((line) => line.includes("JWT_SECRET_KEY")));
  });

  it("refuses to verify when there is no key, instead of generating one", async () => {
    const result = await cli(["token", "verify", "a.b.c"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^cannot verify: no HS256 key is configured and none was generated in /);
    assert.equal(existsSync(join(dir, DEV_SECRET_FILE)), false);
  });
});
