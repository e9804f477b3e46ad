// `npm run bench`: this server against its peers, side by side, on loopback.
//
// Starts this server in production mode (built dist/, SQLite in a temporary directory) twice: as
// `npm start` runs it (its memory flags, scripts/memory-defaults.mjs) and with Node's default flags
// (`this-default`, only in the scenarios that compare memory and throughput); and each peer in
// bench/peers/ as a separate process. It drives them with the same autocannon load in interleaved
// rounds (so that drift of the machine hits every stack alike), then overloads this server with
// three times the connections, runs bench/guard-cost.mjs (the guard's cost without HTTP) once the
// stacks are stopped, prints one table and the goals of issues 5 and 14 with PASS/FAIL, and writes
// bench/results/latest.json and latest.svg.
//
// It is a measurement, not a test: it exits 0 when goals fail, and non-zero only when a stack
// could not be started or answered wrongly. `node bench/run.mjs --help` lists the settings.
//
// This file is the order of the run; the parts are in bench/lib/: settings.mjs (command line and
// BENCH_*), stacks.mjs (starting and seeding them), load.mjs (queries, checks, autocannon),
// scenarios.mjs, rounds.mjs (warm-up and rounds), phases.mjs (overload, guard), rows.mjs,
// goals.mjs, table.mjs and report.mjs (the results), with processes.mjs, steady-load.mjs and chart.mjs.
import { existsSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";

import { runGuardCost, runOverload } from "./lib/phases.mjs";
import { residentMegabytes, stopProcess } from "./lib/processes.mjs";
import { buildReport, writeResults } from "./lib/report.mjs";
import { runRounds, warmUp } from "./lib/rounds.mjs";
import { allScenarios, probeStacks, selectScenarios, stacksOf } from "./lib/scenarios.mjs";
import { parseArguments, readScenarioFilter, readSettings, root } from "./lib/settings.mjs";
import { loginToken, prepareStacks, STACKS, startStack, timeNpmStart } from "./lib/stacks.mjs";

const { dryRun } = parseArguments(process.argv.slice(2));
const settings = readSettings();
const { scenarios, runPhase, completeRun } = selectScenarios(allScenarios(settings), readScenarioFilter());

const log = (message) => process.stderr.write(`${message}\n`);
const loadAverage = () => loadavg().map((l) => Number(l.toFixed(2)));
const stopAll = (stacks) => Promise.all(stacks.map((s) => stopProcess(s.handle)));

async function main() {
  if (!existsSync(join(root, "dist/bundle/main.js"))) {
    console.error("dist/ is missing: run `npm run bench` (it builds first) or `npm run build`.");
    process.exit(1);
  }
  if (existsSync(join(root, ".env"))) {
    log("note: the repository has a .env file; `npm start` reads it, so the startup timing includes its settings");
  }
  const startedAt = new Date();
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    // Other work on the machine skews every stack; interleaving spreads it, this records it.
    loadAverageAtStart: loadAverage(),
  };
  log(
    `bench: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, load average ${machine.loadAverageAtStart.join(" ")}; ${dryRun ? "dry run" : `${settings.rounds} rounds × ${settings.durationSeconds} s, ${settings.connections} connections`}`,
  );

  const startup = await timeStartups();
  const stacks = await startStacks(startup);
  if (dryRun) return finishDryRun(stacks, startup);

  await warmUp(scenarios, stacks, settings);
  const samples = await runRounds(scenarios, stacks, settings, machine);
  const self = stacks.find((s) => s.id === "this");
  const overload = runPhase("overload") ? await runOverload(self, settings) : null;
  await stopAll(stacks);
  // The guard's cost without HTTP, once the servers are gone and the machine is quieter.
  const guard = runPhase("guard") ? await measureGuard() : null;
  machine.loadAverageAtEnd = loadAverage();

  const report = buildReport({ startedAt, machine, settings, stacks, scenarios, startup, samples, overload, guard });
  console.log(report.table);
  if (!completeRun) {
    log("some scenarios were left out (BENCH_SCENARIOS): bench/results/ not updated");
    return;
  }
  writeResults(report);
  log("wrote bench/results/latest.json and bench/results/latest.svg");
}

/** `npm start` timed settings.npmStarts times (once in a dry run), first, on a quiet machine. */
async function timeStartups() {
  const startup = { npmStartMs: [], direct: {}, rssAtStartMb: {} };
  for (let i = 0; i < (dryRun ? 1 : settings.npmStarts); i++) {
    try {
      startup.npmStartMs.push(await timeNpmStart());
    } catch (error) {
      console.error(`npm start failed:\n${error.message}`);
      process.exit(1);
    }
  }
  log(`npm start → first answer: ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")} ms`);
  return startup;
}

/**
 * Starts the stacks some chosen scenario runs on (this server always: overload, guard, seeding),
 * seeds them and checks one answer per stack and scenario; exits 1 if any of it fails.
 */
async function startStacks(startup) {
  const needed = STACKS.filter((stack) => stack.id === "this" || scenarios.some((sc) => stacksOf(sc, [stack]).length));
  const stacks = [];
  try {
    for (const stack of needed) {
      const running = await startStack(stack);
      stacks.push(running);
      startup.direct[stack.id] = running.startupMs;
      startup.rssAtStartMb[stack.id] = residentMegabytes(running.pid);
      log(
        `started ${stack.id} (pid ${running.pid}) in ${running.startupMs.toFixed(0)} ms, RSS ${startup.rssAtStartMb[stack.id]?.toFixed(0)} MB` +
          (running.server
            ? `, NODE_OPTIONS=${JSON.stringify(running.nodeOptions)}, MALLOC_ARENA_MAX=${running.mallocArenaMax ?? "unset"}`
            : ""),
      );
    }
    const self = stacks.find((s) => s.id === "this");
    await prepareStacks(stacks, settings);
    await probeStacks(scenarios, stacks);
    await loginToken(self.url, self.usernames[1]);
  } catch (error) {
    console.error(`a stack failed to start or answer: ${error.message}`);
    await stopAll(stacks);
    process.exit(1);
  }
  return stacks;
}

/** The end of --dry-run: stacks stopped, a tiny guard-cost check, the startup times. */
async function finishDryRun(stacks, startup) {
  await stopAll(stacks);
  if (runPhase("guard")) {
    const guard = await runGuardCost(["--fields", "10", "--executions", "20", "--rounds", "1"]);
    if (guard.error) {
      console.error(`bench/guard-cost.mjs failed: ${guard.error}`);
      process.exit(1);
    }
    log("dry run: guard-cost.mjs ran (10 fields, 20 executions), every result checked");
  }
  log("dry run: every stack started and answered every scenario correctly");
  console.log(
    `startup (ms): npm start ${startup.npmStartMs.map((ms) => ms.toFixed(0)).join(", ")}; ` +
      Object.entries(startup.direct)
        .map(([s, ms]) => `${s} ${ms.toFixed(0)}`)
        .join(", "),
  );
}

/** bench/guard-cost.mjs in full; a failure of its checks makes the exit status 1. */
async function measureGuard() {
  log("guard: node bench/guard-cost.mjs --json");
  const guard = await runGuardCost([]);
  if (guard.error) {
    console.error(`bench/guard-cost.mjs failed: ${guard.error}`);
    process.exitCode = 1;
  } else {
    log(
      `guard: ${guard.usPerGuardedField.toFixed(2)} µs per guarded field (rounds ${guard.min.toFixed(2)} to ${guard.max.toFixed(2)})`,
    );
  }
  return guard;
}

await main();
