import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, printSchema } from "graphql";

import { DEV_SECRET_FILE } from "../src/access/keys.js";
import { SQLITE_FILE } from "../src/db/database.js";
import { killRunningServers, SERVER_MAIN, ServerProcess, START_TIMEOUT_MS } from "./helpers/app.js";
import { createTestDatabase, DATABASES, type TestDatabase } from "./helpers/databases.js";
import { send } from "./helpers/http.js";
import { freePort, runNode } from "./helpers/processes.js";

/** The committed schema, in the repository root above the build folder (whichever it is). */
const SCHEMA_FILE = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return join(dir, "schema", "schema.graphql");
})();

after(() => killRunningServers());

describe("the server process (main.js)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gta-main-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("exits with 1 before listening on invalid configuration, one stderr line per problem naming its variable", async () => {
    const dataDir = join(dir, "refused");
    const result = await runNode(SERVER_MAIN, [], {
      env: {
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
        NODE_ENV: "production",
        JWT_ACCESS_TOKEN_EXPIRES: "900",
      },
      cwd: dir,
      timeoutMs: START_TIMEOUT_MS,
    });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "", "nothing was logged: no server ever started");
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 2, result.stderr);
    assert.match(lines[0]!, /^config error: JWT_ACCESS_TOKEN_EXPIRES .*unit/);
    assert.match(lines[1]!, /^config error: JWT_SECRET_KEY is required when NODE_ENV=production/);
    assert.equal(existsSync(join(dataDir, SQLITE_FILE)), false, "no database was created");
  });

  it("starts with only DATA_DIR and PORT, warns about the generated secret without printing it, and stops cleanly on SIGTERM", async () => {
    const dataDir = join(dir, "fresh");
    const server = await ServerProcess.spawn({ DATA_DIR: dataDir }, dir);
    await server.ready();

    const warning = server.logs().find((line) => line.msg?.includes("generated a development secret"));
    assert.ok(warning, server.stdout);
    assert.equal(warning.level, 40, "a warning");
    const secret = readFileSync(join(dataDir, DEV_SECRET_FILE), "utf8").trim();
    assert.ok(secret.length >= 32);

    const health = await send(server.url("/healthz"), { signal: AbortSignal.timeout(START_TIMEOUT_MS) });
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: "ok" });

    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    assert.ok(server.logs().some((line) => line.msg === "stopped"));
    assert.ok(
      !server.stdout.includes(secret) && !server.stderr.includes(secret),
      "the secret never appears in the output",
    );
  });

  it("serves exactly the committed schema: bundling renamed no type, field or argument", async () => {
    const server = await ServerProcess.spawn({ DATA_DIR: join(dir, "schema"), NODE_ENV: "development" }, dir);
    await server.ready();
    // specifiedByUrl too: the JSON scalar of the passkey answers names its specification.
    const answer = await server.gql(getIntrospectionQuery({ specifiedByUrl: true }));
    assert.equal(answer.status, 200);
    const introspection = answer.body;
    assert.equal(introspection.errors, undefined);
    const served = printSchema(lexicographicSortSchema(buildClientSchema(introspection.data)));
    const committed = printSchema(lexicographicSortSchema(buildSchema(readFileSync(SCHEMA_FILE, "utf8"))));
    assert.equal(served, committed);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });
});

for (const kind of DATABASES) {
  describe(`the admin bootstrap from ADMIN_USERNAME and ADMIN_PASSWORD (${kind})`, () => {
    const ADMIN_PASSWORD = "chief password 1";
    let database: TestDatabase;
    let env: Record<string, string>;
    before(() => {
      database = createTestDatabase(kind);
      env = { ...database.env, HOST: "127.0.0.1", ADMIN_USERNAME: "chief", ADMIN_PASSWORD };
    });
    after(async () => {
      await database?.drop();
    });

    /** Logs in as the bootstrap admin and returns the users the admin can see. */
    async function loginAndListUsers(server: ServerProcess): Promise<{ roles: string[]; usernames: string[] }> {
      const loggedIn = await server.gql(
        `mutation($input: LoginInput!) { login(input: $input) { accessToken user { roles } } }`,
        {
          input: { username: "chief", password: ADMIN_PASSWORD },
        },
      );
      assert.equal(loggedIn.status, 200);
      const login = loggedIn.body;
      assert.ok(login.data?.login, JSON.stringify(login.errors));
      const listed = await server.gql(`{ users { username } }`, undefined, login.data.login.accessToken);
      assert.equal(listed.status, 200);
      const users = listed.body;
      return {
        roles: login.data.login.user.roles,
        usernames: users.data.users.map((u: { username: string }) => u.username),
      };
    }

    it("creates the admin on first start, who can log in and list users", async () => {
      const server = await ServerProcess.spawn(env, database.dataDir);
      await server.ready();
      assert.equal(server.logs().find((line) => line.msg === "admin bootstrap")?.outcome, "created");
      assert.deepEqual(await loginAndListUsers(server), { roles: ["ADMIN", "USER"], usernames: ["chief"] });
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
      assert.ok(!server.stdout.includes(ADMIN_PASSWORD) && !server.stderr.includes(ADMIN_PASSWORD));
    });

    it("leaves that one admin unchanged when started again with the same environment", async () => {
      const server = await ServerProcess.spawn(env, database.dataDir);
      await server.ready();
      assert.equal(server.logs().find((line) => line.msg === "admin bootstrap")?.outcome, "unchanged");
      assert.deepEqual(await loginAndListUsers(server), { roles: ["ADMIN", "USER"], usernames: ["chief"] });
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
    });
  });
}
