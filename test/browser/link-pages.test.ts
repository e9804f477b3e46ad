// The pages behind the mailed links in Chromium: the token read from the fragment and taken out of
// the address bar, nothing sent before the user submits (so that opening the link, or a mail
// scanner fetching it, uses nothing up), the two passwords compared before any request, and a
// message for every outcome.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { HTTPRequest, Page } from "puppeteer-core";

import { LINK_PAGE_MESSAGES } from "../../src/http/link-page-script.js";
import { RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH } from "../../src/http/link-pages.js";
import { useTestApp } from "../helpers/app.js";
import { browserUnavailable, useBrowser } from "../helpers/browser.js";
import { originOf } from "../helpers/http.js";

const UI_TIMEOUT_MS = 10_000;

/** A token of the right shape that the server never issued. */
const UNKNOWN_TOKEN = "x".repeat(43);

/** What a page did: its requests to /graphql (method and body), and every console error and page error. */
interface PageRecord {
  graphql: { method: string; body: string }[];
  problems: string[];
  /** When set, requests to /graphql fail as if the network were down. */
  offline: boolean;
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

async function typeInto(page: Page, selector: string, text: string): Promise<void> {
  await page.$eval(selector, (input) => ((input as HTMLInputElement).value = ""));
  await page.type(selector, text);
}

describe("the link pages in Chromium", { skip: browserUnavailable() }, () => {
  const t = useTestApp("sqlite");
  const browser = useBrowser();

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
      await page.waitForFunction(
        (text) => document.getElementById("outcome")?.textContent !== text,
        {
          timeout: UI_TIMEOUT_MS,
        },
        LINK_PAGE_MESSAGES.network,
      );
      assert.equal(await outcome(page), LINK_PAGE_MESSAGES.invalid);
      assert.equal(record.graphql.length, 2);
    } finally {
      await page.close();
    }
  });
});
