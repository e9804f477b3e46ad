// The offline explorer: GraphiQL at /graphiql in development, from node_modules, nothing fetched
// from anywhere but the app; a 404 in production. A real Chromium signs in through its UI.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Page } from "puppeteer-core";

import {
  EXPLORER_CSP,
  EXPLORER_DEFAULT_HEADERS,
  EXPLORER_DEFAULT_QUERY,
  EXPLORER_PATH,
  explorerAssets,
} from "../../src/http/explorer.js";
import { registerUser } from "../helpers/api.js";
import { useTestApp } from "../helpers/app.js";
import { browserUnavailable, recordRequests, useBrowser } from "../helpers/browser.js";

/** Longest wait for anything on the page (GraphiQL's 3.5 MB bundle parses in well under a second). */
const UI_TIMEOUT_MS = 15_000;

function originOf(url: string): string {
  return new URL(url).origin;
}

/** The text of the CodeMirror editor inside `selector`, as the editor holds it. */
function editorValue(page: Page, selector: string): Promise<string> {
  return page.$eval(`${selector} .CodeMirror`, (element) =>
    (element as unknown as { CodeMirror: { getValue(): string } }).CodeMirror.getValue(),
  );
}

/** Clicks into the editor inside `selector`, selects everything in it and types `text` over it, as a user would. */
async function typeInto(page: Page, selector: string, text: string): Promise<void> {
  // The start of the first line: the middle of a long editor can lie under GraphiQL's toolbar.
  const lines = await page.$(`${selector} .CodeMirror-lines`);
  const box = await lines?.boundingBox();
  assert.ok(box, `${selector} has an editor on screen`);
  await page.mouse.click(box.x + 8, box.y + 8);
  await page.keyboard.down("Control");
  await page.keyboard.press("a");
  await page.keyboard.up("Control");
  await page.keyboard.press("Backspace");
  await page.keyboard.type(text);
}

/** Every item of the page's localStorage and sessionStorage. */
function storedItems(page: Page): Promise<{ local: Record<string, string>; session: Record<string, string> }> {
  return page.evaluate(() => {
    const items = (storage: Storage) => {
      const found: Record<string, string> = {};
      for (let i = 0; i < storage.length; i += 1) {
        const key = storage.key(i)!;
        found[key] = storage.getItem(key)!;
      }
      return found;
    };
    return { local: items(localStorage), session: items(sessionStorage) };
  });
}

function assertHoldsNone(stored: object, secrets: readonly string[]): void {
  const text = JSON.stringify(stored);
  for (const secret of secrets) assert.ok(!text.includes(secret), `the browser's storage holds ${secret}: ${text}`);
}

describe("the explorer in development", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "development" } });

  it("serves the page and every asset from the app with its content type and caching", async () => {
    const origin = originOf(t.url);
    const page = await fetch(`${origin}${EXPLORER_PATH}`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(page.headers.get("cache-control"), "no-cache");
    assert.equal(page.headers.get("content-security-policy"), EXPLORER_CSP);
    const html = await page.text();

    const assets = explorerAssets();
    assert.equal(assets.length, 6);
    for (const asset of assets) {
      assert.ok(html.includes(`"${asset.url}"`), `the page links ${asset.url}`);
      const response = await fetch(`${origin}${asset.url}`);
      assert.equal(response.status, 200, asset.url);
      const body = await response.text();
      assert.ok(body.length > 0, asset.url);
      const type = asset.url.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
      assert.equal(response.headers.get("content-type"), type, asset.url);
      assert.equal(response.headers.get("x-content-type-options"), "nosniff", asset.url);
      const versioned = asset.url.includes("@");
      assert.equal(
        response.headers.get("cache-control"),
        versioned ? "public, max-age=31536000, immutable" : "no-cache",
        asset.url,
      );
    }
    // The vendor files are the packages' own, under their versions.
    const urls = assets.map((asset) => asset.url);
    assert.ok(urls.includes(`${EXPLORER_PATH}/graphiql@3.8.3/graphiql.min.js`), urls.join(" "));
    assert.ok(urls.includes(`${EXPLORER_PATH}/graphiql@3.8.3/graphiql.min.css`));
    assert.ok(urls.includes(`${EXPLORER_PATH}/react@18.3.1/react.production.min.js`));
    assert.ok(urls.includes(`${EXPLORER_PATH}/react-dom@18.3.1/react-dom.production.min.js`));
    // No inline script: the page's own code is the external init.js.
    assert.doesNotMatch(html, /<script>/);
    assert.equal((await fetch(`${origin}${EXPLORER_PATH}/nothing.js`)).status, 404);
  });

  describe("in a real browser", { skip: browserUnavailable() }, () => {
    const browser = useBrowser();

    it("loads from the app alone, and a user who pastes a token in the headers editor sees their id", async () => {
      const user = await registerUser(t, "explorer");
      const origin = originOf(t.url);
      const page = await browser().newPage();
      try {
        // A laptop's window: at puppeteer's default 800x600 the headers editor is too short to click into.
        await page.setViewport({ width: 1280, height: 800 });
        const requests = await recordRequests(page, origin);
        const problems: string[] = [];
        page.on("pageerror", (error) => problems.push(`page error: ${String(error)}`));
        page.on("console", (message) => {
          if (message.type() === "error") problems.push(`console error: ${message.text()}`);
        });
        page.on("response", (response) => {
          if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
        });
        const introspection = page.waitForResponse(
          (response) => response.url() === t.url && (response.request().postData() ?? "").includes("__schema"),
          { timeout: UI_TIMEOUT_MS },
        );

        const response = await page.goto(`${origin}${EXPLORER_PATH}`, { waitUntil: "load", timeout: UI_TIMEOUT_MS });
        assert.equal(response?.status(), 200);
        await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: UI_TIMEOUT_MS });

        // What a user finds: the guidance and the me query, the headers editor open with the placeholder.
        const query = await editorValue(page, ".graphiql-query-editor");
        assert.ok(query.trimEnd().endsWith(EXPLORER_DEFAULT_QUERY), query);
        const headersSelector = ".graphiql-editor-tool .graphiql-editor:not(.hidden)";
        await page.waitForSelector(`${headersSelector} .CodeMirror`, { visible: true, timeout: UI_TIMEOUT_MS });
        assert.equal(await editorValue(page, headersSelector), EXPLORER_DEFAULT_HEADERS);
        // The schema loads with the placeholder in place: it is never sent.
        const schema = await introspection;
        assert.equal(schema.status(), 200);
        assert.equal(schema.request().headers().authorization, undefined);
        assert.ok((await schema.json()).data.__schema.queryType);

        // Run as it opens: the placeholder is not a token, so the answer is "not signed in".
        await page.click(".graphiql-execute-button");
        await page.waitForFunction(
          () => document.querySelector<HTMLElement>(".result-window")?.innerText.includes("NOT_SIGNED_IN"),
          { timeout: UI_TIMEOUT_MS },
        );
        const unsigned = JSON.parse(await editorValue(page, ".result-window"));
        assert.equal(unsigned.data, null);
        assert.deepEqual(
          unsigned.errors.map((error: any) => [error.extensions.code, error.extensions.reason]),
          [["UNAUTHENTICATED", "NOT_SIGNED_IN"]],
        );

        await typeInto(page, headersSelector, `{"Authorization":"Bearer ${user.accessToken}"}`);
        assert.deepEqual(JSON.parse(await editorValue(page, headersSelector)), {
          Authorization: `Bearer ${user.accessToken}`,
        });
        await typeInto(page, ".graphiql-query-editor", "{ me { id } }");
        assert.equal(await editorValue(page, ".graphiql-query-editor"), "{ me { id } }");
        await page.click(".graphiql-execute-button");

        // The result pane, as the user sees it.
        await page.waitForFunction(
          (id) => document.querySelector<HTMLElement>(".result-window")?.innerText.includes(id),
          { timeout: UI_TIMEOUT_MS },
          user.userId,
        );
        assert.deepEqual(JSON.parse(await editorValue(page, ".result-window")), { data: { me: { id: user.userId } } });

        assert.deepEqual(requests.offOrigin(origin), [], "every request stays on the app's origin");
        assert.ok(requests.urls.includes(`${origin}${EXPLORER_PATH}/init.js`), requests.urls.join("\n"));
        assert.deepEqual(problems, []);
      } finally {
        await page.close();
      }
    });

    it("keeps nothing a user typed: no password or token in localStorage or sessionStorage, before or after a reload", async () => {
      const password = "explorer storage password 8341";
      const user = await registerUser(t, "explorerstore", { password });
      const origin = originOf(t.url);
      const page = await browser().newPage();
      try {
        await page.setViewport({ width: 1280, height: 800 });
        await recordRequests(page, origin);
        // What the page of earlier versions left behind (GraphiQL's default storage is localStorage).
        await page.goto(`${origin}/healthz`);
        await page.evaluate((left) => {
          localStorage.setItem("graphiql:query", left);
          localStorage.setItem("graphiql:tabState", JSON.stringify({ tabs: [{ query: left }], activeTabIndex: 0 }));
          localStorage.setItem("another-app", "kept");
        }, `mutation { login(input: { username: "old", password: "${password}" }) { accessToken } }`);

        await page.goto(`${origin}${EXPLORER_PATH}`, { waitUntil: "load", timeout: UI_TIMEOUT_MS });
        await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: UI_TIMEOUT_MS });
        // Not restored from what was left, and gone from localStorage; another app's key stays.
        assert.ok((await editorValue(page, ".graphiql-query-editor")).trimEnd().endsWith(EXPLORER_DEFAULT_QUERY));
        assert.deepEqual(await storedItems(page), { local: { "another-app": "kept" }, session: {} });

        const headersSelector = ".graphiql-editor-tool .graphiql-editor:not(.hidden)";
        await page.waitForSelector(`${headersSelector} .CodeMirror`, { visible: true, timeout: UI_TIMEOUT_MS });
        await typeInto(page, headersSelector, `{"Authorization":"Bearer ${user.accessToken}"}`);
        const login = `mutation { login(input: { username: "explorerstore", password: "${password}" }) { accessToken refreshToken } }`;
        await typeInto(page, ".graphiql-query-editor", login);
        assert.equal(await editorValue(page, ".graphiql-query-editor"), login);
        await page.click(".graphiql-execute-button");
        await page.waitForFunction(
          () => document.querySelector<HTMLElement>(".result-window")?.innerText.includes("refreshToken"),
          { timeout: UI_TIMEOUT_MS },
        );
        const signedIn = JSON.parse(await editorValue(page, ".result-window")).data.login;
        // GraphiQL writes its state at most every 500 ms: give it time to write, were it to.
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        const secrets = [password, user.accessToken, signedIn.accessToken, signedIn.refreshToken];
        assertHoldsNone(await storedItems(page), secrets);

        await page.reload({ waitUntil: "load", timeout: UI_TIMEOUT_MS });
        await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: UI_TIMEOUT_MS });
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        assertHoldsNone(await storedItems(page), secrets);
        // Forgotten, as the storage says: the page opens as it did the first time.
        assert.ok((await editorValue(page, ".graphiql-query-editor")).trimEnd().endsWith(EXPLORER_DEFAULT_QUERY));
        await page.waitForSelector(`${headersSelector} .CodeMirror`, { visible: true, timeout: UI_TIMEOUT_MS });
        assert.equal(await editorValue(page, headersSelector), EXPLORER_DEFAULT_HEADERS);
      } finally {
        await page.close();
      }
    });
  });
});

describe("the explorer in production", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "production" } });

  it("does not exist: /graphiql and its assets are 404 like any unknown route", async () => {
    const origin = originOf(t.url);
    for (const path of [
      EXPLORER_PATH,
      `${EXPLORER_PATH}/`,
      `${EXPLORER_PATH}/init.js`,
      ...explorerAssets().map((a) => a.url),
    ]) {
      const response = await fetch(`${origin}${path}`);
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
    assert.equal((await fetch(`${origin}/no-such-route`)).status, 404);
  });
});
