// bench/growth.mjs's report: one table per database (p50/p99 in ms per size, and each query's
// verdicts against the goal), the seeding times, and the probe of `me` during the slowest query.

const GOAL_MS = 5;
const GOAL_SIZE = 1_000_000;
const GOAL_RATIO = 2;

const short = (n) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));
const ms = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(3));

/**
 * Each database's and query's verdicts: p50 at 1M at most 5 ms ("n/a" without a 1M run), and no
 * size's p50 more than twice the smallest size's (the worst ratio given).
 */
export function verdicts(runs, key = "results") {
  const out = [];
  for (const db of [...new Set(runs.map((r) => r.db))]) {
    const mine = runs.filter((r) => r.db === db).sort((a, b) => a.size - b.size);
    const base = mine[0];
    const atGoal = mine.find((r) => r.size === GOAL_SIZE);
    for (const { name } of base[key] ?? []) {
      const p50Of = (run) => run[key].find((r) => r.name === name).p50;
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

/** The printed report: per database, the HTTP table, the SQL level's, the seeding and the probe. */
export function formatGrowth(report) {
  const lines = [];
  const levels = [
    ["results", "through HTTP", report.verdicts],
    ["sqlResults", "SQL level (the app's stores in the bench's process)", report.sqlVerdicts ?? []],
  ];
  for (const db of [...new Set(report.runs.map((r) => r.db))]) {
    const mine = report.runs.filter((r) => r.db === db).sort((a, b) => a.size - b.size);
    for (const [key, title, found] of levels) {
      if (!mine.every((run) => run[key])) continue;
      lines.push(
        `${db} (--indexes ${report.options.indexes}), ${title}: ms, p50 / p99 of ${report.options.samples} runs`,
      );
      lines.push(
        ...tableOf(
          mine,
          key,
          found.filter((v) => v.db === db),
        ),
        "",
      );
    }
    for (const run of mine) {
      const p = run.probe;
      const rows = Object.values(run.rows).reduce((a, b) => a + b, 0);
      lines.push(
        `  ${short(run.size)}: ${rows.toLocaleString("en")} rows seeded (migrations, load, indexes) in ${(run.seedMs / 1000).toFixed(1)} s; load ${run.load.toFixed(2)}; ` +
          `me alone p50 ${ms(p.alone.p50)} max ${ms(p.alone.max)}, during "${p.slow}" (p50 ${ms(p.slowP50)}, ${p.slowRuns} runs) p50 ${ms(p.during.p50)} max ${ms(p.during.max)}`,
      );
    }
    lines.push("");
  }
  for (const [, title, found] of levels) {
    const count = (key, value) => found.filter((v) => v[key] === value).length;
    if (found.length === 0) continue;
    lines.push(
      `${title}: "every query at most ${GOAL_MS} ms p50 at 1M": ${count("fiveMs", "PASS")} PASS, ${count("fiveMs", "FAIL")} FAIL, ${count("fiveMs", "n/a")} n/a; ` +
        `"no size worse than ${GOAL_RATIO}x the smallest size's p50": ${count("twice", "PASS")} PASS, ${count("twice", "FAIL")} FAIL, ${count("twice", "n/a")} n/a`,
    );
  }
  return lines.join("\n");
}

function tableOf(runs, key, found) {
  const header = [
    "query",
    ...runs.map((r) => short(r.size)),
    `<= ${GOAL_MS} ms at 1M`,
    `worst x${short(runs[0].size)}`,
  ];
  const rows = runs[0][key].map(({ name }) => {
    const v = found.find((x) => x.query === name);
    return [
      name,
      ...runs.map((run) => {
        const r = run[key].find((x) => x.name === name);
        return `${ms(r.p50)} / ${ms(r.p99)}`;
      }),
      v.fiveMs,
      `${v.worstRatio.toFixed(1)} ${v.twice}`,
    ];
  });
  return aligned([header, ...rows]);
}

function aligned(table) {
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const format = (row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [format(table[0]), widths.map((w) => "-".repeat(w)).join("  "), ...table.slice(1).map(format)];
}
