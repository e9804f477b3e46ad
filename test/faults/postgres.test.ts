import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import pg from "pg";

import { codes, type GraphQLResponse } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { originOf, send } from "../helpers/http.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

const postgresUrl = process.env.TEST_DATABASE_URL || undefined;

/** Asks `probe` every 20 ms until `done` holds or `forMs` passes; returns the last answer and when it came. */
async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  forMs: number,
): Promise<{ value: T; elapsedMs: number }> {
  const start = performance.now();
  for (;;) {
    const value = await probe();
    const elapsedMs = Math.round(performance.now() - start);
    if (done(value) || elapsedMs >= forMs) return { value, elapsedMs };
    await sleep(20);
  }
}

/** Ends every PostgreSQL backend whose application_name is `name`, as a failover or an operator would. */
async function terminateBackends(name: string): Promise<number> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const result = await client.query(
      "select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()",
      [name],
    );
    return result.rows.filter((row: { ended: boolean }) => row.ended).length;
  } finally {
    await client.end();
  }
}

function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set("application_name", name);
  return parsed.toString();
}

async function me(t: TestApp, token: string): Promise<GraphQLResponse> {
  return t.gql(`{ me { id username } }`, { token });
}

async function readyz(t: TestApp): Promise<{ status: number; retryAfter: string | null; ms: number }> {
  const start = performance.now();
  const response = await send(`${originOf(t.url)}/readyz`, { signal: AbortSignal.timeout(30_000) });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    ms: Math.round(performance.now() - start),
  };
}

function report(tc: { diagnostic(message: string): void }, message: string): void {
  tc.diagnostic(message);
  console.log(`[faults/postgres] ${message}`);
}

describe(
  "PostgreSQL connections ended under the app (pg_terminate_backend)",
  { skip: postgresUrl === undefined && "TEST_DATABASE_URL is not set" },
  () => {
    const name = `gta_fault_${randomBytes(4).toString("hex")}`;
    let database: TestDatabase;
    let a: TestApp | undefined;
    let b: TestApp | undefined;
    before(async () => {
      database = createTestDatabase("postgres");
      const env = { DATABASE_URL: withApplicationName(postgresUrl!, name) };
      a = await startTestApp("postgres", { database, env });
      b = await startTestApp("postgres", { database, env });
    });
    after(async () => {
      await a?.close();
      await b?.close();
      await database?.drop();
    });

    it("keeps both instances serving after every backend of theirs is terminated, idle ones and the listeners included", async (tc) => {
      const user = await a!.register("survivor");
      // Fill both pools with idle connections, the case that used to throw an unhandled 'error'.
      await Promise.all([...Array(8)].map(() => me(a!, user.token)));
      await Promise.all([...Array(8)].map(() => b!.gql(`{ posts { id } }`)));

      const ended = await terminateBackends(name);
      assert.ok(ended >= 4, `terminated ${ended} backends (pool connections and two LISTEN connections)`);

      // The first query after the loss may land on a connection that is just going away; from then on
      // every query answers normally.
      const { value, elapsedMs } = await pollUntil(
        () => b!.gql(`{ posts { id } }`),
        (r) => r.status === 200 && !r.body.errors,
        5000,
      );
      assert.deepEqual(value.body, { data: { posts: [] } });
      assert.equal((await readyz(a!)).status, 200);
      const created = await a!.gql(
        `mutation { createPost(input: { title: "after", body: "the restart" }) { title } }`,
        { token: user.token },
      );
      assert.deepEqual(created.body, { data: { createPost: { title: "after" } } });
      report(tc, `instance B answered posts normally ${elapsedMs} ms after ${ended} backends were terminated`);

      // Logged once at warn, never at error, and never with a connection string.
      const warnings = [...a!.logs, ...b!.logs].filter((line) => line.includes("PostgreSQL"));
      assert.ok(
        warnings.some((line) => JSON.parse(line).level === 40),
        "a warning says PostgreSQL stopped answering",
      );
      assert.ok(!a!.logs.some((line) => JSON.parse(line).level >= 50), "no error-level line on instance A");
      assert.ok(
        ![...a!.logs, ...b!.logs].some((line) => line.includes("postgres://")),
        "no log line holds the connection string",
      );
    });

    it("delivers a logout on A to B within a second again once B's listener has reconnected", async (tc) => {
      const user = await a!.register("roamer");
      assert.equal((await me(b!, user.token)).status, 200);
      await terminateBackends(name);
      // The listener reconnects with backoff (first retry after 100 ms); give it until it is back.
      const { value: listening, elapsedMs: reconnectMs } = await pollUntil(
        async () => b!.app.revocationSync.listening,
        Boolean,
        5000,
      );
      assert.equal(listening, true, "B's revocation listener is listening again");

      const logout = await a!.gql(`mutation { logout }`, { token: user.token });
      assert.deepEqual(logout.body, { data: { logout: true } });
      const { value, elapsedMs } = await pollUntil(
        () => me(b!, user.token),
        (r) => r.status === 401,
        3000,
      );
      assert.equal(value.status, 401);
      assert.deepEqual(codes(value), ["UNAUTHENTICATED"]);
      assert.ok(elapsedMs < 1000, `B refused the logged-out token ${elapsedMs} ms after A answered (bound: 1000 ms)`);
      report(tc, `listener back ${reconnectMs} ms after termination; logout on A -> 401 on B in ${elapsedMs} ms`);
    });
  },
);

describe(
  "PostgreSQL that freezes or goes away (a TCP proxy that stops forwarding)",
  { skip: postgresUrl === undefined && "TEST_DATABASE_URL is not set" },
  () => {
    const TIMEOUT_MS = 1000;
    let proxy: TcpProxy;
    let database: TestDatabase;
    let direct: TestApp | undefined;
    let proxied: TestApp | undefined;
    before(async () => {
      const upstream = new URL(postgresUrl!);
      proxy = await TcpProxy.start({ host: upstream.hostname, port: Number(upstream.port || 5432) });
      database = createTestDatabase("postgres");
      // Instance "direct" is the healthy peer; "proxied" reaches the same database only through the proxy.
      direct = await startTestApp("postgres", { database });
      proxied = await startTestApp("postgres", {
        database,
        env: { DATABASE_URL: TcpProxy.rewrite(postgresUrl!, proxy.port), DATABASE_TIMEOUT: `${TIMEOUT_MS}ms` },
      });
    });
    after(async () => {
      proxy?.thaw();
      await proxied?.close();
      await direct?.close();
      await proxy?.close();
      await database?.drop();
    });

    it("answers a request that needs the frozen database with 503 SERVICE_UNAVAILABLE and Retry-After within DATABASE_TIMEOUT", async (tc) => {
      const user = await proxied!.register("patient");
      proxy.freeze();
      try {
        const start = performance.now();
        const res = await proxied!.gql(`{ posts { id } }`);
        const ms = Math.round(performance.now() - start);
        assert.equal(res.status, 503);
        assert.deepEqual(codes(res), ["SERVICE_UNAVAILABLE"]);
        assert.equal(res.headers.get("retry-after"), "5");
        assert.equal(res.body.errors?.[0]?.extensions?.retryAfter, 5);
        // Waiting for a pooled connection and then for the statement are each bounded by the timeout.
        assert.ok(ms < 2 * TIMEOUT_MS + 1500, `answered in ${ms} ms (bound ${2 * TIMEOUT_MS + 1500} ms)`);

        const ready = await readyz(proxied!);
        assert.equal(ready.status, 503);
        assert.equal(ready.retryAfter, "5");
        assert.ok(ready.ms < TIMEOUT_MS + 1500, `/readyz answered 503 in ${ready.ms} ms`);

        // What needs no database still works: the token check is in memory.
        const typename = await proxied!.gql(`{ __typename }`, { token: user.token });
        assert.deepEqual(typename.body, { data: { __typename: "Query" } });
        report(tc, `frozen: posts 503 in ${ms} ms, /readyz 503 in ${ready.ms} ms (DATABASE_TIMEOUT ${TIMEOUT_MS} ms)`);
      } finally {
        proxy.thaw();
      }
      const { value, elapsedMs } = await pollUntil(
        () => proxied!.gql(`{ posts { id } }`),
        (r) => r.status === 200 && !r.body.errors,
        10_000,
      );
      assert.deepEqual(value.body, { data: { posts: [] } });
      assert.equal((await readyz(proxied!)).status, 200);
      report(tc, `thawed: posts answered 200 again after ${elapsedMs} ms`);
    });

    it("loses no write acknowledged around a freeze: a mutation either answers with its row or SERVICE_UNAVAILABLE", async () => {
      const user = await proxied!.register("writer");
      const titles = [...Array(6)].map((_, i) => `post ${i}`);
      const create = (title: string) =>
        proxied!.gql(`mutation($t: String!) { createPost(input: { title: $t, body: "b" }) { id title } }`, {
          token: user.token,
          variables: { t: title },
        });
      const before = await Promise.all(titles.slice(0, 3).map(create));
      proxy.freeze();
      const during = await Promise.all(titles.slice(3).map(create));
      proxy.thaw();

      const acknowledged = [...before, ...during]
        .filter((r) => r.body.data?.createPost)
        .map((r) => r.body.data.createPost.title);
      for (const r of during.filter((r) => !r.body.data?.createPost))
        assert.deepEqual(codes(r), ["SERVICE_UNAVAILABLE"]);
      assert.deepEqual(
        before.map((r) => r.body.data?.createPost?.title),
        titles.slice(0, 3),
      );
      // Read through the healthy instance: every acknowledged post is stored.
      const { value } = await pollUntil(
        () => direct!.gql(`{ posts(first: 100) { title author { username } } }`),
        (r) => r.status === 200,
        5000,
      );
      const stored = value.body.data.posts
        .filter((p: { author: { username: string } }) => p.author.username === "writer")
        .map((p: { title: string }) => p.title);
      for (const title of acknowledged) assert.ok(stored.includes(title), `acknowledged ${title} is stored`);
    });

    it("catches up on a logout it missed while its database was gone, within a second of the database coming back", async (tc) => {
      const user = await direct!.register("traveller");
      assert.equal((await me(proxied!, user.token)).status, 200);
      proxy.down();
      try {
        // The notification is sent while the proxied instance cannot hear it.
        const logout = await direct!.gql(`mutation { logout }`, { token: user.token });
        assert.deepEqual(logout.body, { data: { logout: true } });
        await sleep(1500);
        assert.equal(proxied!.app.revocationSync.listening, false, "the listener noticed that its connection is gone");
      } finally {
        proxy.up();
      }
      const { value, elapsedMs } = await pollUntil(
        () => me(proxied!, user.token),
        (r) => r.status === 401,
        5000,
      );
      assert.equal(value.status, 401);
      assert.deepEqual(codes(value), ["UNAUTHENTICATED"]);
      assert.ok(
        elapsedMs < 1500,
        `refused ${elapsedMs} ms after the database came back (bound 1500 ms: reconnect backoff up to 500 ms plus the read)`,
      );
      report(tc, `database back -> missed logout enforced in ${elapsedMs} ms`);
    });
  },
);
