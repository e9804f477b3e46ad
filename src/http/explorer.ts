import { createReadStream, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import type { FastifyInstance, RouteHandlerMethod } from "fastify";

import type { Config } from "../config.js";

/** Where the explorer's page is served in development. */
export const EXPLORER_PATH = "/graphiql";

/** The operation the explorer opens with. */
export const EXPLORER_DEFAULT_QUERY = "{ me { id username roles } }";

/** What the Authorization header holds until the user pastes a token; never sent (see the init script). */
export const EXPLORER_TOKEN_PLACEHOLDER = "Bearer <paste the accessToken from login or register>";

/** The headers editor's first content: where the token goes. */
export const EXPLORER_DEFAULT_HEADERS = JSON.stringify({ Authorization: EXPLORER_TOKEN_PLACEHOLDER }, null, 2);

const GUIDANCE =
  "# Sign in with login or register (in a new\n" +
  "# tab: +), copy its accessToken and paste it\n" +
  '# after "Bearer " in the Headers tab below.\n';

/**
 * Our part of the page, an external file rather than inline code so that the page needs no
 * 'unsafe-inline' script source. The placeholder Authorization header is dropped before sending, so
 * that the schema loads and an unedited run says "not signed in" instead of "invalid token".
 *
 * GraphiQL keeps nothing beyond the page's life: its storage is a Map, not localStorage. Its own
 * persistence would keep `login`, `register` and `changePassword` operations with their passwords
 * (tabs, the last query, the history) and, in the history, the headers with their tokens, even
 * with `shouldPersistHeaders: false`; picking out which operations hold credentials (literals,
 * variables, headers, in three places) could miss one, keeping none cannot. What earlier versions of
 * this page left under GraphiQL's `graphiql:` prefix in localStorage is removed at load.
 */
const INIT_SCRIPT = `"use strict";
(function () {
  var placeholder = ${JSON.stringify(EXPLORER_TOKEN_PLACEHOLDER)};
  var send = GraphiQL.createFetcher({ url: new URL("/graphql", window.location.href).href });
  try {
    Object.keys(window.localStorage).forEach(function (key) {
      if (key.indexOf("graphiql:") === 0) window.localStorage.removeItem(key);
    });
  } catch (blocked) {
    // Storage switched off in this browser: nothing was kept, and GraphiQL needs none.
  }
  var items = new Map();
  var storage = {
    getItem: function (key) { return items.has(key) ? items.get(key) : null; },
    setItem: function (key, value) { items.set(key, String(value)); },
    removeItem: function (key) { items.delete(key); },
    clear: function () { items.clear(); },
    get length() { return items.size; },
  };
  function fetcher(params, options) {
    var headers = {};
    var given = (options && options.headers) || {};
    Object.keys(given).forEach(function (name) {
      if (!(name.toLowerCase() === "authorization" && given[name] === placeholder)) headers[name] = given[name];
    });
    return send(params, Object.assign({}, options, { headers: headers }));
  }
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
      defaultQuery: ${JSON.stringify(GUIDANCE + EXPLORER_DEFAULT_QUERY + "\n")},
      defaultHeaders: ${JSON.stringify(EXPLORER_DEFAULT_HEADERS)},
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: false,
    }),
  );
})();
`;

const STYLE = "html, body, #graphiql { height: 100%; margin: 0; }\n";

/**
 * The explorer's own policy, stricter than the app's development headers (which send no CSP): every
 * script, style sheet and request from this origin only, so the page works offline and cannot
 * reach out. Inline styles stay allowed because CodeMirror and GraphiQL's dialogs set them.
 */
export const EXPLORER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
/** Vendor files are served under their package's version, so a browser may keep them for good. */
const IMMUTABLE = "public, max-age=31536000, immutable";
/** Our page and init script change with the app: revalidated on every load. */
const REVALIDATE = "no-cache";

interface Asset {
  url: string;
  contentType: string;
  cacheControl: string;
  body: { file: string; size: number } | { text: string };
}

/**
 * The files GraphiQL needs, resolved in node_modules at start (a missing package fails the start,
 * not the first page load) and served under versioned URLs below {@link EXPLORER_PATH}.
 */
export function explorerAssets(): Asset[] {
  const requireHere = createRequire(import.meta.url);
  const vendor = (pkg: string, file: string, contentType: string): Asset => {
    const manifest = requireHere.resolve(`${pkg}/package.json`);
    const { version } = JSON.parse(readFileSync(manifest, "utf8")) as { version: string };
    const path = join(dirname(manifest), file);
    return {
      url: `${EXPLORER_PATH}/${pkg}@${version}/${file.split("/").pop()}`,
      contentType,
      cacheControl: IMMUTABLE,
      body: { file: path, size: statSync(path).size },
    };
  };
  const own = (name: string, contentType: string, text: string): Asset => ({
    url: `${EXPLORER_PATH}/${name}`,
    contentType,
    cacheControl: REVALIDATE,
    body: { text },
  });
  return [
    vendor("react", "umd/react.production.min.js", JS),
    vendor("react-dom", "umd/react-dom.production.min.js", JS),
    vendor("graphiql", "graphiql.min.js", JS),
    vendor("graphiql", "graphiql.min.css", CSS),
    own("explorer.css", CSS, STYLE),
    own("init.js", JS, INIT_SCRIPT),
  ];
}

function page(assets: readonly Asset[]): string {
  const styles = assets
    .filter((asset) => asset.contentType === CSS)
    .map((asset) => `    <link rel="stylesheet" href="${asset.url}" />`);
  // In order: React, ReactDOM, GraphiQL (which reads both globals), then ours.
  const scripts = assets
    .filter((asset) => asset.contentType === JS)
    .map((asset) => `    <script src="${asset.url}"></script>`);
  return [
    "<!doctype html>",
    '<html lang="en">',
    "  <head>",
    '    <meta charset="utf-8" />',
    '    <meta name="viewport" content="width=device-width, initial-scale=1" />',
    "    <title>GraphiQL (development)</title>",
    // No icon: otherwise the browser asks for /favicon.ico, a 404.
    '    <link rel="icon" href="data:," />',
    ...styles,
    "  </head>",
    "  <body>",
    '    <div id="graphiql">Loading GraphiQL…</div>',
    ...scripts,
    "  </body>",
    "</html>",
    "",
  ].join("\n");
}

/**
 * GraphiQL at `GET /graphiql` in development, served from node_modules with no CDN, so the API can
 * be explored offline. Registers nothing in production, where `/graphiql` is a 404 like any unknown
 * route. It posts JSON to `/graphql`, which Apollo's CSRF prevention accepts.
 */
export function registerExplorer(server: FastifyInstance, config: Pick<Config, "isProduction">): void {
  if (config.isProduction) return;
  const assets = explorerAssets();
  const html = page(assets);
  const sendPage: RouteHandlerMethod = (_request, reply) =>
    reply
      .header("content-type", "text/html; charset=utf-8")
      .header("cache-control", REVALIDATE)
      .header("content-security-policy", EXPLORER_CSP)
      .send(html);
  server.get(EXPLORER_PATH, sendPage);
  server.get(`${EXPLORER_PATH}/`, sendPage);
  for (const asset of assets) {
    const { body } = asset;
    server.get(asset.url, (_request, reply) => {
      reply.header("content-type", asset.contentType).header("cache-control", asset.cacheControl);
      if ("text" in body) return reply.send(body.text);
      return reply.header("content-length", body.size).send(createReadStream(body.file));
    });
  }
}
