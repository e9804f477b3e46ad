// What runs after the rounds: overload (`me` on this server at GOALS.overloadFactor × the
// connections) and guard (bench/guard-cost.mjs, the guard's cost without HTTP, as a child process).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

import { GOALS } from "./goals.mjs";
import { checks, graphqlBody, ME, startLoad, summarise } from "./load.mjs";
import { childEnv, residentMegabytes, waitUntilQuiet } from "./processes.mjs";
import { root } from "./settings.mjs";
import { loginToken } from "./stacks.mjs";

const log = (message) => process.stderr.write(`${message}\n`);

/**
 * `me` on this server (npm start's flags) at GOALS.overloadFactor × the connections for one
 * duration: failed requests, RSS right after, and whether the process is still running and gives
 * a checked answer afterwards (an out-of-memory crash under the heap cap would end it).
 */
export async function runOverload(stack, settings) {
  const connections = settings.connections * GOALS.overloadFactor;
  stack.token = await loginToken(stack.url, stack.usernames[0]);
  log(`overload: me at ${connections} connections for ${settings.durationSeconds} s, this server`);
  const result = summarise(
    await startLoad({
      url: stack.url,
      query: ME,
      token: stack.token,
      connections,
      duration: settings.durationSeconds,
      verifyBody: checks.me,
    }).done,
  );
  const rssMb = residentMegabytes(stack.pid);
  await waitUntilQuiet(stack.pid);
  const answeredAfter = stack.handle.exited ? false : await answersMe(stack);
  const overload = {
    connections,
    durationSeconds: settings.durationSeconds,
    result,
    rssMb,
    alive: !stack.handle.exited,
    exitCode: stack.handle.exitCode,
    answeredAfter,
  };
  if (!overload.alive) log(`overload: this server exited (${overload.exitCode}):\n${stack.handle.output.slice(-2000)}`);
  log(
    `overload: ${result.rps.toFixed(0)} req/s, p99 ${result.p99.toFixed(1)} ms, ${result.errors} failed, RSS ${rssMb?.toFixed(0)} MB, ${overload.alive ? "alive" : "exited"}, ${answeredAfter ? "answers" : "does not answer"}`,
  );
  return overload;
}

/** Whether the stack gives a checked answer to `me` within 10 s. */
async function answersMe(stack) {
  try {
    const response = await fetch(stack.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
      body: graphqlBody(ME),
      signal: AbortSignal.timeout(10_000),
    });
    return response.status === 200 && checks.me(await response.text());
  } catch {
    return false;
  }
}

const execFileAsync = promisify(execFile);

/** Runs bench/guard-cost.mjs --json as a child process; its report, or `{ error }`. */
export async function runGuardCost(extraArgs) {
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [join(root, "bench/guard-cost.mjs"), "--json", ...extraArgs],
      { cwd: root, env: await childEnv(), timeout: 300_000, maxBuffer: 1 << 20 },
    );
    return JSON.parse(stdout.trim().split("\n").at(-1));
  } catch (error) {
    return { error: (error.stderr || error.message || String(error)).trim().split("\n").slice(0, 5).join(" ") };
  }
}
