// A real browser for tests: Debian's Chromium driven by puppeteer-core, a page's every request
// recorded, and a tiny static server for test pages of their own origin.
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before } from "node:test";

import puppeteer, { type Browser, type HTTPRequest, type Page } from "puppeteer-core";

/** Where Debian's `chromium` package installs the browser (`.ci/run` installs it when missing). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Longest wait for the browser to start or to close. */
const BROWSER_TIMEOUT_MS = 15_000;

/**
 * Why the browser suites cannot run here (Chromium is missing), for `describe`'s `skip`, or
 * undefined when they can. With CI=true a missing Chromium throws instead: in CI the browser
 * suites must run, so a missing browser is a broken pipeline, not a reason to skip.
 */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM_PATH)) return undefined;
  const message = `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install -y chromium)`;
  if (process.env.CI === "true") throw new Error(`CI=true but ${message}: the browser suites cannot run`);
  return `${message}; skipping the browser suite`;
}

const launched = new Set<Browser>();
// A test process that ends without closing its browser (a failed before(), a timeout) kills it.
process.on("exit", () => {
  for (const browser of launched) browser.process()?.kill("SIGKILL");
});

/**
 * Starts headless Chromium with a fresh temporary profile, which every tab of it shares (one
 * localStorage per origin). `--no-sandbox` because CI runs as root, where Chromium's sandbox
 * refuses to start.
 */
export async function launchBrowser(): Promise<Browser> {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    timeout: BROWSER_TIMEOUT_MS,
  });
  launched.add(browser);
  return browser;
}

/** Closes the browser, and kills it when it does not close within the timeout. */
export async function closeBrowser(browser: Browser): Promise<void> {
  launched.delete(browser);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), BROWSER_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([browser.close().then(() => "closed" as const), timedOut]);
    if (outcome === "timeout") browser.process()?.kill("SIGKILL");
  } catch {
    browser.process()?.kill("SIGKILL");
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The suite's browser: launched in the enclosing `describe`'s before() and closed in its after().
 * Call the returned function inside a test to get it.
 */
export function useBrowser(): () => Browser {
  let current: Browser | undefined;
  before(async () => {
    current = await launchBrowser();
  });
  after(async () => {
    if (current) await closeBrowser(current);
  });
  return () => {
    if (!current) throw new Error("the browser is launched in before(); use it inside a test");
    return current;
  };
}

/** Every request a page made, in order, by URL (what the page asked for, whether or not it was let through). */
export interface RequestLog {
  urls: string[];
  /** The URLs that are not on `origin` (data: URLs never leave the browser and are left out). */
  offOrigin(origin: string): string[];
}

/**
 * Records every request `page` makes, and aborts any that is not to `origin`: the page must work
 * without them, so a test of "nothing leaves localhost" cannot pass by reaching the internet.
 */
export async function recordRequests(page: Page, origin: string): Promise<RequestLog> {
  const urls: string[] = [];
  await page.setRequestInterception(true);
  page.on("request", (request: HTTPRequest) => {
    const url = request.url();
    urls.push(url);
    if (url.startsWith("data:") || new URL(url).origin === origin) void request.continue();
    else void request.abort("blockedbyclient");
  });
  return {
    urls,
    offOrigin: (allowed) => urls.filter((url) => !url.startsWith("data:") && new URL(url).origin !== allowed),
  };
}

/** A file a {@link StaticServer} serves. */
export interface StaticFile {
  contentType: string;
  body: string;
}

export interface StaticServer {
  /** `http://127.0.0.1:<port>`, to list in CORS_ORIGINS. */
  origin: string;
  close(): Promise<void>;
}

/** Serves `files` by path (`/`, `/client.js`, …) on a random loopback port; anything else is a 404. */
export async function serveStatic(files: Record<string, StaticFile>): Promise<StaticServer> {
  const server = createServer((request, response) => {
    const file = files[new URL(request.url ?? "/", "http://localhost").pathname];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": file.contentType, "cache-control": "no-store" }).end(file.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * A loopback port that was free a moment ago, for a server whose settings must name its own origin
 * before it listens (PUBLIC_URL, from which WEBAUTHN_ORIGINS defaults).
 */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A virtual authenticator of a page (Chromium's DevTools protocol), and what it holds. */
export interface VirtualAuthenticator {
  id: string;
  /** The passkeys it holds: credential id (base64url), resident or not, signature count, user handle. */
  credentials(): Promise<Array<{ credentialId: string; isResidentCredential: boolean; signCount: number }>>;
  /** Whether it reports the user verified (a PIN or fingerprint) in its next ceremonies. */
  setUserVerified(verified: boolean): Promise<void>;
}

/**
 * Gives `page` a platform authenticator with resident keys and user verification (a passkey
 * provider like a phone's or a laptop's), which answers every ceremony at once with no prompt.
 */
export async function addVirtualAuthenticator(page: Page): Promise<VirtualAuthenticator> {
  const cdp = await page.createCDPSession();
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    id: authenticatorId,
    async credentials() {
      const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
      return credentials.map(({ credentialId, isResidentCredential, signCount }) => ({
        credentialId,
        isResidentCredential,
        signCount,
      }));
    },
    async setUserVerified(isUserVerified) {
      await cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified });
    },
  };
}
