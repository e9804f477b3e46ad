// Measures whether a failed login reveals if the username exists: the median time of a login for an
// unknown username against a login with a wrong password for an existing one, interleaved, over HTTP
// against a production-mode app on a fresh SQLite database. Run after a build:
//   node bench/login-timing.mjs [rounds=60]
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createApp } from "../dist/src/app.js";
import { loadConfig } from "../dist/src/load-config.js";
import { createLogger } from "../dist/src/logger.js";

const rounds = Number(process.argv[2] ?? 60);
const dataDir = mkdtempSync(join(tmpdir(), "gta-timing-"));
const config = loadConfig(
  {
    NODE_ENV: "production",
    LOG_LEVEL: "silent",
    JWT_SECRET_KEY: randomBytes(48).toString("base64url"),
    DATA_DIR: dataDir,
    // Throttling would answer RATE_LIMITED after 5 failures; this measures the password path itself.
    LOGIN_MAX_FAILURES_PER_USER_IP: "1000000",
    LOGIN_MAX_FAILURES_PER_IP: "1000000",
  },
  dataDir,
);
const app = await createApp(config, { logger: createLogger(config) });
await app.server.listen({ host: "127.0.0.1", port: 0 });
const url = `http://127.0.0.1:${app.server.server.address().port}/graphql`;

async function login(username, password) {
  const started = process.hrtime.bigint();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($u: String!, $p: String!) { login(input: { username: $u, password: $p }) { accessToken } }",
      variables: { u: username, p: password },
    }),
  });
  const body = await response.json();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, status: response.status, code: body.errors?.[0]?.extensions?.code, message: body.errors?.[0]?.message };
}

await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    query: 'mutation { register(input: { username: "timing-user", password: "the right password" }) { accessToken } }',
  }),
});

const unknown = [];
const wrong = [];
for (let i = 0; i < 5; i++) await login("warm-up", "whatever-123"); // JIT and pools
for (let i = 0; i < rounds; i++) {
  const a = await login(`nobody-${i}`, "a wrong password");
  const b = await login("timing-user", "a wrong password");
  if (a.code !== b.code || a.status !== b.status || a.message !== b.message)
    throw new Error(`responses differ: ${JSON.stringify([a, b])}`);
  unknown.push(a.ms);
  wrong.push(b.ms);
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mu = median(unknown);
const mw = median(wrong);
console.log(`rounds: ${rounds}; both answered HTTP 200, code UNAUTHENTICATED, identical message`);
console.log(`median unknown username: ${mu.toFixed(2)} ms`);
console.log(`median wrong password:   ${mw.toFixed(2)} ms`);
console.log(`difference: ${((Math.abs(mu - mw) / Math.max(mu, mw)) * 100).toFixed(1)} % (goal: within 10 %)`);
await app.close();
rmSync(dataDir, { recursive: true, force: true });
