// A development-only page for passkeys at /passkeys: sign in with a password, add a passkey, sign
// in with one (discoverable or by username), or prove one as the second factor of a password
// session. It loads @simplewebauthn/browser's own browser bundle from node_modules (no CDN) and the
// page's script (passkey-page-script.ts). WebAuthn works only in a secure context and only on an
// origin of WEBAUTHN_ORIGINS: open it at http://localhost:<port>/passkeys (localhost counts as
// secure), with PUBLIC_URL (or WEBAUTHN_ORIGINS and WEBAUTHN_RP_ID) naming that origin.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import type { FastifyInstance, RouteHandlerMethod } from "fastify";

import type { Config } from "../config.js";
import { LINK_PAGES_CSP, pageHead } from "./link-pages.js";
import { PASSKEY_PAGE_SCRIPT } from "./passkey-page-script.js";

/** Where the page is served, in development only (a 404 in production, like /graphiql). */
export const PASSKEY_PAGE_PATH = "/passkeys";
const SCRIPT_PATH = `${PASSKEY_PAGE_PATH}/page.js`;
const STYLE_PATH = `${PASSKEY_PAGE_PATH}/page.css`;

/**
 * The page's own policy, the link pages' (link-pages.ts): scripts (the library's bundle and ours)
 * and the style sheet from this origin, requests to this origin (/graphql) only, no inline code, no framing.
 */
export const PASSKEY_PAGE_CSP = LINK_PAGES_CSP;

const STYLE = `:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0; padding: 2rem 1rem; }
main { max-width: 32rem; margin: 0 auto; }
fieldset { margin: 0 0 1rem; }
label { display: block; margin-bottom: 0.5rem; }
button { font: inherit; margin: 0 0.5rem 0.5rem 0; }
.outcome.error { color: #b91c1c; }
.outcome.done { color: #15803d; }
[hidden] { display: none !important; }
`;

/** The library's UMD bundle (the global `SimpleWebAuthnBrowser`), under a URL with its version. */
function libraryBundle(): { url: string; body: string } | undefined {
  const requireHere = createRequire(import.meta.url);
  let entry: string;
  try {
    // Its exports name only the entry point (not package.json): found from there.
    entry = requireHere.resolve("@simplewebauthn/browser");
  } catch {
    return undefined; // a development dependency: absent from an install without them
  }
  // Up to its own package.json (script/ holds one without a name).
  const manifestOf = (dir: string) =>
    existsSync(join(dir, "package.json"))
      ? (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, string>)
      : {};
  let root = dirname(entry);
  while (manifestOf(root).name !== "@simplewebauthn/browser") {
    if (dirname(root) === root) return undefined;
    root = dirname(root);
  }
  const { version } = manifestOf(root);
  const body = readFileSync(join(root, "dist/bundle/index.umd.min.js"), "utf8");
  return { url: `${PASSKEY_PAGE_PATH}/simplewebauthn-browser@${version}.js`, body };
}

function html(libraryUrl: string): string {
  return `${pageHead("Passkeys (development)", STYLE_PATH, [libraryUrl, SCRIPT_PATH])}
  <body>
    <main>
      <h1>Passkeys (development)</h1>
      <p id="status" role="status" aria-live="polite"></p>
      <fieldset>
        <legend>Password</legend>
        <label>Username <input id="username" autocomplete="username webauthn" /></label>
        <label>Password <input id="password" type="password" autocomplete="current-password" /></label>
        <button id="password-sign-in">Sign in with the password</button>
      </fieldset>
      <fieldset>
        <legend>Passkey</legend>
        <button id="passkey-sign-in">Sign in with a passkey</button>
        <button id="passkey-sign-in-by-name">Sign in with a passkey of this username</button>
      </fieldset>
      <fieldset id="second-factor" hidden>
        <legend>Second factor</legend>
        <button id="verify-with-passkey">Use a passkey as the second factor</button>
      </fieldset>
      <fieldset id="signed-in" hidden>
        <legend>Signed in</legend>
        <label>Name of the new passkey <input id="passkey-name" value="This browser" /></label>
        <button id="add-passkey">Add a passkey</button>
        <button id="sign-out">Sign out</button>
      </fieldset>
      <p id="outcome" class="outcome" role="alert" hidden></p>
    </main>
  </body>
</html>
`;
}

/**
 * `GET /passkeys`, its script and style sheet and the library's bundle, in development only and
 * only when @simplewebauthn/browser is installed; each with {@link PASSKEY_PAGE_CSP} and `no-store`.
 */
export function registerPasskeyPage(server: FastifyInstance, config: Pick<Config, "isProduction">): void {
  if (config.isProduction) return;
  const library = libraryBundle();
  if (!library) return;
  const serve =
    (contentType: string, body: string): RouteHandlerMethod =>
    (_request, reply) =>
      reply
        .header("content-type", contentType)
        .header("cache-control", "no-store")
        .header("content-security-policy", PASSKEY_PAGE_CSP)
        .send(body);
  const JS = "text/javascript; charset=utf-8";
  server.get(PASSKEY_PAGE_PATH, serve("text/html; charset=utf-8", html(library.url)));
  server.get(SCRIPT_PATH, serve(JS, PASSKEY_PAGE_SCRIPT));
  server.get(STYLE_PATH, serve("text/css; charset=utf-8", STYLE));
  server.get(library.url, serve(JS, library.body));
}
