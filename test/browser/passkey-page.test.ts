// Passkeys end to end in Chromium, with its virtual authenticator (the DevTools protocol's
// WebAuthn domain), against the development page this server serves at /passkeys: a passkey
// registered from a password session, then used to sign in without a username and by username
// (AAL2, amr passkey), and as the second factor of a password session that owes it; an
// authenticator whose user verification fails signs nobody in (the options require it). The page is on
// http://localhost:<port> (a secure context) and PUBLIC_URL names that origin, so WEBAUTHN_RP_ID and
// WEBAUTHN_ORIGINS default to it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Page } from "puppeteer-core";

import { PASSKEY_PAGE_CSP, PASSKEY_PAGE_PATH } from "../../src/http/passkey-page.js";
import { PASSKEY_PAGE_MESSAGES } from "../../src/http/passkey-page-script.js";
import { registerUser } from "../helpers/api.js";
import { startTestApp, type TestApp, useTestApp } from "../helpers/app.js";
import {
  addVirtualAuthenticator,
  browserUnavailable,
  freePort,
  useBrowser,
  type VirtualAuthenticator,
} from "../helpers/browser.js";
import { DATABASES } from "../helpers/databases.js";

const UI_TIMEOUT_MS = 10_000;

/** What the page's status line says, and the data it keeps on it. */
interface Shown {
  text: string;
  assurance?: string;
  mfaRequired?: string;
  amr?: string;
  user?: string;
}

async function status(page: Page): Promise<Shown> {
  return page.$eval("#status", (element) => {
    const { assurance, mfaRequired, amr, user } = (element as HTMLElement).dataset;
    return { text: element.textContent ?? "", assurance, mfaRequired, amr, user };
  });
}

/** Clicks a button and waits until the page has handled it (the button is enabled again). */
async function press(page: Page, id: string): Promise<void> {
  await page.click(`#${id}`);
  await page.waitForSelector(`#${id}:not([disabled])`, { timeout: UI_TIMEOUT_MS });
}

async function outcome(page: Page): Promise<{ kind: string; text: string } | undefined> {
  return page.$eval("#outcome", (element) =>
    (element as HTMLElement).hidden
      ? undefined
      : { kind: (element as HTMLElement).dataset.kind ?? "", text: element.textContent ?? "" },
  );
}

/** How many sessions of the user have not ended. */
async function liveSessions(app: TestApp, userId: string): Promise<number> {
  const rows = await app.app.database.db
    .selectFrom("sessions")
    .select("id")
    .where("user_id", "=", userId)
    .where("revoked_at", "is", null)
    .execute();
  return rows.length;
}

async function fill(page: Page, id: string, value: string): Promise<void> {
  await page.$eval(`#${id}`, (input) => ((input as HTMLInputElement).value = ""));
  await page.type(`#${id}`, value);
}

for (const kind of DATABASES) {
  describe(`passkeys on the development page /passkeys in Chromium (${kind})`, { skip: browserUnavailable() }, () => {
    const browser = useBrowser();

    it("serves the page with its CSP, and @simplewebauthn/browser's bundle from this origin", async () => {
      const port = await freePort();
      const app = await startTestApp(kind, { port, env: { PUBLIC_URL: `http://localhost:${port}` } });
      try {
        const response = await fetch(`http://127.0.0.1:${port}${PASSKEY_PAGE_PATH}`);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-security-policy"), PASSKEY_PAGE_CSP);
        assert.equal(response.headers.get("cache-control"), "no-store");
        const html = await response.text();
        const library = /src="(\/passkeys\/simplewebauthn-browser@[\d.]+\.js)"/.exec(html)?.[1];
        assert.ok(library, html);
        const bundle = await fetch(`http://127.0.0.1:${port}${library}`);
        assert.equal(bundle.status, 200);
        assert.match(await bundle.text(), /SimpleWebAuthnBrowser/);
      } finally {
        await app.close();
        await app.database.drop();
      }
    });

    it("registers a passkey, signs in with it (discoverable and by username) at AAL2, and proves it as a second factor", async () => {
      const port = await freePort();
      const origin = `http://localhost:${port}`;
      const app: TestApp = await startTestApp(kind, { port, env: { PUBLIC_URL: origin } });
      const page = await browser().newPage({ type: "window" });
      try {
        const problems: string[] = [];
        page.on("pageerror", (error) => problems.push(String(error)));
        page.on("console", (message) => {
          if (message.type() === "error") problems.push(message.text());
        });
        const authenticator: VirtualAuthenticator = await addVirtualAuthenticator(page);
        const pat = await registerUser(app, "pat");
        const response = await page.goto(`${origin}${PASSKEY_PAGE_PATH}`, { waitUntil: "load" });
        assert.equal(response?.status(), 200);
        await page.waitForSelector("body[data-ready=true]", { timeout: UI_TIMEOUT_MS });
        assert.equal((await status(page)).text, PASSKEY_PAGE_MESSAGES.signedOut);

        // A password session of a user with no second factor: AAL1, nothing owed.
        await fill(page, "username", "pat");
        await fill(page, "password", "correct horse battery");
        await press(page, "password-sign-in");
        assert.deepEqual(await status(page), {
          text: "Signed in as pat (AAL1, pwd).",
          assurance: "AAL1",
          mfaRequired: "false",
          amr: "pwd",
          user: "pat",
        });

        await fill(page, "passkey-name", "Laptop");
        await press(page, "add-passkey");
        assert.deepEqual(await outcome(page), { kind: "done", text: "Passkey “Laptop” added." });
        const held = await authenticator.credentials();
        assert.equal(held.length, 1);
        assert.equal(held[0]?.isResidentCredential, true, "a discoverable credential (resident key)");
        const rows = await app.app.database.db
          .selectFrom("passkeys")
          .select(["user_id", "name", "credential_id"])
          .execute();
        assert.deepEqual(
          rows.map((row) => [row.user_id, row.name, Buffer.from(row.credential_id, "base64url").toString("base64")]),
          [[pat.userId, "Laptop", held[0]?.credentialId]],
        );

        // Discoverable: no username typed, the authenticator offers its passkey for this site.
        await press(page, "sign-out");
        await fill(page, "username", "");
        await press(page, "passkey-sign-in");
        assert.equal(await outcome(page), undefined);
        assert.deepEqual(await status(page), {
          text: "Signed in as pat (AAL2, passkey).",
          assurance: "AAL2",
          mfaRequired: "false",
          amr: "passkey",
          user: "pat",
        });

        await press(page, "sign-out");
        await fill(page, "username", "pat");
        await press(page, "passkey-sign-in-by-name");
        assert.equal((await status(page)).text, "Signed in as pat (AAL2, passkey).");
        const counts = (await authenticator.credentials()).map((c) => c.signCount);
        assert.deepEqual(counts, [3], "one signature at registration, one per sign-in");

        // The passkey is now pat's second factor: a password alone owes it.
        await press(page, "sign-out");
        await press(page, "password-sign-in");
        assert.deepEqual(await status(page), {
          text: PASSKEY_PAGE_MESSAGES.mfaRequired,
          assurance: "AAL1",
          mfaRequired: "true",
          amr: "pwd",
        });
        await press(page, "verify-with-passkey");
        assert.equal(await outcome(page), undefined);
        assert.deepEqual(await status(page), {
          text: "Signed in as pat (AAL2, pwd passkey).",
          assurance: "AAL2",
          mfaRequired: "false",
          amr: "pwd passkey",
          user: "pat",
        });

        // An authenticator whose user verification fails: the sign-in's options require it, so the
        // browser makes no assertion and no session starts.
        await press(page, "sign-out");
        await authenticator.setUserVerified(false);
        const sessionsBefore = await liveSessions(app, pat.userId);
        await press(page, "passkey-sign-in");
        assert.deepEqual(await outcome(page), {
          kind: "error",
          text: `${PASSKEY_PAGE_MESSAGES.cancelled} (NotAllowedError)`,
        });
        assert.equal((await status(page)).text, PASSKEY_PAGE_MESSAGES.signedOut);
        assert.equal(await liveSessions(app, pat.userId), sessionsBefore);
        assert.deepEqual(
          problems.filter((p) => !/status of 40\d/.test(p)),
          [],
        );
      } finally {
        await page.close();
        await app.close();
        await app.database.drop();
      }
    });
  });
}

describe("the passkey page in production", () => {
  const t = useTestApp("sqlite", { env: { NODE_ENV: "production" } });

  it("does not exist: /passkeys and its files are 404 like any unknown route", async () => {
    const origin = new URL(t.url).origin;
    for (const path of [PASSKEY_PAGE_PATH, `${PASSKEY_PAGE_PATH}/page.js`, `${PASSKEY_PAGE_PATH}/page.css`]) {
      const response = await fetch(`${origin}${path}`);
      assert.equal(response.status, 404, path);
      await response.body?.cancel();
    }
  });
});
