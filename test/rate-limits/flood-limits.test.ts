import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";

import { sql } from "kysely";

import { FLOOD_LIMITS_TABLE } from "../../src/rate-limits/flood-limit.js";
import { codes, type GraphQLResponse, registerRaw, registerUser } from "../helpers/api.js";
import { startTestApp, type TestApp, useTestApp, useTwoTestApps } from "../helpers/app.js";
import { type DatabaseKind, DATABASES } from "../helpers/databases.js";
import { assertRedisReachable, deleteRedisKeys, listRedisKeys, TEST_REDIS_URL } from "../helpers/redis.js";

const HOUR = 3600;
const CREATE_POST = `mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`;

/**
 * The answer to a refused write: RATE_LIMITED with HTTP 200, no data, `retryAfter` a whole number
 * of seconds within the hour, and a message that names the limit.
 */
function assertRateLimited(res: GraphQLResponse, message: RegExp): void {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["RATE_LIMITED"], JSON.stringify(res.body.errors));
  assert.equal(res.body.data, null);
  const { code, retryAfter, ...rest } = res.body.errors![0]!.extensions!;
  assert.equal(code, "RATE_LIMITED");
  assert.deepEqual(rest, {}, "no other extensions");
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= HOUR,
    `retryAfter ${retryAfter} is within 1..${HOUR}`,
  );
  assert.match(res.body.errors![0]!.message, message);
  assert.ok(res.body.errors![0]!.message.endsWith(`Try again in ${retryAfter} seconds.`), res.body.errors![0]!.message);
}

const REGISTRATIONS = /^Too many accounts were registered from this address\./;
const POSTS = /^Too many posts were created by this account\./;

function assertRegistered(res: GraphQLResponse, username: string): void {
  assert.equal(res.status, 200);
  assert.equal(res.body.errors, undefined, `${username}: ${JSON.stringify(res.body.errors)}`);
  assert.equal(res.body.data.register.user.username, username);
}

async function count(t: TestApp, table: "users" | "posts"): Promise<number> {
  const result = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(
    t.app.database.db,
  );
  return Number(result.rows[0]!.n);
}

/** Whether the database holds the flood limits' table (it is created only when it is needed). */
async function hasFloodTable(t: TestApp, kind: DatabaseKind): Promise<boolean> {
  const exists =
    kind === "sqlite"
      ? await sql<{
          n: number;
        }>`select count(*) as n from sqlite_master where type = 'table' and name = ${FLOOD_LIMITS_TABLE}`.execute(
          t.app.database.db,
        )
      : await sql<{
          n: number;
        }>`select count(*)::int as n from information_schema.tables where table_schema = current_schema() and table_name = ${FLOOD_LIMITS_TABLE}`.execute(
          t.app.database.db,
        );
  return Number(exists.rows[0]!.n) > 0;
}

/**
 * A TCP relay to Redis that can freeze: from `freeze()` on it passes nothing in either direction
 * and keeps the connections open, like a Redis (or a network) that hangs.
 */
async function startFreezableRelay(target: string): Promise<{ url: string; freeze(): void; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  let frozen = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(port || 6379), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    client.on("data", (chunk) => frozen || upstream.write(chunk));
    upstream.on("data", (chunk) => frozen || client.write(chunk));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    url: `redis://127.0.0.1:${address.port}`,
    freeze: () => {
      frozen = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function createPost(t: TestApp, token: string, title: string): Promise<GraphQLResponse> {
  return t.gql(CREATE_POST, { token, variables: { input: { title, body: "body" } } });
}

for (const kind of DATABASES) {
  describe(`REGISTER_MAX_PER_IP (${kind})`, () => {
    const t = useTestApp(kind, { env: { REGISTER_MAX_PER_IP: "3" } });

    it("counts successful registrations only, and refuses the one past the limit with RATE_LIMITED and nothing stored", async () => {
      assertRegistered(await registerRaw(t, "first"), "first");
      const taken = await registerRaw(t, "FIRST");
      assert.deepEqual(codes(taken), ["BAD_USER_INPUT"], "a taken username is refused as before, and not counted");
      assertRegistered(await registerRaw(t, "second"), "second");
      assertRegistered(await registerRaw(t, "third"), "third");
      assertRateLimited(await registerRaw(t, "fourth"), REGISTRATIONS);
      assertRateLimited(await registerRaw(t, "fifth"), REGISTRATIONS);
      assert.equal(await count(t, "users"), 3);
      assert.equal(await hasFloodTable(t, kind), true, "the counters live in the database");
    });

    it("leaves login alone: the registered users still sign in", async () => {
      await t.login("first");
    });
  });

  describe(`REGISTER_MAX_PER_IP under parallel registrations (${kind})`, () => {
    const t = useTestApp(kind, { env: { REGISTER_MAX_PER_IP: "3" } });

    it("lets exactly three of eight concurrent registrations through", async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => registerRaw(t, `racer${i}`)));
      assert.deepEqual(answers.map((res) => codes(res)[0] ?? "OK").sort(), [
        ...Array(3).fill("OK"),
        ...Array(5).fill("RATE_LIMITED"),
      ]);
      assert.equal(await count(t, "users"), 3);
    });
  });

  describe(`REGISTER_MAX_PER_IP=0 (${kind})`, () => {
    let t: TestApp;
    before(async () => {
      // All off, so that nothing needs the counters' table.
      t = await startTestApp(kind, {
        env: {
          REGISTER_MAX_PER_IP: "0",
          CREATE_POST_MAX_PER_USER: "0",
          UPDATE_POST_MAX_PER_USER: "0",
          LOGIN_MAX_PER_USER: "0",
          REFRESH_MAX_PER_USER: "0",
          WRITES_MAX_PER_USER: "0",
          EMAIL_REQUESTS_MAX_PER_IP: "0",
          PASSKEY_CHALLENGES_MAX_PER_IP: "0",
          INTROSPECTION_MAX_PER_TOKEN: "0",
        },
      });
    });
    after(async () => {
      await t?.close();
      await t?.database.drop();
    });

    it("switches the limit off: more registrations than the default 30 from one IP all succeed, and no counter table is made", async () => {
      for (let batch = 0; batch < 4; batch++) {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => registerRaw(t, `open${batch * 8 + i}`)));
        answers.forEach((res, i) => assertRegistered(res, `open${batch * 8 + i}`));
      }
      assert.equal(await count(t, "users"), 32);
      assert.equal(await hasFloodTable(t, kind), false);
    });
  });

  describe(`REGISTER_MAX_PER_IP across two instances on one ${kind} database`, () => {
    const [a, b] = useTwoTestApps(kind, { env: { REGISTER_MAX_PER_IP: "3" } });

    it("shares one counter: registrations on A count on B and the other way round", async () => {
      assertRegistered(await registerRaw(a, "one"), "one");
      assertRegistered(await registerRaw(b, "two"), "two");
      assertRegistered(await registerRaw(a, "three"), "three");
      assertRateLimited(await registerRaw(b, "four"), REGISTRATIONS);
      assertRateLimited(await registerRaw(a, "five"), REGISTRATIONS);
      assert.equal(await count(a, "users"), 3);
    });
  });

  describe(`CREATE_POST_MAX_PER_USER (${kind})`, () => {
    const t = useTestApp(kind, { env: { CREATE_POST_MAX_PER_USER: "3" } });

    it("refuses a user's post past the limit with RATE_LIMITED and nothing stored, while another user still posts", async () => {
      const prolific = await registerUser(t, "prolific");
      const other = await registerUser(t, "other");
      for (let i = 1; i <= 3; i++) {
        const res = await createPost(t, prolific.accessToken, `post ${i}`);
        assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      }
      assertRateLimited(await createPost(t, prolific.accessToken, "post 4"), POSTS);
      assert.equal(await count(t, "posts"), 3);
      const res = await createPost(t, other.accessToken, "a first post");
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(await count(t, "posts"), 4);
    });

    it("does not charge a post that was refused for its input", async () => {
      const careful = await registerUser(t, "careful");
      const bad = await createPost(t, careful.accessToken, "");
      assert.deepEqual(codes(bad), ["BAD_USER_INPUT"]);
      for (let i = 1; i <= 3; i++)
        assert.equal((await createPost(t, careful.accessToken, `fine ${i}`)).body.errors, undefined);
      assertRateLimited(await createPost(t, careful.accessToken, "one too many"), POSTS);
    });

    it("counts per user across that user's sessions", async () => {
      const twoDevices = await registerUser(t, "two-devices");
      const second = await t.login("two-devices", "correct horse battery");
      for (const token of [twoDevices.accessToken, second, twoDevices.accessToken])
        assert.equal((await createPost(t, token, "x")).body.errors, undefined);
      assertRateLimited(await createPost(t, second, "x"), POSTS);
    });
  });

  describe(`CREATE_POST_MAX_PER_USER=0 (${kind})`, () => {
    const t = useTestApp(kind, { env: { CREATE_POST_MAX_PER_USER: "0" } });

    it("switches the limit off: more posts than the default 60 in an hour all succeed", async () => {
      const writer = await registerUser(t, "writer");
      for (let batch = 0; batch < 7; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 10 }, (_, i) => createPost(t, writer.accessToken, `post ${batch * 10 + i}`)),
        );
        for (const res of answers) assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      }
      assert.equal(await count(t, "posts"), 70);
    });
  });

  if (TEST_REDIS_URL) {
    const redisUrl = TEST_REDIS_URL;
    describe(`flood limits in Redis, two instances on separate ${kind} databases`, () => {
      const prefix = `gta-test-${randomBytes(6).toString("hex")}:`;
      let a!: TestApp;
      let b!: TestApp;
      before(async () => {
        await assertRedisReachable(redisUrl);
        const env = {
          REDIS_URL: redisUrl,
          REDIS_KEY_PREFIX: prefix,
          REGISTER_MAX_PER_IP: "3",
          CREATE_POST_MAX_PER_USER: "2",
        };
        // Separate databases: only Redis can carry the count from one to the other.
        a = await startTestApp(kind, { env });
        b = await startTestApp(kind, { env });
      });
      after(async () => {
        await a?.close();
        await b?.close();
        await a?.database.drop();
        await b?.database.drop();
        await deleteRedisKeys(redisUrl, prefix);
      });

      it("shares the registration counter: two on A and one on B use up the IP's budget on both", async () => {
        assertRegistered(await registerRaw(a, "one"), "one");
        assertRegistered(await registerRaw(a, "two"), "two");
        assertRegistered(await registerRaw(b, "three"), "three");
        assertRateLimited(await registerRaw(b, "four"), REGISTRATIONS);
        assertRateLimited(await registerRaw(a, "five"), REGISTRATIONS);
        assert.equal((await count(a, "users")) + (await count(b, "users")), 3);
      });

      it("keeps the counters in Redis under REDIS_KEY_PREFIX, not in the database", async () => {
        const token = await a.login("one");
        assert.equal((await createPost(a, token, "in redis")).body.errors, undefined);
        const keys = await listRedisKeys(redisUrl, prefix);
        assert.ok(keys.includes(`${prefix}register:ip:127.0.0.1`), keys.join(", "));
        assert.ok(
          keys.some((key) => key.startsWith(`${prefix}post:user:`)),
          keys.join(", "),
        );
        assert.equal(await hasFloodTable(a, kind), false);
        assert.equal(await hasFloodTable(b, kind), false);
      });
    });
  }
}

if (TEST_REDIS_URL) {
  const redisUrl = TEST_REDIS_URL;
  describe("flood limits while Redis hangs", () => {
    const prefix = `gta-test-${randomBytes(6).toString("hex")}:`;
    let relay: Awaited<ReturnType<typeof startFreezableRelay>> | undefined;
    let t: TestApp | undefined;
    before(async () => {
      await assertRedisReachable(redisUrl);
      relay = await startFreezableRelay(redisUrl);
      t = await startTestApp("sqlite", {
        env: { REDIS_URL: relay.url, REDIS_KEY_PREFIX: prefix, REDIS_TIMEOUT: "200ms", REGISTER_MAX_PER_IP: "2" },
      });
    });
    after(async () => {
      await t?.close();
      await t?.database.drop();
      await relay?.close();
      await deleteRedisKeys(redisUrl, prefix);
    });

    it("counts per instance after REDIS_TIMEOUT instead of hanging or letting everything through, and logs the outage once", async () => {
      relay!.freeze();
      const started = performance.now();
      assertRegistered(await registerRaw(t!, "during-1"), "during-1");
      assertRegistered(await registerRaw(t!, "during-2"), "during-2");
      assertRateLimited(await registerRaw(t!, "during-3"), REGISTRATIONS);
      const elapsed = performance.now() - started;
      // Three registrations, each waiting at most one REDIS_TIMEOUT (200 ms) for Redis, plus hashing.
      assert.ok(elapsed < 5000, `took ${Math.round(elapsed)} ms`);
      assert.equal(await count(t!, "users"), 2);
      const outages = t!.logs
        .map((line) => JSON.parse(line) as { msg?: string })
        .filter((line) => line.msg?.includes("is not answering"));
      assert.equal(outages.length, 1, JSON.stringify(outages));
    });
  });
}
