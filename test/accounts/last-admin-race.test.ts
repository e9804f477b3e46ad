import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Principal } from "../../src/access/principal.js";
import { Role } from "../../src/access/roles.js";
import { BadUserInputError } from "../../src/errors.js";
import { ROOT, rootToken, withRoot } from "../helpers/admin.js";
import { codes, type GraphQLResponse, login, registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const ROUNDS = 40;
const SET_ROLES = `mutation($id: ID!, $roles: [Role!]!) { setUserRoles(userId: $id, roles: $roles) { id } }`;
const SET_DISABLED = `mutation($id: ID!, $disabled: Boolean!) { setUserDisabled(userId: $id, disabled: $disabled) { id } }`;

interface Admin {
  username: string;
  password: string;
  userId: string;
  token: string;
}

/** What each of the two admins does to the other in a round: take ADMIN away, or disable the account. */
type Move = "demote" | "disable";

/** The three pairings the rounds cycle through: both demote, both disable, one of each. */
const PAIRINGS: ReadonlyArray<readonly [Move, Move]> = [
  ["demote", "demote"],
  ["disable", "disable"],
  ["demote", "disable"],
];

/**
 * How the move that lost was refused. When both requests got past their role check, the second
 * transaction finds its actor is now the last admin: BAD_USER_INPUT on the move's field with rule
 * lastAdmin ("lastAdmin"). When the winner's change committed before the loser's request was even
 * authorised, the loser is no longer an ADMIN (FORBIDDEN, reason ROLE) or no longer signed in (401
 * SESSION_ENDED): "too late". Anything else (INTERNAL_SERVER_ERROR above all) fails.
 */
function refusalOf(res: GraphQLResponse, move: Move): "lastAdmin" | "too late" {
  const code = codes(res)[0];
  if (code === "FORBIDDEN") {
    assert.equal(res.body.errors![0]!.extensions!.reason, "ROLE");
    return "too late";
  }
  if (code === "UNAUTHENTICATED") {
    assert.equal(res.status, 401);
    assert.equal(res.body.errors![0]!.extensions!.reason, "SESSION_ENDED");
    return "too late";
  }
  assert.equal(res.status, 200);
  assert.deepEqual(codes(res), ["BAD_USER_INPUT"], JSON.stringify(res.body.errors));
  assert.deepEqual(
    res.body.errors![0]!.extensions!.fields.map((f: { field: string; rule: string }) => [f.field, f.rule]),
    [[move === "demote" ? "roles" : "disabled", "lastAdmin"]],
  );
  return "lastAdmin";
}

for (const kind of DATABASES) {
  describe(`two ADMINs removing each other at the same moment (${kind})`, () => {
    const t = useTestApp(kind, withRoot());

    it(`lets exactly one succeed in each of ${ROUNDS} rounds; the other gets BAD_USER_INPUT (lastAdmin) or, when it came too late, FORBIDDEN or a 401; never an internal error or an error log line`, async (ctx) => {
      const root: Admin = { ...ROOT, userId: "", token: await rootToken(t) };
      root.userId = (await t.gql(`{ me { id } }`, { token: root.token })).body.data.me.id;
      const second: Admin = { username: "second", password: "second password 1", userId: "", token: "" };
      const registered = await registerUser(t, second.username, { password: second.password });
      second.userId = registered.userId;
      assert.deepEqual(
        codes(
          await t.gql(SET_ROLES, { token: root.token, variables: { id: second.userId, roles: ["USER", "ADMIN"] } }),
        ),
        [],
      );
      second.token = (await login(t, second.username, { password: second.password })).accessToken;
      const logsBefore = t.logs.length;

      const move = (actor: Admin, target: Admin, what: Move) =>
        what === "demote"
          ? t.gql(SET_ROLES, { token: actor.token, variables: { id: target.userId, roles: ["USER"] } })
          : t.gql(SET_DISABLED, { token: actor.token, variables: { id: target.userId, disabled: true } });
      const winners = { root: 0, second: 0 };
      const refusals = { lastAdmin: 0, "too late": 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const [rootMove, secondMove] = PAIRINGS[round % PAIRINGS.length]!;
        const [byRoot, bySecond] = await Promise.all([move(root, second, rootMove), move(second, root, secondMove)]);
        const succeeded = [byRoot, bySecond].filter((res) => codes(res).length === 0);
        assert.equal(
          succeeded.length,
          1,
          `round ${round}: ${JSON.stringify([byRoot.body, bySecond.body])} (exactly one succeeds)`,
        );
        const [winner, loser, loserMove, winnerMove] =
          succeeded[0] === byRoot ? [root, second, secondMove, rootMove] : [second, root, rootMove, secondMove];
        refusals[refusalOf(succeeded[0] === byRoot ? bySecond : byRoot, loserMove)]++;
        winners[winner === root ? "root" : "second"]++;

        // The winner puts the loser back, for the next round.
        if (winnerMove === "demote") {
          const restored = await t.gql(SET_ROLES, {
            token: winner.token,
            variables: { id: loser.userId, roles: ["USER", "ADMIN"] },
          });
          assert.deepEqual(codes(restored), [], JSON.stringify(restored.body.errors));
        } else {
          const enabled = await t.gql(SET_DISABLED, {
            token: winner.token,
            variables: { id: loser.userId, disabled: false },
          });
          assert.deepEqual(codes(enabled), [], JSON.stringify(enabled.body.errors));
          // Disabling ended the loser's sessions: they sign in again.
          loser.token = (await login(t, loser.username, { password: loser.password })).accessToken;
        }
      }
      ctx.diagnostic(
        `${ROUNDS} rounds: root won ${winners.root}, second ${winners.second}; the loser got lastAdmin ${refusals.lastAdmin} times, was refused before its transaction ${refusals["too late"]} times`,
      );
      // On PostgreSQL both requests reach their transactions together (the race itself is run); on
      // SQLite one request usually runs to its end before the other is authorised, so the race
      // inside the transactions is run by the next test, below the resolvers.
      if (kind === "postgres") assert.ok(refusals.lastAdmin > 0, "at least one round raced inside the transactions");
      const errors = t.logs
        .slice(logsBefore)
        .filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
        .map((line) => JSON.parse(line) as { msg: string });
      assert.deepEqual(errors, [], "no line at level error or above");
    });

    it(`lets exactly one of two concurrent setRoles calls take ADMIN from the other in each of ${ROUNDS} rounds, below the resolvers`, async () => {
      const ids = await Promise.all(
        [ROOT.username, "second"].map(async (name) => (await t.app.users.findByUsername(name))!.id),
      );
      const principal = (userId: string): Principal => ({
        kind: "session",
        userId,
        roles: [Role.ADMIN, Role.USER],
        sessionId: "-",
        tokenId: "-",
        fresh: true,
        aal: 1,
        amr: ["pwd"],
        mfaPending: false,
      });
      for (let round = 0; round < ROUNDS; round++) {
        const outcomes = await Promise.allSettled([
          t.app.users.setRoles(principal(ids[0]!), ids[1]!, [Role.USER]),
          t.app.users.setRoles(principal(ids[1]!), ids[0]!, [Role.USER]),
        ]);
        const won = outcomes.findIndex((o) => o.status === "fulfilled");
        assert.equal(
          outcomes.filter((o) => o.status === "fulfilled").length,
          1,
          `round ${round}: exactly one succeeds`,
        );
        const lost = outcomes[1 - won] as PromiseRejectedResult;
        assert.ok(lost.reason instanceof BadUserInputError, String(lost.reason));
        assert.deepEqual(
          lost.reason.fields.map((f) => [f.field, f.rule]),
          [["roles", "lastAdmin"]],
        );
        await t.app.users.setRoles(principal(ids[won]!), ids[1 - won]!, [Role.ADMIN, Role.USER]);
      }
    });
  });
}
