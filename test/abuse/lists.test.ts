// The list attacks of issue 22 against the server as `npm start` runs it (its 160 MB heap): one
// author with 14,000 posts, and 4 anonymous clients sending 15-alias pages of User.posts in a loop
// (shallow pages, the deepest offsets allowed, and keyset pages deep in the list) while a bystander
// asks `{ __typename }`. Before, each alias numbered all of the author's posts with row_number()
// (290 to 460 ms a query on SQLite; the bystander's p50 went from 3 ms to 920 ms). Also the caps:
// an offset over 10,000 and a `sessions(first:)` over 100 are refused with BAD_USER_INPUT.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import Sqlite from "better-sqlite3";
import pg from "pg";

import { SQLITE_FILE } from "../../src/db/database.js";
import { type AbuseServer, isAlive, startAbuseServer, startBystander } from "../helpers/abuse.js";
import { type ApiClient, gql, registerUser } from "../helpers/api.js";
import { type DatabaseKind, DATABASES } from "../helpers/databases.js";

const POSTS = 14_000;
const PAGE = 20;
const LOAD_MS = 4_000;
const CLIENTS = 4;

/**
 * Stores POSTS posts by `authorId` straight into the server's database, `post 0` the oldest, a
 * second apart and all older than now; returns their ids, oldest first.
 */
async function seedPosts(abuse: AbuseServer, kind: DatabaseKind, authorId: string): Promise<string[]> {
  const ids = Array.from({ length: POSTS }, () => randomUUID());
  const start = Date.now() - 86_400_000;
  if (kind === "sqlite") {
    const db = new Sqlite(join(abuse.database.dataDir, SQLITE_FILE), { timeout: 10_000 });
    try {
      const insert = db.prepare(
        "insert into posts (id, author_id, title, body, created_at, updated_at) values (?, ?, ?, ?, ?, ?)",
      );
      db.transaction(() => {
        ids.forEach((id, i) => {
          const at = new Date(start + i * 1000).toISOString();
          insert.run(id, authorId, `post ${i}`, `body of post ${i}`, at, at);
        });
      })();
    } finally {
      db.close();
    }
    return ids;
  }
  const client = new pg.Client({
    connectionString: abuse.database.env.DATABASE_URL,
    options: `-c search_path=${abuse.database.env.DATABASE_SCHEMA}`,
  });
  await client.connect();
  try {
    await client.query(
      `insert into posts (id, author_id, title, body, created_at, updated_at)
       select u.id, $2, 'post ' || (u.n - 1), 'body of post ' || (u.n - 1),
              $3::timestamptz + (u.n - 1) * interval '1 second', $3::timestamptz + (u.n - 1) * interval '1 second'
       from unnest($1::text[]) with ordinality as u(id, n)`,
      [ids, authorId, new Date(start).toISOString()],
    );
    await client.query("analyze posts");
  } finally {
    await client.end();
  }
  return ids;
}

/** `{ post(id) { author { p0: posts(…) … p14: posts(…) } } }`: 15 aliases, anonymous, cost about 1,200. */
function pageQuery(pages: string[]): string {
  const aliases = pages.map((args, i) => `p${i}: posts(first: ${PAGE}, ${args}) { id title }`).join(" ");
  return `query($id: ID!) { post(id: $id) { author { ${aliases} } } }`;
}

/** The titles a page of the newest-first list holds when it starts at post `newest`. */
function expectedTitles(newest: number): string[] {
  return Array.from({ length: PAGE }, (_, i) => `post ${newest - i}`);
}

/** The median and the 99th percentile of `values`, in ms. */
function percentiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

/** CPU time `pid` has used (user and system), in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

for (const kind of DATABASES) {
  describe(`lists under attack (${kind})`, () => {
    it("keeps serving a bystander while 4 clients page through one author's 14,000 posts 15 aliases at a time, with every answer correct", async (t) => {
      const abuse = await startAbuseServer(kind);
      try {
        const client: ApiClient = { gql: (query, options) => gql(abuse.server.graphqlUrl, query, options) };
        const author = await registerUser(client, "prolific");
        const ids = await seedPosts(abuse, kind, author.userId);
        const newestId = ids.at(-1)!;

        // Shallow pages; the deepest offsets allowed; keyset pages spread over the whole list.
        const shapes = {
          shallow: Array.from({ length: 15 }, (_, i) => i * PAGE),
          deepOffset: Array.from({ length: 15 }, (_, i) => 10_000 - PAGE - i * PAGE),
          keyset: Array.from({ length: 15 }, (_, i) => 13_000 - i * 900),
        };
        const queries = {
          shallow: pageQuery(shapes.shallow.map((offset) => `offset: ${offset}`)),
          deepOffset: pageQuery(shapes.deepOffset.map((offset) => `offset: ${offset}`)),
          keyset: pageQuery(shapes.keyset.map((index) => `after: "${ids[index]}"`)),
        };
        // The newest post each alias's page starts with.
        const starts = {
          shallow: shapes.shallow.map((offset) => POSTS - 1 - offset),
          deepOffset: shapes.deepOffset.map((offset) => POSTS - 1 - offset),
          keyset: shapes.keyset.map((index) => index - 1),
        };
        type Shape = keyof typeof queries;
        const latencies: Record<Shape, number[]> = { shallow: [], deepOffset: [], keyset: [] };
        const wrong: string[] = [];

        const ask = async (shape: Shape): Promise<void> => {
          const started = performance.now();
          const res = await client.gql(queries[shape], { variables: { id: newestId } });
          latencies[shape].push(performance.now() - started);
          const author = res.body.data?.post?.author as Record<string, Array<{ title: string }>> | undefined;
          if (res.status !== 200 || res.body.errors || !author) {
            wrong.push(`${shape}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
            return;
          }
          starts[shape].forEach((newest, i) => {
            const titles = author[`p${i}`]!.map((post) => post.title);
            if (JSON.stringify(titles) !== JSON.stringify(expectedTitles(newest)))
              wrong.push(`${shape} p${i}: ${titles[0]} … ${titles.at(-1)} (${titles.length})`);
          });
        };

        // Each shape alone first, 10 times: its latency and the server's CPU time per query, which
        // other processes on the machine do not inflate.
        const alone = {} as Record<Shape, { p50: number; cpu: number }>;
        for (const shape of Object.keys(queries) as Shape[]) {
          const cpu = cpuMs(abuse.server.child.pid);
          for (let i = 0; i < 10; i++) await ask(shape);
          alone[shape] = {
            p50: percentiles(latencies[shape].splice(0)).p50,
            cpu: (cpuMs(abuse.server.child.pid) - cpu) / 10,
          };
        }

        const bystander = startBystander(abuse);
        const until = Date.now() + LOAD_MS;
        await Promise.all(
          Array.from({ length: CLIENTS }, async (_, c) => {
            const order: Shape[] = ["shallow", "deepOffset", "keyset"];
            for (let n = c; Date.now() < until && n < c + 2_000; n++) await ask(order[n % order.length]!);
          }),
        );
        const report = await bystander.stop();

        for (const line of [
          ...(Object.keys(alone) as Shape[]).map(
            (shape) =>
              `[${kind}] ${shape} 15-alias page query alone: p50 ${ms(alone[shape].p50)}, server CPU ${ms(alone[shape].cpu)} a query`,
          ),
          ...(Object.keys(latencies) as Shape[]).map((shape) => {
            const p = percentiles(latencies[shape]);
            return `[${kind}] ${shape} 15-alias page queries under load: ${latencies[shape].length}, p50 ${ms(p.p50)}, p99 ${ms(p.p99)}, max ${ms(p.max)}`;
          }),
          `[${kind}] bystander: ${report.ok} ok, ${report.failed} failed, p50 ${ms(report.p50Ms)}, p99 ${ms(report.p99Ms)}; server peak RSS ${report.peakRssMb.toFixed(0)} MB`,
        ])
          t.diagnostic(line);

        assert.ok(isAlive(abuse), "the server is still running");
        assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} wrong answers`);
        assert.ok(report.ok > 0, "the bystander was served");
        assert.equal(report.failed, 0, "no bystander request failed");
        for (const shape of Object.keys(latencies) as Shape[])
          assert.ok(latencies[shape].length > 0, `some ${shape} queries ran`);

        // The caps: a deeper offset and a longer list are refused before anything is read.
        const deep = await client.gql(`{ posts(offset: 10001) { id } }`);
        assert.equal(deep.body.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
        assert.deepEqual(
          deep.body.errors[0].extensions.fields.map((f: { field: string }) => f.field),
          ["offset"],
        );
        const deepAuthor = await client.gql(
          `query($id: ID!) { post(id: $id) { author { posts(offset: 10001) { id } } } }`,
          {
            variables: { id: newestId },
          },
        );
        assert.equal(deepAuthor.body.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
        assert.equal(
          deepAuthor.body.errors[0].message,
          "Invalid input: offset must be at most 10000 (page on with after).",
        );
        const sessions = await client.gql(`{ sessions(first: 101) { id userAgent } }`, { token: author.accessToken });
        assert.equal(sessions.body.errors?.[0]?.extensions?.code, "BAD_USER_INPUT");
        assert.deepEqual(sessions.body.errors[0].extensions.fields, [
          { field: "first", rule: "max", message: "must be at most 100" },
        ]);
        assert.equal(sessions.body.data, null);
        assert.ok(isAlive(abuse), "the server is still running after the refusals");
      } finally {
        await abuse.stop();
      }
    });
  });
}
