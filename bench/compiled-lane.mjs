// `node bench/compiled-lane.mjs`: what the compiled lane (GRAPHQL_COMPILED_LANE) saves on a known
// query. Two servers start as `npm start` runs them (the bundle, production, SQLite), one with the
// lane off and one with it on (the default), and a signed-in `{ me { id } }` is sent to each at the
// same fixed rate (an open-loop load, bench/lib/steady-load.mjs) in interleaved rounds; the server's
// own CPU time (every thread's, bench/lib/cpu-rounds.mjs) is divided by the requests it answered, which
// is steadier on a shared 2-core machine than requests per second. It is a measurement: it exits 0
// whatever the numbers, non-zero only when a server could not start or answered wrongly.
//
//   node bench/compiled-lane.mjs [--rate 800] [--seconds 8] [--rounds 3]
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

const checkout = await loadCheckout(root, root);
const main = join(root, "dist/bundle/main.js");
const off = await startServer({ main, checkout, env: { GRAPHQL_COMPILED_LANE: "false" } });
const on = await startServer({ main, checkout });

const ways = [];
try {
  const offUser = await register(off, "bench-off");
  const onUser = await register(on, "bench-on");
  ways.push(
    { name: "lane off (Apollo)", server: off, token: offUser.token, body: { query: ME } },
    { name: "lane on", server: on, token: onUser.token, body: { query: ME } },
  );
  await measureCpuRounds(ways, { rate, seconds, rounds, expect: '"me":{"id"' });
} finally {
  await stopServer(off);
  await stopServer(on);
}

printCpuRounds(ways, { rate, seconds, rounds, what: "{ me { id } }, signed in", baseline: "lane off" });
