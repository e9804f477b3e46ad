// The example web app against a production server that runs only the documents of the app's own
// manifest (TRUSTED_DOCUMENTS = examples/web/src/gql/persisted-documents.json, which codegen.mjs
// writes): sign-up in cookie mode, the live feed over the WebSocket, a post from the form and one
// from the API, the posts page after a reload, and sign-out. The page sends every HTTP operation as
// its hash alone and every subscription with its hash; the server refuses nothing.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

import type { Page } from "puppeteer-core";

import { postBody } from "../helpers/api.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { browserUnavailable, serveStatic, type StaticFile, type StaticServer, useBrowser } from "../helpers/browser.js";
import { buildExample, EXAMPLE } from "../helpers/example-web.js";

const MANIFEST = join(EXAMPLE, "src/gql/persisted-documents.json");
const UI_TIMEOUT_MS = 10_000;

/** What the page sent to the API: the bodies of its POSTs, and the subscribe messages of its sockets. */
interface Sent {
  posts: Array<{ query?: string; extensions?: { persistedQuery?: { sha256Hash?: string } } }>;
  subscribes: Array<{ query?: string; extensions?: { persistedQuery?: { sha256Hash?: string } } }>;
}

async function recordSent(tab: Page, apiUrl: string): Promise<Sent> {
  const sent: Sent = { posts: [], subscribes: [] };
  const cdp = await tab.createCDPSession();
  await cdp.send("Network.enable");
  cdp.on("Network.requestWillBeSent", ({ request }) => {
    if (request.url === apiUrl && request.method === "POST" && request.postData)
      sent.posts.push(JSON.parse(request.postData) as Sent["posts"][number]);
  });
  cdp.on("Network.webSocketFrameSent", ({ response }) => {
    const message = JSON.parse(response.payloadData) as { type?: string; payload?: Sent["subscribes"][number] };
    if (message.type === "subscribe" && message.payload) sent.subscribes.push(message.payload);
  });
  return sent;
}

async function textOf(tab: Page, selector: string): Promise<string> {
  const element = await tab.waitForSelector(selector, { timeout: UI_TIMEOUT_MS });
  return (await element?.evaluate((node) => node.textContent?.trim() ?? "")) ?? "";
}

async function eventually(check: () => Promise<boolean>, timeoutMs = UI_TIMEOUT_MS): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await sleep(50);
  }
}

const feedIds = (tab: Page) =>
  tab.$$eval("#feed li", (items) => items.map((item) => (item as HTMLElement).dataset.id ?? "").reverse());

/** gta_documents_total{kind} of the app's metrics, 0 when absent. */
async function documentsCounted(app: TestApp, kind: string): Promise<number> {
  const text = await app.app.metrics.text();
  const line = text.split("\n").find((l) => l.startsWith(`gta_documents_total{kind="${kind}"}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("the example web app against a production server with its manifest", { skip: browserUnavailable() }, () => {
  const browser = useBrowser();
  let site: StaticServer;
  let app: TestApp;
  const files: Record<string, StaticFile> = {};
  /** The manifest's hash of the app's document named `name`, as a script would send it. */
  let hashOf: (name: string) => string;

  before(async () => {
    site = await serveStatic(files);
    app = await startTestApp("sqlite", {
      env: { NODE_ENV: "production", TRUSTED_DOCUMENTS: MANIFEST, CORS_ORIGINS: site.origin },
    });
    Object.assign(files, await buildExample(app.url));
    const listed = Object.entries(JSON.parse(readFileSync(MANIFEST, "utf8")) as Record<string, string>);
    hashOf = (name) => {
      const entry = listed.find(([, body]) => new RegExp(`^(?:fragment .*)?mutation ${name}\\b`).test(body));
      assert.ok(entry, `${name} is in the manifest`);
      return entry[0].replace(/^sha256:/, "");
    };
  });
  after(async () => {
    await app?.close();
    await app?.database.drop();
    await site?.close();
  });

  /** Another user, who registers and posts with the app's own documents, sent by hash from a script. */
  async function postFromScript(title: string): Promise<string> {
    const hashed = (name: string) => ({ persistedQuery: { version: 1, sha256Hash: hashOf(name) } });
    const writer = await postBody(app.url, {
      extensions: hashed("Register"),
      variables: { input: { username: `writer${Date.now()}`, password: "a writer's passphrase" } },
    });
    const token = writer.body.data?.register?.accessToken as string;
    assert.ok(token, JSON.stringify(writer.body));
    const created = await postBody(
      app.url,
      { extensions: hashed("CreatePost"), variables: { input: { title, body: `${title}, from a script` } } },
      { authorization: `Bearer ${token}` },
    );
    const id = created.body.data?.createPost?.id as string;
    assert.ok(id, JSON.stringify(created.body));
    return id;
  }

  it("signs up, follows the live feed, pages the posts and signs out, sending hashes the server finds", async () => {
    const tab = await browser().newPage({ type: "window" });
    const sent = await recordSent(tab, app.url);
    assert.equal((await tab.goto(`${site.origin}/`, { waitUntil: "load" }))?.status(), 200);
    await tab.waitForSelector("#username", { timeout: UI_TIMEOUT_MS });
    await tab.type("#username", "alice");
    await tab.type("#password", "alice's passphrase");
    await tab.click("#sign-up");
    assert.equal(await textOf(tab, "#me"), "Signed in as alice");
    assert.ok(await eventually(async () => (await textOf(tab, "#feed-status")) === "live"));
    await sleep(300); // the subscribe message follows the connection's acknowledgement

    await tab.type("#title", "From the form");
    await tab.type("#body", "Typed into the form");
    await tab.click("#publish");
    assert.ok(await eventually(async () => (await feedIds(tab)).length === 1));
    const created = [(await feedIds(tab))[0], await postFromScript("From a script")];
    assert.ok(await eventually(async () => (await feedIds(tab)).length === 2));
    assert.deepEqual(await feedIds(tab), created);

    await tab.reload({ waitUntil: "load" });
    assert.equal(await textOf(tab, "#me"), "Signed in as alice", "the cookie signed the reloaded page in");
    assert.ok(await eventually(async () => (await tab.$$("#posts li")).length === 2));
    const listed = await tab.$$eval("#posts li", (items) => items.map((item) => (item as HTMLElement).dataset.id));
    assert.deepEqual(listed, [...created].reverse());

    await tab.click("#sign-out");
    assert.equal(await textOf(tab, "#signed-out"), "You signed out.");
    await tab.close();

    const operations = sent.posts.length;
    assert.ok(operations >= 8, `${operations} operations sent`);
    assert.deepEqual(
      sent.posts.filter((body) => body.query !== undefined || !body.extensions?.persistedQuery?.sha256Hash),
      [],
      "every HTTP operation went as its hash alone",
    );
    assert.ok(sent.subscribes.length >= 1);
    for (const payload of sent.subscribes)
      assert.match(payload.extensions?.persistedQuery?.sha256Hash ?? "", /^[0-9a-f]{64}$/);
    assert.equal(await documentsCounted(app, "refused"), 0);
    assert.ok((await documentsCounted(app, "trusted")) >= operations + sent.subscribes.length);
  });
});
