// The two small pages the default PASSWORD_RESET_URL and EMAIL_VERIFICATION_URL point at. Opening
// one never uses its token up: the token stays in the URL's fragment, which the browser never sends,
// and the page's script (link-page-script.ts) posts it to /graphql only when the user submits.
import type { FastifyInstance, RouteHandlerMethod } from "fastify";

import { LINK_PAGE_SCRIPT } from "./link-page-script.js";

/** Where the pages are served, in every environment (they are part of the product, unlike /graphiql). */
export const RESET_PASSWORD_PATH = "/reset-password";
export const VERIFY_EMAIL_PATH = "/verify-email";
/** The pages' script and style sheet, linked relatively from the pages. */
export const LINK_PAGE_SCRIPT_PATH = "/email-links/page.js";
export const LINK_PAGE_STYLE_PATH = "/email-links/page.css";

/**
 * The pages' own policy, in place of the app's `default-src 'none'` (which would stop their script):
 * their script and style sheet from this origin, requests to this origin (/graphql) only, no
 * inline code, no form posted anywhere by the browser itself (the script sends the JSON request),
 * and no framing.
 */
export const LINK_PAGES_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Nothing of these pages is kept by a browser or a proxy: they change with the app, and are tiny. */
export const LINK_PAGES_CACHE_CONTROL = "no-store";

const STYLE = `:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0; padding: 2rem 1rem; }
main { max-width: 26rem; margin: 0 auto; }
h1 { font-size: 1.5rem; margin: 0 0 1rem; }
.field { margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin-bottom: 0.25rem; }
input { box-sizing: border-box; width: 100%; padding: 0.5rem; font: inherit; }
button { font: inherit; padding: 0.5rem 1rem; cursor: pointer; }
button:disabled { cursor: progress; }
:focus-visible { outline: 3px solid #2563eb; outline-offset: 2px; }
.problem { color: #b91c1c; margin: 0.25rem 0 0; }
.outcome { padding: 0.75rem 1rem; border-radius: 0.25rem; margin-top: 1rem; }
.outcome.error { background: #fee2e2; color: #7f1d1d; }
.outcome.done { background: #dcfce7; color: #14532d; }
[hidden] { display: none !important; }
`;

interface PageText {
  title: string;
  intro: string;
  fields: string;
  button: string;
}

const RESET_FIELDS = `      <div class="field">
        <label for="new-password">New password</label>
        <input id="new-password" name="new-password" type="password" autocomplete="new-password" required aria-describedby="new-password-problem" />
        <p id="new-password-problem" class="problem" hidden></p>
      </div>
      <div class="field">
        <label for="confirm-password">New password, again</label>
        <input id="confirm-password" name="confirm-password" type="password" autocomplete="new-password" required aria-describedby="confirm-password-problem" />
        <p id="confirm-password-problem" class="problem" hidden></p>
      </div>
      <div class="field" hidden>
        <label for="mfa-code">Code from your authenticator app, or a recovery code</label>
        <input id="mfa-code" name="mfa-code" type="text" autocomplete="one-time-code" spellcheck="false" aria-describedby="mfa-code-problem" />
        <p id="mfa-code-problem" class="problem" hidden></p>
      </div>
`;

const PAGES: Record<string, PageText> = {
  [RESET_PASSWORD_PATH]: {
    title: "Choose a new password",
    intro: "Type a new password for your account twice. Nothing changes until you press the button.",
    fields: RESET_FIELDS,
    button: "Change my password",
  },
  [VERIFY_EMAIL_PATH]: {
    title: "Verify your e-mail address",
    intro: "Press the button to confirm that this address is yours. Nothing changes until you do.",
    fields: "",
    button: "Verify my address",
  },
};

/**
 * The start of a small page this server serves, up to `</head>`: no indexing, no favicon request,
 * one style sheet and deferred scripts, all from this origin. The link pages and the development
 * passkey page (passkey-page.ts) share it.
 */
export function pageHead(title: string, styleSheet: string, scripts: readonly string[]): string {
  const scriptTags = scripts.map((src) => `\n    <script src="${src}" defer></script>`).join("");
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <title>${title}</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${styleSheet}" />${scriptTags}
  </head>`;
}

/** A page's whole HTML: fixed text, nothing from the request. */
function html(path: string, text: PageText): string {
  // Relative links: the page works under a proxy's path prefix as well as at the root.
  const relative = (asset: string) => asset.slice(1);
  return `${pageHead(text.title, relative(LINK_PAGE_STYLE_PATH), [relative(LINK_PAGE_SCRIPT_PATH)])}
  <body data-page="${path.slice(1)}">
    <main>
      <h1>${text.title}</h1>
      <p>${text.intro}</p>
      <noscript><p class="outcome error">This page needs JavaScript to send your request.</p></noscript>
      <form id="link-form" hidden>
${text.fields}        <button type="submit">${text.button}</button>
      </form>
      <p id="outcome" class="outcome" role="status" aria-live="polite" tabindex="-1" hidden></p>
    </main>
  </body>
</html>
`;
}

/**
 * `GET /reset-password` and `GET /verify-email` (and HEAD), their script and style sheet, in every
 * environment, with {@link LINK_PAGES_CSP} and `no-store`; the app's other headers (nosniff,
 * X-Frame-Options, Referrer-Policy: no-referrer, HSTS over TLS) come from the edge as on every route.
 * The query string is ignored and nothing of the request reaches the page.
 */
export function registerLinkPages(server: FastifyInstance): void {
  const serve =
    (contentType: string, body: string): RouteHandlerMethod =>
    (_request, reply) =>
      reply
        .header("content-type", contentType)
        .header("cache-control", LINK_PAGES_CACHE_CONTROL)
        .header("content-security-policy", LINK_PAGES_CSP)
        .send(body);
  for (const [path, text] of Object.entries(PAGES))
    server.get(path, serve("text/html; charset=utf-8", html(path, text)));
  server.get(LINK_PAGE_SCRIPT_PATH, serve("text/javascript; charset=utf-8", LINK_PAGE_SCRIPT));
  server.get(LINK_PAGE_STYLE_PATH, serve("text/css; charset=utf-8", STYLE));
}
