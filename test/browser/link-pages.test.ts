// The pages behind the mailed links in Chromium: the token read from the fragment and taken out of
// the address bar, nothing sent before the user submits (so that opening the link, or a mail
// scanner fetching it, uses nothing up), the two passwords compared before any request, and a
// message for every outcome.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { HTTPRequest, Page } from "puppeteer-core";

import { LINK_PAGE_MESSAGES } from "../../src/http/link-page-script.js";
import { RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH } from "../../src/http/link-pages.js";
import { assertAccessRefused, login, loginRaw, PASSWORD, type Tokens } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { browserUnavailable, useBrowser } from "../helpers/browser.js";
import { originOf, send } from "../helpers/http.js";
import { mailedLink, onOrigin, tokenOf } from "../helpers/mailed-links.js";

const UI_TIMEOUT_MS = 10_000;

/** Where the test app says it is reached: the links' origin, which the tests swap for the app's real one. */
const PUBLIC_URL = "http://links.example";
const NEW_PASSWORD = "a brand new passphrase";

/** A token of the right shape that the server never issued. */
const UNKNOWN_TOKEN = "x".repeat(43);

/** What a page did: its requests to /graphql (method and body), and every console error and page error. */
interface PageRecord {
  graphql: { method: string; body: string }[];
  problems: string[];
  /** When set, requests to /graphql fail as if the network were down. */
  offline: boolean;
  /**
   * When set, the next request to /graphql gets this body instead of reaching the app: for the
   * answers a test cannot provoke from it (RATE_LIMITED, MFA_REQUIRED), in the errors' documented shape.
   */
  answer?: unknown;
}

async function watch(page: Page, origin: string): Promise<PageRecord> {
  const record: PageRecord = { graphql: [], problems: [], offline: false };
  await page.setRequestInterception(true);
  page.on("request", (request: HTTPRequest) => {
    const url = new URL(request.url());
    if (url.origin !== origin) return void request.abort("blockedbyclient");
    if (url.pathname === "/graphql") {
      record.graphql.push({ method: request.method(), body: request.postData() ?? "" });
      if (record.offline) return void request.abort("internetdisconnected");
      if (record.answer !== undefined) {
        const body = JSON.stringify(record.answer);
        record.answer = undefined;
        return void request.respond({ status: 200, contentType: "application/json", body });
      }
    }
    void request.continue();
  });
  page.on("console", (message) => {
    if (message.type() === "error") record.problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => record.problems.push(`page error: ${String(error)}`));
  return record;
}

/** The outcome the page shows, once it shows one. */
async function outcome(page: Page): Promise<string> {
  await page.waitForSelector("#outcome:not([hidden])", { timeout: UI_TIMEOUT_MS });
  return page.$eval("#outcome", (element) => element.textContent ?? "");
}

/** Waits until the page shows `text` as its outcome (a message replacing an earlier one). */
async function outcomeBecomes(page: Page, text: string): Promise<void> {
  const shown = await page
    .waitForFunction(
      (expected) => document.getElementById("outcome")?.textContent === expected,
      { timeout: UI_TIMEOUT_MS },
      text,
    )
    .then(() => true)
    .catch(() => false);
  assert.ok(shown, `the page says ${JSON.stringify(text)}, not ${JSON.stringify(await outcome(page))}`);
}

async function typeInto(page: Page, selector: string, text: string): Promise<void> {
  await page.$eval(selector, (input) => ((input as HTMLInputElement).value = ""));
  await page.type(selector, text);
}

describe("the link pages in Chromium", { skip: browserUnavailable() }, () => {
  const t = useTestApp("sqlite", { env: { PUBLIC_URL } });
  const browser = useBrowser();

  /** Registers `username` with the address `username@example.com`; returns its tokens and the verification link. */
  async function registerWithAddress(username: string): Promise<Tokens & { email: string; link: string }> {
    const email = `${username}@example.com`;
    const res = await t.gql(
      `mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id } } }`,
      { variables: { input: { username, password: PASSWORD, email } } },
    );
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const payload = res.body.data.register;
    const link = await mailedLink(t.app.database.db, email, VERIFY_EMAIL_PATH);
    assert.ok(link.startsWith(`${PUBLIC_URL}${VERIFY_EMAIL_PATH}#token=`), link);
    return {
      accessToken: payload.accessToken,
      refreshToken: payload.refreshToken,
      userId: payload.user.id,
      email,
      link,
    };
  }

  /** A user with a verified address and a reset link mailed to it. */
  async function userWithResetLink(username: string): Promise<Tokens & { email: string; link: string }> {
    const user = await registerWithAddress(username);
    const verified = await t.gql(`mutation($token: String!) { verifyEmail(token: $token) }`, {
      variables: { token: tokenOf(user.link) },
    });
    assert.deepEqual(verified.body, { data: { verifyEmail: true } });
    const requested = await t.gql(`mutation($email: String!) { requestPasswordReset(email: $email) }`, {
      variables: { email: user.email },
    });
    assert.deepEqual(requested.body, { data: { requestPasswordReset: true } });
    const link = await mailedLink(t.app.database.db, user.email, RESET_PASSWORD_PATH);
    assert.ok(link.startsWith(`${PUBLIC_URL}${RESET_PASSWORD_PATH}#token=`), link);
    return { ...user, link };
  }

  /** What a mail scanner does with a link: a plain GET (the fragment stays behind), with and without a query. */
  async function scan(link: string): Promise<void> {
    const url = new URL(onOrigin(link, originOf(t.url)));
    for (const target of [`${url.origin}${url.pathname}`, `${url.origin}${url.pathname}?${url.hash.slice(1)}`]) {
      const response = await send(target, { headers: { "user-agent": "MailScanner/1.0" } });
      assert.equal(response.status, 200, target);
    }
  }

  async function enterPasswords(page: Page, first: string, second = first): Promise<void> {
    await typeInto(page, "#new-password", first);
    await typeInto(page, "#confirm-password", second);
    await page.click("button[type=submit]");
  }

  /** The sessions `accessToken`'s user has, as `sessions` lists them. */
  async function sessionCount(accessToken: string): Promise<number> {
    const res = await t.gql(`{ sessions { id } }`, { token: accessToken });
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    return res.body.data.sessions.length;
  }

  /** Opens `path#token=…` in a new tab, watched; resolves once the page's script has run. */
  async function open(path: string, fragment: string): Promise<{ page: Page; record: PageRecord }> {
    const origin = originOf(t.url);
    const page = await browser().newPage();
    const record = await watch(page, origin);
    const response = await page.goto(`${origin}${path}${fragment}`, { waitUntil: "load" });
    assert.equal(response?.status(), 200);
    await page.waitForSelector("#link-form:not([hidden]), #outcome:not([hidden])", { timeout: UI_TIMEOUT_MS });
    return { page, record };
  }

  it("take the token out of the address bar and history, and send nothing on opening", async () => {
    for (const path of [RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH]) {
      const { page, record } = await open(path, `#token=${UNKNOWN_TOKEN}`);
      try {
        assert.equal(page.url(), `${originOf(t.url)}${path}`);
        assert.ok(!(await page.evaluate(() => window.location.href)).includes(UNKNOWN_TOKEN));
        assert.equal(await page.$eval("#link-form", (form) => (form as HTMLFormElement).hidden), false);
        assert.deepEqual(record.graphql, [], `${path} sent nothing before a submit`);
        assert.deepEqual(record.problems, [], `${path}: no CSP violation, no script error`);
      } finally {
        await page.close();
      }
    }
  });

  it("say a link without a token, or with one no token looks like, is incomplete, and show no form", async () => {
    for (const path of [RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH]) {
      for (const fragment of [
        "",
        "#",
        "#token=",
        "#token=short",
        `#token=${"a".repeat(2000)}`,
        "#token=a%20b%20c%20d%20e%20f%20g",
      ]) {
        const { page, record } = await open(path, fragment);
        try {
          assert.equal(await outcome(page), LINK_PAGE_MESSAGES.incomplete, `${path}${fragment.slice(0, 20)}`);
          assert.equal(await page.$eval("#link-form", (form) => (form as HTMLFormElement).hidden), true);
          assert.deepEqual(record.graphql, []);
          assert.deepEqual(record.problems, []);
        } finally {
          await page.close();
        }
      }
    }
  });

  it("catch two different passwords before any request, next to the second field", async () => {
    const { page, record } = await open(RESET_PASSWORD_PATH, `#token=${UNKNOWN_TOKEN}`);
    try {
      await typeInto(page, "#new-password", "a new password 1");
      await typeInto(page, "#confirm-password", "a new password 2");
      await page.click("button[type=submit]");
      await page.waitForSelector("#confirm-password-problem:not([hidden])", { timeout: UI_TIMEOUT_MS });
      assert.equal(
        await page.$eval("#confirm-password-problem", (element) => element.textContent),
        LINK_PAGE_MESSAGES.mismatch,
      );
      assert.equal(await page.$eval("#confirm-password", (input) => input.getAttribute("aria-invalid")), "true");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "confirm-password");
      assert.deepEqual(record.graphql, [], "nothing was sent");
      assert.deepEqual(record.problems, []);
    } finally {
      await page.close();
    }
  });

  it("say the server could not be reached, keep the form, and send again when the network is back", async () => {
    const { page, record } = await open(VERIFY_EMAIL_PATH, `#token=${UNKNOWN_TOKEN}`);
    try {
      record.offline = true;
      await page.click("button[type=submit]");
      assert.equal(await outcome(page), LINK_PAGE_MESSAGES.network);
      assert.equal(await page.$eval("#link-form", (form) => (form as HTMLFormElement).hidden), false);
      assert.equal(record.graphql.length, 1);
      assert.equal(record.graphql[0]?.method, "POST");
      // The failed request is the browser's own console error; nothing else went wrong.
      assert.deepEqual(
        record.problems.filter((problem) => !problem.includes("ERR_INTERNET_DISCONNECTED")),
        [],
      );
      record.offline = false;
      await page.click("button[type=submit]");
      await outcomeBecomes(page, LINK_PAGE_MESSAGES.invalid);
      assert.equal(record.graphql.length, 2);
    } finally {
      await page.close();
    }
  });

  it("show the seconds to wait on RATE_LIMITED, and ask for a code on MFA_REQUIRED, then send it", async () => {
    const { page, record } = await open(RESET_PASSWORD_PATH, `#token=${UNKNOWN_TOKEN}`);
    try {
      assert.equal(await page.$eval("#mfa-code", (input) => (input.closest(".field") as HTMLElement).hidden), true);
      record.answer = {
        data: null,
        errors: [
          {
            message: "Too many attempts. Try again in 42 seconds.",
            extensions: { code: "RATE_LIMITED", retryAfter: 42 },
          },
        ],
      };
      await enterPasswords(page, NEW_PASSWORD);
      assert.equal(await outcome(page), LINK_PAGE_MESSAGES.rateLimited.replace("{seconds}", "42"));
      assert.equal(await page.$eval("#link-form", (form) => (form as HTMLFormElement).hidden), false);

      record.answer = {
        data: null,
        errors: [{ message: "A second factor is needed.", extensions: { code: "FORBIDDEN", reason: "MFA_REQUIRED" } }],
      };
      await page.click("button[type=submit]");
      await page.waitForSelector("#mfa-code:focus", { timeout: UI_TIMEOUT_MS });
      assert.equal(await outcome(page), LINK_PAGE_MESSAGES.mfaRequired);
      await page.type("#mfa-code", "123456");
      await page.click("button[type=submit]");
      // The third request reaches the app, with the code: the unknown token is refused.
      await outcomeBecomes(page, LINK_PAGE_MESSAGES.invalid);
      const sent = JSON.parse(record.graphql[2]!.body) as { variables: { input: Record<string, string> } };
      assert.deepEqual(sent.variables.input, { token: UNKNOWN_TOKEN, newPassword: NEW_PASSWORD, mfaCode: "123456" });
      assert.equal(record.graphql.length, 3);
      assert.deepEqual(record.problems, []);
    } finally {
      await page.close();
    }
  });

  it("reset a password: opening and scanning the link use nothing up, submitting does, once, and the page keeps no token", async () => {
    const user = await userWithResetLink("resetter");
    const link = onOrigin(user.link, originOf(t.url));

    // A mail scanner fetches the link, and the user opens it and walks away.
    await scan(user.link);
    const opened = await open(RESET_PASSWORD_PATH, new URL(link).hash);
    assert.deepEqual(opened.record.graphql, []);
    await opened.page.close();

    // A password the rules refuse: the server's message under the field; the link still works.
    const { page, record } = await open(RESET_PASSWORD_PATH, new URL(link).hash);
    try {
      await enterPasswords(page, "short");
      await page.waitForSelector("#new-password-problem:not([hidden])", { timeout: UI_TIMEOUT_MS });
      assert.equal(
        await page.$eval("#new-password-problem", (element) => element.textContent),
        "This password must be at least 8 characters.",
      );
      assert.equal(await page.$eval("#new-password", (input) => input.getAttribute("aria-invalid")), "true");
      assert.equal(record.graphql.length, 1);

      await enterPasswords(page, NEW_PASSWORD);
      assert.equal(await outcome(page), LINK_PAGE_MESSAGES.resetDone);
      assert.equal(await page.$eval("#link-form", (form) => (form as HTMLFormElement).hidden), true);
      assert.equal(await page.$eval("#new-password-problem", (element) => (element as HTMLElement).hidden), true);
      // resetPassword, then the logout of the session it returned: nothing else.
      assert.deepEqual(
        record.graphql.map(({ body }) => (JSON.parse(body) as { query: string }).query.match(/^mutation (\w+)/)?.[1]),
        ["ResetPassword", "ResetPassword", "EndResetSession"],
      );
      const stored = await page.evaluate(() =>
        JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie]),
      );
      assert.equal(stored, JSON.stringify([{}, {}, ""]), "the page stored nothing");
      assert.ok(!(await page.content()).includes(tokenOf(link)), "the token is nowhere on the page");
      assert.equal(page.url(), `${originOf(t.url)}${RESET_PASSWORD_PATH}`);
      assert.deepEqual(record.problems, []);
    } finally {
      await page.close();
    }

    // The new password signs in, the old one no longer does, the old session is over, and the
    // session the reset opened was ended by the page: the new sign-in is the only one.
    assert.deepEqual(
      (await loginRaw(t, "resetter")).body.errors?.map((e) => e.extensions?.reason),
      ["BAD_CREDENTIALS"],
    );
    await assertAccessRefused(t, user.accessToken);
    const signedIn = await login(t, "resetter", { password: NEW_PASSWORD });
    assert.equal(await sessionCount(signedIn.accessToken), 1);

    // The same link again: spent.
    const again = await open(RESET_PASSWORD_PATH, new URL(link).hash);
    try {
      await enterPasswords(again.page, "yet another passphrase");
      assert.equal(await outcome(again.page), LINK_PAGE_MESSAGES.invalid);
      assert.equal(await again.page.$eval("#link-form", (form) => (form as HTMLFormElement).hidden), true);
    } finally {
      await again.page.close();
    }
    await login(t, "resetter", { password: NEW_PASSWORD });
  });

  it("verify an address: opening and scanning the link use nothing up, the button does, once", async () => {
    const user = await registerWithAddress("verifier");
    const fragment = new URL(user.link).hash;
    const verified = async () =>
      (await t.gql(`{ me { email emailVerified } }`, { token: user.accessToken })).body.data.me;

    await scan(user.link);
    const opened = await open(VERIFY_EMAIL_PATH, fragment);
    assert.deepEqual(opened.record.graphql, []);
    await opened.page.close();
    assert.deepEqual(await verified(), { email: user.email, emailVerified: false });

    const { page, record } = await open(VERIFY_EMAIL_PATH, fragment);
    try {
      assert.equal(await page.$eval("button[type=submit]", (button) => button.textContent), "Verify my address");
      await page.click("button[type=submit]");
      assert.equal(await outcome(page), LINK_PAGE_MESSAGES.verifyDone);
      assert.equal(record.graphql.length, 1);
      assert.deepEqual(record.problems, []);
    } finally {
      await page.close();
    }
    assert.deepEqual(await verified(), { email: user.email, emailVerified: true });

    const again = await open(VERIFY_EMAIL_PATH, fragment);
    try {
      await again.page.click("button[type=submit]");
      assert.equal(await outcome(again.page), LINK_PAGE_MESSAGES.invalid);
    } finally {
      await again.page.close();
    }
  });
});
