// PASSWORD_QUEUE_MAX over HTTP: a burst of logins past the queue of password checks is answered
// 503 SERVICE_UNAVAILABLE with Retry-After at once, the rest are served as usual, and the refused
// ones are neither failed logins for the throttle nor LOGIN_FAILED rows.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { defaultPasswordThreads, PASSWORD_QUEUE_FULL_MESSAGE } from "../../src/users/passwords.js";
import { codes, type GraphQLResponse, loginRaw, PASSWORD } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { DATABASES } from "../helpers/databases.js";

const WRONG = "not the password at all";
// Far more logins at once than the threads and the one waiting place can take, whatever the cores.
const BURST = defaultPasswordThreads() * 8 + 24;
// Room for every login of the burst to fail, and a few more.
const MAX_FAILURES = BURST + 5;

/** Each answer's kind; fails the test on any answer that is neither `expected` nor the queue's refusal. */
function sortAnswers(responses: GraphQLResponse[], expected: "ok" | "UNAUTHENTICATED") {
  let refused = 0;
  let served = 0;
  for (const res of responses) {
    if (res.status === 503) {
      assert.equal(res.headers.get("retry-after"), "5");
      assert.deepEqual(res.body, {
        data: null,
        errors: [
          {
            message: PASSWORD_QUEUE_FULL_MESSAGE,
            locations: [{ line: 1, column: 33 }],
            path: ["login"],
            extensions: { code: "SERVICE_UNAVAILABLE", retryAfter: 5 },
          },
        ],
      });
      refused++;
    } else if (expected === "ok") {
      assert.equal(res.status, 200);
      assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
      assert.equal(res.body.data.login.user.username, "burst");
      served++;
    } else {
      assert.equal(res.status, 200);
      assert.deepEqual(codes(res), ["UNAUTHENTICATED"], JSON.stringify(res.body.errors));
      assert.equal(res.body.errors![0]!.extensions!.reason, "BAD_CREDENTIALS");
      served++;
    }
  }
  return { refused, served };
}

async function auditCount(t: ReturnType<typeof useTestApp>, type: string): Promise<number> {
  await t.app.audit.flush();
  const rows = await t.app.database.db
    .selectFrom("audit_events")
    .select(["id"])
    .where("username", "=", "burst")
    .where("type", "=", type)
    .execute();
  return rows.length;
}

function refusalsCounted(metrics: string): number {
  const match = /^gta_limit_refusals_total\{limit="PASSWORD_QUEUE_MAX"\} (\d+)$/m.exec(metrics);
  assert.ok(match, "gta_limit_refusals_total{limit=PASSWORD_QUEUE_MAX} is exported");
  return Number(match[1]);
}

for (const kind of DATABASES) {
  describe(`a burst of logins past PASSWORD_QUEUE_MAX=1 (${kind})`, () => {
    const t = useTestApp(kind, {
      env: {
        PASSWORD_QUEUE_MAX: "1",
        LOGIN_MAX_FAILURES_PER_USER_IP: String(MAX_FAILURES),
        LOGIN_MAX_FAILURES_PER_IP: "100000",
      },
    });

    const burst = (password: string) =>
      Promise.all(Array.from({ length: BURST }, () => loginRaw(t, "burst", { password })));

    it("answers some 503 SERVICE_UNAVAILABLE with Retry-After and signs the rest in; none is a failed login", async () => {
      await t.register("burst");
      const { refused, served } = sortAnswers(await burst(PASSWORD), "ok");
      assert.ok(refused > 0, `some of ${BURST} refused`);
      assert.ok(served > 0, `some of ${BURST} served`);
      assert.equal(await auditCount(t, "LOGIN_SUCCEEDED"), served);
      assert.equal(await auditCount(t, "LOGIN_FAILED"), 0, "a refused login is not audited as failed");
      assert.equal(refusalsCounted(await t.app.metrics.text()), refused);
      // Nothing is left in the queue: one login alone is served.
      assert.equal((await loginRaw(t, "burst", { password: PASSWORD })).status, 200);
    });

    it("charges the throttle only the wrong passwords it checked, not the refused attempts", async () => {
      const before = refusalsCounted(await t.app.metrics.text());
      const { refused, served: failed } = sortAnswers(await burst(WRONG), "UNAUTHENTICATED");
      assert.ok(refused > 0, `some of ${BURST} refused`);
      assert.equal(await auditCount(t, "LOGIN_FAILED"), failed);
      assert.equal(refusalsCounted(await t.app.metrics.text()), before + refused);
      // The pair has exactly MAX_FAILURES - failed attempts left: the refused ones were given back.
      for (let i = failed; i < MAX_FAILURES; i++) {
        const res = await loginRaw(t, "burst", { password: WRONG });
        assert.deepEqual(codes(res), ["UNAUTHENTICATED"], `failure #${i + 1}: ${JSON.stringify(res.body.errors)}`);
      }
      assert.deepEqual(codes(await loginRaw(t, "burst", { password: WRONG })), ["RATE_LIMITED"]);
    });
  });
}
