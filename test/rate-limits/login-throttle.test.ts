import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import { execute, type ExecutionResult, parse } from "graphql";
import { sql } from "kysely";

import type { Context } from "../../src/access/principal.js";
import { SINGLE_AUTH_FIELD_MESSAGE } from "../../src/graphql/single-auth-field.rule.js";
import { LOGIN_THROTTLE_TABLE } from "../../src/rate-limits/login-throttle.js";
import { codes, type GraphQLResponse, loginRaw, PASSWORD, postBody, registerUser } from "../helpers/api.js";
import { startTestApp, type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { createTestDatabase, type DatabaseKind, DATABASES } from "../helpers/databases.js";
import { assertRedisReachable, deleteRedisKeys, listRedisKeys, TEST_REDIS_URL } from "../helpers/redis.js";

const WRONG = "not the password at all";
const ROOT = { username: "root", password: "root password 1" };

/** Logs in over HTTP and returns the raw response. */
function attempt(t: TestApp, username: string, password: string): Promise<GraphQLResponse> {
  return loginRaw(t, username, { password });
}

/** The answer to wrong credentials: UNAUTHENTICATED, HTTP 200, no data. */
function assertWrongCredentials(res: GraphQLResponse, what = "the login"): void {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["UNAUTHENTICATED"], `${what}: ${JSON.stringify(res.body.errors)}`);
  assert.equal(res.body.data, null);
}

/**
 * The answer to a throttled login: RATE_LIMITED with HTTP 200, no data, and `retryAfter` a whole
 * number of seconds from 1 to `windowSeconds`. Returns `retryAfter`.
 */
function assertRateLimited(res: GraphQLResponse, windowSeconds = 900): number {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["RATE_LIMITED"], JSON.stringify(res.body.errors));
  assert.equal(res.body.data, null);
  const { code, retryAfter, ...rest } = res.body.errors![0]!.extensions!;
  assert.equal(code, "RATE_LIMITED");
  assert.deepEqual(rest, {}, "no other extensions");
  assert.ok(Number.isInteger(retryAfter), `retryAfter ${retryAfter} is a whole number`);
  assert.ok(retryAfter > 0 && retryAfter <= windowSeconds, `retryAfter ${retryAfter} is within 1..${windowSeconds}`);
  return retryAfter;
}

/** Logs in successfully, failing the test otherwise. */
async function assertLogsIn(t: TestApp, username: string, password = PASSWORD): Promise<void> {
  const res = await attempt(t, username, password);
  assert.equal(res.status, 200);
  assert.equal(res.body.errors, undefined, `${username} should log in: ${JSON.stringify(res.body.errors)}`);
  assert.equal(res.body.data.login.user.username, username);
}

/** `n` logins with a wrong password, each answered UNAUTHENTICATED. */
async function fail(t: TestApp, username: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++)
    assertWrongCredentials(await attempt(t, username, WRONG), `wrong password #${i} for ${username}`);
}

/** Rows in the database's throttle table (0 when the table was never created). */
async function throttleRows(t: TestApp, kind: DatabaseKind): Promise<number> {
  const exists =
    kind === "sqlite"
      ? await sql<{
          n: number;
        }>`select count(*) as n from sqlite_master where type = 'table' and name = ${LOGIN_THROTTLE_TABLE}`.execute(
          t.app.database.db,
        )
      : await sql<{
          n: number;
        }>`select count(*)::int as n from information_schema.tables where table_schema = current_schema() and table_name = ${LOGIN_THROTTLE_TABLE}`.execute(
          t.app.database.db,
        );
  if (Number(exists.rows[0]!.n) === 0) return 0;
  const rows = await sql<{ n: number }>`select count(*) as n from ${sql.table(LOGIN_THROTTLE_TABLE)}`.execute(
    t.app.database.db,
  );
  return Number(rows.rows[0]!.n);
}

for (const kind of DATABASES) {
  describe(`login throttling with the default limits (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ROOT.username, ADMIN_PASSWORD: ROOT.password } });

    it("answers RATE_LIMITED with retryAfter after five wrong passwords for one username from one IP, even with the right password", async () => {
      await registerUser(t, "victim");
      await fail(t, "victim", 5);
      const retryAfter = assertRateLimited(await attempt(t, "victim", PASSWORD));
      assert.equal(
        assertRateLimited(await attempt(t, "victim", WRONG)) <= retryAfter,
        true,
        "the window does not grow",
      );
      // Another username from the same IP is not affected by this pair's limit.
      await registerUser(t, "bystander");
      await assertLogsIn(t, "bystander");
    });

    it("counts a username without regard to letter case", async () => {
      await registerUser(t, "Casey");
      for (const spelling of ["casey", "CASEY", "Casey", "cAsEy", "caseY"])
        assertWrongCredentials(await attempt(t, spelling, WRONG));
      assertRateLimited(await attempt(t, "Casey", PASSWORD));
    });

    it("resets the pair on a successful login: five more failures are needed before it is throttled", async () => {
      await registerUser(t, "forgetful");
      await fail(t, "forgetful", 4);
      await assertLogsIn(t, "forgetful");
      await fail(t, "forgetful", 4);
      await assertLogsIn(t, "forgetful");
      await fail(t, "forgetful", 5);
      assertRateLimited(await attempt(t, "forgetful", PASSWORD));
    });

    it("throttles an unknown username exactly like a known one, so the answer reveals nothing", async () => {
      await registerUser(t, "known");
      await fail(t, "known", 5);
      await fail(t, "unknown-name", 5);
      const known = await attempt(t, "known", WRONG);
      const unknown = await attempt(t, "unknown-name", WRONG);
      assertRateLimited(known);
      assertRateLimited(unknown);
      assert.deepEqual(
        Object.keys(unknown.body.errors![0]!.extensions!).sort(),
        Object.keys(known.body.errors![0]!.extensions!).sort(),
      );
      assert.equal(
        unknown.body.errors![0]!.message.replace(/\d+/g, "N"),
        known.body.errors![0]!.message.replace(/\d+/g, "N"),
        "the same message apart from the number of seconds",
      );
    });

    it("counts parallel attempts atomically: of ten concurrent wrong logins for one pair, exactly five are checked", async () => {
      await registerUser(t, "stampede");
      const answers = await Promise.all(Array.from({ length: 10 }, () => attempt(t, "stampede", WRONG)));
      const tally = answers.map((res) => codes(res)[0]).sort();
      assert.deepEqual(tally, [...Array(5).fill("RATE_LIMITED"), ...Array(5).fill("UNAUTHENTICATED")]);
      assertRateLimited(await attempt(t, "stampede", PASSWORD));
    });

    it("counts every executed login field even when validation is bypassed: aliases never buy extra guesses", async () => {
      await registerUser(t, "aliased");
      const aliases = Array.from(
        { length: 6 },
        (_, i) => `a${i + 1}: login(input: { username: "aliased", password: "${WRONG}" }) { accessToken }`,
      );
      const document = parse(`mutation { ${aliases.join(" ")} }`);
      const context: Context = { principal: null, requestId: "direct", ip: "127.0.0.1", userAgent: "direct-execution" };
      const run = () => execute({ schema: t.app.schema, document, contextValue: context }) as Promise<ExecutionResult>;

      // Mutation fields run one after the other, and login is non-null: the first failure ends the
      // operation. So each document is exactly one counted guess, never six uncounted ones.
      for (let i = 1; i <= 5; i++) {
        const result = await run();
        assert.equal(result.data, null);
        assert.deepEqual(
          result.errors?.map((e) => [e.path?.join("."), e.extensions.code]),
          [["a1", "UNAUTHENTICATED"]],
          `document #${i}`,
        );
      }
      const throttled = await run();
      assert.deepEqual(
        throttled.errors?.map((e) => [e.path?.join("."), e.extensions.code]),
        [["a1", "RATE_LIMITED"]],
      );
      assertRateLimited(await attempt(t, "aliased", PASSWORD));
    });

    it("refuses six aliased logins in one request with HTTP 400 GRAPHQL_VALIDATION_FAILED, before any of them is tried", async () => {
      await registerUser(t, "batched");
      const aliases = Array.from(
        { length: 6 },
        (_, i) => `a${i + 1}: login(input: { username: "batched", password: "${WRONG}" }) { accessToken }`,
      );
      for (let i = 0; i < 6; i++) {
        const res = await t.gql(`mutation { ${aliases.join(" ")} }`);
        assert.equal(res.status, 400);
        assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED"]);
        assert.equal(res.body.errors![0]!.message, SINGLE_AUTH_FIELD_MESSAGE);
        assert.equal(res.body.data, undefined);
      }
      // Thirty-six refused guesses counted nothing: the right password still works.
      await assertLogsIn(t, "batched");
    });

    const refusedDocuments: Array<[string, string]> = [
      [
        "two registrations under aliases",
        `mutation { a: register(input: { username: "dup1", password: "${PASSWORD}" }) { accessToken } b: register(input: { username: "dup2", password: "${PASSWORD}" }) { accessToken } }`,
      ],
      [
        "register and login",
        `mutation { register(input: { username: "dup3", password: "${PASSWORD}" }) { accessToken } login(input: { username: "root", password: "${WRONG}" }) { accessToken } }`,
      ],
      [
        "a registration in a fragment next to one outside it",
        `mutation { ...R register(input: { username: "dup4", password: "${PASSWORD}" }) { accessToken } } fragment R on Mutation { other: register(input: { username: "dup5", password: "${PASSWORD}" }) { accessToken } }`,
      ],
      [
        "one fragment spread twice",
        `mutation { ...R ...R } fragment R on Mutation { register(input: { username: "dup6", password: "${PASSWORD}" }) { accessToken } }`,
      ],
      [
        "a registration in an inline fragment and a refreshToken",
        `mutation { ... on Mutation { register(input: { username: "dup7", password: "${PASSWORD}" }) { accessToken } } refreshToken(refreshToken: "rt_x") { accessToken } }`,
      ],
      [
        "refreshToken twice under aliases",
        `mutation { a: refreshToken(refreshToken: "rt_a") { accessToken } b: refreshToken(refreshToken: "rt_b") { accessToken } }`,
      ],
      [
        "changePassword and register",
        `mutation { changePassword(input: { currentPassword: "${PASSWORD}", newPassword: "${WRONG}" }) register(input: { username: "dup8", password: "${PASSWORD}" }) { accessToken } }`,
      ],
    ];
    for (const [name, query] of refusedDocuments) {
      it(`refuses an operation with ${name}: HTTP 400 GRAPHQL_VALIDATION_FAILED, and no user is created`, async () => {
        const res = await t.gql(query);
        assert.equal(res.status, 400);
        assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED"]);
        assert.equal(res.body.errors![0]!.message, SINGLE_AUTH_FIELD_MESSAGE);
        const admin = await attempt(t, ROOT.username, ROOT.password);
        const users = await t.gql(`{ users { username } }`, { token: admin.body.data.login.accessToken });
        const created = (users.body.data.users as Array<{ username: string }>).filter((u) =>
          u.username.startsWith("dup"),
        );
        assert.deepEqual(created, []);
      });
    }

    it("accepts a single login, and one login per operation in a document with several operations", async () => {
      await registerUser(t, "single");
      const single = await t.gql(
        `mutation { login(input: { username: "single", password: "${PASSWORD}" }) { user { username } } }`,
      );
      assert.deepEqual(single.body, { data: { login: { user: { username: "single" } } } });
      const document = `mutation A { login(input: { username: "single", password: "${PASSWORD}" }) { user { username } } }
        mutation B { login(input: { username: "single", password: "${PASSWORD}" }) { user { username } } }`;
      const res = await postBody(t.url, { query: document, operationName: "B" });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { data: { login: { user: { username: "single" } } } });
    });

    it("keeps its counters in the database when REDIS_URL is unset", async () => {
      assert.ok((await throttleRows(t, kind)) > 0, `the ${LOGIN_THROTTLE_TABLE} table holds counters`);
    });
  });

  describe(`login throttling per IP (${kind})`, () => {
    const t = useTestApp(kind, { env: { LOGIN_MAX_FAILURES_PER_IP: "10" } });
    before(async () => {
      for (const name of ["first", "second", "third"]) await registerUser(t, name);
    });

    it("throttles every login from an IP once it reaches LOGIN_MAX_FAILURES_PER_IP failures over any usernames; successes do not count", async () => {
      await fail(t, "first", 5);
      await assertLogsIn(t, "third");
      await fail(t, "second", 4);
      await assertLogsIn(t, "third");
      await fail(t, "unknown-name", 1);
      // Ten failures from 127.0.0.1: now nobody logs in from it, with or without the right password.
      assertRateLimited(await attempt(t, "third", PASSWORD));
      assertRateLimited(await attempt(t, "second", PASSWORD));
      assertRateLimited(await attempt(t, "someone-else", WRONG));
    });
  });

  describe(`login throttling windows (${kind})`, () => {
    const t = useTestApp(kind, { env: { LOGIN_THROTTLE_WINDOW: "2s" } });
    before(async () => {
      await registerUser(t, "patient");
    });

    it("lifts the limit once the window has passed, and the right password then logs in", async () => {
      await fail(t, "patient", 5);
      const retryAfter = assertRateLimited(await attempt(t, "patient", PASSWORD), 2);
      // retryAfter rounds up, so waiting that long is always enough (at most 2 s here).
      await sleep(retryAfter * 1000 + 50);
      await assertLogsIn(t, "patient");
    });
  });

  describe(`login throttling across two instances on one ${kind} database`, () => {
    const [a, b] = useTwoTestApps(kind);
    before(async () => {
      await registerUser(a, "roaming");
    });

    it("enforces one limit: failures on instance A count on instance B and the other way round", async () => {
      await fail(a, "roaming", 3);
      await fail(b, "roaming", 2);
      assertRateLimited(await attempt(a, "roaming", PASSWORD));
      assertRateLimited(await attempt(b, "roaming", PASSWORD));
    });
  });

  if (TEST_REDIS_URL) {
    const redisUrl = TEST_REDIS_URL;
    describe(`login throttling in Redis, two instances on separate ${kind} databases`, () => {
      const prefix = `gta-test-${randomBytes(6).toString("hex")}:`;
      let a!: TestApp;
      let b!: TestApp;
      before(async () => {
        await assertRedisReachable(redisUrl);
        const env = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix };
        // Separate databases: only Redis can carry the count from one to the other.
        a = await startTestApp(kind, { env });
        b = await startTestApp(kind, { env });
        await registerUser(a, "wanderer");
        await registerUser(b, "wanderer");
      });
      after(async () => {
        await a?.close();
        await b?.close();
        await a?.database.drop();
        await b?.database.drop();
        await deleteRedisKeys(redisUrl, prefix);
      });

      it("enforces one limit: failures on instance A count on instance B", async () => {
        await fail(a, "wanderer", 3);
        await fail(b, "wanderer", 2);
        assertRateLimited(await attempt(a, "wanderer", PASSWORD));
        assertRateLimited(await attempt(b, "wanderer", PASSWORD));
      });

      it("counts parallel attempts atomically in Redis too", async () => {
        await registerUser(a, "crowd");
        const answers = await Promise.all(
          Array.from({ length: 10 }, (_, i) => attempt(i % 2 === 0 ? a : b, "crowd", WRONG)),
        );
        assert.deepEqual(answers.map((res) => codes(res)[0]).sort(), [
          ...Array(5).fill("RATE_LIMITED"),
          ...Array(5).fill("UNAUTHENTICATED"),
        ]);
      });

      it("resets the pair on success for both instances", async () => {
        await registerUser(a, "recovered");
        await registerUser(b, "recovered");
        await fail(a, "recovered", 4);
        await assertLogsIn(b, "recovered");
        await fail(a, "recovered", 4);
        await assertLogsIn(a, "recovered");
      });

      it("keeps the counters in Redis under REDIS_KEY_PREFIX, not in the database", async () => {
        const keys = await listRedisKeys(redisUrl, prefix);
        assert.ok(keys.includes(`${prefix}login:user_ip:wanderer|127.0.0.1`), keys.join(", "));
        assert.ok(keys.includes(`${prefix}login:ip:127.0.0.1`), keys.join(", "));
        assert.equal(await throttleRows(a, kind), 0);
        assert.equal(await throttleRows(b, kind), 0);
      });
    });
  }
}

describe("login throttling with REDIS_URL pointing at nothing", () => {
  it("refuses to start, naming REDIS_URL and not the URL itself", async () => {
    const database = createTestDatabase("sqlite");
    try {
      await assert.rejects(
        startTestApp("sqlite", { database, env: { REDIS_URL: "redis://:not-a-real-password@127.0.0.1:1" } }),
        (error: Error) =>
          error.message.startsWith("REDIS_URL: cannot connect to Redis") &&
          !error.message.includes("not-a-real-password"),
      );
    } finally {
      await database.drop();
    }
  });
});
