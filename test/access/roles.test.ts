import "reflect-metadata";

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";

import {
  getNamedType,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLObjectType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isScalarType,
} from "graphql";

import { requirementOf } from "../../src/access/requires.js";
import { buildAppSchema } from "../../src/schema.js";
import { codes, type GraphQLResponse } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ADMIN = { username: "root", password: "root password 1" };

/**
 * A clock that never returns the same millisecond twice, so that "newest first" has exactly one
 * right answer even when posts are written within the same millisecond.
 */
function strictlyIncreasingClock(): () => number {
  let last = 0;
  return () => (last = Math.max(Date.now(), last + 1));
}

async function createPost(t: TestApp, token: string, title: string, body = `Body of ${title}`): Promise<string> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
    variables: { input: { title, body } },
    token,
  });
  assert.ok(res.body.data?.createPost, `createPost failed: ${JSON.stringify(res.body.errors)}`);
  return res.body.data.createPost.id;
}

async function rolesOf(t: TestApp, adminToken: string, username: string): Promise<string[]> {
  const res = await t.gql(`{ users { username roles } }`, { token: adminToken });
  assert.deepEqual(codes(res), []);
  const user = (res.body.data.users as Array<{ username: string; roles: string[] }>).find(
    (u) => u.username === username,
  );
  assert.ok(user, `${username} is not listed`);
  return user.roles;
}

async function setRoles(
  t: TestApp,
  token: string | undefined,
  userId: string,
  roles: string[],
): Promise<GraphQLResponse> {
  return t.gql(
    `mutation($userId: ID!, $roles: [Role!]!) { setUserRoles(userId: $userId, roles: $roles) { id roles } }`,
    {
      variables: { userId, roles },
      token,
    },
  );
}

// --- Every guarded root field, read from the built schema, so fields added later are covered too.

const schema = await buildAppSchema();

interface GuardedField {
  operation: "query" | "mutation";
  field: GraphQLField<unknown, unknown>;
  roles: string[];
}

function guardedFields(
  type: GraphQLObjectType | null | undefined,
  operation: GuardedField["operation"],
): GuardedField[] {
  return Object.values(type?.getFields() ?? {}).flatMap((field) => {
    const requirement = requirementOf(field.extensions);
    return requirement ? [{ operation, field, roles: requirement.role ? [requirement.role] : [] }] : [];
  });
}

const GUARDED = [
  ...guardedFields(schema.getQueryType(), "query"),
  ...guardedFields(schema.getMutationType(), "mutation"),
];
assert.ok(GUARDED.length >= 15, `only ${GUARDED.length} guarded root fields found`);
const ADMIN_ONLY = GUARDED.filter((g) => g.roles.length > 0 && !g.roles.includes("USER"));

/** A well-formed value of an input type, good enough to get past GraphQL validation. */
function sampleValue(type: GraphQLInputType): unknown {
  if (isNonNullType(type)) return sampleValue(type.ofType);
  if (isListType(type)) return [sampleValue(type.ofType)];
  if (isEnumType(type)) return type.getValues()[0]!.name;
  if (isInputObjectType(type)) {
    return Object.fromEntries(Object.values(type.getFields()).map((f) => [f.name, sampleValue(f.type)]));
  }
  if (isScalarType(type)) {
    switch (type.name) {
      case "ID":
        return randomUUID();
      case "Int":
      case "Float":
        return 1;
      case "Boolean":
        return true;
      case "DateTimeISO":
        return new Date().toISOString();
      default:
        return "sample text value";
    }
  }
  throw new Error(`no sample for ${String(type)}`);
}

/** A document calling the field with every argument it needs, and the variables for it. */
function callOf(guarded: GuardedField): { query: string; variables: Record<string, unknown> } {
  const required = guarded.field.args.filter((a) => isNonNullType(a.type) && a.defaultValue === undefined);
  const declarations = required.map((a) => `$${a.name}: ${String(a.type)}`).join(", ");
  const argumentList = required.map((a) => `${a.name}: $${a.name}`).join(", ");
  const named = getNamedType(guarded.field.type);
  const selection = isScalarType(named) || isEnumType(named) ? "" : " { __typename }";
  const query = `${guarded.operation}${declarations ? `(${declarations})` : ""} { ${guarded.field.name}${argumentList ? `(${argumentList})` : ""}${selection} }`;
  return { query, variables: Object.fromEntries(required.map((a) => [a.name, sampleValue(a.type)])) };
}

/** What `data` holds when the only root field failed: null bubbles up from a non-null field. */
function dataAfterFailure(guarded: GuardedField): unknown {
  return isNonNullType(guarded.field.type) ? null : { [guarded.field.name]: null };
}

describe("the schema's guarded fields", () => {
  it("include every protected field of the contract, with ADMIN on users and setUserRoles", () => {
    const names = (list: GuardedField[]) => list.map((g) => g.field.name);
    for (const name of ["me", "users", "createPost", "updatePost", "deletePost", "setUserRoles"]) {
      assert.ok(names(GUARDED).includes(name), `${name} is not guarded`);
    }
    assert.ok(names(ADMIN_ONLY).includes("users"));
    assert.ok(names(ADMIN_ONLY).includes("setUserRoles"));
    for (const name of ["me", "createPost", "updatePost", "deletePost"]) {
      assert.ok(!names(ADMIN_ONLY).includes(name), `${name} should be open to every signed-in user`);
    }
  });
});

for (const kind of DATABASES) {
  describe(`who may call what (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
    let admin: string;
    let alice: { token: string; userId: string };
    let bob: { token: string; userId: string };
    let alicePost: string;

    before(async () => {
      admin = await t.login(ADMIN.username, ADMIN.password);
      alice = await t.register("alice");
      bob = await t.register("bob");
      alicePost = await createPost(t, alice.token, "Alice's first", "Written by Alice");
    });

    for (const guarded of GUARDED) {
      it(`answers an anonymous call of ${guarded.field.name} with HTTP 200, UNAUTHENTICATED and no data for the field`, async () => {
        const { query, variables } = callOf(guarded);
        const res = await t.gql(query, { variables });
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"]);
        assert.deepEqual(res.body.errors?.[0]?.path, [guarded.field.name]);
        assert.deepEqual(res.body.data, dataAfterFailure(guarded));
      });
    }

    it("changes nothing for anonymous callers of updatePost, deletePost, createPost and setUserRoles", async () => {
      await t.gql(`mutation($id: ID!) { updatePost(id: $id, input: { title: "Anonymous edit" }) { id } }`, {
        variables: { id: alicePost },
      });
      await t.gql(`mutation($id: ID!) { deletePost(id: $id) }`, { variables: { id: alicePost } });
      await t.gql(`mutation { createPost(input: { title: "Anonymous", body: "Anonymous" }) { id } }`);
      await setRoles(t, undefined, alice.userId, ["ADMIN", "USER"]);
      const posts = await t.gql(`{ posts { id title body author { id } } }`);
      assert.deepEqual(posts.body.data.posts, [
        { id: alicePost, title: "Alice's first", body: "Written by Alice", author: { id: alice.userId } },
      ]);
      assert.deepEqual(await rolesOf(t, admin, "alice"), ["USER"]);
    });

    for (const guarded of ADMIN_ONLY) {
      it(`refuses the ADMIN field ${guarded.field.name} to a USER with FORBIDDEN (HTTP 200)`, async () => {
        const { query, variables } = callOf(guarded);
        const res = await t.gql(query, { variables, token: bob.token });
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["FORBIDDEN"]);
        assert.deepEqual(res.body.errors?.[0]?.path, [guarded.field.name]);
        assert.deepEqual(res.body.data, dataAfterFailure(guarded));
      });
    }

    it("refuses a USER who tries to make himself ADMIN, and he stays a USER", async () => {
      const res = await setRoles(t, bob.token, bob.userId, ["ADMIN", "USER"]);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      assert.equal(res.body.data, null);
      assert.deepEqual(await rolesOf(t, admin, "bob"), ["USER"]);
    });

    it("refuses a USER's edit of another user's post with FORBIDDEN and leaves the post unchanged", async () => {
      const res = await t.gql(
        `mutation($id: ID!) { updatePost(id: $id, input: { title: "Bob was here", body: "Defaced" }) { id } }`,
        {
          variables: { id: alicePost },
          token: bob.token,
        },
      );
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      const post = await t.gql(`query($id: ID!) { post(id: $id) { title body author { id } } }`, {
        variables: { id: alicePost },
      });
      assert.deepEqual(post.body.data.post, {
        title: "Alice's first",
        body: "Written by Alice",
        author: { id: alice.userId },
      });
    });

    it("refuses a USER's deletion of another user's post with FORBIDDEN and the post is still there", async () => {
      const res = await t.gql(`mutation($id: ID!) { deletePost(id: $id) }`, {
        variables: { id: alicePost },
        token: bob.token,
      });
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      const post = await t.gql(`query($id: ID!) { post(id: $id) { id title } }`, { variables: { id: alicePost } });
      assert.deepEqual(post.body.data.post, { id: alicePost, title: "Alice's first" });
    });

    it("lets an ADMIN edit another user's post, which keeps its author", async () => {
      const res = await t.gql(
        `mutation($id: ID!) { updatePost(id: $id, input: { title: "Moderated" }) { id title body author { id } } }`,
        {
          variables: { id: alicePost },
          token: admin,
        },
      );
      assert.deepEqual(codes(res), []);
      assert.deepEqual(res.body.data.updatePost, {
        id: alicePost,
        title: "Moderated",
        body: "Written by Alice",
        author: { id: alice.userId },
      });
      const stored = await t.gql(`query($id: ID!) { post(id: $id) { title body } }`, { variables: { id: alicePost } });
      assert.deepEqual(stored.body.data.post, { title: "Moderated", body: "Written by Alice" });
    });

    it("lets an ADMIN delete another user's post, after which it is gone", async () => {
      const res = await t.gql(`mutation($id: ID!) { deletePost(id: $id) }`, {
        variables: { id: alicePost },
        token: admin,
      });
      assert.deepEqual(codes(res), []);
      assert.equal(res.body.data.deletePost, true);
      const gone = await t.gql(`query($id: ID!) { post(id: $id) { id } }`, { variables: { id: alicePost } });
      assert.deepEqual(gone.body.data, { post: null });
    });

    it("answers updatePost and deletePost of a post that does not exist with NOT_FOUND, for users and admins alike", async () => {
      const missing = randomUUID();
      for (const token of [bob.token, admin]) {
        const update = await t.gql(`mutation($id: ID!) { updatePost(id: $id, input: { title: "Ghost" }) { id } }`, {
          variables: { id: missing },
          token,
        });
        assert.equal(update.status, 200);
        assert.deepEqual(codes(update), ["NOT_FOUND"]);
        assert.equal(update.body.data, null);
        const remove = await t.gql(`mutation($id: ID!) { deletePost(id: $id) }`, { variables: { id: missing }, token });
        assert.equal(remove.status, 200);
        assert.deepEqual(codes(remove), ["NOT_FOUND"]);
        assert.equal(remove.body.data, null);
      }
    });

    it("answers setUserRoles for a user who does not exist with NOT_FOUND", async () => {
      const res = await setRoles(t, admin, randomUUID(), ["USER"]);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["NOT_FOUND"]);
      assert.equal(res.body.data, null);
    });

    it("refuses an empty role list with BAD_USER_INPUT on roles, and the user keeps his roles", async () => {
      const res = await setRoles(t, admin, bob.userId, []);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.deepEqual(
        res.body.errors?.[0]?.extensions?.fields?.map((f: { field: string; rule: string }) => [f.field, f.rule]),
        [["roles", "notEmpty"]],
      );
      assert.deepEqual(await rolesOf(t, admin, "bob"), ["USER"]);
    });

    it("refuses to take ADMIN from the last admin with BAD_USER_INPUT (rule lastAdmin), and the admin keeps ADMIN", async () => {
      const me = await t.gql(`{ me { id } }`, { token: admin });
      const res = await setRoles(t, admin, me.body.data.me.id, ["USER"]);
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["BAD_USER_INPUT"]);
      assert.deepEqual(
        res.body.errors?.[0]?.extensions?.fields?.map((f: { field: string; rule: string }) => [f.field, f.rule]),
        [["roles", "lastAdmin"]],
      );
      assert.deepEqual(await rolesOf(t, admin, ADMIN.username), ["ADMIN", "USER"]);
      const users = await t.gql(`{ users { id } }`, { token: admin });
      assert.deepEqual(codes(users), [], "the admin can still use ADMIN fields");
    });

    it("grants ADMIN to a promoted user's existing token at once, without a new login", async () => {
      const promoted = await setRoles(t, admin, bob.userId, ["USER", "ADMIN"]);
      assert.deepEqual(codes(promoted), []);
      assert.deepEqual(promoted.body.data.setUserRoles, { id: bob.userId, roles: ["ADMIN", "USER"] });

      // The token says USER, but every instance re-reads the roles of users changed within a token lifetime.
      const oldToken = await t.gql(`{ users { id } }`, { token: bob.token });
      assert.deepEqual(codes(oldToken), [], "the token minted before the promotion grants ADMIN now");
      const me = await t.gql(`{ me { roles } }`, { token: bob.token });
      assert.deepEqual(me.body.data.me.roles, ["ADMIN", "USER"], "me shows the stored roles");

      bob.token = await t.login("bob");
      const newToken = await t.gql(`{ users { username } }`, { token: bob.token });
      assert.deepEqual(codes(newToken), []);
      assert.deepEqual(newToken.body.data.users.map((u: { username: string }) => u.username).sort(), [
        "alice",
        "bob",
        "root",
      ]);
    });

    it("lets one of two admins take ADMIN from the other, after which the remaining one is the last admin", async () => {
      const root = await t.gql(`{ me { id } }`, { token: admin });
      const demoted = await setRoles(t, bob.token, root.body.data.me.id, ["USER"]);
      assert.deepEqual(codes(demoted), []);
      assert.deepEqual(demoted.body.data.setUserRoles, { id: root.body.data.me.id, roles: ["USER"] });
      assert.deepEqual(await rolesOf(t, bob.token, ADMIN.username), ["USER"]);

      const self = await setRoles(t, bob.token, bob.userId, ["USER"]);
      assert.deepEqual(codes(self), ["BAD_USER_INPUT"]);
      assert.equal(self.body.errors?.[0]?.extensions?.fields?.[0]?.rule, "lastAdmin");
      assert.deepEqual(await rolesOf(t, bob.token, "bob"), ["ADMIN", "USER"]);
    });

    it("stops a demoted admin's existing token from granting ADMIN at once", async () => {
      // root lost ADMIN in the previous test; `admin` is root's token from before that.
      const res = await t.gql(`{ users { id } }`, { token: admin });
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
    });
  });

  describe(`listing posts (${kind})`, () => {
    const t = useTestApp(kind, { now: strictlyIncreasingClock() });
    let alice: { token: string; userId: string };
    let bob: { token: string; userId: string };
    /** Every post id, oldest first, as written. */
    const written: string[] = [];
    const aliceWrote: string[] = [];

    before(async () => {
      alice = await t.register("alice");
      bob = await t.register("bob");
      for (let i = 1; i <= 7; i++) {
        const author = i % 2 === 1 ? alice : bob;
        const id = await createPost(t, author.token, `Post ${i}`);
        written.push(id);
        if (author === alice) aliceWrote.push(id);
      }
    });

    it("lists a user's posts newest first in User.posts, and only that user's", async () => {
      const res = await t.gql(`{ me { posts { id title author { id } } } }`, { token: alice.token });
      assert.deepEqual(codes(res), []);
      assert.deepEqual(
        res.body.data.me.posts,
        [...aliceWrote]
          .reverse()
          .map((id) => ({ id, title: `Post ${written.indexOf(id) + 1}`, author: { id: alice.userId } })),
      );
      const viaPost = await t.gql(`query($id: ID!) { post(id: $id) { author { username posts { title } } } }`, {
        variables: { id: written[1] },
      });
      assert.deepEqual(viaPost.body.data.post.author, {
        username: "bob",
        posts: [{ title: "Post 6" }, { title: "Post 4" }, { title: "Post 2" }],
      });
    });

    it("lists all posts newest first, 50 by default", async () => {
      const res = await t.gql(`{ posts { id } }`);
      assert.deepEqual(
        res.body.data.posts.map((p: { id: string }) => p.id),
        [...written].reverse(),
      );
    });

    it("pages through posts with first and offset without gaps or repeats", async () => {
      const newestFirst = [...written].reverse();
      const pages: string[][] = [];
      for (let offset = 0; offset < newestFirst.length; offset += 3) {
        const res = await t.gql(`query($first: Int!, $offset: Int!) { posts(first: $first, offset: $offset) { id } }`, {
          variables: { first: 3, offset },
        });
        assert.deepEqual(codes(res), []);
        pages.push(res.body.data.posts.map((p: { id: string }) => p.id));
      }
      assert.deepEqual(pages, [newestFirst.slice(0, 3), newestFirst.slice(3, 6), newestFirst.slice(6)]);
      const beyond = await t.gql(`{ posts(first: 3, offset: 7) { id } }`);
      assert.deepEqual(beyond.body.data, { posts: [] });
    });

    it("refuses a page size outside 1 to 100 and a negative offset with BAD_USER_INPUT naming the argument", async () => {
      for (const [args, field, rule] of [
        ["first: 0", "first", "min"],
        ["first: 101", "first", "max"],
        ["offset: -1", "offset", "min"],
      ] as const) {
        const res = await t.gql(`{ posts(${args}) { id } }`);
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), ["BAD_USER_INPUT"], args);
        assert.deepEqual(
          res.body.errors?.[0]?.extensions?.fields?.map((f: { field: string; rule: string }) => [f.field, f.rule]),
          [[field, rule]],
          args,
        );
      }
    });
  });
}
