import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { withoutVariableValue } from "../../src/graphql/format-error.js";
import { codes } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";

describe("error messages never echo a variable's value", () => {
  it("keeps graphql-js's reason but drops the value, even when the value contains the separator", () => {
    const message =
      'Variable "$input" got invalid value { usernme: "x", password: "p; q" }; Field "usernme" is not defined by type "RegisterInput".';
    assert.equal(
      withoutVariableValue(message),
      'Variable "$input" got invalid value; Field "usernme" is not defined by type "RegisterInput".',
    );
    assert.equal(withoutVariableValue("Cannot query field"), "Cannot query field");
  });

  for (const nodeEnv of ["development", "production"]) {
    describe(`over HTTP in ${nodeEnv}`, () => {
      const t = useTestApp("sqlite", { env: { NODE_ENV: nodeEnv } });

      it("answers a misspelled input field with BAD_USER_INPUT and without the password sent", async () => {
        const password = "hunter2-is-my-secret";
        const res = await t.gql(`mutation($input: RegisterInput!) { register(input: $input) { accessToken } }`, {
          variables: { input: { usernme: "someone", password } },
        });
        assert.equal(res.status, 400);
        // One error for the unknown field, one for the missing `username`.
        assert.deepEqual(codes(res), ["BAD_USER_INPUT", "BAD_USER_INPUT"]);
        const messages = res.body.errors!.map((e) => e.message).sort();
        assert.match(
          messages[0]!,
          /^Variable "\$input" got invalid value; Field "username" of required type "String!" was not provided\.$/,
        );
        assert.match(
          messages[1]!,
          /^Variable "\$input" got invalid value; Field "usernme" is not defined by type "RegisterInput"\./,
        );
        assert.ok(!JSON.stringify(res.body).includes(password), "the response must not contain the password");
      });
    });
  }
});
