import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { codes } from "./helpers/api.js";
import { startTestApp, type TestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";

for (const kind of DATABASES) {
  describe(`the whole flow over HTTP (${kind})`, () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp(kind, { env: { ADMIN_USERNAME: "root", ADMIN_PASSWORD: "root password 1" } });
    });
    after(async () => {
      await t?.close();
      await t?.database.drop();
    });

    let alice: { token: string; userId: string };
    let postId: string;

    it("registers a user, who receives a bearer token and the USER role", async () => {
      const res = await t.gql(
        `mutation { register(input: { username: "Alice", password: "correct horse battery" }) { accessToken tokenType expiresIn user { id username roles } } }`,
      );
      assert.equal(res.status, 200);
      const payload = res.body.data.register;
      assert.equal(payload.tokenType, "Bearer");
      assert.equal(payload.expiresIn, 900);
      assert.deepEqual(payload.user.roles, ["USER"]);
      assert.equal(payload.user.username, "Alice");
      alice = { token: payload.accessToken, userId: payload.user.id };
    });

    it("logs in with the username in any letter case", async () => {
      const res = await t.gql(
        `mutation { login(input: { username: "aLiCe", password: "correct horse battery" }) { accessToken user { id } } }`,
      );
      assert.equal(res.body.data.login.user.id, alice.userId);
    });

    it("answers me for the token's user", async () => {
      const res = await t.gql(`{ me { id username roles posts { id } } }`, { token: alice.token });
      assert.deepEqual(res.body.data.me, { id: alice.userId, username: "Alice", roles: ["USER"], posts: [] });
    });

    it("lets a signed-in user write a post that everyone can read", async () => {
      const created = await t.gql(
        `mutation { createPost(input: { title: "Hello", body: "First post" }) { id title body author { id } } }`,
        {
          token: alice.token,
        },
      );
      postId = created.body.data.createPost.id;
      assert.equal(created.body.data.createPost.author.id, alice.userId);
      const listed = await t.gql(`{ posts { id title author { username } } post(id: "${postId}") { body } }`);
      assert.deepEqual(listed.body.data.posts, [{ id: postId, title: "Hello", author: { username: "Alice" } }]);
      assert.equal(listed.body.data.post.body, "First post");
    });

    it("refuses another user's edit with FORBIDDEN and leaves the post unchanged", async () => {
      const bob = await t.register("bob");
      const res = await t.gql(`mutation { updatePost(id: "${postId}", input: { title: "Hijacked" }) { id } }`, {
        token: bob.token,
      });
      assert.deepEqual(codes(res), ["FORBIDDEN"]);
      const post = await t.gql(`{ post(id: "${postId}") { title } }`);
      assert.equal(post.body.data.post.title, "Hello");
    });

    it("lets the bootstrap admin list users and grant ADMIN", async () => {
      const login = await t.gql(
        `mutation { login(input: { username: "root", password: "root password 1" }) { accessToken user { roles } } }`,
      );
      assert.deepEqual(login.body.data.login.user.roles, ["ADMIN", "USER"]);
      const admin = login.body.data.login.accessToken;
      const users = await t.gql(`{ users { username } }`, { token: admin });
      assert.deepEqual(users.body.data.users.map((u: { username: string }) => u.username).sort(), [
        "Alice",
        "bob",
        "root",
      ]);
      const promoted = await t.gql(
        `mutation { setUserRoles(userId: "${alice.userId}", roles: [ADMIN, USER]) { roles } }`,
        { token: admin },
      );
      assert.deepEqual(promoted.body.data.setUserRoles.roles, ["ADMIN", "USER"]);
    });

    it("keeps the data across a restart on the same database", async () => {
      const database = t.database;
      await t.close();
      t = await startTestApp(kind, { database });
      const res = await t.gql(`{ posts { id title author { username roles } } }`);
      assert.deepEqual(res.body.data.posts, [
        { id: postId, title: "Hello", author: { username: "Alice", roles: ["ADMIN", "USER"] } },
      ]);
      const me = await t.gql(`{ me { id } }`, { token: alice.token });
      assert.equal(me.body.data.me.id, alice.userId, "a token minted before the restart still verifies");
    });

    it("lets the author delete the post, after which it is gone", async () => {
      const res = await t.gql(`mutation { deletePost(id: "${postId}") }`, { token: alice.token });
      assert.equal(res.body.data.deletePost, true);
      const gone = await t.gql(`{ post(id: "${postId}") { id } }`);
      assert.equal(gone.body.data.post, null);
      const again = await t.gql(`mutation { deletePost(id: "${postId}") }`, { token: alice.token });
      assert.deepEqual(codes(again), ["NOT_FOUND"]);
    });
  });
}
