// The table's rows from the rounds' samples (medians, ranges, sums, largest RSS), and the
// side-by-side figures of this server's two flag sets.
import { STACKS } from "./stacks.mjs";

export const median = (xs) => {
  const sorted = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** The rows a scenario's runs give: one, or for burst its three parts, each `[id, label, pick]`. */
function partsOf(scenario, settings) {
  if (scenario.id !== "burst") return [[scenario.id, scenario.label, (r) => r.result]];
  return [
    ["burst-idle", `me at ${settings.burstRate}/s, idle`, (r) => r.result.idle],
    ["burst-during", `me at ${settings.burstRate}/s, ${settings.burstLogins} logins running`, (r) => r.result.during],
    ["burst-logins", `the ${settings.burstLogins} concurrent logins`, (r) => r.result.logins],
  ];
}

/**
 * One table row per stack and (sub-)scenario: medians over rounds with the range of req/s, errors
 * summed, RSS the largest reading.
 */
export function buildRows(samples, scenarios, settings) {
  const rows = [];
  for (const scenario of scenarios) {
    for (const stack of STACKS) {
      const runs = samples.filter((s) => s.scenario === scenario.id && s.stack === stack.id);
      if (runs.length === 0) continue;
      for (const [id, label, pick] of partsOf(scenario, settings)) {
        const picked = runs.map(pick);
        rows.push({
          stack: stack.id,
          scenario: id,
          label,
          rps: median(picked.map((p) => p.rps)),
          rpsMin: Math.min(...picked.map((p) => p.rps)),
          rpsMax: Math.max(...picked.map((p) => p.rps)),
          cpuUs: median(picked.map((p) => p.cpuUs)),
          p50: median(picked.map((p) => p.p50)),
          p99: median(picked.map((p) => p.p99)),
          errors: picked.reduce((sum, p) => sum + p.errors, 0),
          requests: picked.reduce((sum, p) => sum + p.requests, 0),
          rssMb: Math.max(...runs.map((r) => r.rssMb ?? 0)) || null,
          rounds: picked.map((p, i) => ({ ...p, rssMb: runs[i].rssMb })),
        });
      }
    }
  }
  return rows;
}

/** The row of a stack and (sub-)scenario, or undefined. */
export function rowOf(rows, stack, scenario) {
  return rows.find((r) => r.stack === stack && r.scenario === scenario);
}

/** The largest RSS reading of a stack after the runs of these scenarios, or null. */
export function largestRss(rows, stack, scenarios) {
  const readings = rows.filter((r) => r.stack === stack && scenarios.includes(r.scenario)).map((r) => r.rssMb ?? 0);
  return readings.length > 0 ? Math.max(...readings) || null : null;
}

/** The scenarios both `this` and `this-default` run, so their RSS readings compare. */
const SIDE_BY_SIDE = ["typename", "typename-token", "me"];

/** The side-by-side figures of the two flag sets: RSS over the scenarios both ran, throughput ratios. */
export function memoryFlagsComparison(rows, startup) {
  const row = (stack, scenario) => rowOf(rows, stack, scenario);
  if (!rows.some((r) => r.stack === "this-default")) return null;
  const throughput = {};
  for (const scenario of SIDE_BY_SIDE) {
    const flags = row("this", scenario);
    const defaults = row("this-default", scenario);
    if (flags && defaults) throughput[scenario] = flags.rps / defaults.rps;
  }
  return {
    scenarios: SIDE_BY_SIDE.filter((id) => row("this-default", id)),
    rssAfterLoadMb: {
      this: largestRss(rows, "this", SIDE_BY_SIDE),
      "this-default": largestRss(rows, "this-default", SIDE_BY_SIDE),
    },
    rssAtStartMb: {
      this: startup.rssAtStartMb.this ?? null,
      "this-default": startup.rssAtStartMb["this-default"] ?? null,
    },
    throughputRatio: throughput,
  };
}
