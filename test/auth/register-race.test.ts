import assert from "node:assert/strict";
import { before, describe, it } from "node:test";

import { codes, type GraphQLResponse } from "../helpers/api.js";
import { type TestApp, useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ADMIN = { username: "root", password: "root password 1" };
const REGISTER = `mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id username roles } } }`;

/** Ten spellings of one name that differ only in letter case. */
const CAROLS = ["Carol", "carol", "CAROL", "cArol", "caRol", "carOl", "caroL", "CArol", "CaRoL", "cAROL"];

function register(t: TestApp, username: string, password = "correct horse battery"): Promise<GraphQLResponse> {
  return t.gql(REGISTER, { variables: { input: { username, password } } });
}

for (const kind of DATABASES) {
  describe(`concurrent registrations (${kind})`, () => {
    const t = useTestApp(kind, { env: { ADMIN_USERNAME: ADMIN.username, ADMIN_PASSWORD: ADMIN.password } });
    let admin: string;

    before(async () => {
      admin = await t.login(ADMIN.username, ADMIN.password);
    });

    async function listUsers(): Promise<Array<{ id: string; username: string; roles: string[] }>> {
      const res = await t.gql(`{ users { id username roles } }`, { token: admin });
      assert.deepEqual(codes(res), []);
      return res.body.data.users;
    }

    it("lets exactly one of ten simultaneous registrations of one name in different letter cases succeed; the rest get BAD_USER_INPUT on username", async () => {
      const responses = await Promise.all(CAROLS.map((name, i) => register(t, name, `password number ${i}`)));

      for (const res of responses) assert.equal(res.status, 200);
      const winners = responses.filter((res) => res.body.data?.register);
      const losers = responses.filter((res) => !res.body.data?.register);
      assert.equal(winners.length, 1, `expected one success, got ${winners.length}`);
      assert.equal(losers.length, 9);
      for (const res of losers) {
        assert.deepEqual(
          codes(res),
          ["BAD_USER_INPUT"],
          "a lost race is the user's input problem, not an INTERNAL_SERVER_ERROR",
        );
        assert.deepEqual(res.body.errors?.[0]?.extensions?.fields, [
          { field: "username", rule: "unique", message: "is already taken" },
        ]);
        assert.equal(res.body.data, null);
      }

      const winner = winners[0]!.body.data.register;
      assert.ok(CAROLS.includes(winner.user.username), "the stored name is the winner's spelling");
      assert.deepEqual(winner.user.roles, ["USER"]);

      const carols = (await listUsers()).filter((u) => u.username.toLowerCase() === "carol");
      assert.deepEqual(carols, [{ id: winner.user.id, username: winner.user.username, roles: ["USER"] }]);

      const me = await t.gql(`{ me { id username } }`, { token: winner.accessToken });
      assert.deepEqual(me.body.data.me, { id: winner.user.id, username: winner.user.username });
    });

    it("keeps the password of the registration that won the race", async () => {
      const carol = (await listUsers()).find((u) => u.username.toLowerCase() === "carol")!;
      const winnerIndex = CAROLS.indexOf(carol.username);
      const login = (password: string) =>
        t.gql(`mutation($input: LoginInput!) { login(input: $input) { user { id } } }`, {
          variables: { input: { username: "carol", password } },
        });

      const own = await login(`password number ${winnerIndex}`);
      assert.deepEqual(codes(own), []);
      assert.equal(own.body.data.login.user.id, carol.id);
      const loser = await login(`password number ${(winnerIndex + 1) % CAROLS.length}`);
      assert.deepEqual(codes(loser), ["UNAUTHENTICATED"], "a losing registration's password was not stored");
    });

    it("lets ten simultaneous registrations of different names all succeed", async () => {
      const names = Array.from({ length: 10 }, (_, i) => `parallel_${i}`);
      const responses = await Promise.all(names.map((name) => register(t, name)));

      for (const res of responses) {
        assert.equal(res.status, 200);
        assert.deepEqual(codes(res), []);
      }
      assert.deepEqual(
        responses.map((res) => res.body.data.register.user.username),
        names,
      );
      const ids = new Set(responses.map((res) => res.body.data.register.user.id));
      assert.equal(ids.size, 10, "every registration got its own user");

      const stored = (await listUsers()).filter((u) => u.username.startsWith("parallel_"));
      assert.deepEqual(stored.map((u) => u.username).sort(), names);
      for (const user of stored) assert.deepEqual(user.roles, ["USER"]);
    });
  });
}
