// Where the time goes: runs this server as `npm start` runs it (the bundle dist/bundle/main.js,
// production mode, SQLite, npm start's memory flags) under `node --cpu-prof`, loads it with one
// query for a while, stops it, and prints the functions with the most self time, the same grouped
// by package, and the inclusive time of the steps of the authenticated path.
//
//   node bench/profile.mjs [me|typename|me-posts] [seconds=10] [--unbundled] [--rate=N] [--lane-off]
//
// (after a build). `--rate=N` sends N requests/s evenly spaced (bench/lib/steady-load.mjs, as
// npm run bench's me-cpu) instead of autocannon's 64 connections as fast as they go;
// `--lane-off` starts the server with GRAPHQL_COMPILED_LANE=false.
//
// Each bundled frame is mapped back through the bundle's source map to the file it came from
// (node_modules/<package>/… or dist/src/…), so the time is attributed as if unbundled.
// `--unbundled` profiles dist/src/main.js instead, for comparison. The .cpuprofile is kept in a
// temporary directory (its path is printed) for Chrome DevTools or speedscope.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import autocannon from "autocannon";

import { startEnv } from "../scripts/memory-defaults.mjs";
import { cpuNanoseconds, freePort, serverEnv, startProcess, stopProcess, waitForGraphql } from "./lib/processes.mjs";
import { steadyLoad } from "./lib/steady-load.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const QUERIES = { me: "{ me { id } }", typename: "{ __typename }", "me-posts": "{ me { id username posts { id } } }" };
const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const unbundled = flags.includes("--unbundled");
const laneOff = flags.includes("--lane-off");
const rateFlag = flags.find((a) => a.startsWith("--rate="));
const rate = rateFlag ? Number(rateFlag.slice("--rate=".length)) : undefined;
const scenario = positional[0] ?? "me";
const seconds = Number(positional[1] ?? 10);
if (
  !QUERIES[scenario] ||
  !(seconds > 0) ||
  (rate !== undefined && !(rate > 0)) ||
  flags.some((a) => a !== "--unbundled" && a !== "--lane-off" && a !== rateFlag)
) {
  console.error(
    "usage: node bench/profile.mjs [me|typename|me-posts] [seconds=10] [--unbundled] [--rate=N] [--lane-off]",
  );
  process.exit(2);
}
const entry = join(root, unbundled ? "dist/src/main.js" : "dist/bundle/main.js");

const dataDir = mkdtempSync(join(tmpdir(), "gta-profile-"));
const profileDir = join(dataDir, "profile");
const port = await freePort();
const url = `http://127.0.0.1:${port}/graphql`;
const server = startProcess(process.execPath, ["--cpu-prof", "--cpu-prof-dir", profileDir, entry], {
  env: startEnv(
    await serverEnv({
      port,
      dataDir,
      secret: randomBytes(48).toString("base64url"),
      // No drain on SIGTERM (production's default would outlast stopProcess's grace and the
      // SIGKILL after it would lose the profile, which Node writes at exit).
      extra: { SHUTDOWN_DRAIN: "0ms", ...(laneOff ? { GRAPHQL_COMPILED_LANE: "false" } : {}) },
    }),
  ),
  cwd: dataDir,
});
await waitForGraphql(server, url, performance.now());

async function graphql(query, variables, token) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()).data;
}
const { register } = await graphql("mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", {
  i: { username: "profile-user", password: "profile password 1234" },
});
const token = register.accessToken;
for (let i = 0; i < 5; i++) {
  await graphql(
    "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
    { i: { title: `Post ${i}`, body: "Body." } },
    token,
  );
}

const headers = {
  "content-type": "application/json",
  ...(scenario === "typename" ? {} : { authorization: `Bearer ${token}` }),
};
const body = JSON.stringify({ query: QUERIES[scenario] });
let summary;
// The load's window on the monotonic clock V8's profile timestamps use (microseconds): only the
// samples inside it are counted, so start-up, seeding and shutdown stay out of the figures.
const windowStart = Number(process.hrtime.bigint() / 1000n);
if (rate === undefined) {
  const result = await autocannon({ url, method: "POST", headers, body, connections: 64, duration: seconds });
  summary = `${Math.round(result.requests.total / result.duration)} req/s over ${seconds} s, ${result.non2xx} non-2xx`;
} else {
  const before = cpuNanoseconds(server.process.pid);
  const result = await steadyLoad({ url, body, headers, rate, durationSeconds: seconds });
  const cpuUs = (cpuNanoseconds(server.process.pid) - before) / 1000 / (result.requests - result.errors);
  summary = `${rate} req/s for ${seconds} s, ${result.errors} failed, ${cpuUs.toFixed(0)} µs CPU/request (profiler on)`;
}
const windowEnd = Number(process.hrtime.bigint() / 1000n);
await stopProcess(server);
console.log(
  `${scenario}: ${summary}, profiled (${unbundled ? "dist/src/main.js" : "the bundle npm start runs"}${laneOff ? ", lane off" : ""})`,
);

const file = join(
  profileDir,
  readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile")),
);
const profile = JSON.parse(readFileSync(file, "utf8"));

// Bundled frames back to their own files, through the bundle's source map.
if (!unbundled) {
  const bundleUrl = pathToFileURL(entry).href;
  const map = new SourceMap(JSON.parse(readFileSync(`${entry}.map`, "utf8")));
  const bundleDir = dirname(entry);
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    if (frame.url !== bundleUrl) continue;
    const found = map.findEntry(frame.lineNumber, frame.columnNumber);
    if (!found?.originalSource) continue;
    let original = found.originalSource.startsWith("file:")
      ? fileURLToPath(found.originalSource)
      : resolve(bundleDir, found.originalSource);
    // esbuild follows tsc's maps to src/*.ts; the areas below name the compiled dist/src/*.js.
    const ownSource = join(root, "src");
    if (original.startsWith(`${ownSource}/`)) {
      original = join(root, "dist", "src", original.slice(ownSource.length + 1).replace(/\.ts$/, ".js"));
    }
    original = pathToFileURL(original).href;
    node.callFrame = { ...frame, url: original, lineNumber: found.originalLine, columnNumber: found.originalColumn };
  }
}

// Self time per node, from the samples and the time between them.
const self = new Map();
let sampledAt = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  sampledAt += profile.timeDeltas[i] ?? 0;
  if (sampledAt < windowStart || sampledAt > windowEnd) continue;
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));

// Each frame is put in an area of the request path by where its code lives; frames of native code
// (no URL: writev, JSON.parse, runMicrotasks…) and of Node's crypto inherit the area of the
// JavaScript that called them (an HMAC for a token, a SHA-256 of the query for Apollo's cache).
const AREAS = [
  [
    "JWT verification (jsonwebtoken, tokens.ts)",
    /node_modules\/(jsonwebtoken|jws|jwa|buffer-equal-constant-time|safe-buffer|ms|lodash\.|semver)|dist\/src\/access\/(tokens|keys|api-tokens)\.js/,
  ],
  ["revocation check and context", /dist\/src\/(context|access\/(bearer|revocation-list))\.js/],
  [
    "database (Kysely, better-sqlite3, stores)",
    /node_modules\/(kysely|better-sqlite3)|dist\/src\/.*\.store\.js|dist\/src\/db\//,
  ],
  [
    "GraphQL execution (graphql-js, type-graphql)",
    /node_modules\/(graphql|type-graphql|graphql-scalars|class-validator|@graphql-tools)\/|dist\/src\/.*(resolver|service|type|requires|auth-checker)\.js/,
  ],
  [
    "Apollo Server (request pipeline, content negotiation)",
    /node_modules\/(@apollo|negotiator|lru-cache|@escape\.tech|@envelop|whatwg-mimetype|loglevel)/,
  ],
  [
    "HTTP (node:http, Fastify, helmet, CORS)",
    /node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|helmet|fast-json-stringify|secure-json-parse|content-type|fast-querystring|toad-cache|process-warning|rfdc|abstract-logging|fast-decode-uri-component|ret|safe-regex2)|node:(_http|http|net|internal\/(http|stream|streams|net|url|querystring|timers|dns)|events|internal\/event_target|stream)/,
  ],
  ["async_hooks (AsyncLocalStorage)", /node:(async_hooks|internal\/async_hooks|internal\/async_local_storage)/],
  [
    "logging (pino)",
    /node_modules\/(pino|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|atomic-sleep|on-exit-leak-free|safe-stable-stringify)/,
  ],
];
function areaOf(frame, inherited) {
  if (frame.functionName === "(garbage collector)") return "garbage collector";
  if (frame.functionName === "(idle)") return "idle";
  if (frame.functionName === "(program)") return "(program: V8 outside JavaScript)";
  if (!frame.url) return inherited ?? "other";
  for (const [name, pattern] of AREAS) if (pattern.test(frame.url)) return name;
  if (frame.url.startsWith("node:")) return inherited ?? "node core, other";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  if (pkg) return `other: ${pkg[1]}`;
  if (frame.url.includes("/dist/src/")) return "this project, other";
  return "other";
}
const label = (f) =>
  `${f.functionName || "(anonymous)"}  ${f.url ? `${f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/dist\//, "dist/")}:${f.lineNumber + 1}` : ""}`;

const byFunction = new Map();
const byArea = new Map();
for (const [id, us] of self) {
  const frame = nodes.get(id).callFrame;
  byFunction.set(label(frame), (byFunction.get(label(frame)) ?? 0) + us);
}
(function attribute(id, inherited) {
  const node = nodes.get(id);
  const area = areaOf(node.callFrame, inherited);
  byArea.set(area, (byArea.get(area) ?? 0) + (self.get(id) ?? 0));
  for (const child of node.children ?? []) attribute(child, area);
})(profile.nodes[0].id, undefined);
const percent = (us) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
const top = (map, n) => [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);

console.log(
  `\nself time by area of the request path (${(total / 1e6).toFixed(1)} s sampled during the load; native code counts for its caller):`,
);
for (const [name, us] of top(byArea, 20)) console.log(`  ${percent(us)}  ${name}`);
console.log("\ntop functions by self time:");
for (const [name, us] of top(byFunction, 30)) console.log(`  ${percent(us)}  ${name}`);

// Inclusive time of named steps (each counted once per stack, however deep it recurses).
const STEPS = [
  [
    "context function (token + revocation)",
    (f) => f.url.includes("/dist/src/access/bearer.js") && f.functionName === "",
  ],
  ["verifyAccessToken", (f) => f.functionName === "verifyAccessToken"],
  ["jsonwebtoken verify", (f) => f.url.includes("jsonwebtoken/verify.js") && f.functionName === "module.exports"],
  ["HMAC (createHmac / digest)", (f) => f.url.startsWith("node:internal/crypto") && /Hmac|digest/.test(f.functionName)],
  ["graphql parse", (f) => f.functionName === "parse" && f.url.includes("graphql/language/parser")],
  ["graphql validate", (f) => f.functionName === "validate" && f.url.includes("graphql/validation/validate")],
  ["graphql execute", (f) => f.functionName === "execute" && f.url.includes("graphql/execution/execute")],
  ["Apollo processGraphQLRequest", (f) => f.functionName === "processGraphQLRequest"],
  ["Apollo executeHTTPGraphQLRequest", (f) => f.functionName === "executeHTTPGraphQLRequest"],
];
const inclusive = new Map(STEPS.map(([name]) => [name, 0]));
function walk(id, active) {
  const node = nodes.get(id);
  const matched = STEPS.filter(([name, test]) => !active.has(name) && test(node.callFrame)).map(([name]) => name);
  const nowActive = matched.length ? new Set([...active, ...matched]) : active;
  const mine = self.get(id) ?? 0;
  for (const name of nowActive) inclusive.set(name, inclusive.get(name) + mine);
  for (const child of node.children ?? []) walk(child, nowActive);
}
walk(profile.nodes[0].id, new Set());
console.log("\ninclusive time of synchronous steps (work after an await is not under its caller):");
for (const [name, us] of inclusive) console.log(`  ${percent(us)}  ${name}`);
console.log(`\nprofile: ${file}`);
