import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createLogMailer } from "../src/mailer.js";

describe("the log mailer (no mail transport)", () => {
  it("logs the recipient and subject of what would have gone out, never the text", async () => {
    const lines: Array<{ fields: object; message: string }> = [];
    const mailer = createLogMailer({ info: (fields: object, message: string) => void lines.push({ fields, message }) });
    await mailer.send({
      to: "ada@example.org",
      subject: "Reset your password",
      text: "Open https://example.org/reset?code=secret-single-use-code within 15 minutes.",
    });
    assert.deepEqual(lines, [
      {
        fields: { to: "ada@example.org", subject: "Reset your password" },
        message: "mail not sent: no mail transport is configured",
      },
    ]);
    assert.doesNotMatch(JSON.stringify(lines), /secret-single-use-code/);
  });
});
