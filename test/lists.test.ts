import "reflect-metadata";

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";

import {
  getNamedType,
  getNullableType,
  type GraphQLField,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
} from "graphql";

import { FIRST_MAX } from "../src/graphql/pagination.js";
import { PostStore } from "../src/posts/post.store.js";
import { buildAppSchema } from "../src/schema.js";
import { codes, type GraphQLResponse } from "./helpers/api.js";
import { type TestApp, useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";

const ADMIN = { username: "boss", password: "boss password 1" };

/** Stores `count` posts by `authorId` straight into the database, titled `${prefix} 0` (oldest) up. */
async function insertPosts(
  t: TestApp,
  authorId: string,
  prefix: string,
  count: number,
  startMs = Date.now(),
): Promise<void> {
  const rows = Array.from({ length: count }, (_, i) => {
    const at = new Date(startMs + i * 1000).toISOString();
    return {
      id: randomUUID(),
      author_id: authorId,
      title: `${prefix} ${i}`,
      body: `${prefix} ${i} body`,
      created_at: at,
      updated_at: at,
    };
  });
  for (let i = 0; i < rows.length; i += 100)
    await t.app.database.db
      .insertInto("posts")
      .values(rows.slice(i, i + 100))
      .execute();
}

/** The data of an answer that must have no error at all. */
function dataOf(res: GraphQLResponse): any {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(codes(res), [], JSON.stringify(res.body.errors));
  return res.body.data;
}

/** `{ field, rule }` of each problem of the one BAD_USER_INPUT error of an answer. */
function problemsOf(res: GraphQLResponse): string[] {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepEqual(codes(res), ["BAD_USER_INPUT"], JSON.stringify(res.body));
  return res.body.errors![0]!.extensions!.fields.map((f: { field: string; rule: string }) => `${f.field}:${f.rule}`);
}

const titles = (posts: Array<{ title: string }>) => posts.map((p) => p.title);

/** The list fields the suites below ask for (filled as they are declared), for the schema test at the end. */
const LIST_FIELDS_TESTED: string[] = [];

for (const kind of DATABASES) {
  describe(`bounded lists (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
    let admin: string;
    const ids: Record<string, string> = {};
    let annToken: string;

    before(async () => {
      admin = await t.login(ADMIN.username, ADMIN.password);
      for (const name of ["ann", "bob", "cyd"]) ids[name] = (await t.register(name)).userId;
      annToken = await t.login("ann");
      // ann's 25 posts are older than bob's 3; cyd has none.
      await insertPosts(t, ids.ann!, "ann", 25, Date.now() - 3_600_000);
      await insertPosts(t, ids.bob!, "bob", 3);
      for (const name of ["ann", "ann", "bob"]) {
        await t.gql(`mutation($input: LoginInput!) { login(input: $input) { accessToken } }`, {
          variables: { input: { username: name, password: "not the password" } },
        });
      }
    });

    /** Every list field of the schema, as the test below asks for it (the schema test holds this to the schema). */
    const lists = (): Array<[string, string, string | undefined]> => [
      [
        "Query.posts",
        `query($first: Int!, $offset: Int!, $after: ID) { posts(first: $first, offset: $offset, after: $after) { id } }`,
        undefined,
      ],
      [
        "User.posts",
        `query($first: Int, $offset: Int, $after: ID) { me { posts(first: $first, offset: $offset, after: $after) { id } } }`,
        "ann",
      ],
      [
        "Query.users",
        `query($first: Int, $offset: Int, $after: ID) { users(first: $first, offset: $offset, after: $after) { id } }`,
        "admin",
      ],
      [
        "Query.auditEvents",
        `query($first: Int, $offset: Int, $after: ID) { auditEvents(first: $first, offset: $offset, after: $after) { id } }`,
        "admin",
      ],
      [
        "Query.sessions",
        `query($first: Int, $offset: Int, $after: ID) { sessions(first: $first, offset: $offset, after: $after) { id } }`,
        "ann",
      ],
      [
        "Query.apiTokens",
        `query($first: Int, $offset: Int, $after: ID) { apiTokens(first: $first, offset: $offset, after: $after) { id } }`,
        "ann",
      ],
      [
        "Query.passkeys",
        `query($first: Int, $offset: Int, $after: ID) { passkeys(first: $first, offset: $offset, after: $after) { id } }`,
        "ann",
      ],
    ];
    LIST_FIELDS_TESTED.push(...lists().map(([list]) => list));

    it("refuses first outside 1 to 100, an offset outside 0 to 10,000 and an unknown after on every list, with BAD_USER_INPUT naming the argument", async () => {
      for (const [list, query, who] of lists()) {
        const token = who === "ann" ? annToken : who === "admin" ? admin : undefined;
        for (const [variables, problem] of [
          [{ first: 0, offset: 0 }, "first:min"],
          [{ first: -5, offset: 0 }, "first:min"],
          [{ first: 101, offset: 0 }, "first:max"],
          [{ first: 1, offset: -1 }, "offset:min"],
          [{ first: 1, offset: 10_001 }, "offset:max"],
          [{ first: 1, offset: 2 ** 31 - 1 }, "offset:max"],
          [{ first: 1, offset: 1, after: "00000000-0000-4000-8000-000000000000" }, "offset:offsetWithAfter"],
          [{ first: 1, offset: 0, after: "00000000-0000-4000-8000-000000000000" }, "after:afterUnknown"],
          [{ first: 1, offset: 0, after: "12345678901234567890" }, "after:afterUnknown"],
        ] as const) {
          const res = await t.gql(query, { token, variables });
          assert.deepEqual(problemsOf(res), [problem], `${list} ${JSON.stringify(variables)}`);
          assert.equal(res.body.data, null);
        }
        // The bounds themselves are allowed.
        dataOf(await t.gql(query, { token, variables: { first: 100, offset: 0 } }));
        dataOf(await t.gql(query, { token, variables: { first: 1, offset: 10_000 } }));
        dataOf(await t.gql(query, { token, variables: { first: 1, offset: 0, after: null } }));
      }
      // The message names the argument and its cap, and says how to page further.
      const deep = await t.gql(`{ posts(offset: 10001) { id } }`);
      assert.equal(deep.body.errors![0]!.message, "Invalid input: offset must be at most 10000 (page on with after).");
      // Literals are checked the same way as variables.
      assert.deepEqual(problemsOf(await t.gql(`{ posts(first: 1) { author { posts(first: 101) { id } } } }`)), [
        "first:max",
      ]);
      // Someone else's session or API token is not a place in your list.
      const bobSession = dataOf(await t.gql(`{ sessions { id } }`, { token: await t.login("bob") })).sessions[0].id;
      assert.deepEqual(
        problemsOf(
          await t.gql(`query($a: ID) { sessions(after: $a) { id } }`, {
            token: annToken,
            variables: { a: bobSession },
          }),
        ),
        ["after:afterUnknown"],
      );
      // Each refusal of a cap is counted.
      const metrics = await t.app.metrics.text();
      assert.match(metrics, /gta_limit_refusals_total\{limit="FIRST_MAX"\} [1-9]/);
      assert.match(metrics, /gta_limit_refusals_total\{limit="OFFSET_MAX"\} [1-9]/);
    });

    it("pages through posts with first and offset, newest first, the pages adding up to the whole list", async () => {
      const all = titles(dataOf(await t.gql(`{ posts(first: 100) { title } }`)).posts);
      assert.equal(all.length, 28);
      assert.deepEqual(all.slice(0, 4), ["bob 2", "bob 1", "bob 0", "ann 24"]);
      const paged: string[] = [];
      for (let offset = 0; offset < 35; offset += 7) {
        paged.push(
          ...titles(
            dataOf(
              await t.gql(`query($o: Int!) { posts(first: 7, offset: $o) { title } }`, { variables: { o: offset } }),
            ).posts,
          ),
        );
      }
      assert.deepEqual(paged, all);
      // The default page is 50, and past the end is empty.
      assert.equal(dataOf(await t.gql(`{ posts { id } }`)).posts.length, 28);
      assert.deepEqual(dataOf(await t.gql(`{ posts(offset: 28) { id } }`)).posts, []);
    });

    it("gives every user the page asked for, 20 by default, in one batched query per page", async () => {
      const byName = (users: Array<{ username: string; [page: string]: unknown }>, page: string) =>
        Object.fromEntries(users.map((u) => [u.username, titles(u[page] as Array<{ title: string }>)]));
      const pagesQueried: Array<{ authors: number; first: number; offset: number }> = [];
      // Kept to be called with the store as `this`, and put back after.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      const listByAuthors = PostStore.prototype.listByAuthors;
      PostStore.prototype.listByAuthors = function (authorIds, page) {
        pagesQueried.push({ authors: authorIds.length, first: page.first, offset: page.offset });
        return listByAuthors.call(this, authorIds, page);
      };
      let users;
      try {
        // 10 × (2 + 1 + 100 × 3 + 20 × 3 + 2 × 3) = 3,690.
        ({ users } = dataOf(
          await t.gql(
            `{ users(first: 10) { username all: posts(first: 100) { title } byDefault: posts { title } second: posts(first: 2, offset: 1) { title } } }`,
            {
              token: admin,
            },
          ),
        ));
      } finally {
        PostStore.prototype.listByAuthors = listByAuthors;
      }
      assert.deepEqual(
        pagesQueried.sort((a, b) => a.first - b.first),
        [
          { authors: 4, first: 2, offset: 1 },
          { authors: 4, first: 20, offset: 0 },
          { authors: 4, first: 100, offset: 0 },
        ],
      );
      const ann = Array.from({ length: 25 }, (_, i) => `ann ${24 - i}`);
      assert.deepEqual(byName(users, "all"), { boss: [], ann, bob: ["bob 2", "bob 1", "bob 0"], cyd: [] });
      assert.deepEqual(byName(users, "byDefault"), {
        boss: [],
        ann: ann.slice(0, 20),
        bob: ["bob 2", "bob 1", "bob 0"],
        cyd: [],
      });
      assert.deepEqual(byName(users, "second"), {
        boss: [],
        ann: ["ann 23", "ann 22"],
        bob: ["bob 1", "bob 0"],
        cyd: [],
      });

      const mine = dataOf(await t.gql(`{ me { posts(first: 3, offset: 23) { title } } }`, { token: annToken })).me
        .posts;
      assert.deepEqual(titles(mine), ["ann 1", "ann 0"]);
      // null means the default, as for every nullable list argument.
      const nulls = dataOf(await t.gql(`{ me { posts(first: null, offset: null) { title } } }`, { token: annToken })).me
        .posts;
      assert.deepEqual(titles(nulls), ann.slice(0, 20));
    });

    it("pages through users, oldest first, 50 by default", async () => {
      const all = dataOf(await t.gql(`{ users(first: 100) { username } }`, { token: admin })).users.map(
        (u: { username: string }) => u.username,
      );
      assert.deepEqual(all, ["boss", "ann", "bob", "cyd"]);
      const first = dataOf(await t.gql(`{ users(first: 2) { username } }`, { token: admin })).users;
      const second = dataOf(await t.gql(`{ users(first: 2, offset: 2) { username } }`, { token: admin })).users;
      assert.deepEqual(
        [...first, ...second].map((u: { username: string }) => u.username),
        all,
      );
      assert.equal(dataOf(await t.gql(`{ users { id } }`, { token: admin })).users.length, 4);
    });

    it("filters audit events by type and by userId, and pages through them with offset", async () => {
      const EVENTS = `query($type: String, $userId: ID, $first: Int, $offset: Int) {
        auditEvents(type: $type, userId: $userId, first: $first, offset: $offset) { id type userId } }`;
      const list = async (variables: Record<string, unknown>) =>
        dataOf(await t.gql(EVENTS, { token: admin, variables })).auditEvents as Array<{
          id: string;
          type: string;
          userId: string | null;
        }>;
      const all = await list({ first: 100 });
      assert.ok(all.length < 100, "the whole log fits on one page");

      const failed = await list({ type: "LOGIN_FAILED", first: 100 });
      assert.deepEqual(
        failed,
        all.filter((e) => e.type === "LOGIN_FAILED"),
      );
      assert.equal(failed.length, 3);
      const ann = await list({ userId: ids.ann, first: 100 });
      assert.deepEqual(
        ann,
        all.filter((e) => e.userId === ids.ann),
      );
      assert.deepEqual(new Set(ann.map((e) => e.type)), new Set(["REGISTERED", "LOGIN_SUCCEEDED", "LOGIN_FAILED"]));
      const annFailed = await list({ type: "LOGIN_FAILED", userId: ids.ann, first: 100 });
      assert.deepEqual(
        annFailed,
        failed.filter((e) => e.userId === ids.ann),
      );
      assert.equal(annFailed.length, 2);
      assert.deepEqual(await list({ userId: randomUUID() }), []);

      const paged = [...(await list({ first: 3 })), ...(await list({ first: 3, offset: 3 }))];
      assert.deepEqual(paged, all.slice(0, 6));
      assert.deepEqual(await list({ type: "LOGIN_FAILED", first: 1, offset: 1 }), failed.slice(1, 2));

      // A type that no event has is a typo, not an empty filter.
      assert.deepEqual(problemsOf(await t.gql(EVENTS, { token: admin, variables: { type: "LOGIN_FAIL" } })), [
        "type:isIn",
      ]);
    });

    it("pages on with after exactly as with offset, on every list, in the list's order", async () => {
      for (let i = 0; i < 4; i++) await t.login("ann");
      for (let i = 0; i < 4; i++)
        dataOf(
          await t.gql(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { apiToken { id } } }`, {
            token: annToken,
            variables: { input: { name: `token ${i}`, scopes: ["PROFILE_READ"] } },
          }),
        );
      // Passkeys as their store keeps them (the ceremonies are test/passkeys/'s), two with one createdAt.
      const at = (i: number) => new Date(Date.UTC(2026, 0, 1 + Math.min(i, 2))).toISOString();
      await t.app.database.db
        .insertInto("passkeys")
        .values(
          [0, 1, 2, 3].map((i) => ({
            id: randomUUID(),
            user_id: ids.ann!,
            credential_id: `list-credential-${i}`,
            public_key: "AA",
            device_type: "singleDevice",
            name: `key ${i}`,
            created_at: at(i),
          })),
        )
        .execute();
      for (const [list, query, who] of lists()) {
        const token = who === "ann" ? annToken : who === "admin" ? admin : undefined;
        const items = (res: GraphQLResponse): Array<{ id: string }> => {
          const data = dataOf(res);
          return (list === "User.posts" ? data.me.posts : Object.values(data)[0]) as Array<{ id: string }>;
        };
        const all = items(await t.gql(query, { token, variables: { first: 100, offset: 0 } }));
        assert.ok(all.length >= 4, `${list} has ${all.length} items`);
        for (const size of [1, 3]) {
          const paged: Array<{ id: string }> = [];
          let after: string | null = null;
          for (let pages = 0; pages < 100; pages++) {
            const page = items(await t.gql(query, { token, variables: { first: size, offset: 0, after } }));
            assert.deepEqual(
              page,
              items(await t.gql(query, { token, variables: { first: size, offset: paged.length } })),
              `${list}: the page after ${after} is the page at offset ${paged.length}`,
            );
            paged.push(...page);
            if (page.length < size) break;
            after = page.at(-1)!.id;
          }
          assert.deepEqual(paged, all, `${list} in pages of ${size}`);
        }
      }
    });

    it("takes any post's id as a place in an author's posts, and fails only the lists whose after is unknown", async () => {
      const bobPosts = dataOf(await t.gql(`{ posts(first: 3) { id title createdAt } }`)).posts;
      assert.deepEqual(titles(bobPosts), ["bob 2", "bob 1", "bob 0"]);
      // bob's posts are newer than all of ann's: after bob's oldest comes ann's newest.
      const res = dataOf(
        await t.gql(`query($a: ID) { users(first: 10) { username posts(first: 2, after: $a) { title } } }`, {
          token: admin,
          variables: { a: bobPosts[2].id },
        }),
      );
      assert.deepEqual(Object.fromEntries(res.users.map((u: any) => [u.username, titles(u.posts)])), {
        boss: [],
        ann: ["ann 24", "ann 23"],
        bob: [],
        cyd: [],
      });
      // An unknown after fails the field it was given to, and only that one.
      const mixed = await t.gql(
        `{ me { known: posts(first: 1) { title } unknown: posts(after: "00000000-0000-4000-8000-000000000000") { title } } }`,
        { token: annToken },
      );
      assert.deepEqual(codes(mixed), ["BAD_USER_INPUT"]);
      assert.deepEqual(mixed.body.errors![0]!.path, ["me", "unknown"]);
    });

    it("pages through posts written in the same millisecond one by one, by id, none twice and none left out", async () => {
      // A year ahead: newer than every post seedPosts dated into the future, so these three head every list.
      const at = new Date(Date.now() + 365 * 86_400_000).toISOString();
      const same = [randomUUID(), randomUUID(), randomUUID()].sort().reverse();
      await t.app.database.db
        .insertInto("posts")
        .values(same.map((id) => ({ id, author_id: ids.cyd!, title: id, body: "b", created_at: at, updated_at: at })))
        .execute();
      const cyd = await t.login("cyd");
      const seen: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 4; i++) {
        const page: Array<{ id: string }> = dataOf(
          await t.gql(`query($after: ID) { me { posts(first: 1, after: $after) { id } } }`, {
            token: cyd,
            variables: { after },
          }),
        ).me.posts;
        if (page.length === 0) break;
        seen.push(page[0]!.id);
        after = page[0]!.id;
      }
      assert.deepEqual(seen, same);
      const top: Array<{ id: string }> = dataOf(await t.gql(`{ posts(first: 3) { id } }`)).posts;
      assert.deepEqual(
        top.map((p) => p.id),
        same,
      );
      assert.deepEqual(
        dataOf(
          await t.gql(`query($a: ID) { posts(first: 2, after: $a) { id } }`, { variables: { a: same[0] } }),
        ).posts.map((p: { id: string }) => p.id),
        same.slice(1),
      );
    });
  });

  describe(`one author with 120 posts and a query nesting posts and authors 8 deep (${kind})`, () => {
    const t = useTestApp(kind);

    /** `posts(first: $n) { author { posts(first: $n) { … { id } } } }`: 8 fields deep, 4 lists. */
    const DEEP = `query($n: Int) { posts(first: $n) { author { posts(first: $n) { author { posts(first: $n) { author { posts(first: $n) { id } } } } } } } }`;
    /** The same with `first` only on the outer list: the inner ones take User.posts' default, 20. */
    const DEEP_DEFAULTS = `query($n: Int) { posts(first: $n) { author { posts { author { posts { author { posts { id } } } } } } } }`;
    // Each list of n holds n × (2 + the author below it, 2 + …): 4n + 4n² + 4n³ + 3n⁴.
    const cost = (n: number) => 4 * n + 4 * n ** 2 + 4 * n ** 3 + 3 * n ** 4;

    before(async () => {
      const { userId } = await t.register("prolific");
      await insertPosts(t, userId, "post", 120);
    });

    it("refuses it with 400 GRAPHQL_VALIDATION_FAILED before it runs, whether first comes from a variable or a default", async () => {
      for (const [query, found] of [
        [DEEP, cost(100)],
        [DEEP_DEFAULTS, 100 * (4 + 20 * (4 + 20 * (4 + 20 * 3)))],
      ] as const) {
        const res = await t.gql(query, { variables: { n: 100 } });
        assert.equal(res.status, 400);
        assert.deepEqual(codes(res), ["GRAPHQL_VALIDATION_FAILED"]);
        assert.equal(res.body.data, undefined);
        assert.equal(res.body.errors![0]!.message, `Query Cost limit of 12000 exceeded, found ${found}.`);
      }
      assert.equal(cost(8), 14_624);
      assert.equal((await t.gql(DEEP, { variables: { n: 8 } })).status, 400);
    });

    it("answers the largest query of that shape it allows (7 a list, cost 8,799) in well under a megabyte and 64 MB of heap", async () => {
      assert.equal(cost(7), 8799);
      const heapBefore = process.memoryUsage().heapUsed;
      let heapPeak = heapBefore;
      const sampler = setInterval(() => {
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      }, 1);
      let res: Response;
      let text: string;
      try {
        res = await fetch(t.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: DEEP, variables: { n: 7 } }),
        });
        text = await res.text();
      } finally {
        clearInterval(sampler);
      }
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      assert.equal(res.status, 200);
      const body = JSON.parse(text);
      assert.equal(body.errors, undefined);
      // 7 posts, each author with 7, each of theirs with 7, …: 7⁴ ids at the bottom, every list full.
      const leaves = body.data.posts.flatMap((a: any) =>
        a.author.posts.flatMap((b: any) => b.author.posts.flatMap((c: any) => c.author.posts)),
      );
      assert.equal(leaves.length, 7 ** 4);
      assert.ok(text.length < 1_000_000, `${text.length} bytes`);
      const grewMb = (heapPeak - heapBefore) / 2 ** 20;
      assert.ok(grewMb < 64, `the heap grew by ${grewMb.toFixed(1)} MB`);
    });
  });
}

describe("every list field of the schema", () => {
  it("takes first (1 to 100, with a default), offset and after, and is held to its bounds by the tests above", async () => {
    const schema = await buildAppSchema();
    const found: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith("__")) continue;
      for (const field of Object.values(type.getFields()) as Array<GraphQLField<unknown, unknown>>) {
        const name: string = `${type.name}.${field.name}`;
        let list = getNullableType(field.type);
        if (!isListType(list) || isLeafType(getNamedType(field.type))) continue;
        found.push(name);
        const arg = (argName: string) => field.args.find((a) => a.name === argName);
        const first = arg("first");
        assert.ok(first, `${name} is a list of objects without a first argument: every list must be bounded`);
        assert.equal(String(getNamedType(first.type)), "Int", `${name}(first)`);
        assert.ok(
          typeof first.defaultValue === "number" && first.defaultValue >= 1 && first.defaultValue <= FIRST_MAX,
          `${name}(first) defaults to ${String(first.defaultValue)}, not 1 to ${FIRST_MAX}`,
        );
        assert.equal(String(arg("offset")?.type), isNonNullType(first.type) ? "Int!" : "Int", `${name}(offset)`);
        assert.equal(String(arg("after")?.type), "ID", `${name}(after)`);
        // A list of lists would multiply past its first.
        list = getNullableType(list.ofType);
        assert.ok(!isListType(list), `${name} is a list of lists`);
      }
    }
    assert.deepEqual(
      found.sort(),
      [...new Set(LIST_FIELDS_TESTED)].sort(),
      "every list field is in the bounds test of test/lists.test.ts",
    );
  });
});
