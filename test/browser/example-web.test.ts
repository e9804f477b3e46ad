// The example web app (examples/web/: React, Vite, Apollo Client 4, graphql-ws, cookie mode), built
// with Vite against a real server whose access tokens last 5 seconds, served from another loopback
// port (listed in CORS_ORIGINS) and driven in two tabs of one Chromium profile: sign-up, the second
// tab signed in by the cookie alone, posts a page at a time, a live feed that must stay whole for ten
// expiries and resume after its socket closes, sign-out reaching the other tab within a second, and a
// message for each refusal.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

import type { Page } from "puppeteer-core";

import { LINK_PAGE_MESSAGES } from "../../src/http/link-page-script.js";
import { RESET_PASSWORD_PATH, VERIFY_EMAIL_PATH } from "../../src/http/link-pages.js";
import { login, PASSWORD, registerUser } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { browserUnavailable, serveStatic, type StaticFile, type StaticServer, useBrowser } from "../helpers/browser.js";
import { buildExample, EXAMPLE, ROOT } from "../helpers/example-web.js";
import { mailedLink, onOrigin } from "../helpers/mailed-links.js";

const run = promisify(execFile);

const TOKEN_SECONDS = 5;
/** How long the feed is watched: more than ten access-token lifetimes. */
const FEED_PHASE_MS = 11 * TOKEN_SECONDS * 1000 + 1000;
/** One post every this often during that time; every tenth from a tab's form, the rest through the API. */
const POST_EVERY_MS = 400;
/** The longest a sign-out may take to show in another tab. */
const SIGN_OUT_LIMIT_MS = 1000;
const UI_TIMEOUT_MS = 10_000;

/** The user who signs up with an address, verifies it and resets her password. */
const ERIN = { username: "erin", email: "erin@example.com", newPassword: "erin's new passphrase" };

describe("the example web app's sources", () => {
  it("type-check with examples/web/tsconfig.json", async () => {
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    await run(process.execPath, [tsc, "-p", join(EXAMPLE, "tsconfig.json")]).catch(
      (error: Error & { stdout?: string }) => {
        assert.fail(`tsc -p examples/web: ${error.stdout ?? error.message}`);
      },
    );
  });

  it("hold the types codegen makes from schema/schema.graphql", async () => {
    await run(process.execPath, [join(EXAMPLE, "codegen.mjs"), "--check"]).catch(
      (error: Error & { stderr?: string; stdout?: string }) => {
        assert.fail(`node examples/web/codegen.mjs --check: ${error.stderr ?? ""}${error.stdout ?? error.message}`);
      },
    );
  });
});

/** The ids in a tab's live feed, oldest first (the page shows the newest on top). */
function feedIds(tab: Page): Promise<string[]> {
  return tab.$$eval("#feed li", (items) => items.map((item) => (item as HTMLElement).dataset.id ?? "").reverse());
}

/** The text of every non-empty role="alert" element: what the page shows as an error. */
function alerts(tab: Page): Promise<string[]> {
  return tab.$$eval("[role=alert]", (items) => items.map((item) => item.textContent?.trim() ?? "").filter(Boolean));
}

async function textOf(tab: Page, selector: string): Promise<string> {
  const element = await tab.waitForSelector(selector, { timeout: UI_TIMEOUT_MS });
  return (await element?.evaluate((node) => node.textContent?.trim() ?? "")) ?? "";
}

/** Fills the sign-in form and presses Sign in or Sign up. */
async function submitSignIn(tab: Page, username: string, password: string, button: "#sign-in" | "#sign-up") {
  await tab.waitForSelector("#username", { timeout: UI_TIMEOUT_MS });
  await tab.$eval("#username", (input) => ((input as HTMLInputElement).value = ""));
  await tab.type("#username", username);
  await tab.$eval("#password", (input) => ((input as HTMLInputElement).value = ""));
  await tab.type("#password", password);
  await tab.click(button);
}

/** Waits until `check` holds, polling every 50 ms; false when `timeoutMs` passes first. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(50);
  }
}

/** Sockets a tab opened and renewal pings it sent, read from Chromium's own network events. */
interface SocketProbe {
  opened: number;
  renewals: number;
}

async function probeSockets(tab: Page): Promise<SocketProbe> {
  const probe: SocketProbe = { opened: 0, renewals: 0 };
  const cdp = await tab.createCDPSession();
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketCreated", () => probe.opened++);
  cdp.on("Network.webSocketFrameSent", ({ response }) => {
    const message = JSON.parse(response.payloadData) as { type?: string; payload?: { authorization?: string } };
    if (message.type === "ping" && message.payload?.authorization) probe.renewals++;
  });
  return probe;
}

describe("the example web app in two tabs, against 5-second access tokens", { skip: browserUnavailable() }, () => {
  const browser = useBrowser();
  let site: StaticServer;
  let app: TestApp;
  /** The same files as `site`, from http://localhost:<port>: another site than the API on 127.0.0.1. */
  let otherSite: string;
  const files: Record<string, StaticFile> = {};
  let tabA: Page;
  let tabB: Page;
  /** An API token of another user, who writes posts through the API. */
  let writer: string;

  before(async () => {
    site = await serveStatic(files);
    otherSite = site.origin.replace("127.0.0.1", "localhost");
    app = await startTestApp("sqlite", {
      env: { JWT_ACCESS_TOKEN_EXPIRES: `${TOKEN_SECONDS}s`, CORS_ORIGINS: `${site.origin},${otherSite}` },
    });
    Object.assign(files, await buildExample(app.url));
    writer = await apiTokenOf(app, "writer");
  });
  after(async () => {
    await app?.close();
    await app?.database.drop();
    await site?.close();
  });

  /**
   * Opens the app in a window of its own (one profile: shared cookies, storage and BroadcastChannel).
   * A tab behind another gets no frames in headless Chromium, so typing into it would never return.
   */
  async function openTab(origin = site.origin, prepare?: (tab: Page) => Promise<unknown>): Promise<Page> {
    const tab = await browser().newPage({ type: "window" });
    await prepare?.(tab);
    const response = await tab.goto(`${origin}/`, { waitUntil: "load" });
    assert.equal(response?.status(), 200);
    await tab.waitForSelector("#username, #me", { timeout: UI_TIMEOUT_MS });
    return tab;
  }

  async function createPost(title: string): Promise<string> {
    const response = await app.gql(`mutation($input: CreatePostInput!) { createPost(input: $input) { id } }`, {
      variables: { input: { title, body: `${title}, through the API` } },
      token: writer,
    });
    const id = response.body.data?.createPost?.id;
    assert.ok(id, JSON.stringify(response.body));
    return id;
  }

  it("says why a sign-in was refused: wrong credentials, then too many attempts with the wait", async () => {
    tabA = await openTab();
    await registerUser(app, "dave");
    const messages: string[] = [];
    for (let i = 0; i < 6; i++) {
      await submitSignIn(tabA, "dave", "not the password", "#sign-in");
      await tabA.waitForSelector("#sign-in:not([disabled])", { timeout: UI_TIMEOUT_MS });
      messages.push((await alerts(tabA)).join(" | "));
    }
    assert.deepEqual(messages.slice(0, 5), Array(5).fill("Wrong username or password."));
    assert.match(messages[5] ?? "", /^Too many attempts\. Try again in \d+ s\.$/);
  });

  it("signs up in cookie mode: me answers, and the refresh token is an HttpOnly cookie the page cannot read", async () => {
    await submitSignIn(tabA, "alice", PASSWORD, "#sign-up");
    assert.equal(await textOf(tabA, "#me"), "Signed in as alice");
    assert.equal(await tabA.evaluate(() => document.cookie), "");
    const cookie = (await browser().cookies()).find((c) => c.name === "refresh-token");
    assert.ok(cookie, "the server set the refresh-token cookie");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.deepEqual(await alerts(tabA), []);
  });

  it("signs a second tab of the same profile in by the cookie alone", async () => {
    tabB = await openTab();
    assert.equal(await textOf(tabB, "#me"), "Signed in as alice");
  });

  it("shows a post from one tab's form and posts from the API in both tabs' live feeds, in order (within one token lifetime)", async () => {
    for (const tab of [tabA, tabB]) {
      assert.ok(await eventually(async () => (await textOf(tab, "#feed-status")) === "live", UI_TIMEOUT_MS));
    }
    await sleep(300); // the subscribe message follows the connection's acknowledgement
    await tabA.type("#title", "From tab A");
    await tabA.type("#body", "Typed into the form");
    await tabA.click("#publish");
    assert.ok(await eventually(async () => (await feedIds(tabA)).length === 1, UI_TIMEOUT_MS));
    const created = [(await feedIds(tabA))[0], await createPost("API 1"), await createPost("API 2")];
    for (const [name, tab] of [
      ["A", tabA],
      ["B", tabB],
    ] as const) {
      await eventually(async () => (await feedIds(tab)).length >= 3, 3000);
      assert.deepEqual(await feedIds(tab), created, `tab ${name}'s live feed`);
      assert.deepEqual(await alerts(tab), [], `tab ${name} shows no error`);
    }
  });

  it("pages through the posts with first and after, newest first", async () => {
    for (let i = 0; i < 12; i++) await createPost(`Page post ${i}`);
    const expected = (await allPostIds()).reverse();
    await tabA.reload({ waitUntil: "load" });
    await tabA.waitForSelector("#me", { timeout: UI_TIMEOUT_MS });
    await tabA.waitForSelector("#posts li", { timeout: UI_TIMEOUT_MS });
    const pages: number[] = [];
    for (;;) {
      const shown = await tabA.$$eval("#posts li", (items) => items.length);
      pages.push(shown);
      if (!(await tabA.$("#older"))) break;
      await tabA.click("#older");
      await eventually(
        async () => (await tabA.$$eval("#posts li", (items) => items.length)) > shown || !(await tabA.$("#older")),
        UI_TIMEOUT_MS,
      );
    }
    const ids = await tabA.$$eval("#posts li", (items) => items.map((item) => (item as HTMLElement).dataset.id));
    assert.deepEqual(ids, expected);
    assert.deepEqual(pages, [5, 10, 15, 15], "pages of five, then an empty page that hides the button");
  });

  it("keeps both tabs' live feeds whole for ten expiries: every post once and in order, no reconnect, no error shown", async (t) => {
    const before = new Set(await allPostIds());
    const tabs = [tabA, tabB] as const;
    const probes = [await probeSockets(tabA), await probeSockets(tabB)];
    const watch = watchTabs(tabs);
    const created = await createPostsSteadily(tabs);
    await sleep(500); // a form's post still on its way
    const expected = (await allPostIds()).filter((id) => !before.has(id));
    const caughtUp = await eventually(async () => {
      const feeds = await Promise.all(tabs.map(feedIds));
      return feeds.every((feed) => expected.every((id) => feed.includes(id)));
    }, 5000);
    const { firstSeen, shownErrors } = await watch.stop();

    const report = [
      `posts created: ${expected.length} in ${FEED_PHASE_MS / 1000} s (${created.fromForms} from the tabs' forms)`,
    ];
    const feeds: string[][] = [];
    for (const [i, tab] of tabs.entries()) {
      const seen = (await feedIds(tab)).filter((id) => !before.has(id));
      feeds.push(seen);
      const missing = expected.filter((id) => !seen.includes(id)).length;
      const delays = [...created.at].map(([id, at]) => (firstSeen[i]?.get(id) ?? Infinity) - at).sort((a, b) => a - b);
      const percentile = (p: number) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))];
      report.push(
        `tab ${"AB"[i]}: seen ${seen.length}, missing ${missing}, duplicates ${seen.length - new Set(seen).size}, ` +
          `sockets opened ${probes[i]?.opened}, renewal pings ${probes[i]?.renewals}; shown after its createPost ` +
          `answered: median ${percentile(0.5)} ms, p95 ${percentile(0.95)} ms, slowest ${percentile(1)} ms (polled every 100 ms)`,
      );
    }
    report.push(`errors shown: ${shownErrors.size === 0 ? "none" : [...shownErrors].join(" | ")}`);
    for (const line of report) t.diagnostic(line);

    assert.equal(expected.length, created.at.size + created.fromForms, "every post the test created was stored");
    assert.deepEqual([...shownErrors], [], "no tab showed an error");
    assert.ok(caughtUp, "both feeds caught up");
    for (const [i, seen] of feeds.entries()) assert.deepEqual(seen, expected, `tab ${"AB"[i]}'s feed`);
    for (const probe of probes) {
      assert.equal(probe.opened, 0, "the socket was renewed in-band, never reopened");
      assert.ok(probe.renewals >= 10, `${probe.renewals} renewal pings`);
    }
  });

  /** Creates a post every POST_EVERY_MS for FEED_PHASE_MS: every tenth from a tab's form (alternately), the rest through the API. */
  async function createPostsSteadily(tabs: readonly Page[]) {
    const at = new Map<string, number>();
    let fromForms = 0;
    const started = Date.now();
    for (let i = 0; Date.now() - started < FEED_PHASE_MS; i++) {
      const tick = Date.now();
      const tab = tabs[fromForms % tabs.length];
      if (i % 10 === 9 && tab) {
        await tab.type("#title", `Form post ${i}`);
        await tab.type("#body", "Typed into the form");
        await tab.click("#publish");
        fromForms++;
      } else {
        const id = await createPost(`Feed post ${i}`);
        at.set(id, Date.now());
      }
      await sleep(Math.max(0, POST_EVERY_MS - (Date.now() - tick)));
    }
    return { at, fromForms };
  }

  it("resumes a feed whose socket closed: the posts created while it was down arrive once and in order, then the live ones", async (t) => {
    // A tab whose page can close its sockets with 4499, as graphql-ws's terminate() closes one that
    // froze; the feed must subscribe again, after the last post it showed. (Not with 1000: graphql-ws
    // retries that close by itself, whatever retryAttempts says, re-sending the first subscribe.)
    const tab = await openTab(site.origin, (page) =>
      page.evaluateOnNewDocument(() => {
        const Native = WebSocket;
        const open: WebSocket[] = [];
        (window as unknown as { closeSockets: () => void }).closeSockets = () => {
          for (const socket of open.splice(0)) socket.close(4499, "Terminated");
        };
        window.WebSocket = class extends Native {
          constructor(...args: ConstructorParameters<typeof WebSocket>) {
            super(...args);
            open.push(this);
          }
        };
      }),
    );
    try {
      assert.equal(await textOf(tab, "#me"), "Signed in as alice");
      assert.ok(await eventually(async () => (await textOf(tab, "#feed-status")) === "live", UI_TIMEOUT_MS));
      await sleep(300); // the subscribe message follows the connection's acknowledgement
      const probe = await probeSockets(tab);
      const created = [await createPost("Before the close")];
      assert.ok(await eventually(async () => (await feedIds(tab)).length === 1, UI_TIMEOUT_MS));
      await tab.evaluate(() => (window as unknown as { closeSockets: () => void }).closeSockets());
      const closedAt = Date.now();
      // The feed waits a quarter of a second before it subscribes again: these are missed live.
      for (let i = 0; i < 5; i++) created.push(await createPost(`While down ${i}`));
      const missedWithin = Date.now() - closedAt;
      const caughtUp = await eventually(async () => (await feedIds(tab)).length >= created.length, UI_TIMEOUT_MS);
      created.push(await createPost("After the resume"));
      await eventually(async () => (await feedIds(tab)).length >= created.length, 3000);
      await sleep(300); // a duplicate would come now
      t.diagnostic(`5 posts created within ${missedWithin} ms of the close; sockets opened again: ${probe.opened}`);
      assert.ok(caughtUp, "the missed posts arrived");
      assert.ok(probe.opened >= 1, "the feed connected again");
      assert.deepEqual(await feedIds(tab), created);
      assert.deepEqual(await alerts(tab), []);
    } finally {
      await tab.close();
    }
  });

  it("shows the other tab signed out within a second of a sign-out, and the cookie is gone", async (t) => {
    for (const tab of [tabA, tabB]) await tab.waitForSelector("#me", { timeout: UI_TIMEOUT_MS });
    const clickedAt = await tabA.evaluate(() => {
      document.querySelector<HTMLButtonElement>("#sign-out")?.click();
      return Date.now();
    });
    const shown = await Promise.all([tabA, tabB].map(signedOutAt));
    const delay = (shown[1]?.at ?? Infinity) - clickedAt;
    t.diagnostic(`sign-out reached the other tab ${delay} ms after the click`);
    assert.ok(delay <= SIGN_OUT_LIMIT_MS, `${delay} ms`);
    assert.deepEqual(
      shown.map((s) => [s.reason, s.text]),
      [
        ["SIGNED_OUT", "You signed out."],
        ["SIGNED_OUT", "You signed out."],
      ],
    );
    const cookieGone = await eventually(
      async () => !(await browser().cookies()).some((c) => c.name === "refresh-token" && c.value !== ""),
      UI_TIMEOUT_MS,
    );
    assert.ok(cookieGone, "logout cleared the refresh-token cookie");
  });

  it("signs both tabs out within a second when the session ends elsewhere, through the socket's SESSION_ENDED", async (t) => {
    await submitSignIn(tabA, "alice", PASSWORD, "#sign-in");
    for (const tab of [tabA, tabB]) {
      assert.equal(await textOf(tab, "#me"), "Signed in as alice");
      const live = await eventually(async () => (await textOf(tab, "#feed-status")) === "live", UI_TIMEOUT_MS);
      assert.ok(live, "the feed's socket is open, to be closed");
    }
    const elsewhere = await login(app, "alice");
    const sentAt = Date.now();
    const response = await app.gql(`mutation { logout(scope: ALL) }`, { token: elsewhere.accessToken });
    assert.equal(response.body.data?.logout, true);
    const shown = await Promise.all([tabA, tabB].map(signedOutAt));
    const delays = shown.map((s) => s.at - sentAt);
    t.diagnostic(
      `logout(scope: ALL) elsewhere: tabs signed out after ${delays.join(" and ")} ms, reasons ${shown.map((s) => s.reason).join(", ")}`,
    );
    assert.deepEqual(
      shown.map((s) => s.reason),
      ["SESSION_ENDED", "SESSION_ENDED"],
    );
    for (const delay of delays) assert.ok(delay <= SIGN_OUT_LIMIT_MS, `${delay} ms`);
  });

  it("explains a refresh cookie that never arrived: a page on localhost calling the API on 127.0.0.1", async () => {
    const tab = await openTab(otherSite);
    try {
      await submitSignIn(tab, "carol", PASSWORD, "#sign-up");
      // The access token came in the body; the cookie was refused as a cross-site one.
      assert.equal(await textOf(tab, "#me"), "Signed in as carol");
      const shown = await signedOutAt(tab);
      assert.equal(shown.reason, "REFRESH_TOKEN_MISSING", shown.text);
      assert.match(shown.text, /cookie did not reach the server/);
    } finally {
      await tab.close();
    }
  });

  it("signs up with an address, which a link from the mail verifies; sends the verification again", async () => {
    const tab = await openTab();
    try {
      await tab.type("#email", ERIN.email);
      await submitSignIn(tab, ERIN.username, PASSWORD, "#sign-up");
      assert.equal(await textOf(tab, "#me"), `Signed in as ${ERIN.username}`);
      assert.equal(await tab.$eval("#email-state", (element) => (element as HTMLElement).dataset.verified), "false");
      assert.match(await textOf(tab, "#email-state"), new RegExp(`^${ERIN.email} \\(not verified`));
      const first = await mailedLink(app.app.database.db, ERIN.email, VERIFY_EMAIL_PATH);

      await tab.click("#resend-verification");
      assert.equal(await textOf(tab, "#verification-sent"), `A new link is on its way to ${ERIN.email}.`);
      const second = await mailedLink(app.app.database.db, ERIN.email, VERIFY_EMAIL_PATH, [first]);
      assert.notEqual(second, first);

      const page = await openLink(second);
      try {
        await page.click("button[type=submit]");
        assert.equal(await textOf(page, "#outcome:not([hidden])"), LINK_PAGE_MESSAGES.verifyDone);
      } finally {
        await page.close();
      }
      await tab.reload({ waitUntil: "load" });
      assert.equal(await textOf(tab, "#email-state"), `${ERIN.email} (verified)`);
      assert.equal(await tab.$("#resend-verification"), null);
      assert.deepEqual(await alerts(tab), []);
      await tab.click("#sign-out");
      await tab.waitForSelector("#username", { timeout: UI_TIMEOUT_MS });
    } finally {
      await tab.close();
    }
  });

  it("asks for a reset link with one answer for any address; the link's page sets a password to sign in with", async () => {
    const tab = await openTab();
    try {
      await tab.waitForSelector("#username", { timeout: UI_TIMEOUT_MS });
      await tab.click("#forgot-password");
      const answers: string[] = [];
      for (const email of ["nobody@example.com", ERIN.email]) {
        await tab.$eval("#reset-email", (input) => ((input as HTMLInputElement).value = ""));
        await tab.type("#reset-email", email);
        await tab.click("#send-reset-link");
        await tab.waitForSelector("#reset-requested", { timeout: UI_TIMEOUT_MS });
        answers.push(await textOf(tab, "#reset-requested"));
        await tab.waitForSelector("#send-reset-link:not([disabled])", { timeout: UI_TIMEOUT_MS });
      }
      assert.deepEqual(answers, Array(2).fill("If an account has this verified address, a link is on its way."));
      const link = await mailedLink(app.app.database.db, ERIN.email, RESET_PASSWORD_PATH);

      const page = await openLink(link);
      try {
        await page.type("#new-password", ERIN.newPassword);
        await page.type("#confirm-password", ERIN.newPassword);
        await page.click("button[type=submit]");
        assert.equal(await textOf(page, "#outcome:not([hidden])"), LINK_PAGE_MESSAGES.resetDone);
      } finally {
        await page.close();
      }

      await tab.click("#back-to-sign-in");
      await submitSignIn(tab, ERIN.username, PASSWORD, "#sign-in");
      await tab.waitForSelector("[role=alert]", { timeout: UI_TIMEOUT_MS });
      assert.deepEqual(await alerts(tab), ["Wrong username or password."]);
      // The verified address signs in as well as the username.
      await submitSignIn(tab, ERIN.email, ERIN.newPassword, "#sign-in");
      assert.equal(await textOf(tab, "#me"), `Signed in as ${ERIN.username}`);
      assert.equal(await textOf(tab, "#email-state"), `${ERIN.email} (verified)`);
    } finally {
      await tab.close();
    }
  });

  /** Opens a mailed link (on the API's origin: PUBLIC_URL cannot know the test's random port) in a window of its own. */
  async function openLink(link: string): Promise<Page> {
    const page = await browser().newPage({ type: "window" });
    const response = await page.goto(onOrigin(link, app.url.replace(/\/graphql$/, "")), { waitUntil: "load" });
    assert.equal(response?.status(), 200);
    await page.waitForSelector("#link-form:not([hidden])", { timeout: UI_TIMEOUT_MS });
    return page;
  }

  /** Every post's id, oldest first, through the API's keyset pages. */
  async function allPostIds(): Promise<string[]> {
    const ids: string[] = [];
    for (;;) {
      const response = await app.gql(`query($after: ID) { posts(first: 100, after: $after) { id } }`, {
        variables: { after: ids[ids.length - 1] ?? null },
      });
      const page: Array<{ id: string }> = response.body.data?.posts ?? [];
      ids.push(...page.map((post) => post.id));
      if (page.length < 100) return ids.reverse();
    }
  }
});

/** When a tab showed it is signed out (by its own clock), why, and what it said. */
async function signedOutAt(tab: Page): Promise<{ at: number; reason: string; text: string }> {
  const handle = await tab.waitForFunction(
    () => {
      const shown = document.querySelector<HTMLElement>("#signed-out");
      return shown && { at: Date.now(), reason: shown.dataset.reason ?? "", text: shown.textContent ?? "" };
    },
    { polling: "mutation", timeout: UI_TIMEOUT_MS },
  );
  return (await handle.jsonValue()) as { at: number; reason: string; text: string };
}

/** Watches tabs' feeds and error messages every 100 ms until stop() is called. */
function watchTabs(tabs: readonly Page[]) {
  const firstSeen = tabs.map(() => new Map<string, number>());
  const shownErrors = new Set<string>();
  let watching = true;
  const done = (async () => {
    while (watching) {
      for (const [i, tab] of tabs.entries()) {
        const now = Date.now();
        for (const id of await feedIds(tab)) if (!firstSeen[i]?.has(id)) firstSeen[i]?.set(id, now);
        for (const text of await alerts(tab)) shownErrors.add(text);
      }
      await sleep(100);
    }
  })();
  return {
    async stop() {
      watching = false;
      await done;
      return { firstSeen, shownErrors };
    },
  };
}

/** Registers `username` and returns an API token of theirs that may write posts. */
async function apiTokenOf(app: TestApp, username: string): Promise<string> {
  const user = await registerUser(app, username);
  const response = await app.gql(
    `mutation { createApiToken(input: { name: "writer", scopes: [POSTS_WRITE], expiresIn: "1h" }) { token } }`,
    { token: user.accessToken },
  );
  const token = response.body.data?.createApiToken?.token;
  assert.ok(token, JSON.stringify(response.body));
  return token;
}
