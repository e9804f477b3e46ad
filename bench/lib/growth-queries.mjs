// The queries bench/growth.mjs times on a seeded database, through HTTP like any client, one at a
// time: each list and filter, the last-ADMIN check, and `me`; and the probe of issue 28's "one slow
// admin query stops the server": `me` asked while the slowest of them runs again and again.
import { EMPTY_TYPE, EVENTS_PER_USER } from "./growth-seed.mjs";

/** Every timed query of a seed (`p`, growth-seed.mjs's seedPlan): name, document, and whether it must be refused. */
export function growthQueries(p, adminId) {
  const mid = Math.floor(p.n / 2);
  // User 3 (the heavy author) is the one created right after user 2.
  const heavy = `users(first: 1, after: "${p.userId(2)}")`;
  const audit = (args) => `{ auditEvents(first: 50${args}) { id type userId at } }`;
  return [
    { name: "posts first", query: "{ posts(first: 50) { id title createdAt } }" },
    { name: "posts after (middle)", query: `{ posts(first: 50, after: "${p.postId(mid)}") { id title createdAt } }` },
    { name: "posts offset 10,000", query: "{ posts(first: 50, offset: 10000) { id title createdAt } }" },
    { name: "users first", query: "{ users(first: 50) { id username createdAt } }" },
    {
      name: "users after (middle)",
      query: `{ users(first: 50, after: "${p.userId(mid)}") { id username createdAt } }`,
    },
    { name: "users offset 10,000", query: "{ users(first: 50, offset: 10000) { id username createdAt } }" },
    { name: "users { posts } (50 users)", query: "{ users(first: 50) { id posts(first: 10) { id title } } }" },
    { name: "User.posts heavy author", query: `{ ${heavy} { id posts(first: 50) { id title } } }` },
    {
      name: "User.posts heavy after",
      query: `{ ${heavy} { id posts(first: 50, after: "${p.postId(Math.ceil(p.heavyPosts / 2))}") { id title } } }`,
    },
    { name: "auditEvents first", query: audit("") },
    { name: "auditEvents type (rows)", query: audit(', type: "LOGIN_FAILED"') },
    { name: "auditEvents type (none)", query: audit(`, type: "${EMPTY_TYPE}"`) },
    { name: "auditEvents userId", query: audit(`, userId: "${p.userId(mid)}"`) },
    { name: "auditEvents after (middle)", query: audit(`, after: "${(p.n * EVENTS_PER_USER) / 2}"`) },
    { name: "auditEvents offset 10,000", query: audit(", offset: 10000") },
    { name: "sessions", query: "{ sessions(first: 50) { id createdAt } }" },
    { name: "apiTokens", query: "{ apiTokens(first: 50) { id name } }" },
    {
      // The one active ADMIN takes ADMIN from itself: refused (lastAdmin) after the count, nothing written.
      name: "last-ADMIN check",
      query: `mutation { setUserRoles(userId: "${adminId}", roles: [USER]) { id } }`,
      refused: "lastAdmin",
    },
    { name: "me", query: "{ me { id username } }" },
  ];
}

/** One POST to `url`: its latency in ms and the parsed body. */
async function post(url, token, query) {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(120_000),
  });
  const body = await response.json();
  return { ms: performance.now() - started, status: response.status, body };
}

/** Throws unless the answer is what `q` expects: data, or its refusal (the rule's name in the error). */
function check(q, { status, body }) {
  const text = JSON.stringify(body);
  if (q.refused ? !text.includes(q.refused) : status !== 200 || body.errors)
    throw new Error(`${q.name}: ${status} ${text.slice(0, 400)}`);
}

/** The p-th percentile (nearest rank) of sorted `values`. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** p50, p99 and max of a list of latencies. */
export const summary = (times) => {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1),
    samples: sorted.length,
  };
};

/**
 * Times each query `samples` times (after `warmup` untimed runs), one request at a time, in rounds
 * of every query in turn, so that a burst of load from elsewhere on the machine falls on all of them
 * alike instead of on one query's block.
 */
export async function timeQueries(url, token, queries, { samples, warmup }) {
  const times = queries.map(() => []);
  for (let round = 0; round < warmup + samples; round++) {
    for (const [i, q] of queries.entries()) {
      const answer = await post(url, token, q.query);
      check(q, answer);
      if (round >= warmup) times[i].push(answer.ms);
    }
  }
  return queries.map((q, i) => ({ name: q.name, ...summary(times[i]) }));
}

/**
 * `me { id username }` every 10 ms (one at a time) while `slow` runs back to back for `ms`
 * milliseconds: me's latencies then, against the same number asked alone before.
 */
export async function probeMe(url, token, slow, ms) {
  const me = { name: "me", query: "{ me { id username } }" };
  const alone = await timeQueries(url, token, [me], { samples: 50, warmup: 3 });
  let running = true;
  const slowTimes = [];
  const loop = (async () => {
    while (running) {
      const answer = await post(url, token, slow.query);
      check(slow, answer);
      slowTimes.push(answer.ms);
    }
  })();
  const meTimes = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const answer = await post(url, token, me.query);
    check(me, answer);
    meTimes.push(answer.ms);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  running = false;
  await loop;
  return {
    slow: slow.name,
    slowP50: summary(slowTimes).p50,
    slowRuns: slowTimes.length,
    alone: alone[0],
    during: summary(meTimes),
  };
}
