// kill -9 during writes on SQLite: every write the server acknowledged (200 with an id) is in the
// file afterwards, the file passes integrity_check, and a new server on the same DATA_DIR serves it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import Database from "better-sqlite3";

import { SQLITE_FILE } from "../../src/db/database.js";
import { connectionFailure, ServerProcess } from "../helpers/app.js";

const CONCURRENCY = 4;
/** Acknowledged posts before the kill; the kill lands while CONCURRENCY more are in flight. */
const KILL_AFTER_ACKS = 60;
/** Generous bounds: far above what a laptop needs, small enough that a hang fails fast. */
const KILL_EXIT_MS = 5_000;
const RESTART_MS = 30_000;

const CREATE_POST = `mutation($input: CreatePostInput!) { createPost(input: $input) { id title } }`;

describe("SIGKILL of the SQLite server in the middle of writes", () => {
  let dir: string;
  let env: Record<string, string>;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gta-kill-"));
    // CREATE_POST_MAX_PER_USER=0: no per-user post limit may stop the stream of writes.
    env = { DATA_DIR: join(dir, "data"), CREATE_POST_MAX_PER_USER: "0", NODE_ENV: "development" };
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("loses no acknowledged post, leaves an intact file, and restarts serving them", async (c) => {
    const server = await ServerProcess.start(env, dir);
    const registered = await server.gql(
      `mutation { register(input: { username: "writer", password: "writer password 1" }) { accessToken } }`,
    );
    assert.equal(registered.status, 200);
    const token: string = registered.body.data.register.accessToken;

    const acknowledged = new Map<string, string>(); // id -> title
    const failures: string[] = [];
    const unexpected: string[] = [];
    let sent = 0;
    let killedAt = 0;
    let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;

    const worker = async (w: number) => {
      for (let i = 0; i < 1000; i++) {
        const title = `post ${w}-${i}`;
        sent += 1;
        try {
          const response = await fetch(server.graphqlUrl, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
            body: JSON.stringify({ query: CREATE_POST, variables: { input: { title, body: `body of ${title}` } } }),
          });
          const text = await response.text();
          const body = JSON.parse(text);
          if (response.status !== 200 || body.errors || body.data?.createPost?.title !== title) {
            unexpected.push(`${response.status} ${text.slice(0, 200)}`);
            continue;
          }
          acknowledged.set(body.data.createPost.id, title);
          if (acknowledged.size >= KILL_AFTER_ACKS && !exit) {
            killedAt = performance.now();
            exit = server.signal("SIGKILL", KILL_EXIT_MS);
          }
        } catch (error) {
          // After the kill: refused, reset or cut off; these writes were never acknowledged.
          const code =
            connectionFailure(error) ?? (error instanceof Error ? `${error.name}: ${error.message}` : String(error));
          failures.push(code);
          if (exit) return;
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    assert.ok(exit, "the kill was sent");
    assert.deepEqual(await exit, { code: null, signal: "SIGKILL" });
    const killMs = performance.now() - killedAt;
    assert.deepEqual(unexpected, [], "every answered write was a complete 200 with its post");
    assert.ok(acknowledged.size >= KILL_AFTER_ACKS);
    assert.ok(
      failures.length >= 1 && failures.length <= CONCURRENCY,
      `each worker stopped at its first failure: ${failures.join(", ")}`,
    );
    for (const failure of failures)
      assert.ok(
        ["ECONNREFUSED", "ECONNRESET", "EPIPE", "UND_ERR_SOCKET"].includes(failure),
        `a connection failure, not ${failure}`,
      );

    // The file as the killed process left it (WAL and all): intact, with every acknowledged post.
    const file = join(env.DATA_DIR!, SQLITE_FILE);
    const sqlite = new Database(file);
    let stored: number;
    try {
      assert.deepEqual(sqlite.pragma("integrity_check"), [{ integrity_check: "ok" }]);
      assert.deepEqual(sqlite.pragma("foreign_key_check"), []);
      const byId = sqlite.prepare("select title from posts where id = ?");
      for (const [id, title] of acknowledged)
        assert.deepEqual(byId.get(id), { title }, `acknowledged post ${id} is stored`);
      stored = (sqlite.prepare("select count(*) as n from posts").get() as { n: number }).n;
      // In-flight writes may have committed without their answer reaching the client; never more.
      assert.ok(
        stored >= acknowledged.size && stored <= acknowledged.size + CONCURRENCY,
        `${stored} rows for ${acknowledged.size} acknowledged`,
      );
    } finally {
      sqlite.close();
    }

    // A new server on the same DATA_DIR: same secret, same data, and it accepts writes again.
    const restartedAt = performance.now();
    const again = await ServerProcess.start(env, dir);
    const restartMs = performance.now() - restartedAt;
    try {
      assert.ok(restartMs < RESTART_MS);
      for (const [id, title] of acknowledged) {
        const read = await again.gql(`query($id: ID!) { post(id: $id) { id title author { username } } }`, { id });
        assert.deepEqual(read, {
          status: 200,
          body: { data: { post: { id, title, author: { username: "writer" } } } },
        });
      }
      const created = await again.gql(
        CREATE_POST,
        { input: { title: "after the crash", body: "still writing" } },
        token,
      );
      assert.equal(created.status, 200);
      assert.equal(created.body.data.createPost.title, "after the crash");
      assert.deepEqual(await again.signal("SIGTERM", 15_000), { code: 0, signal: null });
    } finally {
      if (again.child.exitCode === null) again.child.kill("SIGKILL");
    }
    c.diagnostic(
      `${sent} writes sent, ${acknowledged.size} acknowledged, ${stored} stored, ${failures.length} cut off (${failures.join(", ")}); ` +
        `SIGKILL to exit ${killMs.toFixed(0)} ms; restart to ready ${restartMs.toFixed(0)} ms`,
    );
  });
});
