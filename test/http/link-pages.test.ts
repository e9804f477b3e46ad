// The pages behind the mailed links over plain HTTP: served in production as in development, as
// fixed HTML under their own CSP, never cached, with the app's other security headers, and nothing
// of the request (query string, fragment-like text) in them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  LINK_PAGE_SCRIPT_PATH,
  LINK_PAGE_STYLE_PATH,
  LINK_PAGES_CSP,
  RESET_PASSWORD_PATH,
  VERIFY_EMAIL_PATH,
} from "../../src/http/link-pages.js";
import { useTestApp } from "../helpers/app.js";
import { originOf, send } from "../helpers/http.js";

const PAGES = [
  { path: RESET_PASSWORD_PATH, title: "Choose a new password", button: "Change my password" },
  { path: VERIFY_EMAIL_PATH, title: "Verify your e-mail address", button: "Verify my address" },
] as const;

for (const mode of ["production", "development"] as const) {
  describe(`the link pages in ${mode}`, () => {
    const t = useTestApp("sqlite", { env: { NODE_ENV: mode } });

    it("answer 200 text/html under their own CSP, no-store, with the app's other security headers", async () => {
      for (const { path, title, button } of PAGES) {
        const response = await send(`${originOf(t.url)}${path}`, { headers: { accept: "text/html" } });
        assert.equal(response.status, 200, path);
        assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8", path);
        assert.equal(response.headers.get("content-security-policy"), LINK_PAGES_CSP, path);
        assert.equal(response.headers.get("cache-control"), "no-store", path);
        assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
        assert.equal(response.headers.get("x-frame-options"), "DENY", path);
        assert.equal(response.headers.get("referrer-policy"), "no-referrer", path);
        assert.match(response.headers.get("x-request-id") ?? "", /./, path);
        assert.match(response.text, /^<!doctype html>\n<html lang="en">/, path);
        assert.ok(response.text.includes(`<title>${title}</title>`), path);
        assert.ok(response.text.includes(`<button type="submit">${button}</button>`), path);
        // No inline script or style for the CSP to allow: the page's code is the same-origin file.
        assert.doesNotMatch(response.text, /<script>|<script(?![^>]*\bsrc=)[^>]*>|<style|style=|\bon[a-z]+=/i, path);
        assert.ok(response.text.includes(`<script src="${LINK_PAGE_SCRIPT_PATH.slice(1)}" defer></script>`), path);
      }
    });

    it("are the same bytes whatever the query string says, which never reaches the page", async () => {
      for (const { path } of PAGES) {
        const plain = await send(`${originOf(t.url)}${path}`);
        const probe = "<script>alert(1)</script>";
        const withQuery = await send(
          `${originOf(t.url)}${path}?token=${encodeURIComponent(probe)}&next=https://evil.example/`,
        );
        assert.equal(withQuery.status, 200);
        assert.equal(withQuery.text, plain.text, path);
        assert.ok(!withQuery.text.includes("evil.example"), path);
      }
    });

    it("answer HEAD like GET, without a body", async () => {
      for (const { path } of PAGES) {
        const response = await send(`${originOf(t.url)}${path}`, { method: "HEAD" });
        assert.equal(response.status, 200, path);
        assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8", path);
        assert.equal(response.headers.get("content-security-policy"), LINK_PAGES_CSP, path);
        assert.equal(response.text, "", path);
      }
    });

    it("serve their script and style sheet from the app, with their content types and no-store", async () => {
      const script = await send(`${originOf(t.url)}${LINK_PAGE_SCRIPT_PATH}`);
      assert.equal(script.status, 200);
      assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert.equal(script.headers.get("cache-control"), "no-store");
      assert.equal(script.headers.get("x-content-type-options"), "nosniff");
      assert.match(script.text, /^"use strict";/);
      // It sends nothing to any other origin: its one endpoint is the app's own /graphql, relatively.
      assert.doesNotMatch(script.text, /https?:\/\//);
      assert.ok(script.text.includes(`new URL("graphql", window.location.href)`));

      const style = await send(`${originOf(t.url)}${LINK_PAGE_STYLE_PATH}`);
      assert.equal(style.status, 200);
      assert.equal(style.headers.get("content-type"), "text/css; charset=utf-8");
      assert.equal(style.headers.get("cache-control"), "no-store");
      assert.doesNotMatch(style.text, /@import|url\(/);
    });

    it("are served at their paths only: a trailing slash or another method is not a page", async () => {
      assert.equal((await send(`${originOf(t.url)}${RESET_PASSWORD_PATH}/`)).status, 404);
      assert.equal((await send(`${originOf(t.url)}/email-links/other.js`)).status, 404);
      const post = await send(`${originOf(t.url)}${VERIFY_EMAIL_PATH}`, { method: "POST", body: "token=x" });
      assert.equal(post.status, 404);
    });
  });
}
