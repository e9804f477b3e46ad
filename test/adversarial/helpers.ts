// What only the adversarial suites use: the documented error codes, a trap for key-fetching
// verifiers, before/after snapshots of the tables an attack could change, and tallies. Generic
// helpers live in test/helpers/ (app.ts, api.ts, http.ts, jwt.ts).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";

import type { Kysely } from "kysely";

import type { Database } from "../../src/db/schema.js";
import { ErrorCode, ProtocolErrorCode } from "../../src/errors.js";

/** Every `extensions.code` docs/errors.md documents: the service's own and the protocol layer's. */
export const DOCUMENTED_CODES: ReadonlySet<string> = new Set<string>([
  ...Object.values(ErrorCode),
  ...Object.values(ProtocolErrorCode),
]);

/**
 * A plain HTTP listener on 127.0.0.1 that stands in for an attacker's key server: it counts every
 * TCP connection and every request, and serves `body` to whatever asks. A verifier that followed a
 * `jku`, `x5u` or URL-shaped `kid` would show up here.
 */
export async function startTrap(
  body: string,
): Promise<{ origin: string; connections: () => number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  let connections = 0;
  const server: Server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    response.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  server.on("connection", () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    origin: `http://127.0.0.1:${address.port}`,
    connections: () => connections,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** The rows of the tables an attack could change, sorted, as comparable JSON text. */
export interface Snapshot {
  users: string;
  posts: string;
  sessions: string;
  refresh_tokens: string;
}

/**
 * Reads users, posts, sessions and refresh tokens whole. `sessions.last_used_at` is left out: a
 * successful refresh elsewhere may touch it, and it changes nothing an attacker could use.
 * `ignoreUserTimes` also leaves out `users.updated_at` and `roles_changed_at`, for a suite that
 * sets a user's roles to the ones it already has.
 */
export async function snapshot(db: Kysely<Database>, options: { ignoreUserTimes?: boolean } = {}): Promise<Snapshot> {
  const text = (rows: unknown[]) =>
    JSON.stringify(rows, (_key, value: unknown) => (value instanceof Date ? value.toISOString() : value));
  const userColumns = ["id", "username", "username_normalized", "password_hash", "roles", "created_at"] as const;
  const [users, posts, sessions, refreshTokens] = await Promise.all([
    options.ignoreUserTimes
      ? db.selectFrom("users").select(userColumns).orderBy("id").execute()
      : db.selectFrom("users").selectAll().orderBy("id").execute(),
    db.selectFrom("posts").selectAll().orderBy("id").execute(),
    db
      .selectFrom("sessions")
      .select(["id", "user_id", "created_at", "expires_at", "user_agent", "ip", "revoked_at", "revoked_reason"])
      .orderBy("id")
      .execute(),
    db.selectFrom("refresh_tokens").selectAll().orderBy("id").execute(),
  ]);
  return { users: text(users), posts: text(posts), sessions: text(sessions), refresh_tokens: text(refreshTokens) };
}

/** Asserts two snapshots are equal table by table, naming the table that changed. */
export function assertUnchanged(before: Snapshot, after: Snapshot, what: string): void {
  for (const table of Object.keys(before) as Array<keyof Snapshot>) {
    assert.equal(after[table], before[table], `${what}: the ${table} table changed`);
  }
}

/** Counts rows per key, for `t.diagnostic` summaries. */
export function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}
