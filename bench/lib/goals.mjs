// The goals of issues 5 and 14, each a threshold on the rows or on a phase, evaluated to PASS or
// FAIL in a fixed order; docs/performance.md's table of goals describes each.
import { largestRss, median, rowOf } from "./rows.mjs";

export const GOALS = {
  // Issue 28: `me` at 0.9 of Mercurius, in requests/s and in CPU per request at a fixed rate.
  versusMercurius: 0.9,
  tokenOverhead: 0.97,
  guardMicroseconds: 3,
  rssMegabytes: 150,
  burstP99Factor: 3,
  startupMs: 1000,
  memoryFlagsThroughput: 0.95,
  overloadFactor: 3,
};

const perRound = (a, b, field) => a.rounds.map((r, i) => r[field] / b.rounds[i][field]);

/** A goal on `a[field] / b[field]` being at least `threshold`, with the ratio of every round. */
function ratioGoal(id, label, a, b, threshold, field = "rps") {
  return {
    id,
    label,
    value: a[field] / b[field],
    unit: "ratio",
    threshold: `>= ${threshold}`,
    pass: a[field] / b[field] >= threshold,
    perRound: perRound(a, b, field),
  };
}

/**
 * Every goal the rows and phases allow (a goal whose rows or phase did not run is left out), in
 * the order of the table: each `{ id, label, value, unit, threshold, pass, perRound? }`.
 */
export function evaluateGoals(rows, startup, { overload, guard }, settings) {
  return [
    ...throughputGoals(rows),
    ...(guard ? [guardGoal(guard)] : []),
    ...serverGoals(rows),
    ...memoryFlagsGoals(rows),
    ...burstGoals(rows, settings),
    ...(overload ? [overloadGoal(overload)] : []),
    ...startupGoals(startup),
  ];
}

function throughputGoals(rows) {
  const thisMe = rowOf(rows, "this", "me");
  const mercuriusMe = rowOf(rows, "mercurius", "me");
  const thisTypename = rowOf(rows, "this", "typename");
  const thisTypenameToken = rowOf(rows, "this", "typename-token");
  const goals = [];
  if (thisMe && mercuriusMe) {
    goals.push(
      ratioGoal(
        "versus-mercurius",
        "authenticated { me { id } }: this server / Mercurius + @fastify/jwt",
        thisMe,
        mercuriusMe,
        GOALS.versusMercurius,
      ),
    );
  }
  const thisCpu = rowOf(rows, "this", "me-cpu");
  const mercuriusCpu = rowOf(rows, "mercurius", "me-cpu");
  if (thisCpu?.cpuUs && mercuriusCpu?.cpuUs) {
    // CPU per request is a cost: Mercurius's over ours is the share of its efficiency we reach.
    const value = mercuriusCpu.cpuUs / thisCpu.cpuUs;
    goals.push({
      id: "versus-mercurius-cpu",
      label: `authenticated { me { id } } at a fixed rate, CPU per request: Mercurius + @fastify/jwt / this server (${mercuriusCpu.cpuUs.toFixed(0)} / ${thisCpu.cpuUs.toFixed(0)} µs)`,
      value,
      unit: "ratio",
      threshold: `>= ${GOALS.versusMercurius}`,
      pass: value >= GOALS.versusMercurius,
      perRound: thisCpu.rounds.map((r, i) => mercuriusCpu.rounds[i].cpuUs / r.cpuUs),
    });
  }
  if (thisTypenameToken && thisTypename) {
    goals.push(
      ratioGoal(
        "token-overhead",
        "{ __typename } with a valid Bearer token / without, this server",
        thisTypenameToken,
        thisTypename,
        GOALS.tokenOverhead,
      ),
    );
  }
  return goals;
}

function guardGoal(guard) {
  return {
    id: "guard",
    label: guard.error
      ? `guard (@Requires) per guarded field, graphql-js execute without HTTP: did not run (${guard.error})`
      : `guard (@Requires) per guarded field, graphql-js execute without HTTP (${guard.fields} × me { id }, median of ${guard.rounds.length}, rounds ${guard.min.toFixed(2)} to ${guard.max.toFixed(2)} µs)`,
    value: guard.error ? null : guard.usPerGuardedField,
    unit: "µs",
    threshold: `<= ${GOALS.guardMicroseconds}`,
    pass: !guard.error && guard.usPerGuardedField <= GOALS.guardMicroseconds,
  };
}

/** No failed request on either flag set of this server, and its RSS under the cap. */
function serverGoals(rows) {
  const goals = [];
  const serverRows = rows.filter((r) => r.stack === "this" || r.stack === "this-default");
  if (serverRows.length > 0) {
    const failed = serverRows.reduce((sum, r) => sum + r.errors, 0);
    const requests = serverRows.reduce((sum, r) => sum + r.requests, 0);
    goals.push({
      id: "no-failures",
      label: `failed requests, this server (both flag sets), every scenario (${requests} requests)`,
      value: failed,
      unit: "requests",
      threshold: "= 0",
      pass: failed === 0,
    });
  }
  const thisRss = largestRss(
    rows,
    "this",
    rows.filter((r) => r.stack === "this").map((r) => r.scenario),
  );
  if (thisRss !== null) {
    goals.push({
      id: "rss",
      label: "resident memory after load, this server with npm start's flags, SQLite (largest reading)",
      value: thisRss,
      unit: "MB",
      threshold: `<= ${GOALS.rssMegabytes}`,
      pass: thisRss <= GOALS.rssMegabytes,
    });
  }
  return goals;
}

function memoryFlagsGoals(rows) {
  const goals = [];
  for (const scenario of ["typename", "me"]) {
    const flags = rowOf(rows, "this", scenario);
    const defaults = rowOf(rows, "this-default", scenario);
    if (!flags || !defaults) continue;
    goals.push(
      ratioGoal(
        `memory-flags-${scenario}`,
        `${flags.label}: npm start's memory flags / Node's default flags, this server`,
        flags,
        defaults,
        GOALS.memoryFlagsThroughput,
      ),
    );
  }
  return goals;
}

function burstGoals(rows, settings) {
  const idle = rowOf(rows, "this", "burst-idle");
  const during = rowOf(rows, "this", "burst-during");
  if (!idle || !during) return [];
  const value = during.p99 / idle.p99;
  return [
    {
      id: "login-burst",
      label: `me p99 during ${settings.burstLogins} concurrent logins / idle p99 (${during.p99.toFixed(1)} / ${idle.p99.toFixed(1)} ms)`,
      value,
      unit: "ratio",
      threshold: `<= ${GOALS.burstP99Factor}`,
      pass: value <= GOALS.burstP99Factor,
      perRound: perRound(during, idle, "p99"),
    },
  ];
}

function overloadGoal(overload) {
  return {
    id: "overload",
    label:
      `no crash under { me { id } } at ${overload.connections} connections (${GOALS.overloadFactor} ×), npm start's flags ` +
      `(${overload.result.errors} failed of ${overload.result.requests}, RSS ${overload.rssMb === null ? "-" : overload.rssMb.toFixed(0)} MB; ` +
      `${overload.answeredAfter ? "answered" : "no answer"} afterwards)`,
    value:
      overload.alive && overload.answeredAfter
        ? "alive"
        : overload.alive
          ? "not answering"
          : `exited (${overload.exitCode})`,
    unit: "state",
    threshold: "alive",
    pass: overload.alive && overload.answeredAfter,
  };
}

function startupGoals(startup) {
  if (startup.npmStartMs.length === 0) return [];
  const value = median(startup.npmStartMs);
  return [
    {
      id: "startup",
      label: `npm start to the first /graphql answer, SQLite, built (median of ${startup.npmStartMs.length})`,
      value,
      unit: "ms",
      threshold: `< ${GOALS.startupMs}`,
      pass: value < GOALS.startupMs,
    },
  ];
}
