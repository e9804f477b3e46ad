// The page a browser gets at GET /graphql: Apollo's Sandbox page in development, which links the
// offline explorer (/graphiql) for when Apollo's CDN cannot load; in production no page at all.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { EXPLORER_PATH } from "../../src/http/explorer.js";
import { useTestApp } from "../helpers/app.js";
import { browserUnavailable, recordRequests, useBrowser } from "../helpers/browser.js";

const UI_TIMEOUT_MS = 15_000;

/** GET /graphql as a browser's address bar asks for it. */
function openInBrowser(url: string): Promise<Response> {
  return fetch(url, { headers: { accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" } });
}

describe("the landing page in development", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "development" } });

  it("is Apollo's embedded Sandbox, with a link to the explorer that needs no CDN", async () => {
    const response = await openInBrowser(t.url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
    const html = await response.text();
    assert.match(html, /https:\/\/embeddable-sandbox\.cdn\.apollographql\.com\//, "Sandbox is still embedded");
    assert.match(html, /Apollo Sandbox cannot be loaded/, "Apollo's own offline text is still there");
    assert.ok(html.includes(`<a href="${EXPLORER_PATH}">${EXPLORER_PATH}</a>`), html);
    // Before the end of the body, once: inside the page, not after it.
    assert.equal(html.split(`href="${EXPLORER_PATH}"`).length, 2);
    assert.ok(html.indexOf(`href="${EXPLORER_PATH}"`) < html.lastIndexOf("</body>"));
    // Apollo draws a new CSP nonce per request: the page is still rendered for each.
    const nonce = (text: string) => /'nonce-([0-9a-f]+)'/.exec(text)?.[1];
    assert.notEqual(nonce(html), nonce(await (await openInBrowser(t.url)).text()));
  });

  describe("in a real browser, offline", { skip: browserUnavailable() }, () => {
    const browser = useBrowser();

    it("shows the link when Apollo's CDN cannot load, and the link opens GraphiQL", async () => {
      const origin = new URL(t.url).origin;
      const page = await browser().newPage();
      try {
        await page.setViewport({ width: 1280, height: 800 });
        // Every request off the app's origin is refused, as it is without a network.
        const requests = await recordRequests(page, origin);
        await page.goto(t.url, { waitUntil: "load", timeout: UI_TIMEOUT_MS });
        assert.ok(
          requests.offOrigin(origin).some((url) => url.startsWith("https://embeddable-sandbox.cdn.apollographql.com/")),
          requests.urls.join("\n"),
        );
        const link = `a[href="${EXPLORER_PATH}"]`;
        // Visible once faded in, and nothing on top of it (the point under it is the link itself).
        await page.waitForFunction(
          (selector) => {
            const anchor = document.querySelector<HTMLAnchorElement>(selector);
            const fallback = anchor?.closest<HTMLElement>(".fallback");
            if (!anchor || !fallback || getComputedStyle(fallback).opacity !== "1") return false;
            const box = anchor.getBoundingClientRect();
            return document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2) === anchor;
          },
          { timeout: UI_TIMEOUT_MS },
          link,
        );
        const text = await page.$eval("body", (body) => body.innerText);
        assert.match(text, /GraphiQL/);
        await Promise.all([page.waitForNavigation({ timeout: UI_TIMEOUT_MS }), page.click(link)]);
        assert.equal(page.url(), `${origin}${EXPLORER_PATH}`);
        await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: UI_TIMEOUT_MS });
      } finally {
        await page.close();
      }
    });
  });
});

describe("the landing page in production", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "production" } });

  it("does not exist: a browser's GET is refused as before, with no link to an explorer", async () => {
    const response = await openInBrowser(t.url);
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("content-type"), "application/json; charset=utf-8");
    const body = (await response.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
    assert.equal(body.errors[0]!.extensions.code, "BAD_REQUEST");
    assert.match(body.errors[0]!.message, /Cross-Site Request Forgery/);
    assert.doesNotMatch(JSON.stringify(body), /graphiql/i);
  });
});
