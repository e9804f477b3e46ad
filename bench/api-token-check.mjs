// Micro-benchmark: what the bearer check costs per request for an API token against an access
// token, both through verifyBearer (the function every HTTP request and WebSocket connection goes
// through), on a real app's services over SQLite. Both kinds are measured warm (the access token's
// verified-token cache, the API token's lookup cache) and cold (a new cache every call: a signature
// check, or a database read).
// Run after a build: node bench/api-token-check.mjs
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import pino from "pino";

import { ApiTokenVerifier } from "../dist/src/access/api-tokens.js";
import { verifyBearer } from "../dist/src/access/bearer.js";
import { Role } from "../dist/src/access/roles.js";
import { Scope } from "../dist/src/access/scopes.js";
import { createTokenService } from "../dist/src/access/tokens.js";
import { ApiTokenStore } from "../dist/src/api-tokens/api-token.store.js";
import { loadConfig } from "../dist/src/load-config.js";
import { createServices } from "../dist/src/services.js";

const dataDir = mkdtempSync(join(tmpdir(), "gta-bench-"));
const config = loadConfig(
  { NODE_ENV: "test", LOG_LEVEL: "silent", JWT_SECRET_KEY: randomBytes(48).toString("base64url") },
  dataDir,
);
const logger = pino({ level: "silent" });
const services = await createServices(config, { logger, background: false });
try {
  const user = await services.users.create({
    username: "bench",
    password: "correct horse battery",
    roles: [Role.USER],
    by: "CLI",
  });
  const { payload, sessionId } = await services.sessions.start(user, {});
  const principal = { kind: "session", userId: user.id, roles: [Role.USER], sessionId, tokenId: "", fresh: true };
  const created = await services.apiTokens.create(
    principal,
    { name: "bench", scopes: [Scope.PROFILE_READ], expiresIn: "30d" },
    {},
  );
  const deps = { tokens: services.tokens, apiTokens: services.apiTokenVerifier, revocations: services.revocations };
  const accessHeader = `Bearer ${payload.accessToken}`;
  const apiHeader = `Bearer ${created.token}`;

  async function perCall(label, n, fn) {
    for (let i = 0; i < Math.min(n, 20_000); i++) await fn(); // warm up
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    const us = Number(process.hrtime.bigint() - start) / n / 1000;
    console.log(`${label.padEnd(60)} ${us.toFixed(2)} µs per request`);
    return us;
  }
  const expectOk = (verdict) => {
    if (!verdict.ok || !verdict.principal) throw new Error(`refused: ${verdict.reason}`);
  };

  const rounds = [];
  for (let round = 0; round < 3; round++) {
    const access = await perCall("access token, warm (verified-token cache)", 200_000, async () =>
      expectOk(await verifyBearer(accessHeader, deps)),
    );
    const api = await perCall("API token, warm (lookup cache)", 200_000, async () =>
      expectOk(await verifyBearer(apiHeader, deps)),
    );
    rounds.push({ access, api });
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  console.log(
    `median of 3 interleaved rounds: access token ${median(rounds.map((r) => r.access)).toFixed(2)} µs, ` +
      `API token ${median(rounds.map((r) => r.api)).toFixed(2)} µs`,
  );

  // Cold: the access token's signature verified every time (a token never seen by this instance),
  // and the API token read from the database every time (its first use on an instance).
  await perCall("access token, cold (HS256 signature and claims)", 20_000, async () => {
    const tokens = createTokenService(config, services.keys);
    expectOk(await verifyBearer(accessHeader, { ...deps, tokens }));
  });
  await perCall("API token, cold (a database read: SQLite)", 5_000, async () => {
    const verifier = new ApiTokenVerifier({
      tokens: new ApiTokenStore(services.database.db),
      revocations: services.revocations,
      now: Date.now,
      logger,
    });
    expectOk(await verifyBearer(apiHeader, { ...deps, apiTokens: verifier }));
  });
} finally {
  await services.close();
  rmSync(dataDir, { recursive: true, force: true });
}
