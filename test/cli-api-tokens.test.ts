// The CLI's api-tokens commands against a production server with a trusted-documents manifest, on
// SQLite and PostgreSQL: an operator mints an ADMIN's OPERATIONS_ANY token that the manifest does
// not stand in the way of (the ADMIN's session cannot send createApiToken), with createApiToken's
// rules and refusals, printed once and audited by CLI; and revokes a token so that every instance
// refuses it within a second.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { sql } from "kysely";

import { Scope } from "../src/access/scopes.js";
import { documentHash } from "../src/graphql/trusted-documents.js";
import { ROOT, rootToken, withRoot } from "./helpers/admin.js";
import { LOGIN_DOCUMENT, REGISTER_DOCUMENT, registerUser } from "./helpers/api.js";
import { TEST_SECRET, type TestApp, useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";
import { type ProcessResult, runNode } from "./helpers/processes.js";

// Next to this file's compiled output, wherever the build put it.
const CLI = new URL("../src/cli.js", import.meta.url);

const ME = "query Me { me { id username } }";
const CREATE_TOKEN = `mutation CreateToken($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`;
// What an operator's script sends: in no manifest.
const UNLISTED = "query Mine { me { username roles } }";

/** A manifest (graphql-codegen's format) listing sign-up, sign-in and `me`, and not createApiToken. */
function writeManifest(documents: readonly string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), "gta-documents-")), "persisted-documents.json");
  writeFileSync(file, JSON.stringify(Object.fromEntries(documents.map((d) => [documentHash(d), d]))));
  return file;
}

const MANIFEST = writeManifest([REGISTER_DOCUMENT, LOGIN_DOCUMENT, ME]);

interface TokenRow {
  user_id: string;
  name: string;
  scopes: string;
  secret_hash: string;
  revoked_at: unknown;
}

interface AuditRow {
  user_id: string | null;
  session_id: string | null;
  detail: string | null;
}

for (const kind of DATABASES) {
  describe(`the CLI's api-tokens commands on a production server with trusted documents (${kind})`, () => {
    const t = useTestApp(kind, withRoot({ NODE_ENV: "production", TRUSTED_DOCUMENTS: MANIFEST }));
    const outputs: string[] = [];
    let rootId: string;
    let plainId: string;
    let opsToken: { id: string; token: string };

    function cli(args: string[]): Promise<ProcessResult> {
      const env = { ...t.database.env, NODE_ENV: "test", JWT_SECRET_KEY: TEST_SECRET, LOG_LEVEL: "debug" };
      return runNode(CLI, args, { env, cwd: t.database.dataDir }).then((result) => {
        outputs.push(result.stdout, result.stderr);
        return result;
      });
    }

    const create = (username: string, ...more: string[]) =>
      cli(["api-tokens", "create", "--username", username, "--name", "ops", ...more]);

    before(async () => {
      rootId = (await rootToken(t).then((token) => t.gql(ME, { token }))).body.data.me.id;
      plainId = (await registerUser(t, "plain")).userId;
    });

    it("mints an ADMIN's OPERATIONS_ANY token that sends an unlisted document, where the ADMIN's session may not even ask for one", async () => {
      const session = await rootToken(t);
      const refused = await t.gql(CREATE_TOKEN, {
        token: session,
        variables: { input: { name: "ops", scopes: ["OPERATIONS_ANY"] } },
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_ALLOWED");

      const before = Date.now();
      const result = await create(
        ROOT.username,
        "--scope",
        "OPERATIONS_ANY",
        "--scope",
        "profile_read",
        "--expires-in",
        "30d",
      );
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split("\n");
      assert.equal(lines.length, 1, "stdout is one JSON line");
      const printed = JSON.parse(lines[0]!);
      assert.deepEqual(Object.keys(printed).sort(), ["expiresAt", "id", "scopes", "token"]);
      assert.deepEqual(printed.scopes, ["OPERATIONS_ANY", "PROFILE_READ"]);
      assert.match(printed.token, new RegExp(`^gta_${printed.id}_[A-Za-z0-9_-]{43}$`));
      const lifetime = Date.parse(printed.expiresAt) - before;
      assert.ok(Math.abs(lifetime - 30 * 86_400_000) < 60_000, `expires in 30 days, not ${lifetime} ms`);
      opsToken = { id: printed.id, token: printed.token };

      const mine = await t.gql(UNLISTED, { token: printed.token });
      assert.equal(mine.status, 200, JSON.stringify(mine.body));
      assert.deepEqual(mine.body.data.me, { username: ROOT.username, roles: ["ADMIN", "USER"] });
      const unlistedBySession = await t.gql(UNLISTED, { token: session });
      assert.equal(unlistedBySession.status, 400, "a session still sends listed documents only");
    });

    it("stores the token's hash for its owner and audits API_TOKEN_CREATED by CLI, without a session", async () => {
      const row = await tokenRow(t, opsToken.id);
      assert.equal(row?.user_id, rootId);
      assert.equal(row?.name, "ops");
      assert.deepEqual(JSON.parse(row.scopes), ["OPERATIONS_ANY", "PROFILE_READ"]);
      assert.equal(row?.revoked_at, null);
      assert.ok(!row.secret_hash.includes(opsToken.token.slice(-43)), "only a hash of the secret is stored");
      assert.deepEqual(await auditRows(t, "API_TOKEN_CREATED"), [
        {
          user_id: rootId,
          session_id: null,
          detail: `apiToken=${opsToken.id} scopes=OPERATIONS_ANY,PROFILE_READ expires=30d by=CLI`,
        },
      ]);
    });

    it("refuses OPERATIONS_ANY and INTROSPECT for a user without the ADMIN role: exit 1 naming the scope and the role, nothing stored", async () => {
      for (const scope of [Scope.OPERATIONS_ANY, Scope.INTROSPECT]) {
        const result = await create("plain", "--scope", "PROFILE_READ", "--scope", scope);
        assert.equal(result.code, 1);
        assert.equal(result.stdout, "");
        assert.match(
          result.stderr,
          new RegExp(
            `^refused: The scope ${scope} needs the ADMIN role, which this account does not have: create the token without ${scope}\\.$`,
            "m",
          ),
        );
      }
      assert.equal(await tokenCount(t, plainId), 0);
      assert.equal((await auditRows(t, "API_TOKEN_CREATED")).length, 1);
    });

    it("gives a plain user a PROFILE_READ token with the default lifetime of 90 days", async () => {
      const result = await create("PLAIN", "--scope", "PROFILE_READ");
      assert.equal(result.code, 0, result.stderr);
      const printed = JSON.parse(result.stdout);
      assert.deepEqual(printed.scopes, ["PROFILE_READ"]);
      assert.ok(Math.abs(Date.parse(printed.expiresAt) - Date.now() - 90 * 86_400_000) < 60_000);
      const me = await t.gql(ME, { token: printed.token });
      assert.equal(me.body.data.me.id, plainId);
    });

    it("refuses an unknown scope, a bad lifetime, a blank name and an unknown or disabled user with exit 1, storing nothing", async () => {
      const refusals: Array<[string[], string]> = [
        [
          ["--username", "plain", "--name", "x", "--scope", "EVERYTHING"],
          `unknown scope "EVERYTHING": use ${Object.values(Scope).join(", ")}`,
        ],
        [
          ["--username", "plain", "--name", "x", "--scope", "PROFILE_READ", "--expires-in", "30"],
          "invalid expiresIn (matches): must be a number with a unit: s, m, h or d (for example 90d)",
        ],
        [
          ["--username", "plain", "--name", "x", "--scope", "PROFILE_READ", "--expires-in", "366d"],
          "invalid expiresIn (maxLifetime): must be a positive duration of at most 365 days (for example 90d)",
        ],
        [
          ["--username", "plain", "--name", "   ", "--scope", "PROFILE_READ"],
          "invalid name (isNotBlank): must not be blank",
        ],
        [["--username", "nobody-here", "--name", "x", "--scope", "PROFILE_READ"], `no user named "nobody-here"`],
      ];
      for (const [args, line] of refusals) {
        const result = await cli(["api-tokens", "create", ...args]);
        assert.equal(result.code, 1, args.join(" "));
        assert.equal(result.stdout, "");
        assert.ok(result.stderr.split("\n").includes(line), `${args.join(" ")}: ${result.stderr}`);
      }
      assert.equal((await cli(["users", "disable", "--username", "plain"])).code, 0);
      const disabled = await create("plain", "--scope", "PROFILE_READ");
      assert.equal(disabled.code, 1);
      assert.match(disabled.stderr, /^refused: user "plain" is disabled: enable it first \(users enable\)$/m);
      assert.equal((await cli(["users", "enable", "--username", "plain"])).code, 0);
      assert.equal(await tokenCount(t, plainId), 1, "only the PROFILE_READ token of the test before");
    });

    it("revokes a token: the server refuses it with API_TOKEN_REVOKED within a second, audited by CLI", async () => {
      const result = await cli(["api-tokens", "revoke", "--id", opsToken.id]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { id: opsToken.id, revoked: true });
      // The server learns of it like of another instance's revocation (2 s allowed). A listed
      // document shows the reason; an unlisted one is refused by the gate before any token check.
      const deadline = Date.now() + 2000;
      let refused = await t.gql(ME, { token: opsToken.token });
      while (refused.status === 200 && Date.now() < deadline) {
        await sleep(50);
        refused = await t.gql(ME, { token: opsToken.token });
      }
      assert.equal(refused.status, 401);
      assert.equal(refused.body.errors?.[0]?.extensions?.reason, "API_TOKEN_REVOKED");
      const unlisted = await t.gql(UNLISTED, { token: opsToken.token });
      assert.equal(unlisted.status, 400);
      assert.equal(unlisted.body.errors?.[0]?.extensions?.code, "PERSISTED_QUERY_NOT_ALLOWED");
      assert.notEqual((await tokenRow(t, opsToken.id))?.revoked_at, null);
      assert.deepEqual(await auditRows(t, "API_TOKEN_REVOKED"), [
        { user_id: rootId, session_id: null, detail: `apiToken=${opsToken.id} by=CLI` },
      ]);

      const again = await cli(["api-tokens", "revoke", "--id", opsToken.id]);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(JSON.parse(again.stdout), { id: opsToken.id, revoked: false });
      const unknown = await cli(["api-tokens", "revoke", "--id", "no-such-token"]);
      assert.equal(unknown.code, 1);
      assert.equal(unknown.stdout, "");
      assert.match(unknown.stderr, /^no API token with the id "no-such-token"$/m);
      assert.equal((await auditRows(t, "API_TOKEN_REVOKED")).length, 1, "only the revocation that happened");
    });

    it("gives an ADMIN a token of every scope at once, but refuses a list that repeats one past their number", async () => {
      const every = Object.values(Scope).flatMap((scope) => ["--scope", scope]);
      const all = await cli(["api-tokens", "create", "--username", ROOT.username, "--name", "all", ...every]);
      assert.equal(all.code, 0, all.stderr);
      assert.deepEqual(JSON.parse(all.stdout).scopes, [...Object.values(Scope)].sort());
      const revoked = await cli(["api-tokens", "revoke", "--id", JSON.parse(all.stdout).id]);
      assert.equal(revoked.code, 0, revoked.stderr);
      const repeated = await cli([
        "api-tokens",
        "create",
        "--username",
        ROOT.username,
        "--name",
        "x",
        ...every,
        "--scope",
        "ADMIN",
      ]);
      assert.equal(repeated.code, 1);
      assert.match(repeated.stderr, /^invalid scopes \(arrayMaxSize\): must name each scope at most once$/m);
    });

    it("never printed a token but on the stdout of its create, and never logged one", () => {
      const printedOnce = outputs.filter((output) => output.includes(opsToken.token));
      assert.equal(printedOnce.length, 1);
      assert.ok(!t.logs.some((line) => line.includes(opsToken.token)), "the server logged the token");
    });
  });
}

describe("the CLI's api-tokens command line", () => {
  const dir = mkdtempSync(join(tmpdir(), "gta-cli-"));
  const cli = (args: string[]) => runNode(CLI, args, { env: { DATA_DIR: dir }, cwd: dir });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("answers a create without --name or --scope, and a revoke without --id, with exit 2 and the usage text", async () => {
    const cases: Array<[string[], string]> = [
      [["api-tokens", "create", "--username", "root", "--scope", "ADMIN"], "api-tokens create needs --name"],
      [["api-tokens", "create", "--username", "root", "--name", "x"], "api-tokens create needs at least one --scope"],
      [["api-tokens", "revoke"], "api-tokens revoke needs --id"],
    ];
    for (const [args, message] of cases) {
      const result = await cli(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.equal(result.stdout, "");
      assert.ok(result.stderr.startsWith(`${message}\n\nUsage: `), result.stderr);
    }
  });

  it("documents both commands and every scope in help", async () => {
    const help = await cli(["help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^ {2}api-tokens create --username <name> --name <label> --scope <SCOPE>/m);
    assert.match(help.stdout, /^ {2}api-tokens revoke --id <token id>$/m);
    for (const scope of Object.values(Scope)) assert.ok(help.stdout.includes(scope), scope);
  });
});

async function tokenRow(t: TestApp, id: string): Promise<TokenRow | undefined> {
  const rows = await sql<TokenRow>`
    select user_id, name, scopes, secret_hash, revoked_at from api_tokens where id = ${id}`.execute(t.app.database.db);
  return rows.rows[0];
}

async function tokenCount(t: TestApp, userId: string): Promise<number> {
  const rows = await sql<{ n: number | string }>`
    select count(*) as n from api_tokens where user_id = ${userId}`.execute(t.app.database.db);
  return Number(rows.rows[0]!.n);
}

async function auditRows(t: TestApp, type: string): Promise<AuditRow[]> {
  const rows = await sql<AuditRow>`
    select user_id, session_id, detail from audit_events where type = ${type} order by id`.execute(t.app.database.db);
  return rows.rows;
}
