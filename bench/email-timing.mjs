// Measures whether requestPasswordReset reveals that an address belongs to an account: the time of a
// request for a known, verified address against one for an unknown address, interleaved, over HTTP
// against the built server (dist/bundle/main.js, production, SMTP_URL pointing at a closed port: no
// request waits for SMTP, the outbox only gets a row). Known addresses are measured twice: their
// first requests of the hour (a token and a queued mail each; the registration's verification
// mail took one of the 3 an address gets) and the later ones (past the
// per-address allowance: a suppressed row, like an unknown address's). Run after a build:
//   npm run build && node bench/email-timing.mjs [rounds=300] [users=40] [postgres://…]
// `users` verified accounts take turns, so that there are 2 × users first sends to measure.
import { fileURLToPath } from "node:url";

import { database, gql, loadCheckout, PASSWORD, startServer, stopServer } from "./lib/abuse-harness.mjs";

const rounds = Number(process.argv[2] ?? 300);
const users = Number(process.argv[3] ?? 40);
const postgresUrl = process.argv[4];
const root = fileURLToPath(new URL("..", import.meta.url));
const ALLOWANCE = 3;

const server = await startServer({
  main: `${root}dist/bundle/main.js`,
  postgresUrl,
  checkout: await loadCheckout(root, root),
  env: { LOG_LEVEL: "warn", SMTP_URL: "smtp://127.0.0.1:9", EMAIL_REQUESTS_MAX_PER_IP: "0" },
});

try {
  const db = await database(server);
  const known = [];
  for (let i = 0; i < users; i++) {
    const email = `known-${i}@example.com`;
    const r = await gql(server, "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }", {
      i: { username: `known-${i}`, password: PASSWORD, email },
    });
    if (!r.json?.data) throw new Error(`register: ${r.text.slice(0, 300)}`);
    const [row] = await db.query("select text_body from mail_outbox where recipient = $1", [email]);
    const token = decodeURIComponent(/token=([A-Za-z0-9_%-]+)/.exec(row.text_body)[1]);
    const v = await gql(server, "mutation($t: String!) { verifyEmail(token: $t) }", { t: token });
    if (v.json?.data?.verifyEmail !== true) throw new Error(`verifyEmail: ${v.text.slice(0, 300)}`);
    known.push(email);
  }

  const request = async (email) => {
    const started = process.hrtime.bigint();
    const r = await gql(server, "mutation($e: String!) { requestPasswordReset(email: $e) }", { e: email });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (
      r.status !== 200 ||
      (r.text !== '{"data":{"requestPasswordReset":true}}\n' && r.text !== '{"data":{"requestPasswordReset":true}}')
    )
      throw new Error(`unexpected answer for ${email}: ${r.status} ${r.text}`);
    return ms;
  };

  for (let i = 0; i < 20; i++) await request(`warm-up-${i}@example.net`); // JIT, pools, statements
  const sent = [];
  const suppressed = [];
  const unknown = [];
  const unknownAlongside = [];
  for (let i = 0; i < rounds; i++) {
    // Round robin: each known address gets its first sends before any is suppressed. Its
    // registration's verification mail took one of the hour's allowance already.
    const turn = Math.floor(i / users);
    const ms = await request(known[i % users]);
    (turn < ALLOWANCE - 1 ? sent : suppressed).push(ms);
    const other = await request(`unknown-${i}@example.org`);
    unknown.push(other);
    // The first sends all fall in the first rounds; compare them with the unknown requests of
    // those same rounds too, so that warming up and table growth weigh on both sides alike.
    if (turn < ALLOWANCE - 1) unknownAlongside.push(other);
  }

  // What the outbox says happened, so the categories above are facts, not assumptions.
  const statuses = await db.query(
    "select status, count(*) as n from mail_outbox where recipient like 'known-%' and subject = 'Reset your password' group by status order by status",
  );
  const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
  const line = (name, xs) =>
    `${name.padEnd(34)} n=${String(xs.length).padStart(4)}  median ${percentile(xs, 0.5).toFixed(2)} ms  p90 ${percentile(xs, 0.9).toFixed(2)} ms`;
  console.log(`database: ${postgresUrl ? "PostgreSQL" : "SQLite"}; rounds: ${rounds}; verified accounts: ${users}`);
  console.log(`known addresses' reset mails in the outbox: ${statuses.map((s) => `${s.status} ${s.n}`).join(", ")}`);
  if (sent.length > 0) console.log(line("known, first 2 (token + mail)", sent));
  if (suppressed.length > 0) console.log(line("known, past allowance (suppressed)", suppressed));
  console.log(line("unknown (suppressed)", unknown));
  if (unknownAlongside.length > 0) console.log(line("unknown, same rounds as first sends", unknownAlongside));
  const mu = percentile(unknown, 0.5);
  for (const [name, xs] of [
    ["known first sends", sent],
    ["known suppressed", suppressed],
  ]) {
    if (xs.length === 0) continue;
    const m = percentile(xs, 0.5);
    console.log(
      `median difference, ${name} - unknown: ${(m - mu).toFixed(2)} ms (${(((m - mu) / mu) * 100).toFixed(1)} %)`,
    );
  }
  if (sent.length > 0) {
    const [m, ma] = [percentile(sent, 0.5), percentile(unknownAlongside, 0.5)];
    console.log(`median difference, known first sends - unknown of the same rounds: ${(m - ma).toFixed(2)} ms`);
  }
} finally {
  await stopServer(server);
}
