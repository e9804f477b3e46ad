// Two tabs of one browser (one profile, one localStorage) whose access tokens expire together
// refresh with the same stored refresh token at the same moment. With the reuse interval both stay
// signed in; without it (REFRESH_TOKEN_REUSE_INTERVAL=0s) the second refresh looks like theft and
// ends the session for both, which proves the race is real. Each mode is a way a page keeps its
// refresh token: "body" keeps it in localStorage and sends it in the mutation's variables; "cookie"
// never sees it: the server sets it as an HttpOnly cookie (useCookie) that both tabs share.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";

import type { Page } from "puppeteer-core";

import { PASSWORD, registerUser } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { browserUnavailable, serveStatic, type StaticServer, useBrowser } from "../helpers/browser.js";

/** Trials per interval: each a fresh session, both tabs refreshing at one shared instant. */
const TRIALS = 10;
/** How far ahead the shared start time lies: long enough for both tabs to be waiting for it. */
const START_DELAY_MS = 150;

/** How a page keeps its refresh token, and what the app needs for that. */
interface Mode {
  name: "body" | "cookie";
  env: Record<string, string>;
}

const MODES: readonly Mode[] = [
  { name: "body", env: {} },
  { name: "cookie", env: {} },
];

/**
 * The page's client, as a small app would write it: sign in once, keep the refresh token in
 * localStorage, refresh when told to (at a given instant), and call the API with the access token
 * kept in memory. `mode` (from the query string) says where the refresh token lives.
 */
const CLIENT_JS = `"use strict";
const params = new URLSearchParams(location.search);
const api = params.get("api");
const mode = params.get("mode");
const STORAGE_KEY = "refreshToken";
const SIGNED_IN_KEY = "signedIn";
const PAYLOAD = "accessToken refreshToken";
let accessToken = null;

const modes = {
  body: {
    credentials: "same-origin",
    loginInput: {},
    refreshMutation: "mutation($refreshToken: String!) { refreshToken(refreshToken: $refreshToken) { " + PAYLOAD + " } }",
    refreshVariables: () => ({ refreshToken: localStorage.getItem(STORAGE_KEY) }),
    keep: (payload) => localStorage.setItem(STORAGE_KEY, payload.refreshToken),
  },
  cookie: {
    // The API is on another origin (listed in CORS_ORIGINS): the cookie travels only with "include".
    credentials: "include",
    loginInput: { useCookie: true },
    refreshMutation: "mutation { refreshToken { " + PAYLOAD + " } }",
    refreshVariables: () => ({}),
    keep: () => {},
  },
};
const current = modes[mode];

async function gql(query, variables, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = "Bearer " + token;
  const response = await fetch(api, {
    method: "POST",
    headers,
    credentials: current.credentials,
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: await response.json() };
}

function errorsOf(response) {
  return (response.body.errors || []).map((e) => e.extensions && (e.extensions.reason || e.extensions.code));
}

window.client = {
  async login(username, password, signIn) {
    const response = await gql(
      "mutation($input: LoginInput!) { login(input: $input) { " + PAYLOAD + " } }",
      { input: { username, password, ...current.loginInput } },
    );
    const payload = response.body.data && response.body.data.login;
    if (!payload) return { ok: false, errors: errorsOf(response) };
    accessToken = payload.accessToken;
    current.keep(payload);
    localStorage.setItem(SIGNED_IN_KEY, signIn);
    return { ok: true };
  },
  // localStorage reaches another tab's process a moment later: wait until this tab sees the sign-in.
  async waitForSignIn(signIn) {
    const until = Date.now() + 5000;
    while (localStorage.getItem(SIGNED_IN_KEY) !== signIn) {
      if (Date.now() > until) return false;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return true;
  },
  async refreshAt(startAt) {
    const variables = current.refreshVariables();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
    const sentAt = Date.now();
    const response = await gql(current.refreshMutation, variables);
    const payload = response.body.data && response.body.data.refreshToken;
    if (payload) {
      accessToken = payload.accessToken;
      current.keep(payload);
    }
    return {
      sentAt,
      sent: variables.refreshToken || null,
      ok: Boolean(payload && payload.accessToken),
      refreshToken: payload ? payload.refreshToken : null,
      errors: errorsOf(response),
    };
  },
  async me() {
    const response = await gql("{ me { id } }", {}, accessToken);
    const me = response.body.data && response.body.data.me;
    return { status: response.status, id: me ? me.id : null, errors: errorsOf(response) };
  },
};
`;

const PAGE_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>two tabs</title><link rel="icon" href="data:," /></head>
  <body><script src="/client.js"></script></body>
</html>
`;

interface RefreshOutcome {
  sentAt: number;
  /** The refresh token the tab sent in the variables; null in cookie mode, where the page never sees it. */
  sent: string | null;
  /** Whether the refresh returned an access token. */
  ok: boolean;
  /** The refresh token returned in the body; null in cookie mode. */
  refreshToken: string | null;
  errors: string[];
}
interface MeOutcome {
  status: number;
  id: string | null;
  errors: string[];
}
interface Trial {
  signedOut: boolean;
  refreshes: RefreshOutcome[];
  mes: MeOutcome[];
}

/** One trial: tab A signs in, both tabs refresh with the stored token at one instant, then each asks `me`. */
async function runTrial(tabs: readonly Page[], username: string, userId: string): Promise<Trial> {
  const [first] = tabs;
  assert.ok(first);
  const signIn = randomUUID();
  assert.deepEqual(
    await first.evaluate(
      (name, password, id) => (window as any).client.login(name, password, id),
      username,
      PASSWORD,
      signIn,
    ),
    { ok: true },
  );
  for (const tab of tabs)
    assert.equal(await tab.evaluate((id) => (window as any).client.waitForSignIn(id), signIn), true);
  const startAt = Date.now() + START_DELAY_MS;
  const refreshes: RefreshOutcome[] = await Promise.all(
    tabs.map((tab) => tab.evaluate((at) => (window as any).client.refreshAt(at), startAt)),
  );
  // Both tabs sent the one token the login stored.
  assert.equal(refreshes[0]?.sent, refreshes[1]?.sent);
  const mes: MeOutcome[] = await Promise.all(tabs.map((tab) => tab.evaluate(() => (window as any).client.me())));
  const stayed =
    refreshes.every((r) => r.ok) &&
    new Set(refreshes.map((r) => r.refreshToken)).size === 1 &&
    mes.every((me) => me.status === 200 && me.id === userId);
  return { signedOut: !stayed, refreshes, mes };
}

for (const mode of MODES) {
  describe(`two tabs refreshing at the same moment (${mode.name} mode)`, { skip: browserUnavailable() }, () => {
    const browser = useBrowser();
    let site: StaticServer;
    const apps = new Map<string, TestApp>();

    before(async () => {
      site = await serveStatic({
        "/": { contentType: "text/html; charset=utf-8", body: PAGE_HTML },
        "/client.js": { contentType: "text/javascript; charset=utf-8", body: CLIENT_JS },
      });
      for (const interval of ["default", "0s"]) {
        const env: Record<string, string> = { CORS_ORIGINS: site.origin, ...mode.env };
        if (interval !== "default") env.REFRESH_TOKEN_REUSE_INTERVAL = interval;
        apps.set(interval, await startTestApp("sqlite", { env }));
      }
    });
    after(async () => {
      for (const app of apps.values()) {
        await app.close();
        await app.database.drop();
      }
      await site?.close();
    });

    /** Opens two tabs of the one browser on the page, for `app`'s API; the second opens once the first has loaded. */
    async function openTabs(app: TestApp): Promise<Page[]> {
      const url = `${site.origin}/?mode=${mode.name}&api=${encodeURIComponent(app.url)}`;
      const tabs: Page[] = [];
      for (let i = 0; i < 2; i++) {
        const tab = await browser().newPage();
        const response = await tab.goto(url, { waitUntil: "load" });
        assert.equal(response?.status(), 200);
        tabs.push(tab);
      }
      return tabs;
    }

    async function runTrials(interval: string, username: string) {
      const app = apps.get(interval);
      assert.ok(app);
      const user = await registerUser(app, username);
      const tabs = await openTabs(app);
      try {
        const trials: Trial[] = [];
        for (let i = 0; i < TRIALS; i++) trials.push(await runTrial(tabs, username, user.userId));
        return trials;
      } finally {
        for (const tab of tabs) await tab.close();
      }
    }

    function spread(trials: readonly Trial[]): number {
      // How far apart the two tabs sent their refreshes, at worst.
      return Math.max(
        ...trials.map((trial) => Math.abs((trial.refreshes[0]?.sentAt ?? 0) - (trial.refreshes[1]?.sentAt ?? 0))),
      );
    }

    it("keeps both tabs signed in with the reuse interval (10 s): the same refresh token, both me calls answered", async (t) => {
      const trials = await runTrials("default", "twotabs");
      const signedOut = trials.filter((trial) => trial.signedOut);
      t.diagnostic(
        `reuse interval 10s: signed out in ${signedOut.length} of ${TRIALS} trials (tabs at most ${spread(trials)} ms apart)`,
      );
      assert.deepEqual(signedOut, [], "no trial signs a tab out");
      for (const trial of trials) {
        assert.equal(trial.refreshes[0]?.refreshToken, trial.refreshes[1]?.refreshToken);
        if (mode.name === "body") {
          assert.notEqual(trial.refreshes[0]?.refreshToken, trial.refreshes[0]?.sent, "the token was rotated");
        } else {
          assert.equal(trial.refreshes[0]?.refreshToken, null, "cookie mode: the page never sees the refresh token");
        }
      }
      if (mode.name === "cookie") {
        // The page's scripts cannot read the cookie: it is HttpOnly.
        const app = apps.get("default");
        assert.ok(app);
        const probe = await browser().newPage();
        try {
          await probe.goto(`${site.origin}/?mode=cookie&api=${encodeURIComponent(app.url)}`, { waitUntil: "load" });
          assert.equal(await probe.evaluate(() => document.cookie), "");
        } finally {
          await probe.close();
        }
      }
    });

    it("signs the tabs out without it (REFRESH_TOKEN_REUSE_INTERVAL=0s): the race is real", async (t) => {
      const trials = await runTrials("0s", "twotabs-strict");
      const signedOut = trials.filter((trial) => trial.signedOut);
      t.diagnostic(
        `reuse interval 0s: signed out in ${signedOut.length} of ${TRIALS} trials (tabs at most ${spread(trials)} ms apart)`,
      );
      assert.ok(signedOut.length >= 1, "at least one trial signs the tabs out");
      // What signing out looks like: one refresh rotates, the other is refused as reuse, which ends the
      // session, so the new access token of the tab that won is refused too.
      const example = signedOut[0];
      assert.ok(example);
      const winner = example.refreshes.findIndex((r) => r.ok);
      assert.notEqual(winner, -1, JSON.stringify(example));
      assert.deepEqual(example.refreshes[1 - winner]?.errors, ["REFRESH_TOKEN_INVALID"]);
      assert.deepEqual(example.mes[winner], { status: 401, id: null, errors: ["SESSION_ENDED"] });
      // The loser holds the login's access token (ended with the session) if it signed in, or none.
      const loser = example.mes[1 - winner];
      assert.equal(loser?.id, null);
      assert.deepEqual(loser?.errors, [winner === 0 ? "NOT_SIGNED_IN" : "SESSION_ENDED"]);
    });
  });
}
