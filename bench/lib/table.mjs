// The report as text: the table of rows, one line per phase and measure of the machine, the goals
// with PASS/FAIL, and each stack's `me` relative to this server. latest.json keeps it as `table`.
import { formatGoalValue } from "./chart.mjs";
import { rowOf } from "./rows.mjs";
import { STACKS } from "./stacks.mjs";

const mb = (value) => (value === null || value === undefined ? "-" : value.toFixed(0));

/** The report printed: what `npm run bench` shows on stdout. */
export function formatTable(report) {
  return [
    ...rowLines(report.rows),
    "",
    ...phaseLines(report),
    ...machineLines(report),
    "",
    ...goalLines(report.goals),
    ...relativeLines(report.rows),
    ...cpuLines(report.rows),
  ].join("\n");
}

/** The rows in aligned columns, a blank line between scenarios (burst's three parts together). */
function rowLines(rows) {
  const header = ["stack", "scenario", "req/s", "range", "CPU µs", "p50 ms", "p99 ms", "errors", "RSS MB"];
  const lines = rows.map((r) => [
    r.stack,
    r.label,
    r.rps.toFixed(0),
    r.rounds.length > 1 ? `${r.rpsMin.toFixed(0)}-${r.rpsMax.toFixed(0)}` : "-",
    r.cpuUs === null || r.cpuUs === undefined ? "-" : r.cpuUs.toFixed(0),
    r.p50.toFixed(1),
    r.p99.toFixed(1),
    String(r.errors),
    r.rssMb === null ? "-" : r.rssMb.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  const out = [format(header), widths.map((w) => "-".repeat(w)).join("  ")];
  let previous;
  for (let i = 0; i < rows.length; i++) {
    const group = rows[i].scenario.startsWith("burst") ? "burst" : rows[i].scenario;
    if (previous !== undefined && group !== previous) out.push("");
    previous = group;
    out.push(format(lines[i]));
  }
  return out;
}

/** A line each for overload, guard and the memory flags, where they ran. */
function phaseLines({ overload, guard, memoryFlags }) {
  const out = [];
  if (overload) {
    out.push(
      `overload, this (npm start's flags), { me { id } } at ${overload.connections} connections for ${overload.durationSeconds} s: ` +
        `${overload.result.rps.toFixed(0)} req/s, p50 ${overload.result.p50.toFixed(1)} ms, p99 ${overload.result.p99.toFixed(1)} ms, ` +
        `${overload.result.errors} failed of ${overload.result.requests}, RSS ${mb(overload.rssMb)} MB, ` +
        `${overload.alive ? "still running" : `exited (${overload.exitCode})`}, ${overload.answeredAfter ? "answered afterwards" : "did not answer afterwards"}`,
    );
  }
  if (guard && !guard.error) {
    out.push(
      `guard (bench/guard-cost.mjs): ${guard.usPerGuardedField.toFixed(2)} µs per guarded field (rounds ${guard.min.toFixed(2)} to ${guard.max.toFixed(2)}); ` +
        `${guard.fields} × me { id } per execution: ${guard.guardedUsPerExecution.toFixed(0)} µs with the guard, ${guard.unguardedUsPerExecution.toFixed(0)} µs without`,
    );
  }
  if (memoryFlags) {
    out.push(
      `memory flags, this / this-default (same scenarios: ${memoryFlags.scenarios.join(", ")}): ` +
        `RSS after load ${mb(memoryFlags.rssAfterLoadMb.this)} / ${mb(memoryFlags.rssAfterLoadMb["this-default"])} MB (largest reading), ` +
        `at start ${mb(memoryFlags.rssAtStartMb.this)} / ${mb(memoryFlags.rssAtStartMb["this-default"])} MB; req/s ratio ` +
        Object.entries(memoryFlags.throughputRatio)
          .map(([scenario, ratio]) => `${scenario} ${ratio.toFixed(2)}`)
          .join(", "),
    );
  }
  return out;
}

/** Startup times, the machine and its load, and RSS at start. */
function machineLines({ startup, machine }) {
  const out = [
    `startup to first /graphql answer: npm start ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")} ms; ` +
      `node directly: ${Object.entries(startup.direct)
        .map(([s, ms]) => `${s} ${ms.toFixed(0)}`)
        .join(", ")} ms`,
    `machine: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}; load average (1, 5, 15 min) ${machine.loadAverageAtStart.join(" ")} at start, ${machine.loadAverageAtEnd.join(" ")} at end`,
  ];
  if (machine.loadAverageBeforeRound.length > 0) {
    out.push(
      `load average (1 min) before each round: ${machine.loadAverageBeforeRound.map((l) => l[0].toFixed(2)).join(", ")}`,
    );
  }
  out.push(
    `RSS right after start (MB): ${Object.entries(startup.rssAtStartMb)
      .map(([s, value]) => `${s} ${mb(value)}`)
      .join(", ")}`,
  );
  return out;
}

function goalLines(goals) {
  return [
    "goals:",
    ...goals.map((goal) => {
      const rounds = goal.perRound ? ` (rounds: ${goal.perRound.map((v) => v.toFixed(2)).join(", ")})` : "";
      return `  ${goal.pass ? "PASS" : "FAIL"}  ${goal.label}: ${formatGoalValue(goal)}, goal ${goal.threshold}${rounds}`;
    }),
  ];
}

/** `me` over `typename` on this server (informational), and each stack's `me` relative to it. */
function relativeLines(rows) {
  const out = [];
  const me = rowOf(rows, "this", "me");
  const typename = rowOf(rows, "this", "typename");
  if (me && typename) {
    out.push("");
    out.push(
      `informational: { me { id } } / { __typename } (no token), this server: ${(me.rps / typename.rps).toFixed(2)} ` +
        `(rounds: ${me.rounds.map((r, i) => (r.rps / typename.rounds[i].rps).toFixed(2)).join(", ")})`,
    );
  }
  if (me) {
    out.push("");
    out.push("authenticated { me { id } }, relative to this server (npm start's flags):");
    for (const stack of STACKS.filter((s) => s.id !== "this" && rowOf(rows, s.id, "me"))) {
      out.push(`  ${stack.id.padEnd(13)} ${(rowOf(rows, stack.id, "me").rps / me.rps).toFixed(2)}`);
    }
  }
  return out;
}

/**
 * The fixed-rate `me` runs side by side: each stack's CPU per request with its rounds, and its
 * ratios to this server (lane on) and to Mercurius, with what each logs per request.
 */
function cpuLines(rows) {
  const cpuRows = rows.filter((r) => r.scenario === "me-cpu" && r.cpuUs);
  const self = cpuRows.find((r) => r.stack === "this");
  const mercurius = cpuRows.find((r) => r.stack === "mercurius");
  if (!self) return [];
  const out = ["", `${self.label}: server CPU time per answered request, median of the rounds:`];
  for (const r of cpuRows) {
    const ratios = [`${(r.cpuUs / self.cpuUs).toFixed(2)} × this`];
    if (mercurius) ratios.push(`Mercurius / it ${(mercurius.cpuUs / r.cpuUs).toFixed(2)}`);
    const rps = rowOf(rows, r.stack, "me");
    const mercuriusRps = rowOf(rows, "mercurius", "me");
    if (rps && mercuriusRps) ratios.push(`req/s it / Mercurius ${(rps.rps / mercuriusRps.rps).toFixed(2)}`);
    out.push(
      `  ${r.stack.padEnd(13)} ${r.cpuUs.toFixed(0).padStart(5)} µs (rounds ${r.rounds.map((x) => x.cpuUs?.toFixed(0) ?? "-").join(", ")}); ${ratios.join(", ")}`,
    );
  }
  out.push(
    "  this and this-lane-off run at LOG_LEVEL=warn (no per-request log lines; npm start's default, info, writes two",
    "  per request), the Mercurius peer with Fastify's logger off: none of the three logs a line per request",
  );
  return out;
}
