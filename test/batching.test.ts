import assert from "node:assert/strict";
import { afterEach, before, beforeEach, describe, it } from "node:test";

import { PostStore } from "../src/posts/post.store.js";
import { UserStore } from "../src/users/user.store.js";
import { type TestApp, useTestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";

const ADMIN = { username: "boss", password: "boss password 1" };

/** Counts the calls of the store methods the GraphQL layer reads users and posts with, and their ids. */
function spyOnStores() {
  const calls = { findById: [] as string[], findByIds: [] as string[][], listByAuthors: [] as string[][] };
  // The prototype's own methods, kept to be called with the store as `this` and put back after.
  /* eslint-disable @typescript-eslint/unbound-method */
  const originals = {
    findById: UserStore.prototype.findById,
    findByIds: UserStore.prototype.findByIds,
    listByAuthors: PostStore.prototype.listByAuthors,
  };
  /* eslint-enable @typescript-eslint/unbound-method */
  UserStore.prototype.findById = function (id) {
    calls.findById.push(id);
    return originals.findById.call(this, id);
  };
  UserStore.prototype.findByIds = function (ids) {
    calls.findByIds.push([...ids]);
    return originals.findByIds.call(this, ids);
  };
  PostStore.prototype.listByAuthors = function (ids, page) {
    calls.listByAuthors.push([...ids]);
    return originals.listByAuthors.call(this, ids, page);
  };
  return {
    calls,
    restore() {
      Object.assign(UserStore.prototype, { findById: originals.findById, findByIds: originals.findByIds });
      Object.assign(PostStore.prototype, { listByAuthors: originals.listByAuthors });
    },
  };
}

async function createPost(t: TestApp, token: string, title: string): Promise<string> {
  const res = await t.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
    token,
    variables: { input: { title, body: `${title} body` } },
  });
  assert.ok(res.body.data?.createPost, JSON.stringify(res.body.errors));
  return res.body.data.createPost.id;
}

for (const kind of DATABASES) {
  describe(`reading users and posts in one request (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
    let spy: ReturnType<typeof spyOnStores>;
    const authors: Record<string, { token: string; userId: string }> = {};

    before(async () => {
      for (const name of ["ann", "bob", "cyd"]) {
        authors[name] = await t.register(name);
        for (const n of [1, 2]) await createPost(t, authors[name].token, `${name} ${n}`);
      }
    });
    beforeEach(() => {
      spy = spyOnStores();
    });
    afterEach(() => spy.restore());

    it("loads the authors of a page of posts with one query, each post with its own author", async () => {
      const res = await t.gql(`{ posts(first: 20) { title author { id username } } }`);
      assert.equal(res.body.errors, undefined);
      const posts = res.body.data.posts as Array<{ title: string; author: { id: string; username: string } }>;
      assert.equal(posts.length, 6);
      for (const post of posts) {
        const name = post.title.split(" ")[0]!;
        assert.deepEqual(post.author, { id: authors[name]!.userId, username: name });
      }
      assert.equal(spy.calls.findByIds.length, 1);
      assert.deepEqual(new Set(spy.calls.findByIds[0]), new Set(Object.values(authors).map((a) => a.userId)));
      assert.deepEqual(spy.calls.findById, []);
    });

    it("loads the posts of every listed user with one query, each user's newest first", async () => {
      const token = await t.login(ADMIN.username, ADMIN.password);
      const res = await t.gql(`{ users { id username posts { title } } }`, { token });
      assert.equal(res.body.errors, undefined);
      const byName = Object.fromEntries(
        (res.body.data.users as Array<{ id: string; username: string; posts: Array<{ title: string }> }>).map((u) => [
          u.username,
          u.posts.map((p) => p.title),
        ]),
      );
      assert.deepEqual(byName, { boss: [], ann: ["ann 2", "ann 1"], bob: ["bob 2", "bob 1"], cyd: ["cyd 2", "cyd 1"] });
      assert.equal(spy.calls.listByAuthors.length, 1);
      assert.deepEqual(
        new Set(spy.calls.listByAuthors[0]),
        new Set(res.body.data.users.map((u: { id: string }) => u.id)),
      );
    });

    it("answers me { id } and me { posts } from the token, and reads the account for any stored field", async () => {
      const { token, userId } = authors.ann!;
      const idOnly = await t.gql(`{ me { id __typename } }`, { token });
      assert.deepEqual(idOnly.body, { data: { me: { id: userId, __typename: "User" } } });
      const withPosts = await t.gql(`{ me { id posts { title } } }`, { token });
      assert.deepEqual(withPosts.body, {
        data: { me: { id: userId, posts: [{ title: "ann 2" }, { title: "ann 1" }] } },
      });
      assert.deepEqual(spy.calls.findById, [], "no account read for fields the token answers");

      const viaFragment = await t.gql(`{ me { id ...More } } fragment More on User { username roles }`, { token });
      assert.deepEqual(viaFragment.body, { data: { me: { id: userId, username: "ann", roles: ["USER"] } } });
      assert.deepEqual(spy.calls.findById, [userId]);
    });

    it("refuses me { id } without a token like every other me", async () => {
      const res = await t.gql(`{ me { id } }`);
      assert.equal(res.body.data, null);
      assert.deepEqual(
        res.body.errors?.map((e) => e.extensions?.code),
        ["UNAUTHENTICATED"],
      );
    });
  });
}
