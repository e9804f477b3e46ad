// bench/growth.mjs's report: one table per database (p50/p99 in ms per size, and each query's
// verdicts against the goal), the seeding times, and the probe of `me` during the slowest query.

const GOAL_MS = 5;
const GOAL_SIZE = 1_000_000;
const GOAL_RATIO = 2;

const short = (n) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));
const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/**
 * Each database's and query's verdicts: p50 at 1M at most 5 ms ("n/a" without a 1M run), and no
 * size's p50 more than twice the smallest size's (the worst ratio given).
 */
export function verdicts(runs) {
  const out = [];
  for (const db of [...new Set(runs.map((r) => r.db))]) {
    const mine = runs.filter((r) => r.db === db).sort((a, b) => a.size - b.size);
    const base = mine[0];
    const atGoal = mine.find((r) => r.size === GOAL_SIZE);
    for (const { name } of base.results) {
      const p50Of = (run) => run.results.find((r) => r.name === name).p50;
      const worstRatio = Math.max(...mine.map((run) => p50Of(run) / p50Of(base)));
      out.push({
        db,
        query: name,
        p50AtGoalSize: atGoal ? p50Of(atGoal) : null,
        fiveMs: atGoal ? (p50Of(atGoal) <= GOAL_MS ? "PASS" : "FAIL") : "n/a",
        worstRatio,
        twice: mine.length > 1 ? (worstRatio <= GOAL_RATIO ? "PASS" : "FAIL") : "n/a",
      });
    }
  }
  return out;
}

/** The printed report. */
export function formatGrowth(report) {
  const lines = [];
  for (const db of [...new Set(report.runs.map((r) => r.db))]) {
    const mine = report.runs.filter((r) => r.db === db).sort((a, b) => a.size - b.size);
    lines.push(`${db} (--indexes ${report.options.indexes}), ms, p50 / p99 over ${report.options.samples} runs each:`);
    const header = [
      "query",
      ...mine.map((r) => short(r.size)),
      `<= ${GOAL_MS} ms at 1M`,
      `worst x${short(mine[0].size)}`,
    ];
    const rows = mine[0].results.map(({ name }) => {
      const v = report.verdicts.find((x) => x.db === db && x.query === name);
      return [
        name,
        ...mine.map((run) => {
          const r = run.results.find((x) => x.name === name);
          return `${ms(r.p50)} / ${ms(r.p99)}`;
        }),
        v.fiveMs,
        `${v.worstRatio.toFixed(1)} ${v.twice}`,
      ];
    });
    lines.push(...aligned([header, ...rows]), "");
    for (const run of mine) {
      const p = run.probe;
      lines.push(
        `  ${short(run.size)}: seeded (migrations, ${Object.values(run.rows)
          .reduce((a, b) => a + b, 0)
          .toLocaleString("en")} rows, indexes) in ${(run.seedMs / 1000).toFixed(1)} s; load ${run.load.toFixed(2)}; ` +
          `me alone p50 ${ms(p.alone.p50)} max ${ms(p.alone.max)}, during "${p.slow}" (p50 ${ms(p.slowP50)}, ${p.slowRuns} runs) p50 ${ms(p.during.p50)} max ${ms(p.during.max)}`,
      );
    }
    lines.push("");
  }
  const count = (key, value) => report.verdicts.filter((v) => v[key] === value).length;
  lines.push(
    `Goal "every query at most ${GOAL_MS} ms p50 at 1M": ${count("fiveMs", "PASS")} PASS, ${count("fiveMs", "FAIL")} FAIL, ${count("fiveMs", "n/a")} n/a`,
    `Goal "no size worse than ${GOAL_RATIO}x the smallest size's p50": ${count("twice", "PASS")} PASS, ${count("twice", "FAIL")} FAIL, ${count("twice", "n/a")} n/a`,
  );
  return lines.join("\n");
}

function aligned(table) {
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const format = (row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [format(table[0]), widths.map((w) => "-".repeat(w)).join("  "), ...table.slice(1).map(format)];
}
