// The attacks of bench/abuse.mjs over plain HTTP requests: fat-answer (and its U+0001 variant),
// sessions, heavy-author, nested-body (also over WebSocket messages) and throttled-logins. Each
// returns { got, details }: what the attacker got back, and numbers.
import { setTimeout as sleep } from "node:timers/promises";

import {
  codeOf,
  database,
  errorName,
  gql,
  insertRows,
  PASSWORD,
  register,
  seedPosts,
  Tally,
} from "./abuse-harness.mjs";
import { connect } from "./abuse-sockets.mjs";

/** POSTs `body` and reads the answer as a stream: { status, code, bytes, ms } without keeping it. */
async function postStreaming(server, body, { token, timeoutMs = 60_000 } = {}) {
  const started = performance.now();
  const response = await fetch(server.url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  let bytes = 0;
  let head = "";
  let tail = Buffer.alloc(0);
  for await (const chunk of response.body) {
    if (head.length < 2000) head += Buffer.from(chunk).toString("utf8", 0, 2000);
    bytes += chunk.length;
    tail = Buffer.concat([tail, chunk.subarray(Math.max(0, chunk.length - 2000))]).subarray(-2000);
  }
  return {
    status: response.status,
    code: codeOf(head) || codeOf(tail.toString()),
    bytes,
    ms: performance.now() - started,
  };
}

/**
 * `clients` loops sending `makeBody()` until `total` requests or `seconds` have passed (or the
 * server died); returns the tally ("200 12.3 MB", "200 BAD_REQUEST", "ECONNRESET") and the times.
 */
async function hammer(ctx, { clients, total = Infinity, seconds, makeBody, token, timeoutMs, sizes = true }) {
  const { server } = ctx;
  const got = new Tally();
  const times = [];
  let sent = 0;
  let largest = 0;
  const deadline = performance.now() + seconds * 1000;
  const loop = async () => {
    while (sent < total && performance.now() < deadline && server.alive()) {
      sent++;
      try {
        const r = await postStreaming(server, makeBody(), { token, timeoutMs });
        largest = Math.max(largest, r.bytes);
        const size = sizes && r.bytes > 100_000 ? ` ${(r.bytes / 1048576).toFixed(1)} MB` : "";
        got.add(`${r.status}${r.code ? ` ${r.code}` : ""}${size}`);
        times.push(r.ms);
      } catch (error) {
        got.add(errorName(error));
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  times.sort((a, b) => a - b);
  const pick = (q) =>
    times.length ? Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]) : null;
  return {
    got,
    details: {
      requests: sent,
      answers: got.counts,
      largestAnswerMb: Number((largest / 1048576).toFixed(1)),
      p50Ms: pick(0.5),
      maxMs: pick(1),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// fat-answer

const FAT_QUERY = (id) =>
  `{ post(id: "${id}") { author { posts(first: 40) { author { posts(first: 40) { body } } } } } }`;

/** An author with 40 posts of 20,000 characters of `char`: through the API, or by SQL when the API refuses them. */
export function prepareFatPosts(char) {
  return async (ctx) => {
    const { server } = ctx;
    ctx.author = await register(server, "fat_author");
    const body = char.repeat(20_000);
    const create = () =>
      gql(
        server,
        "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
        { i: { title: "fat", body } },
        ctx.author.token,
      );
    const first = await create();
    if (first.json?.data) {
      ctx.postIds = [first.json.data.createPost.id];
      for (let i = 1; i < 40; i++) {
        const r = await create();
        if (!r.json?.data) throw new Error(`createPost ${i}: ${r.status} ${r.text.slice(0, 200)}`);
        ctx.postIds.push(r.json.data.createPost.id);
      }
      ctx.seeded = "40 posts through the API";
    } else {
      ctx.postIds = await seedPosts(server, ctx.author.id, 40, () => body);
      ctx.seeded = `API refused the body (${first.status} ${first.code}): 40 posts by SQL`;
    }
  };
}

export async function fatAnswer(ctx) {
  const result = await hammer(ctx, {
    clients: ctx.options.fatClients,
    total: 12,
    seconds: 40,
    makeBody: () => JSON.stringify({ query: FAT_QUERY(ctx.postIds[0]) }),
  });
  return { got: `${ctx.seeded}; ${result.got}`, details: { seeded: ctx.seeded, ...result.details } };
}

// ---------------------------------------------------------------------------------------------
// sessions

const AGENT = `Mozilla/5.0 (abuse bench) ${"x".repeat(512)}`.slice(0, 512);

/**
 * Logins of one account with 512-character user agents (4 at a time, at most 3,000 or 15 s:
 * argon2id makes each cost tens of milliseconds), the rest of 3,000 live sessions inserted by SQL,
 * then a 15-alias `sessions` query (with `first: 100` when the server requires `first`).
 */
export async function sessions(ctx) {
  const { server } = ctx;
  const user = await register(server, "many_sessions");
  const logins = new Tally();
  let tokens = [];
  let done = 0;
  const deadline = performance.now() + 15_000;
  const started = performance.now();
  const loop = async () => {
    while (done < 3000 && performance.now() < deadline && server.alive()) {
      done++;
      try {
        const r = await gql(
          server,
          "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
          { i: { username: "many_sessions", password: PASSWORD } },
          undefined,
          { headers: { "user-agent": AGENT } },
        );
        logins.add(`${r.status}${r.code ? ` ${r.code}` : ""}`);
        if (r.json?.data) tokens.push(r.json.data.login.accessToken);
      } catch (error) {
        logins.add(errorName(error));
      }
    }
  };
  await Promise.all(Array.from({ length: 4 }, loop));
  const loginSeconds = (performance.now() - started) / 1000;
  const token = tokens[0] ?? user.token;
  tokens = undefined;
  const db = await database(server);
  const [{ n }] = await db.query("select count(*) as n from sessions where user_id = $1", [user.id]);
  const missing = Math.max(0, 3000 - Number(n));
  const now = Date.now();
  const rows = Array.from({ length: missing }, (_, i) => {
    const at = new Date(now - (i + 1) * 1000).toISOString();
    return [
      crypto.randomUUID(),
      user.id,
      at,
      at,
      new Date(now + 30 * 86400_000).toISOString(),
      AGENT,
      "127.0.0.1",
      null,
    ];
  });
  await insertRows(
    db,
    "sessions",
    ["id", "user_id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "chain_key"],
    rows,
  );
  const aliases = (args) =>
    `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: sessions${args} { id userAgent }`).join(" ")} }`;
  // The first request tells whether this server requires `first`; it counts like the others.
  let query = aliases("");
  const probe = await postStreaming(server, JSON.stringify({ query }), { token, timeoutMs: 30_000 }).catch((error) => ({
    error: errorName(error),
  }));
  const needsFirst = probe.code === "GRAPHQL_VALIDATION_FAILED";
  if (needsFirst) query = aliases("(first: 100)");
  const result = await hammer(ctx, {
    clients: 2,
    total: needsFirst ? 10 : 9,
    seconds: 20,
    token,
    makeBody: () => JSON.stringify({ query }),
  });
  if (!needsFirst)
    result.got.add(
      probe.error ??
        `${probe.status}${probe.code ? ` ${probe.code}` : ""}${probe.bytes > 100_000 ? ` ${(probe.bytes / 1048576).toFixed(1)} MB` : ""}`,
    );
  const form = query.includes("first") ? "sessions(first: 100)" : "sessions";
  const summary = `logins ${logins} in ${loginSeconds.toFixed(0)} s, ${missing} more by SQL; 15 × ${form}: ${result.got}`;
  return {
    got: summary,
    details: {
      logins: logins.counts,
      loginSeconds: Number(loginSeconds.toFixed(1)),
      seededBySql: missing,
      query: form,
      ...result.details,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// heavy-author

export async function prepareHeavyAuthor(ctx) {
  ctx.author = await register(ctx.server, "heavy_author");
  ctx.postIds = await seedPosts(ctx.server, ctx.author.id, ctx.options.posts);
}

/** 4 anonymous clients asking 15 pages of one author's posts at offsets up to 9,750 (the new cap is 10,000). */
export async function heavyAuthor(ctx) {
  const pages = Array.from(
    { length: 15 },
    (_, i) => `p${i}: posts(first: 20, offset: ${Math.min((i + 1) * 650, ctx.options.posts - 20)}) { id }`,
  );
  const query = `{ post(id: "${ctx.postIds[0]}") { author { ${pages.join(" ")} } } }`;
  const result = await hammer(ctx, { clients: 4, seconds: 15, makeBody: () => JSON.stringify({ query }) });
  return {
    got: `${ctx.options.posts} posts; ${result.got}; answer p50 ${result.details.p50Ms} ms, max ${result.details.maxMs} ms`,
    details: { posts: ctx.options.posts, ...result.details },
  };
}

// ---------------------------------------------------------------------------------------------
// nested-body

/** A JSON text of about `bytes` bytes: a GraphQL request whose variables hold arrays nested as deep as it fits. */
function nestedJson(prefix, suffix, bytes) {
  const depth = Math.floor((bytes - prefix.length - suffix.length) / 2);
  return `${prefix}${"[".repeat(depth)}${"]".repeat(depth)}${suffix}`;
}

/** 1 MB bodies of nested arrays at about 5 requests/s for 15 s, alternating HTTP and WebSocket messages. */
export async function nestedBody(ctx) {
  const { server } = ctx;
  const size = 1_000_000;
  const http = nestedJson('{"query":"{ __typename }","variables":{"x":', "}}", size);
  const message = nestedJson(
    '{"id":"1","type":"subscribe","payload":{"query":"subscription { postUpdated(id: \\"1\\") { id } }","variables":{"x":',
    "}}}",
    size,
  );
  const httpGot = new Tally();
  const wsGot = new Tally();
  const times = [];
  const pending = [];
  const started = performance.now();
  for (let i = 0; performance.now() - started < 15_000 && server.alive(); i++) {
    const due = started + i * 200;
    await sleep(Math.max(0, due - performance.now()));
    if (i % 2 === 0) {
      pending.push(
        postStreaming(server, http, { timeoutMs: 20_000 }).then(
          (r) => {
            httpGot.add(`${r.status}${r.code ? ` ${r.code}` : ""}`);
            times.push(r.ms);
          },
          (error) => httpGot.add(errorName(error)),
        ),
      );
    } else {
      pending.push(
        (async () => {
          const conn = await connect(server, { timeoutMs: 10_000 });
          if (conn.state !== "acked") return wsGot.add(conn.state);
          conn.ws.send(message);
          const code = await Promise.race([conn.closed, sleep(3000).then(() => undefined)]);
          wsGot.add(
            code === undefined
              ? conn.errors.total
                ? `error ${conn.errors}`
                : "no answer in 3 s (accepted)"
              : `close ${code}`,
          );
          conn.ws.terminate();
        })().catch((error) => wsGot.add(errorName(error))),
      );
    }
  }
  await Promise.all(pending);
  times.sort((a, b) => a - b);
  const p50 = times.length ? Math.round(times[Math.floor(times.length / 2)]) : null;
  return {
    got: `HTTP ${httpGot} (p50 ${p50} ms); WebSocket ${wsGot}`,
    details: { bodyBytes: http.length, http: httpGot.counts, httpP50Ms: p50, ws: wsGot.counts },
  };
}

// ---------------------------------------------------------------------------------------------
// throttled-logins

export async function prepareThrottled(ctx) {
  await register(ctx.server, "throttled");
}

/** 4 connections of failing logins for 10 s, with the default throttle: audit rows, database growth, log bytes. */
export async function throttledLogins(ctx) {
  const { server } = ctx;
  const db = await database(server);
  const count = async () => Number((await db.query("select count(*) as n from audit_events"))[0].n);
  const rowsBefore = await count();
  const sizeBefore = await db.size();
  const logBefore = server.logBytes();
  const body = JSON.stringify({
    query: "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
    variables: { i: { username: "throttled", password: "wrong password 1234" } },
  });
  const result = await hammer(ctx, { clients: 4, seconds: 10, makeBody: () => body, timeoutMs: 10_000, sizes: false });
  // Audit writes that were queued or coalesced land within a second or two.
  await sleep(2000);
  const rows = (await count()) - rowsBefore;
  const growth = (await db.size()) - sizeBefore;
  const logGrowth = server.logBytes() - logBefore;
  const byType = await db.query("select type, count(*) as n from audit_events group by type order by count(*) desc");
  const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
  return {
    got: `${result.got}; +${rows} audit rows, database +${kb(growth)}, log +${kb(logGrowth)}`,
    details: {
      ...result.details,
      auditRowsAdded: rows,
      auditRowsPerSecond: Number((rows / 10).toFixed(1)),
      auditByType: Object.fromEntries(byType.map((r) => [r.type, Number(r.n)])),
      databaseGrowthBytes: growth,
      logGrowthBytes: logGrowth,
    },
  };
}
