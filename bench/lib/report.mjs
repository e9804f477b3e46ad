// The run's report: rows, goals and the flag sets side by side, with the machine, settings,
// stacks and scenarios it ran with; printed as a table and written to bench/results/.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { renderChart } from "./chart.mjs";
import { evaluateGoals } from "./goals.mjs";
import { buildRows, memoryFlagsComparison } from "./rows.mjs";
import { stacksOf } from "./scenarios.mjs";
import { root } from "./settings.mjs";
import { formatTable } from "./table.mjs";

/** The report of a finished run, as latest.json holds it, `table` (the printed text) included. */
export function buildReport({ startedAt, machine, settings, stacks, scenarios, startup, samples, overload, guard }) {
  const rows = buildRows(samples, scenarios, settings);
  const goals = evaluateGoals(rows, startup, { overload, guard }, settings);
  const memoryFlags = memoryFlagsComparison(rows, startup);
  const autocannonVersion = JSON.parse(
    readFileSync(join(root, "node_modules/autocannon/package.json"), "utf8"),
  ).version;

  const report = {
    command: "npm run bench",
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine,
    loadGenerator: `autocannon ${autocannonVersion}, in the bench process, on the same machine`,
    settings,
    stacks: stacks.map(({ id, label, nodeOptions, mallocArenaMax }) => ({
      id,
      label,
      ...(nodeOptions === undefined ? {} : { nodeOptions, mallocArenaMax }),
    })),
    scenarios: scenarios.map((scenario) => ({
      id: scenario.id,
      label: scenario.label,
      stacks: stacksOf(scenario, stacks).map((s) => s.id),
    })),
    startup,
    rows,
    memoryFlags,
    overload,
    guard,
    goals,
  };
  report.table = formatTable(report);
  return report;
}

/** Writes bench/results/latest.json and latest.svg. */
export function writeResults(report) {
  const out = join(root, "bench/results");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "latest.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, "latest.svg"), renderChart(report));
}
