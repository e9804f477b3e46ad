// The benchmark's bar chart as a standalone SVG, written by hand (no chart library): one panel
// per measure, a horizontal bar per stack, this server in its own colour (a lighter one with
// Node's default flags), resident memory of the two flag sets, and the goals below.

const WIDTH = 900;
const LABEL_X = 300; // bars start here; labels end just left of it
const BAR_MAX = 470;
const BAR_HEIGHT = 18;
const ROW = 24;
const FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', sans-serif\"";

const COLOURS = {
  this: "#2563eb",
  "this-default": "#93c5fd",
  "this-lane-off": "#60a5fa",
  mercurius: "#9ca3af",
  "naive-apollo": "#9ca3af",
  yoga: "#9ca3af",
  "bare-http": "#d1d5db",
};

function escape(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function formatNumber(value, unit) {
  if (unit === "ms") return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ms`;
  if (unit === "req/s" && value < 100) return `${value.toFixed(1)} req/s`;
  return `${Math.round(value).toLocaleString("en-US")} ${unit}`;
}

/**
 * One panel: a title, then a bar per item scaled to the panel's largest value. Items are
 * `{ label, value, colour }`; a `group` item is a sub-heading without a bar.
 */
function panel(y, title, unit, items, note) {
  const max = Math.max(...items.filter((i) => !i.group).map((i) => i.value), 1);
  const parts = [`<text x="16" y="${y + 16}" font-size="15" font-weight="600" ${FONT}>${escape(title)}</text>`];
  let rowY = y + 30;
  if (note) {
    parts.push(`<text x="16" y="${rowY + 10}" font-size="12" fill="#4b5563" ${FONT}>${escape(note)}</text>`);
    rowY += 20;
  }
  for (const item of items) {
    if (item.group) {
      parts.push(
        `<text x="16" y="${rowY + 14}" font-size="12" font-weight="600" fill="#374151" ${FONT}>${escape(item.group)}</text>`,
      );
      rowY += ROW;
      continue;
    }
    const width = Math.max(1, (item.value / max) * BAR_MAX);
    parts.push(
      `<text x="${LABEL_X - 8}" y="${rowY + 13}" font-size="12" text-anchor="end" ${FONT}>${escape(item.label)}</text>`,
      `<rect x="${LABEL_X}" y="${rowY}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" rx="2" fill="${item.colour}"/>`,
      `<text x="${(LABEL_X + width + 6).toFixed(1)}" y="${rowY + 13}" font-size="12" ${FONT}>${escape(formatNumber(item.value, unit))}</text>`,
    );
    rowY += ROW;
  }
  return { svg: parts.join("\n"), height: rowY - y + 14 };
}

/** A goal's value as the table and the chart show it. */
export function formatGoalValue(goal) {
  if (goal.value === null || goal.value === undefined) return "-";
  if (goal.unit === "ratio") return goal.value.toFixed(2);
  if (goal.unit === "µs") return `${goal.value.toFixed(2)} µs`;
  if (goal.unit === "MB") return `${goal.value.toFixed(0)} MB`;
  if (goal.unit === "ms") return `${goal.value.toFixed(0)} ms`;
  return String(goal.value);
}

const STACK_LABELS = {
  this: "this server (npm start)",
  "this-default": "this server, Node defaults",
  "this-lane-off": "this server, compiled lane off",
};

/** Renders the report of bench/run.mjs as an SVG document. */
export function renderChart(report) {
  const label = Object.fromEntries(report.stacks.map((s) => [s.id, STACK_LABELS[s.id] ?? s.id]));
  const row = (stack, scenario) => report.rows.find((r) => r.stack === stack && r.scenario === scenario);
  const throughput = [];
  for (const [scenario, heading] of [
    ["typename", "{ __typename }, no token"],
    ["typename-token", "{ __typename }, Bearer token"],
    ["me", "{ me { id } }, Bearer token"],
    ["me-posts", "{ me { id username posts { id } } }, reads the database"],
  ]) {
    const rows = report.stacks.map((s) => row(s.id, scenario)).filter(Boolean);
    if (rows.length === 0) continue;
    throughput.push({ group: heading });
    for (const r of rows)
      throughput.push({ label: label[r.stack], value: r.rps, colour: COLOURS[r.stack] ?? "#9ca3af" });
  }

  const panels = [];
  const s = report.settings;
  panels.push([
    "Requests per second (higher is better)",
    "req/s",
    throughput,
    `${s.connections} connections, median of ${s.rounds} interleaved rounds of ${s.durationSeconds} s`,
  ]);
  const cpu = report.stacks.map((st) => row(st.id, "me-cpu")).filter((r) => r?.cpuUs);
  if (cpu.length > 0) {
    panels.push([
      "CPU time per { me { id } } at a fixed rate (lower is better)",
      "µs",
      cpu.map((r) => ({ label: label[r.stack], value: r.cpuUs, colour: COLOURS[r.stack] ?? "#9ca3af" })),
      `${s.cpuRate} requests/s to every stack, server process CPU / answered requests, median of ${s.rounds} rounds`,
    ]);
  }
  const memory = report.memoryFlags;
  if (memory && memory.rssAfterLoadMb.this !== null && memory.rssAfterLoadMb["this-default"] !== null) {
    const items = [
      { label: "npm start's memory flags", value: memory.rssAfterLoadMb.this, colour: COLOURS.this },
      { label: "Node's default flags", value: memory.rssAfterLoadMb["this-default"], colour: COLOURS["this-default"] },
    ];
    if (report.overload?.rssMb)
      items.push({
        label: `npm start's flags, ${report.overload.connections} connections`,
        value: report.overload.rssMb,
        colour: "#1e40af",
      });
    panels.push([
      "Resident memory after load, this server (lower is better)",
      "MB",
      items,
      `largest reading after ${memory.scenarios.join(", ")}; the last bar after the overload run`,
    ]);
  }
  const login = row("this", "login");
  const burstLogins = row("this", "burst-logins");
  if (login) {
    const items = [{ label: `login, ${s.connections} connections`, value: login.rps, colour: COLOURS.this }];
    if (burstLogins)
      items.push({ label: `login, ${s.burstLogins} connections (burst)`, value: burstLogins.rps, colour: "#60a5fa" });
    panels.push(["Logins per second, argon2id (this server)", "req/s", items]);
  }
  const idle = row("this", "burst-idle");
  const during = row("this", "burst-during");
  if (idle && during) {
    panels.push([
      `p99 latency of { me { id } } at ${s.burstRate} req/s (lower is better)`,
      "ms",
      [
        { label: "idle", value: idle.p99, colour: COLOURS.this },
        { label: `during ${s.burstLogins} concurrent logins`, value: during.p99, colour: "#f59e0b" },
      ],
    ]);
  }

  let y = 56;
  const body = [];
  for (const [title, unit, items, note] of panels) {
    const drawn = panel(y, title, unit, items, note);
    body.push(drawn.svg);
    y += drawn.height;
  }

  body.push(`<text x="16" y="${y + 16}" font-size="15" font-weight="600" ${FONT}>Goals</text>`);
  y += 26;
  for (const goal of report.goals) {
    const value = formatGoalValue(goal);
    const colour = goal.pass ? "#15803d" : "#b91c1c";
    body.push(
      `<text x="16" y="${y + 13}" font-size="12" font-weight="700" fill="${colour}" ${FONT}>${goal.pass ? "PASS" : "FAIL"}</text>`,
      `<text x="60" y="${y + 13}" font-size="12" ${FONT}>${escape(`${goal.label}: ${value} (goal ${goal.threshold})`)}</text>`,
    );
    y += 20;
  }
  y += 12;

  const m = report.machine;
  const subtitle = `${report.command}, ${report.finishedAt.slice(0, 10)}: ${m.cpus} cores (${m.cpuModel}), Node ${m.node}, ${report.loadGenerator}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" role="img" aria-label="Benchmark results">
<rect width="${WIDTH}" height="${y}" fill="#ffffff"/>
<text x="16" y="24" font-size="18" font-weight="700" ${FONT}>GraphQL with token auth: this server and its peers</text>
<text x="16" y="42" font-size="11" fill="#4b5563" ${FONT}>${escape(subtitle)}</text>
${body.join("\n")}
</svg>
`;
}
