import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import SqliteDatabase from "better-sqlite3";

import { SQLITE_FILE } from "../../src/db/database.js";
import { codes, PASSWORD } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { assertRedisReachable, deleteRedisKeys, listRedisKeys, TEST_REDIS_URL } from "../helpers/redis.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

function report(tc: { diagnostic(message: string): void }, message: string): void {
  tc.diagnostic(message);
  console.log(`[faults] ${message}`);
}

async function timedLogin(t: TestApp, username: string, password: string) {
  const start = performance.now();
  const res = await t.gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
    variables: { input: { username, password } },
  });
  return { res, ms: Math.round(performance.now() - start) };
}

describe(
  "login throttling with a Redis that freezes (a TCP proxy that stops forwarding)",
  { skip: TEST_REDIS_URL === undefined && "TEST_REDIS_URL is not set" },
  () => {
    const REDIS_TIMEOUT_MS = 300;
    const prefix = `gta-fault-${randomBytes(4).toString("hex")}:`;
    let proxy: TcpProxy;
    let t: TestApp | undefined;
    before(async () => {
      await assertRedisReachable(TEST_REDIS_URL!);
      const upstream = new URL(TEST_REDIS_URL!);
      proxy = await TcpProxy.start({ host: upstream.hostname, port: Number(upstream.port || 6379) });
      t = await startTestApp("sqlite", {
        env: {
          REDIS_URL: TcpProxy.rewrite(TEST_REDIS_URL!, proxy.port),
          REDIS_KEY_PREFIX: prefix,
          REDIS_TIMEOUT: `${REDIS_TIMEOUT_MS}ms`,
          LOGIN_MAX_FAILURES_PER_USER_IP: "3",
        },
      });
    });
    after(async () => {
      proxy?.thaw();
      await t?.close();
      await proxy?.close();
      await t?.database.drop();
      await deleteRedisKeys(TEST_REDIS_URL!, prefix);
    });

    it("lets logins through within REDIS_TIMEOUT of their usual time, still throttles per instance, and goes back to Redis after", async (tc) => {
      await t!.register("frozen-out", PASSWORD);
      const usual = await timedLogin(t!, "frozen-out", PASSWORD);
      assert.ok(usual.res.body.data?.login?.accessToken);

      proxy.freeze();
      try {
        const during = await timedLogin(t!, "frozen-out", PASSWORD);
        assert.equal(during.res.status, 200);
        assert.ok(during.res.body.data?.login?.accessToken, JSON.stringify(during.res.body));
        // Each Redis step waits out the timeout once: the pair's count, the IP's, then the success bookkeeping.
        assert.ok(
          during.ms < usual.ms + 3 * REDIS_TIMEOUT_MS + 1000,
          `login took ${during.ms} ms while Redis was frozen (usual ${usual.ms} ms)`,
        );

        // The fallback is a real limit: three failures, then RATE_LIMITED even with the right password.
        for (let i = 0; i < 3; i++) {
          const failed = await timedLogin(t!, "frozen-out", "wrong password!");
          assert.deepEqual(codes(failed.res), ["UNAUTHENTICATED"]);
        }
        const throttled = await timedLogin(t!, "frozen-out", PASSWORD);
        assert.deepEqual(codes(throttled.res), ["RATE_LIMITED"]);
        report(tc, `Redis frozen: login ${during.ms} ms (usual ${usual.ms} ms), fallback throttled after 3 failures`);
      } finally {
        proxy.thaw();
      }
      const warnings = t!.logs.filter(
        (line) => line.includes("Redis for the rate limits") && JSON.parse(line).level === 40,
      );
      assert.equal(warnings.length, 1, `one warning for the whole outage, not one per login: ${warnings.join("\n")}`);

      // Counting is back in Redis: a failure for a new name creates its key there.
      await sleep(1200);
      const failed = await timedLogin(t!, "someone-else", "wrong password!");
      assert.deepEqual(codes(failed.res), ["UNAUTHENTICATED"]);
      const keys = await listRedisKeys(TEST_REDIS_URL!, prefix);
      assert.ok(
        keys.some((key) => key.includes("someone-else")),
        `a Redis key counts the new failure: ${keys.join(", ")}`,
      );
      assert.ok(
        t!.logs.some((line) => line.includes("Redis for the rate limits") && line.includes("answering again")),
        "the recovery is logged",
      );
    });
  },
);

describe("SQLite whose write lock another process holds past DATABASE_TIMEOUT", () => {
  const TIMEOUT_MS = 300;
  let t: TestApp | undefined;
  before(async () => {
    t = await startTestApp("sqlite", { env: { DATABASE_TIMEOUT: `${TIMEOUT_MS}ms` } });
  });
  after(async () => {
    await t?.close();
    await t?.database.drop();
  });

  it("answers a write with 503 SERVICE_UNAVAILABLE after the busy wait, stores nothing, and writes again once the lock is gone", async (tc) => {
    const user = await t!.register("locked-out");
    const holder = new SqliteDatabase(join(t!.database.dataDir, SQLITE_FILE));
    holder.exec("begin immediate");
    let ms: number;
    try {
      const start = performance.now();
      const res = await t!.gql(`mutation { createPost(input: { title: "t", body: "b" }) { id } }`, {
        token: user.token,
      });
      ms = Math.round(performance.now() - start);
      assert.equal(res.status, 503);
      assert.deepEqual(codes(res), ["SERVICE_UNAVAILABLE"]);
      assert.equal(res.headers.get("retry-after"), "5");
      assert.ok(
        ms >= TIMEOUT_MS - 50 && ms < TIMEOUT_MS + 2000,
        `answered after ${ms} ms (DATABASE_TIMEOUT ${TIMEOUT_MS} ms)`,
      );
      assert.ok(!t!.logs.some((line) => JSON.parse(line).level >= 50), "no error-level log line");
    } finally {
      holder.exec("rollback");
      holder.close();
    }
    const stored = await t!.gql(`{ posts { id } }`);
    assert.deepEqual(stored.body, { data: { posts: [] } });
    const created = await t!.gql(`mutation { createPost(input: { title: "t", body: "b" }) { title } }`, {
      token: user.token,
    });
    assert.deepEqual(created.body, { data: { createPost: { title: "t" } } });
    report(tc, `SQLite locked: createPost 503 after ${ms} ms (DATABASE_TIMEOUT ${TIMEOUT_MS} ms)`);
  });
});
