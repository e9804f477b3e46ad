// The subscribers of bench/fanout.mjs, in a process of their own so that reading thousands of
// events does not delay the writer's clock in the bench process.
//
// Forked with IPC. { open: { wsUrl, token, sockets, perSocket, query } } opens `sockets` graphql-ws
// sockets signed in with `token` (postCreated needs PROFILE_READ) (the `ws` package, the graphql-transport-ws protocol spoken directly, as
// bench/lib/abuse-sockets.mjs does), each with `perSocket` subscriptions of `query`, and answers
// { opened: { acked, refused, subscriptions } }. Every `next` that arrives is recorded per post id:
// how many subscriptions received it, how many twice, and the first and last arrival on the
// system's monotonic clock (process.hrtime, shared by every process on the machine, so the bench
// compares it with the moment its mutation was answered). { report: ids } answers { report } with
// those numbers for each id; { stats } answers the totals; { close: true } closes every socket and exits.
import { hrtime } from "node:process";

import WebSocket from "ws";

const now = () => Number(hrtime.bigint()) / 1e6;

const sockets = [];
let subscriptions = 0;
/** post id → { count, duplicates, first, last, seen: Uint8Array over subscriptions } */
const posts = new Map();
const closes = {};
const errors = {};

function record(subscriber, data) {
  const at = now();
  let message;
  try {
    message = JSON.parse(data.toString());
  } catch {
    return;
  }
  if (message.type === "ping") {
    subscriber.ws.send('{"type":"pong"}');
    return;
  }
  if (message.type === "error") {
    const code = message.payload?.[0]?.extensions?.code ?? "error";
    errors[code] = (errors[code] ?? 0) + 1;
    return;
  }
  if (message.type !== "next") return;
  const id = message.payload?.data?.postCreated?.id;
  if (!id) {
    const code = message.payload?.errors?.[0]?.extensions?.code ?? "no data";
    errors[`event ${code}`] = (errors[`event ${code}`] ?? 0) + 1;
    return;
  }
  let post = posts.get(id);
  if (!post) {
    post = { count: 0, duplicates: 0, first: at, last: at, seen: new Uint8Array(subscriptions) };
    posts.set(id, post);
  }
  const index = subscriber.base + Number(message.id);
  if (post.seen[index]) post.duplicates++;
  else {
    post.seen[index] = 1;
    post.count++;
  }
  post.last = at;
}

/** One anonymous socket, acknowledged (resolves true) or refused (false). */
function open(wsUrl, init) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, "graphql-transport-ws", { handshakeTimeout: 20_000 });
    const subscriber = { ws, base: 0, acked: false };
    ws.on("open", () => ws.send(init));
    ws.on("message", (data) => {
      if (!subscriber.acked) {
        if (data.toString().includes('"connection_ack"')) {
          subscriber.acked = true;
          sockets.push(subscriber);
          resolve(true);
        }
        return;
      }
      record(subscriber, data);
    });
    ws.on("unexpected-response", (request, response) => {
      closes[`HTTP ${response.statusCode}`] = (closes[`HTTP ${response.statusCode}`] ?? 0) + 1;
      response.resume();
      request.destroy();
      resolve(false);
    });
    ws.on("error", () => resolve(false));
    ws.on("close", (code) => {
      closes[code] = (closes[code] ?? 0) + 1;
      resolve(false);
    });
  });
}

async function openAll({ wsUrl, token, sockets: count, perSocket, query }) {
  const init = JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
  let refused = 0;
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => open(wsUrl, init)));
    refused += batch.filter((ok) => !ok).length;
  }
  // Subscription ids are 0…perSocket-1 on each socket; index = the socket's base + id.
  for (const subscriber of sockets) {
    subscriber.base = subscriptions;
    subscriptions += perSocket;
    for (let j = 0; j < perSocket; j++)
      subscriber.ws.send(JSON.stringify({ id: String(j), type: "subscribe", payload: { query } }));
  }
  return { acked: sockets.length, refused, subscriptions };
}

process.on("message", async (message) => {
  if (message.open) process.send({ opened: await openAll(message.open) });
  else if (message.report)
    process.send({
      report: message.report.map((id) => {
        const post = posts.get(id);
        return post
          ? { id, count: post.count, duplicates: post.duplicates, first: post.first, last: post.last }
          : { id, count: 0, duplicates: 0 };
      }),
    });
  else if (message.stats)
    process.send({ stats: { closes, errors, open: sockets.filter((s) => s.ws.readyState === 1).length } });
  else if (message.close) {
    for (const subscriber of sockets) subscriber.ws.terminate();
    process.exit(0);
  }
});
