import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { codes, type GraphQLResponse, listUsernames } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id username } } }`;
const LOGIN = `mutation($input: LoginInput!) { login(input: $input) { accessToken user { id } } }`;
const CREATE_POST = `mutation($input: CreatePostInput!) { createPost(input: $input) { id title body } }`;
const UPDATE_POST = `mutation($id: ID!, $input: UpdatePostInput!) { updatePost(id: $id, input: $input) { id title body } }`;
const ADMIN = { username: "root", password: "root password 1" };

/**
 * Asserts the response is exactly one BAD_USER_INPUT error, with HTTP 200 and no data, whose
 * `extensions.fields` lists exactly `expected` ("field:rule", in any order).
 */
function assertBadInput(res: GraphQLResponse, expected: string[]): void {
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
  assert.equal(res.body.data, null);
  const fields =
    (res.body.errors![0]!.extensions!.fields as Array<{ field: string; rule: string; message: string }>) ?? [];
  assert.deepEqual(fields.map((f) => `${f.field}:${f.rule}`).sort(), [...expected].sort());
  for (const f of fields) assert.equal(typeof f.message, "string", "every problem says why");
}

/** A string of `n` characters that passes every rule apart from its length. */
function text(n: number, unit = "x"): string {
  return unit.repeat(n);
}

for (const kind of DATABASES) {
  describe(`input rules as a client sees them over HTTP (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
    let adminToken: string;
    let writer: { token: string; userId: string };

    before(async () => {
      const login = await t.gql(LOGIN, { variables: { input: ADMIN } });
      adminToken = login.body.data.login.accessToken;
      writer = await t.register("writer");
    });

    const register = (username: string, password = "correct horse battery") =>
      t.gql(REGISTER, { variables: { input: { username, password } } });
    const login = (username: string, password: string) =>
      t.gql(LOGIN, { variables: { input: { username, password } } });

    /** Every stored username, in sign-up order, as the admin sees them. */
    const usernames = () => listUsernames(t, adminToken);

    /** Every stored post (id, title, body), newest first. */
    async function allPosts(): Promise<Array<{ id: string; title: string; body: string; updatedAt: string }>> {
      const res = await t.gql(`{ posts(first: 100) { id title body updatedAt } }`);
      assert.deepEqual(codes(res), []);
      return res.body.data.posts;
    }

    describe("register", () => {
      const refusedUsernames: Array<[string, string, string]> = [
        ["2 characters", "ab", "isLength"],
        ["33 characters", text(33, "a"), "isLength"],
        ["a space", "two words", "matches"],
        ["an @", "me@example", "matches"],
        ["a letter outside ASCII", "josé", "matches"],
        ["a Cyrillic look-alike letter", "\u0430dmin", "matches"],
      ];
      for (const [what, username, rule] of refusedUsernames) {
        it(`refuses a username with ${what} as BAD_USER_INPUT on username (${rule}) and creates no account`, async () => {
          const before = await usernames();
          assertBadInput(await register(username), [`username:${rule}`]);
          assert.deepEqual(await usernames(), before);
        });
      }

      it("accepts usernames of exactly 3 and 32 characters made of every allowed kind of character", async () => {
        const short = "a_1";
        const long = `Az09_.-${text(25, "q")}`;
        assert.equal(long.length, 32);
        for (const username of [short, long]) {
          const res = await register(username);
          assert.deepEqual(codes(res), []);
          assert.equal(res.body.data.register.user.username, username);
        }
        const stored = await usernames();
        assert.ok(stored.includes(short) && stored.includes(long));
      });

      it("refuses a username that differs from a taken one only in letter case, as BAD_USER_INPUT on username (unique)", async () => {
        assert.deepEqual(codes(await register("Taken.Name")), []);
        const before = await usernames();
        assertBadInput(await register("tAKEN.nAME", "another password"), ["username:unique"]);
        assert.deepEqual(await usernames(), before);
        const stillFirst = await login("Taken.Name", "correct horse battery");
        assert.deepEqual(codes(stillFirst), [], "the first account keeps its password");
        assert.equal(codes(await login("taken.name", "another password"))[0], "UNAUTHENTICATED");
      });

      it("refuses a 7-character password as BAD_USER_INPUT on password and accepts one of exactly 8", async () => {
        const before = await usernames();
        assertBadInput(await register("seven", text(7, "p")), ["password:isPassword"]);
        assert.deepEqual(await usernames(), before);

        assert.deepEqual(codes(await register("eight", "12345678")), []);
        assert.deepEqual(codes(await login("eight", "12345678")), []);
      });

      it("accepts a password of exactly 128 characters without truncating it, and refuses one of 129", async () => {
        const password128 = `${text(127, "L")}!`;
        assert.deepEqual(codes(await register("long128", password128)), []);
        assert.deepEqual(codes(await login("long128", password128)), []);
        assert.deepEqual(
          codes(await login("long128", `${text(127, "L")}?`)),
          ["UNAUTHENTICATED"],
          "the last character counts",
        );

        const before = await usernames();
        assertBadInput(await register("long129", text(129, "L")), ["password:isPassword"]);
        assert.deepEqual(await usernames(), before);
      });

      it("refuses a 200,000-character password as BAD_USER_INPUT without echoing it, and stores no account", async () => {
        const huge = text(200_000, "Hx");
        const before = await usernames();
        const res = await register("huge", huge);
        assertBadInput(res, ["password:isPassword"]);
        assert.equal(res.body.errors![0]!.message, "Invalid input: password must be at most 128 characters.");
        assert.ok(!JSON.stringify(res.body).includes("HxHxHxHx"), "the response does not repeat the password");
        assert.deepEqual(await usernames(), before);
        assert.ok(!t.logs.some((line) => line.includes("HxHxHxHx")), "the logs do not hold the password");
      });

      it("counts an emoji as one character: 8 emoji make a valid password, 7 do not, and 128 are still allowed", async () => {
        const before = await usernames();
        assertBadInput(await register("emoji7", "🔑".repeat(7)), ["password:isPassword"]);
        assert.deepEqual(await usernames(), before);

        assert.deepEqual(codes(await register("emoji8", "🔑".repeat(8))), []);
        assert.deepEqual(codes(await login("emoji8", "🔑".repeat(8))), []);
        assert.deepEqual(codes(await register("emoji128", "🔑".repeat(128))), []);
        assert.deepEqual(codes(await login("emoji128", "🔑".repeat(128))), []);
      });

      it("reports every failing field and rule in one BAD_USER_INPUT error", async () => {
        const before = await usernames();
        const res = await register("@", "short");
        assert.equal(res.body.errors?.length, 1);
        assertBadInput(res, ["username:isLength", "username:matches", "password:isPassword"]);
        assert.deepEqual(await usernames(), before);
      });
    });

    describe("login", () => {
      const refused: Array<[string, string, string, string]> = [
        ["a username of 2 characters", "ab", "correct horse battery", "username:isLength"],
        ["a username of 33 characters", text(33, "a"), "correct horse battery", "username:isLength"],
        ["a username with a space", "wri ter", "correct horse battery", "username:matches"],
        ["a password of 7 characters", "writer", text(7, "p"), "password:isPassword"],
        ["a password of 129 characters", "writer", text(129, "p"), "password:isPassword"],
        ["a password of 200,000 characters", "writer", text(200_000, "p"), "password:isPassword"],
      ];
      for (const [what, username, password, problem] of refused) {
        it(`refuses ${what} as BAD_USER_INPUT (${problem}) before looking at credentials`, async () => {
          assertBadInput(await login(username, password), [problem]);
        });
      }

      it("still answers well-formed wrong credentials with UNAUTHENTICATED, not BAD_USER_INPUT", async () => {
        const res = await login("writer", "not the password");
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
      });
    });

    describe("createPost", () => {
      const refused: Array<[string, { title: string; body: string }, string[]]> = [
        ["an empty title", { title: "", body: "body" }, ["title:isLength", "title:isNotBlank"]],
        ["a title of 201 characters", { title: text(201, "t"), body: "body" }, ["title:isLength"]],
        ["a title of only spaces", { title: "   ", body: "body" }, ["title:isNotBlank"]],
        ["an empty body", { title: "title", body: "" }, ["body:isLength", "body:isNotBlank"]],
        ["a body of only white space", { title: "title", body: " \n\t " }, ["body:isNotBlank"]],
        ["a body of 20,001 characters", { title: "title", body: text(20_001, "b") }, ["body:isLength"]],
        [
          "an empty title and an empty body",
          { title: "", body: "" },
          ["title:isLength", "title:isNotBlank", "body:isLength", "body:isNotBlank"],
        ],
      ];
      for (const [what, input, problems] of refused) {
        it(`refuses ${what} as BAD_USER_INPUT naming ${[...new Set(problems.map((p) => p.split(":")[0]))].join(" and ")}, and creates no post`, async () => {
          const before = await allPosts();
          assertBadInput(await t.gql(CREATE_POST, { token: writer.token, variables: { input } }), problems);
          assert.deepEqual(await allPosts(), before);
        });
      }

      it("accepts a title of exactly 200 characters and a body of exactly 20,000, and stores them whole", async () => {
        const input = { title: text(200, "T"), body: text(20_000, "B") };
        const res = await t.gql(CREATE_POST, { token: writer.token, variables: { input } });
        assert.deepEqual(codes(res), []);
        const stored = await t.gql(`query($id: ID!) { post(id: $id) { title body } }`, {
          variables: { id: res.body.data.createPost.id },
        });
        assert.deepEqual(stored.body.data.post, input);
      });

      it("counts an emoji as one character in a title: 200 emoji are accepted and stored intact", async () => {
        const input = { title: "📝".repeat(200), body: "emoji title" };
        const res = await t.gql(CREATE_POST, { token: writer.token, variables: { input } });
        assert.deepEqual(codes(res), []);
        const stored = await t.gql(`query($id: ID!) { post(id: $id) { title } }`, {
          variables: { id: res.body.data.createPost.id },
        });
        assert.equal(stored.body.data.post.title, input.title);
      });
    });

    describe("updatePost", () => {
      let post: { id: string; title: string; body: string; updatedAt: string };
      before(async () => {
        const res = await t.gql(
          `mutation { createPost(input: { title: "Original", body: "Original body" }) { id title body updatedAt } }`,
          {
            token: writer.token,
          },
        );
        post = res.body.data.createPost;
      });

      async function assertUnchanged(): Promise<void> {
        const res = await t.gql(`query($id: ID!) { post(id: $id) { id title body updatedAt } }`, {
          variables: { id: post.id },
        });
        assert.deepEqual(res.body.data.post, post);
      }

      it("refuses an update that changes no field as BAD_USER_INPUT on input, leaving the post unchanged", async () => {
        assertBadInput(await t.gql(UPDATE_POST, { token: writer.token, variables: { id: post.id, input: {} } }), [
          "input:notEmpty",
        ]);
        assertBadInput(
          await t.gql(UPDATE_POST, {
            token: writer.token,
            variables: { id: post.id, input: { title: null, body: null } },
          }),
          ["input:notEmpty"],
        );
        await assertUnchanged();
      });

      it("refuses a blank title or a body of 20,001 characters as BAD_USER_INPUT, leaving the post unchanged", async () => {
        assertBadInput(
          await t.gql(UPDATE_POST, { token: writer.token, variables: { id: post.id, input: { title: "   " } } }),
          ["title:isNotBlank"],
        );
        assertBadInput(
          await t.gql(UPDATE_POST, {
            token: writer.token,
            variables: { id: post.id, input: { title: "Fine", body: text(20_001, "b") } },
          }),
          ["body:isLength"],
        );
        await assertUnchanged();
      });
    });

    describe("posts pagination", () => {
      const refused: Array<[string, string]> = [
        ["first: 0", "first:min"],
        ["first: 101", "first:max"],
        ["offset: -1", "offset:min"],
        ["first: 0, offset: -1", "first:min offset:min"],
      ];
      for (const [args, problems] of refused) {
        it(`refuses posts(${args}) as BAD_USER_INPUT naming ${problems
          .split(" ")
          .map((p) => p.split(":")[0])
          .join(" and ")}`, async () => {
          assertBadInput(await t.gql(`{ posts(${args}) { id } }`), problems.split(" "));
        });
      }

      it("accepts first: 1, first: 100 and offset: 0, and pages through posts newest first", async () => {
        const all = await allPosts();
        assert.ok(all.length >= 2, "earlier tests stored posts");
        const one = await t.gql(`{ posts(first: 1, offset: 0) { id } }`);
        assert.deepEqual(one.body.data.posts, [{ id: all[0]!.id }]);
        const second = await t.gql(`{ posts(first: 1, offset: 1) { id } }`);
        assert.deepEqual(second.body.data.posts, [{ id: all[1]!.id }]);
        const hundred = await t.gql(`{ posts(first: 100) { id } }`);
        assert.deepEqual(codes(hundred), []);
        assert.equal(hundred.body.data.posts.length, all.length);
      });
    });
  });
}
