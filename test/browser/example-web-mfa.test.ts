// The example web app's multi-factor sign-in in Chromium, with the DevTools protocol's virtual
// authenticator: TOTP enrolled from the page (the code computed here from the secret it shows, the
// recovery codes shown once), the challenge step after a password (a wrong code explained, then a
// right one; a recovery code; a passkey), a reload during the challenge staying in it, a passkey
// registered and used to sign in without a username. The app is built for the API on
// http://localhost:<port> and served from http://localhost:<another port> (a secure context, the
// same site for the refresh cookie), which WEBAUTHN_ORIGINS and CORS_ORIGINS list.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import type { Page } from "puppeteer-core";

import { PASSWORD } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import {
  addVirtualAuthenticator,
  browserUnavailable,
  serveStatic,
  type StaticFile,
  type StaticServer,
  useBrowser,
  type VirtualAuthenticator,
} from "../helpers/browser.js";
import { buildExample } from "../helpers/example-web.js";
import { stepAt, TOTP_PERIOD_MS, totpForStep, wrongTotp } from "../helpers/mfa.js";

const UI_TIMEOUT_MS = 10_000;
const RECOVERY_CODE_SHAPE = /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/;

/** An authenticator app as the test holds it: the secret the page showed, and the last step it used. */
class AuthenticatorApp {
  private lastStep = -Infinity;
  constructor(readonly secret: string) {}

  /** A code the server has not accepted yet (each step's works once), waiting for the next step if need be. */
  async nextCode(): Promise<string> {
    for (;;) {
      const current = stepAt(Date.now());
      const step = Math.max(this.lastStep + 1, current - 1);
      if (step <= current + 1) {
        this.lastStep = step;
        return totpForStep(this.secret, step);
      }
      await sleep(TOTP_PERIOD_MS - (Date.now() % TOTP_PERIOD_MS) + 50);
    }
  }
}

async function textOf(tab: Page, selector: string): Promise<string> {
  const element = await tab.waitForSelector(selector, { timeout: UI_TIMEOUT_MS });
  return (await element?.evaluate((node) => node.textContent?.trim() ?? "")) ?? "";
}

function alerts(tab: Page): Promise<string[]> {
  return tab.$$eval("[role=alert]", (items) => items.map((item) => item.textContent?.trim() ?? "").filter(Boolean));
}

async function typeInto(tab: Page, selector: string, text: string): Promise<void> {
  await tab.waitForSelector(selector, { timeout: UI_TIMEOUT_MS });
  await tab.$eval(selector, (input) => ((input as HTMLInputElement).value = ""));
  await tab.type(selector, text);
}

/** The text of the page's "Sign-in security" line once the server's answer is in. */
async function mfaState(tab: Page): Promise<{ enabled: string; assurance: string; text: string }> {
  const handle = await tab.waitForSelector("#mfa-state[data-enabled]", { timeout: UI_TIMEOUT_MS });
  return handle!.evaluate((node) => ({
    enabled: (node as HTMLElement).dataset.enabled ?? "",
    assurance: (node as HTMLElement).dataset.assurance ?? "",
    text: node.textContent?.trim() ?? "",
  }));
}

describe("the example web app's multi-factor sign-in in Chromium", { skip: browserUnavailable() }, () => {
  const browser = useBrowser();
  let site: StaticServer;
  let app: TestApp;
  let origin: string;
  const files: Record<string, StaticFile> = {};
  let tab: Page;
  let authenticator: VirtualAuthenticator;
  let totp: AuthenticatorApp;
  let recoveryCodes: string[] = [];

  before(async () => {
    site = await serveStatic(files);
    origin = site.origin.replace("127.0.0.1", "localhost");
    app = await startTestApp("sqlite", {
      env: { CORS_ORIGINS: origin, WEBAUTHN_RP_ID: "localhost", WEBAUTHN_ORIGINS: origin },
    });
    Object.assign(files, await buildExample(app.url.replace("127.0.0.1", "localhost")));
    tab = await browser().newPage({ type: "window" });
    authenticator = await addVirtualAuthenticator(tab);
    const response = await tab.goto(`${origin}/`, { waitUntil: "load" });
    assert.equal(response?.status(), 200);
  });
  after(async () => {
    await app?.close();
    await app?.database.drop();
    await site?.close();
  });

  async function signInWithPassword(username: string) {
    await typeInto(tab, "#username", username);
    await typeInto(tab, "#password", PASSWORD);
    await tab.click("#sign-in");
  }

  async function signOut() {
    await tab.click("#sign-out");
    await tab.waitForSelector("#username", { timeout: UI_TIMEOUT_MS });
  }

  /** The latest session of the user: how the server says it was proven. */
  async function latestSession(username: string): Promise<{ aal: number; amr: string }> {
    const row = await app.app.database.db
      .selectFrom("sessions")
      .innerJoin("users", "users.id", "sessions.user_id")
      .select(["sessions.aal", "sessions.amr"])
      .where("users.username", "=", username)
      .orderBy("sessions.created_at", "desc")
      .executeTakeFirstOrThrow();
    return { aal: Number(row.aal), amr: row.amr };
  }

  it("enrolls TOTP: the secret and its otpauth URI shown, confirmed with a code, the ten recovery codes shown once", async () => {
    await tab.waitForSelector("#username", { timeout: UI_TIMEOUT_MS });
    await typeInto(tab, "#username", "mia");
    await typeInto(tab, "#password", PASSWORD);
    await tab.click("#sign-up");
    assert.equal(await textOf(tab, "#me"), "Signed in as mia");
    assert.equal((await mfaState(tab)).text, "Two-step sign-in is off. This session: AAL1.");

    await tab.click("#enroll-totp");
    const secret = await textOf(tab, "#totp-secret");
    const uri = new URL(await textOf(tab, "#totp-uri"));
    assert.equal(uri.protocol, "otpauth:");
    assert.equal(uri.host, "totp");
    assert.equal(uri.searchParams.get("secret"), secret);
    assert.match(secret, /^[A-Z2-7]{32}$/, "160 bits in base32");
    totp = new AuthenticatorApp(secret);

    await typeInto(tab, "#totp-code", await totp.nextCode());
    await tab.click("#confirm-totp");
    await tab.waitForSelector("#recovery-codes li", { timeout: UI_TIMEOUT_MS });
    recoveryCodes = await tab.$$eval("#recovery-codes li", (items) => items.map((item) => item.textContent ?? ""));
    assert.equal(recoveryCodes.length, 10);
    for (const code of recoveryCodes) assert.match(code, RECOVERY_CODE_SHAPE);
    assert.equal(new Set(recoveryCodes).size, 10);
    const state = await eventuallyState(tab, (s) => s.enabled === "true" && s.assurance === "AAL2");
    assert.equal(state.text, "Two-step sign-in is on (10 recovery codes left). This session: AAL2.");
    assert.deepEqual(await latestSession("mia"), { aal: 2, amr: "pwd otp" });

    await tab.click("#recovery-codes-saved");
    await tab.reload({ waitUntil: "load" });
    assert.equal(await textOf(tab, "#me"), "Signed in as mia");
    const page = await tab.evaluate(() => document.body.innerText);
    for (const code of recoveryCodes) assert.ok(!page.includes(code), "a recovery code is shown only once");
    assert.equal(await tab.$("#totp-secret"), null);
    assert.deepEqual(await alerts(tab), []);
  });

  it("asks for the second factor after the password: a reload stays in the challenge, a wrong code is explained, then the right code", async () => {
    await signOut();
    await signInWithPassword("mia");
    await tab.waitForSelector("#second-factor", { timeout: UI_TIMEOUT_MS });
    assert.equal(await tab.$("#me"), null, "not signed in before the second factor");
    assert.deepEqual(await latestSession("mia"), { aal: 1, amr: "pwd" });

    await tab.reload({ waitUntil: "load" });
    await tab.waitForSelector("#second-factor", { timeout: UI_TIMEOUT_MS });
    assert.equal(await tab.$("#me"), null, "the refresh cookie of a session that owes its factor opens no more");
    // Cancel ends that session; a new sign-in gives a fresh one (a refreshed token is not fresh,
    // and adding a passkey below needs a fresh session).
    await tab.click("#cancel-sign-in");
    await signInWithPassword("mia");
    await tab.waitForSelector("#second-factor", { timeout: UI_TIMEOUT_MS });

    await typeInto(tab, "#mfa-code", wrongTotp(totp.secret));
    await tab.click("#verify-code");
    await tab.waitForSelector("[role=alert]", { timeout: UI_TIMEOUT_MS });
    assert.deepEqual(await alerts(tab), ["is not a valid code"]);

    await typeInto(tab, "#mfa-code", await totp.nextCode());
    await tab.click("#verify-code");
    assert.equal(await textOf(tab, "#me"), "Signed in as mia");
    assert.equal((await mfaState(tab)).assurance, "AAL2");
    assert.deepEqual(await latestSession("mia"), { aal: 2, amr: "pwd otp" });
    assert.deepEqual(await alerts(tab), []);
  });

  it("registers a passkey of this browser from a fresh session", async () => {
    await typeInto(tab, "#passkey-name", "Laptop");
    await tab.click("#add-passkey");
    await tab
      .waitForFunction(() => document.querySelector("#passkeys li")?.textContent === "Laptop", {
        timeout: UI_TIMEOUT_MS,
      })
      .catch(async (error: Error) => assert.fail(`${error.message}; shown: ${JSON.stringify(await alerts(tab))}`));
    const held = await authenticator.credentials();
    assert.equal(held.length, 1);
    assert.equal(held[0]?.isResidentCredential, true);
    assert.deepEqual(await alerts(tab), []);
  });

  it("signs in with the passkey alone, without a username, at AAL2", async () => {
    await signOut();
    await tab.click("#passkey-sign-in");
    assert.equal(await textOf(tab, "#me"), "Signed in as mia");
    assert.equal((await mfaState(tab)).assurance, "AAL2");
    assert.deepEqual(await latestSession("mia"), { aal: 2, amr: "passkey" });
  });

  it("takes a passkey, then a recovery code, as the second factor after a password", async () => {
    await signOut();
    await signInWithPassword("mia");
    await tab.waitForSelector("#second-factor", { timeout: UI_TIMEOUT_MS });
    await tab.click("#use-passkey");
    assert.equal(await textOf(tab, "#me"), "Signed in as mia");
    assert.deepEqual(await latestSession("mia"), { aal: 2, amr: "pwd passkey" });

    await signOut();
    await signInWithPassword("mia");
    await typeInto(tab, "#mfa-code", recoveryCodes[0]!);
    await tab.click("#verify-code");
    assert.equal(await textOf(tab, "#me"), "Signed in as mia");
    const state = await eventuallyState(tab, (s) => s.text.includes("9 recovery codes left"));
    assert.equal(state.text, "Two-step sign-in is on (9 recovery codes left). This session: AAL2.");
    assert.deepEqual(await latestSession("mia"), { aal: 2, amr: "pwd recovery" });
    assert.deepEqual(await alerts(tab), []);
  });
});

/** The security line once `check` holds (the page refetches it after a change). */
async function eventuallyState(
  tab: Page,
  check: (state: { enabled: string; assurance: string; text: string }) => boolean,
): Promise<{ enabled: string; assurance: string; text: string }> {
  const until = Date.now() + UI_TIMEOUT_MS;
  for (;;) {
    const state = await mfaState(tab);
    if (check(state) || Date.now() > until) return state;
    await sleep(100);
  }
}
