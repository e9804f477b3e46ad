// Child processes for the benchmark: start a stack, learn when it answers, read its memory and
// CPU use from /proc, and stop it. Only processes started here are ever signalled.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

const started = new Set();

// Whatever happens to the bench, no stack outlives it.
process.on("exit", () => {
  for (const child of started) {
    try {
      process.kill(child.group ? -child.process.pid : child.process.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(130));
}

/** A free TCP port on loopback (the kernel's pick; released before the stack binds it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Spawns a command and keeps its output for error messages. `group: true` gives it its own
 * process group so that `npm start` and the node it starts stop together.
 */
export function startProcess(command, args, { env, cwd, group = false }) {
  const child = spawn(command, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"], detached: group });
  const handle = { process: child, group, output: "", exited: false, exitCode: null };
  const keep = (chunk) => {
    handle.output = (handle.output + chunk.toString()).slice(-8000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  handle.exit = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      handle.exited = true;
      handle.exitCode = code ?? signal;
      started.delete(handle);
      resolve();
    });
  });
  started.add(handle);
  return handle;
}

/** Resolves when the process prints a line starting with "ready"; rejects if it exits or times out. */
export async function waitForReadyLine(handle, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!/^ready\b/m.test(handle.output)) {
    if (handle.exited) throw new Error(`exited (${handle.exitCode}) before it was ready:\n${handle.output}`);
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs} ms:\n${handle.output}`);
    await sleep(5);
  }
}

/**
 * Polls `url` with a GraphQL POST every 5 ms until it answers 200, and returns the milliseconds
 * since `since` (a performance.now() value).
 */
export async function waitForGraphql(handle, url, since, timeoutMs = 30_000) {
  const deadline = since + timeoutMs;
  for (;;) {
    if (handle.exited) throw new Error(`exited (${handle.exitCode}) before answering:\n${handle.output}`);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"query":"{ __typename }"}',
      });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now() - since;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`no answer from ${url} after ${timeoutMs} ms:\n${handle.output}`);
    await sleep(5);
  }
}

/** Resident set size of a process in MB (VmRSS from /proc), or null where /proc is missing. */
export function residentMegabytes(pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** utime + stime of a process in clock ticks (1/100 s on Linux), or null where /proc is missing. */
export function cpuTicks(pid) {
  try {
    // Fields after the command name (which may contain spaces): utime and stime are 14th and 15th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

/**
 * CPU time a process has run so far, in nanoseconds, summed over its threads (the first field of
 * each /proc/<pid>/task/<tid>/schedstat, the scheduler's own count, far finer than utime + stime's
 * 10 ms ticks); utime + stime where schedstat is missing; null where /proc is. Threads that exit
 * take their time with them, which the servers measured here (long-lived threads) never do.
 */
export function cpuNanoseconds(pid) {
  try {
    let total = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    }
    return total;
  } catch {
    const ticks = cpuTicks(pid);
    return ticks === null ? null : ticks * 1e7;
  }
}

/**
 * Waits until the process uses under ~10 % of a core over 300 ms (at most `maxMs`), so that work
 * left over from one run (logins still hashing after the load stopped) does not land in the next.
 */
export async function waitUntilQuiet(pid, maxMs = 15_000) {
  const deadline = Date.now() + maxMs;
  let before = cpuTicks(pid);
  if (before === null) return sleep(500);
  while (Date.now() < deadline) {
    await sleep(300);
    const after = cpuTicks(pid);
    if (after === null || after - before <= 3) return;
    before = after;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopProcess(handle, graceMs = 5000) {
  if (handle.exited) return;
  const pid = handle.group ? -handle.process.pid : handle.process.pid;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }, graceMs);
  await handle.exit;
  // A group (npm and the node it started) is gone only when its last member is.
  while (handle.group && groupAlive(handle.process.pid)) await sleep(20);
  clearTimeout(timer);
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Environment for a child: ours, without anything the server's config reads, in production, plus `extra`. */
export async function childEnv(extra = {}) {
  const { CONFIG_VARIABLES } = await import("../../dist/src/config.js");
  const env = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete env[name];
  return { ...env, NODE_ENV: "production", ...extra };
}

/**
 * The measured server's environment: production on loopback `port`, SQLite in `dataDir`, and its
 * metrics listener on a free port of its own (on, as by default, but never colliding with another
 * server on 9464). The load signs in with correct passwords only, which the throttle does not
 * count; the high limits make sure a mistake in a bench shows up as failed logins, not RATE_LIMITED.
 */
export async function serverEnv({ port, dataDir, secret, extra = {} }) {
  return childEnv({
    HOST: "127.0.0.1",
    PORT: String(port),
    METRICS_PORT: String(await freePort()),
    DATA_DIR: dataDir,
    JWT_SECRET_KEY: secret,
    LOG_LEVEL: "warn",
    LOGIN_MAX_FAILURES_PER_USER_IP: "1000000",
    LOGIN_MAX_FAILURES_PER_IP: "1000000",
    // The login scenario signs a few users in thousands of times: measured, not rate limited.
    LOGIN_MAX_PER_USER: "0",
    // ...and each login starts a session: with the default cap of 20 live sessions per user the
    // burst scenario's token (bench-user-1's) would be ended by the login scenario before it.
    SESSIONS_MAX_PER_USER: "1000000",
    ...extra,
  });
}

/** `gql(query, variables, token)` against `url`: the data, or a throw with the errors. */
export function graphqlCaller(url) {
  return async (query, variables, token) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    const body = await response.json();
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
}
