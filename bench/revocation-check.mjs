// Micro-benchmark: what the per-request revocation check costs (the in-memory lookups the context
// does after verifying a token), next to the token verification itself, and what holding the
// secret as a KeyObject saves against passing jsonwebtoken the string, as the naive recipe does.
// Run after a build: node bench/revocation-check.mjs
import { createSecretKey, randomBytes, randomUUID } from "node:crypto";

import jwt from "jsonwebtoken";

import { secretKeyRing } from "../dist/src/access/keys.js";
import { RevocationList } from "../dist/src/access/revocation-list.js";
import { TokenService } from "../dist/src/access/tokens.js";

const ENDED = 10_000; // sessions ended within one token lifetime: a busy service
const N = 2_000_000;

const list = new RevocationList(15 * 60_000);
const now = Date.now();
for (let i = 0; i < ENDED; i++) list.addEndedSession(randomUUID(), now);
for (let i = 0; i < ENDED / 10; i++) list.addRoleChange(randomUUID(), ["USER"], now);
const probes = Array.from({ length: 1024 }, () => ({ sid: randomUUID(), sub: randomUUID() }));

function perCall(label, n, fn) {
  for (let i = 0; i < Math.min(n, 100_000); i++) fn(i); // warm up
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - start) / n;
  console.log(`${label.padEnd(52)} ${(ns / 1000).toFixed(3)} µs per request`);
  return ns;
}

let sink = 0;
perCall(`revocation check (${ENDED} ended sessions, ${ENDED / 10} role changes)`, N, (i) => {
  const p = probes[i & 1023];
  if (list.isSessionEnded(p.sid)) sink++;
  if (list.currentRoles(p.sub)) sink++;
});

const tokens = new TokenService({
  keys: secretKeyRing(createSecretKey(randomBytes(48))),
  issuer: "bench",
  audience: "bench",
  accessTokenTtlSeconds: 900,
});
const { token } = tokens.signAccessToken({
  userId: randomUUID(),
  roles: ["USER"],
  sessionId: randomUUID(),
  fresh: true,
});
perCall("HS256 access-token verification (jsonwebtoken, KeyObject)", 50_000, () => {
  if (tokens.verifyAccessToken(token).sub) sink++;
});

const secret = randomBytes(48).toString("base64url");
const key = createSecretKey(Buffer.from(secret));
const plain = jwt.sign({ sub: randomUUID() }, secret, {
  algorithm: "HS256",
  issuer: "bench",
  audience: "bench",
  expiresIn: "1h",
});
const options = { algorithms: ["HS256"], issuer: "bench", audience: "bench" };
perCall("jsonwebtoken.verify, secret as a string (naive recipe)", 50_000, () => {
  if (jwt.verify(plain, secret, options).sub) sink++;
});
perCall("jsonwebtoken.verify, secret as a KeyObject", 50_000, () => {
  if (jwt.verify(plain, key, options).sub) sink++;
});
if (sink < 0) console.log(sink);
