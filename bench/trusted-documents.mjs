// `node bench/trusted-documents.mjs`: what a trusted document costs the server, against the same
// query sent as text. Issue 27 asks for the CPU per request of `{ me { id } }` sent by its hash to a
// server with a TRUSTED_DOCUMENTS manifest, beside the same text sent to a server without one.
//
// Two servers start as `npm start` runs them (the bundle, production, SQLite): one without a
// manifest and one with a manifest holding `{ me { id } }`. Each way of sending the query is run
// at the same fixed rate (an open-loop load, bench/lib/steady-load.mjs) in interleaved rounds, and
// the server's own CPU time (every thread's, bench/lib/cpu-rounds.mjs) is divided by the requests it
// answered. CPU per request at a fixed rate is steadier on a shared 2-core machine than requests
// per second. It is a measurement: it exits 0 whatever the numbers, non-zero only when a server
// could not start or answered wrongly.
//
//   node bench/trusted-documents.mjs [--rate 800] [--seconds 8] [--rounds 3]
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { loadCheckout, register, startServer, stopServer } from "./lib/abuse-harness.mjs";
import { measureCpuRounds, printCpuRounds } from "./lib/cpu-rounds.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "800" },
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);

const ME = "{ me { id } }";
// The harness's readiness probe and registration, listed so that the server with a manifest starts and seeds.
const TYPENAME = "{ __typename }";
const REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }";
const sha256 = (text) => createHash("sha256").update(text).digest("hex");

const dir = mkdtempSync(join(tmpdir(), "gta-trusted-bench-"));
const manifest = join(dir, "persisted-documents.json");
writeFileSync(manifest, JSON.stringify(Object.fromEntries([ME, TYPENAME, REGISTER].map((d) => [sha256(d), d]))));

const checkout = await loadCheckout(root, root);
const main = join(root, "dist/bundle/main.js");
const plain = await startServer({ main, checkout });
const trusted = await startServer({ main, checkout, env: { TRUSTED_DOCUMENTS: manifest } });

const ways = [];
try {
  const plainUser = await register(plain, "bench-plain");
  const trustedUser = await register(trusted, "bench-trusted");
  const hash = sha256(ME);
  ways.push(
    { name: "text, no manifest", server: plain, token: plainUser.token, body: { query: ME } },
    { name: "text, listed", server: trusted, token: trustedUser.token, body: { query: ME } },
    { name: "documentId", server: trusted, token: trustedUser.token, body: { documentId: `sha256:${hash}` } },
    {
      name: "persistedQuery hash",
      server: trusted,
      token: trustedUser.token,
      body: { extensions: { persistedQuery: { version: 1, sha256Hash: hash } } },
    },
  );
  await measureCpuRounds(ways, { rate, seconds, rounds, expect: '"me":{"id"' });
} finally {
  await stopServer(plain);
  await stopServer(trusted);
  rmSync(dir, { recursive: true, force: true });
}

printCpuRounds(ways, { rate, seconds, rounds, what: "{ me { id } }, signed in", baseline: "text" });
