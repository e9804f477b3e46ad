// The SQL level of bench/growth.mjs: the same lists asked of the built app's own stores in this
// process (dist/src/…), without HTTP, GraphQL or the server's event loop, so that what the
// database does at each size is seen apart from the rest of a request and from the machine's load.
import { join } from "node:path";

import { summary } from "./growth-queries.mjs";
import { EMPTY_TYPE, EVENTS_PER_USER } from "./growth-seed.mjs";

/** The store calls that answer each HTTP query of growth-queries.mjs (same names), `me` aside. */
function storeCalls(stores, p, now) {
  const { posts, users, audit, sessions, tokens } = stores;
  const page = (more = {}) => ({ first: 50, offset: 0, ...more });
  const mid = Math.floor(p.n / 2);
  const fifty = Array.from({ length: Math.min(50, p.n) }, (_, i) => p.userId(i + 1));
  const heavyAfter = p.postId(Math.ceil(p.heavyPosts / 2));
  return [
    ["posts first", () => posts.list(page())],
    ["posts after (middle)", () => posts.list(page({ after: p.postId(mid) }))],
    ["posts offset 10,000", () => posts.list(page({ offset: 10_000 }))],
    ["users first", () => users.list(page())],
    ["users after (middle)", () => users.list(page({ after: p.userId(mid) }))],
    ["users offset 10,000", () => users.list(page({ offset: 10_000 }))],
    ["users { posts } (50 users)", () => posts.listByAuthors(fifty, page({ first: 10 }))],
    ["User.posts heavy author", () => posts.listByAuthors([p.heavyAuthorId], page())],
    ["User.posts heavy after", () => posts.listByAuthors([p.heavyAuthorId], page({ after: heavyAfter }))],
    ["auditEvents first", () => audit.listNewest(page())],
    ["auditEvents type (rows)", () => audit.listNewest(page(), { type: "LOGIN_FAILED" })],
    ["auditEvents type (none)", () => audit.listNewest(page(), { type: EMPTY_TYPE })],
    ["auditEvents userId", () => audit.listNewest(page(), { userId: p.userId(mid) })],
    ["auditEvents after (middle)", () => audit.listNewest(page({ after: String((p.n * EVENTS_PER_USER) / 2) }))],
    ["auditEvents offset 10,000", () => audit.listNewest(page({ offset: 10_000 }))],
    ["sessions", () => sessions.listActive(p.adminId, now, page())],
    ["apiTokens", () => tokens.listLive(p.adminId, now, page())],
    // The one active ADMIN would lose ADMIN: counted through the index, refused, nothing written.
    ["last-ADMIN check", async () => (await users.setRoles(p.adminId, ["USER"], now)) === "last-admin"],
  ];
}

/**
 * Times each store call `samples` times after `warmup` untimed runs, in rounds of every call in
 * turn; throws when one answers nothing (an unknown `after`) or the last-admin check lets go.
 */
export async function timeStores(root, target, kind, p, { samples, warmup }) {
  const dist = (path) => import(join(root, "dist/src", path));
  const { openDatabase } = await dist("db/database.js");
  const { PostStore } = await dist("posts/post.store.js");
  const { UserStore } = await dist("users/user.store.js");
  const { AuditStore } = await dist("audit/audit.store.js");
  const { SessionStore } = await dist("sessions/session.store.js");
  const { ApiTokenStore } = await dist("api-tokens/api-token.store.js");
  const quiet = { warn: () => undefined, info: () => undefined };
  const handle = openDatabase(
    { dataDir: target.dataDir, databaseUrl: target.url, databaseSchema: target.schema, databaseTimeoutMs: 600_000 },
    quiet,
  );
  try {
    const db = handle.db;
    const stores = {
      posts: new PostStore(db, kind),
      users: new UserStore(db, kind),
      audit: new AuditStore(db),
      sessions: new SessionStore(db),
      tokens: new ApiTokenStore(db),
    };
    const calls = storeCalls(stores, p, new Date());
    const times = calls.map(() => []);
    for (let round = 0; round < warmup + samples; round++) {
      for (const [i, [name, call]] of calls.entries()) {
        const started = performance.now();
        const answer = await call();
        const ms = performance.now() - started;
        if (answer === undefined || answer === false) throw new Error(`${name} (SQL level): ${String(answer)}`);
        if (round >= warmup) times[i].push(ms);
      }
    }
    return calls.map(([name], i) => ({ name, ...summary(times[i]) }));
  } finally {
    await handle.close();
  }
}
