import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, printSchema } from "graphql";

import { DEV_SECRET_FILE } from "../src/access/keys.js";
import { SQLITE_FILE } from "../src/db/database.js";
import { DATABASES, type TestDatabase, createTestDatabase } from "./helpers/databases.js";
import { freePort, runNode, waitForExit } from "./helpers/processes.js";

// What `npm start` runs: the bundle the build makes next to this file's compiled output
// (`node scripts/bundle.mjs <outDir>` after `tsc --outDir <outDir>`).
const MAIN = new URL("../bundle/main.js", import.meta.url);

/** The committed schema, in the repository root above the build folder (whichever it is). */
const SCHEMA_FILE = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return join(dir, "schema", "schema.graphql");
})();

/** Upper bounds, so that a hung server fails its test instead of hanging CI. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

type LogLine = Record<string, unknown> & { level?: number; msg?: string };

/** `node dist/bundle/main.js` (`npm start`) as a real process with exactly `env`, and what it has written so far. */
class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";

  constructor(
    env: Record<string, string>,
    readonly port: number,
    cwd: string,
  ) {
    this.child = spawn(process.execPath, [fileURLToPath(MAIN)], { env: { ...env, PORT: String(port) }, cwd, stdio: "pipe" });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
  }

  /** The JSON log lines written to stdout so far. */
  logs(): LogLine[] {
    return this.stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** Resolves with the first log line matching `predicate`; rejects when the process exits first or after `timeoutMs`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.logs().find(predicate);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`server exited with ${code} before the expected log line; stderr: ${this.stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line within ${timeoutMs} ms; stdout: ${this.stdout}; stderr: ${this.stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout.off("data", check);
        this.child.off("exit", onExit);
      };
      this.child.stdout.on("data", check);
      this.child.on("exit", onExit);
      check();
    });
  }

  /** Waits for "server ready". */
  async ready(): Promise<void> {
    await this.waitForLog((line) => line.msg === "server ready");
  }

  /** Sends SIGTERM and resolves with the exit status. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill("SIGTERM");
    return waitForExit(this.child, STOP_TIMEOUT_MS);
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** POSTs a GraphQL operation to this server. */
  async gql(query: string, variables?: Record<string, unknown>, token?: string): Promise<any> {
    const response = await fetch(this.url("/graphql"), {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(START_TIMEOUT_MS),
    });
    assert.equal(response.status, 200);
    return response.json();
  }
}

const running = new Set<ServerProcess>();

/** Starts main.js on a free port; every process started here is killed in `after` whatever happens. */
async function startServer(env: Record<string, string>, cwd: string): Promise<ServerProcess> {
  const server = new ServerProcess(env, await freePort(), cwd);
  running.add(server);
  server.child.on("exit", () => running.delete(server));
  return server;
}

after(() => {
  for (const server of running) server.child.kill("SIGKILL");
});

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
    const result = await runNode(MAIN, [], {
      env: { DATA_DIR: dataDir, PORT: String(await freePort()), NODE_ENV: "production", JWT_ACCESS_TOKEN_EXPIRES: "900" },
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
    const server = await startServer({ DATA_DIR: dataDir }, dir);
    await server.ready();

    const warning = server.logs().find((line) => line.msg?.includes("generated a development secret"));
    assert.ok(warning, server.stdout);
    assert.equal(warning.level, 40, "a warning");
    const secret = readFileSync(join(dataDir, DEV_SECRET_FILE), "utf8").trim();
    assert.ok(secret.length >= 32);

    const health = await fetch(server.url("/healthz"), { signal: AbortSignal.timeout(START_TIMEOUT_MS) });
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok" });

    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    assert.ok(server.logs().some((line) => line.msg === "stopped"));
    assert.ok(!server.stdout.includes(secret) && !server.stderr.includes(secret), "the secret never appears in the output");
  });

  it("serves exactly the committed schema: bundling renamed no type, field or argument", async () => {
    const server = await startServer({ DATA_DIR: join(dir, "schema"), NODE_ENV: "development" }, dir);
    await server.ready();
    const introspection = await server.gql(getIntrospectionQuery());
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
      const login = await server.gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken user { roles } } }`, {
        input: { username: "chief", password: ADMIN_PASSWORD },
      });
      assert.ok(login.data?.login, JSON.stringify(login.errors));
      const users = await server.gql(`{ users { username } }`, undefined, login.data.login.accessToken);
      return { roles: login.data.login.user.roles, usernames: users.data.users.map((u: { username: string }) => u.username) };
    }

    it("creates the admin on first start, who can log in and list users", async () => {
      const server = await startServer(env, database.dataDir);
      await server.ready();
      assert.equal(server.logs().find((line) => line.msg === "admin bootstrap")?.outcome, "created");
      assert.deepEqual(await loginAndListUsers(server), { roles: ["ADMIN", "USER"], usernames: ["chief"] });
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
      assert.ok(!server.stdout.includes(ADMIN_PASSWORD) && !server.stderr.includes(ADMIN_PASSWORD));
    });

    it("leaves that one admin unchanged when started again with the same environment", async () => {
      const server = await startServer(env, database.dataDir);
      await server.ready();
      assert.equal(server.logs().find((line) => line.msg === "admin bootstrap")?.outcome, "unchanged");
      assert.deepEqual(await loginAndListUsers(server), { roles: ["ADMIN", "USER"], usernames: ["chief"] });
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
    });
  });
}
