// The stacks the bench compares: this server (twice, with npm start's memory flags and with
// Node's defaults) and the peers in bench/peers/, each started as its own process; the timing of
// `npm start`; and what a stack needs before its load (users, posts, ended sessions, a token).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import jwt from "jsonwebtoken";

import { startEnv } from "../../scripts/memory-defaults.mjs";
import { AUDIENCE, ISSUER, USER as PEER_USER } from "../peers/shared.mjs";
import { LOGIN, PASSWORD } from "./load.mjs";
import {
  childEnv,
  freePort,
  serverEnv,
  startProcess,
  stopProcess,
  waitForGraphql,
  waitForReadyLine,
} from "./processes.mjs";
import { root } from "./settings.mjs";

/**
 * The stacks, in table order; `script` is a peer in bench/peers/, `server` marks this server (with
 * npm start's memory flags or Node's defaults, `env` added to its settings), `scenarios` limits a
 * stack to those scenarios. `this-lane-off` is the same server as `this` with the compiled lane
 * off: Apollo's pipeline for every request, what the lane is measured against.
 */
export const STACKS = [
  { id: "this", label: "this server, npm start's memory flags", server: "npm-start-flags" },
  {
    id: "this-default",
    label: "this server, Node's default flags",
    server: "node-defaults",
    scenarios: ["typename", "typename-token", "me"],
  },
  {
    id: "this-lane-off",
    label: "this server, npm start's memory flags, GRAPHQL_COMPILED_LANE=false",
    server: "npm-start-flags",
    env: { GRAPHQL_COMPILED_LANE: "false" },
    scenarios: ["me", "me-cpu"],
  },
  { id: "mercurius", label: "Mercurius (graphql-jit) + @fastify/jwt", script: "mercurius.mjs" },
  {
    id: "naive-apollo",
    label: "Apollo standalone + type-graphql + jsonwebtoken, string secret",
    script: "naive-apollo.mjs",
  },
  { id: "yoga", label: "GraphQL Yoga + @graphql-yoga/plugin-jwt", script: "yoga.mjs" },
  { id: "bare-http", label: "bare node:http, fixed JSON body", script: "bare-http.mjs" },
];

const secret = randomBytes(48).toString("base64url");

const temporaryDirs = [];
function temporaryDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporaryDirs.push(dir);
  return dir;
}
process.on("exit", () => {
  for (const dir of temporaryDirs) rmSync(dir, { recursive: true, force: true });
});

/** Starts one stack and waits for its first 200 from /graphql; the stack running, with its startup time. */
export async function startStack(stackToStart) {
  let stack = stackToStart;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const since = performance.now();
  let handle;
  if (stack.server) {
    const dataDir = temporaryDir("gta-bench-");
    // What `npm start` runs: its memory flags in NODE_OPTIONS and MALLOC_ARENA_MAX (startEnv), or
    // for this-default the same without them (the caller's own NODE_OPTIONS kept in both). cwd is
    // the data directory, so a developer's .env in the repository does not leak in.
    const env = await serverEnv({ port, dataDir, secret, extra: stack.env });
    if (stack.server === "npm-start-flags") Object.assign(env, startEnv(env));
    else delete env.MALLOC_ARENA_MAX;
    handle = startProcess(process.execPath, [join(root, "dist/bundle/main.js")], { env, cwd: dataDir });
    stack = { ...stack, nodeOptions: env.NODE_OPTIONS ?? "", mallocArenaMax: env.MALLOC_ARENA_MAX ?? null };
  } else {
    handle = startProcess(process.execPath, [join(root, "bench/peers", stack.script), String(port)], {
      env: await childEnv({ PORT: String(port), BENCH_JWT_SECRET: secret }),
      cwd: root,
    });
    await waitForReadyLine(handle);
  }
  const startupMs = await waitForGraphql(handle, url, since);
  return { ...stack, handle, pid: handle.process.pid, url, startupMs };
}

/** Time from `npm start` (prestart's build check included) to the first 200 from /graphql. */
export async function timeNpmStart() {
  const port = await freePort();
  const dataDir = temporaryDir("gta-bench-start-");
  const npm = process.env.npm_execpath;
  const [command, commandArgs] = npm && npm.endsWith(".js") ? [process.execPath, [npm, "start"]] : ["npm", ["start"]];
  const since = performance.now();
  const handle = startProcess(command, commandArgs, {
    env: await serverEnv({ port, dataDir, secret }),
    cwd: root,
    group: true,
  });
  try {
    return await waitForGraphql(handle, `http://127.0.0.1:${port}/graphql`, since);
  } finally {
    await stopProcess(handle);
  }
}

// ---------------------------------------------------------------------------------------------
// GraphQL over fetch, for setting up and checking

async function graphql(url, query, variables, token) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (response.status !== 200 || body.errors) {
    throw new Error(`${query.slice(0, 60)} answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
  }
  return body.data;
}

async function inBatches(items, size, fn) {
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/**
 * Registers the login users, gives the first one posts, and ends some sessions so that the
 * revocation list the context consults on every request is not empty.
 */
async function seedThisServer(url, settings) {
  const usernames = Array.from({ length: settings.loginUsers }, (_, i) => `bench-user-${i + 1}`);
  const tokens = await inBatches(usernames, 2, async (username) => {
    const data = await graphql(url, "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }", {
      input: { username, password: PASSWORD },
    });
    return data.register.accessToken;
  });
  for (let i = 0; i < settings.postsPerUser; i++) {
    await graphql(
      url,
      "mutation($input: CreatePostInput!) { createPost(input: $input) { id } }",
      {
        input: { title: `Post ${i + 1}`, body: "A post for the benchmark's me + posts query." },
      },
      tokens[0],
    );
  }
  const ended = Array.from({ length: settings.endedSessions }, (_, i) => usernames[i % usernames.length]);
  await inBatches(ended, 2, async (username) => {
    const token = await loginToken(url, username);
    await graphql(url, "mutation { logout }", undefined, token);
  });
  return usernames;
}

/** A fresh access token of `username` on this server. */
export async function loginToken(url, username) {
  return (await graphql(url, LOGIN, { input: { username, password: PASSWORD } })).login.accessToken;
}

function peerToken() {
  return jwt.sign({ sub: PEER_USER.id }, secret, {
    algorithm: "HS256",
    issuer: ISSUER,
    audience: AUDIENCE,
    expiresIn: "2h",
  });
}

/**
 * Both flag sets of this server get the same users, posts and ended sessions, and a token of the
 * first user; each peer gets a token signed with the shared secret.
 */
export async function prepareStacks(stacks, settings) {
  for (const server of stacks.filter((s) => s.server)) {
    server.usernames = await seedThisServer(server.url, settings);
    server.token = await loginToken(server.url, server.usernames[0]);
  }
  for (const peer of stacks.filter((s) => !s.server)) peer.token = peerToken();
}
