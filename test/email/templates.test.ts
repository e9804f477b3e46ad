import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  emailChangingMail,
  escapeHtml,
  lifetimeInWords,
  linkWith,
  passwordChangedMail,
  resetPasswordMail,
  verifyEmailMail,
} from "../../src/email/email.templates.js";

describe("the mails' templates", () => {
  it("puts the token into a link template URL-encoded, in place of {token}", () => {
    assert.equal(
      linkWith("https://app.example/reset#token={token}", "prt_a-b_c"),
      "https://app.example/reset#token=prt_a-b_c",
    );
    assert.equal(
      linkWith("https://app.example/r?t={token}&x=1", "a b/+&"),
      "https://app.example/r?t=a%20b%2F%2B%26&x=1",
    );
  });

  it("escapes everything it puts into HTML, and leaves the plain text as it is", () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    const mail = resetPasswordMail("to@example.com", "<b>", 'https://x.example/r#token=a"b<c', 1800);
    assert.match(mail.text, /account <b>\./);
    assert.match(mail.text, /https:\/\/x\.example\/r#token=a"b<c\n/);
    assert.doesNotMatch(mail.html, /<b>|a"b<c/);
    assert.match(mail.html, /href="https:\/\/x\.example\/r#token=a&quot;b&lt;c"/);
    assert.match(mail.html, /account &lt;b&gt;\./);
  });

  it("writes each mail with its subject, in text and HTML, naming the link's lifetime and nothing about the client", () => {
    const mails = [
      resetPasswordMail("a@example.com", "ada", "https://x.example/r#token=t", 1800),
      verifyEmailMail("a@example.com", "ada", "https://x.example/v#token=t", 86_400),
      passwordChangedMail("a@example.com", "ada"),
      emailChangingMail("a@example.com", "ada"),
    ];
    assert.deepEqual(
      mails.map((m) => m.subject),
      [
        "Reset your password",
        "Verify your e-mail address",
        "Your password was changed",
        "Your e-mail address is changing",
      ],
    );
    assert.match(mails[0]!.text, /for 30 minutes/);
    assert.match(mails[1]!.text, /for 24 hours/);
    for (const mail of mails) {
      assert.equal(mail.to, "a@example.com");
      assert.match(mail.html, /^<!doctype html>/);
      assert.doesNotMatch(mail.text + mail.html, /\d+\.\d+\.\d+\.\d+|user.agent/i);
    }
    assert.equal(lifetimeInWords(1), "1 second");
    assert.equal(lifetimeInWords(90), "90 seconds");
    assert.equal(lifetimeInWords(3600), "1 hour");
  });
});
