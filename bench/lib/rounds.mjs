// The measured part of the bench: a warm-up of every stack and scenario, then interleaved rounds
// in which every scenario runs on every stack, in an order rotated each round.
import { loadavg } from "node:os";

import { residentMegabytes, waitUntilQuiet } from "./processes.mjs";
import { stacksOf } from "./scenarios.mjs";
import { loginToken } from "./stacks.mjs";

const log = (message) => process.stderr.write(`${message}\n`);

/** The throughput scenarios, for settings.warmupSeconds each on every stack, unrecorded. */
export async function warmUp(scenarios, stacks, settings) {
  log(`warm-up: ${settings.warmupSeconds} s per stack and scenario`);
  for (const scenario of scenarios.filter((s) =>
    ["typename", "typename-token", "me", "me-posts", "me-cpu"].includes(s.id),
  )) {
    for (const stack of stacksOf(scenario, stacks)) {
      await scenario.run(stack, settings.warmupSeconds);
      await waitUntilQuiet(stack.pid);
    }
  }
}

/**
 * settings.rounds rounds of every scenario on its stacks; the samples `{ round, scenario, stack,
 * result, rssMb }`. Records the load average before each round in `machine`.
 */
export async function runRounds(scenarios, stacks, settings, machine) {
  const samples = [];
  machine.loadAverageBeforeRound = [];
  for (let round = 0; round < settings.rounds; round++) {
    machine.loadAverageBeforeRound.push(loadavg().map((l) => Number(l.toFixed(2))));
    // A fresh token each round: the run may outlast the 15-minute access-token lifetime.
    for (const server of stacks.filter((s) => s.server)) {
      server.token = await loginToken(server.url, server.usernames[0]);
    }
    for (const scenario of scenarios) {
      const order = stacksOf(scenario, stacks);
      // Rotate the order every round, so no stack always runs first (or right after logins).
      const rotated = order.map((_, i) => order[(i + round) % order.length]);
      for (const stack of rotated) {
        const result = await scenario.run(stack, settings.durationSeconds);
        const rssMb = residentMegabytes(stack.pid);
        samples.push({ round, scenario: scenario.id, stack: stack.id, result, rssMb });
        logRun(round, scenario, stack, result, rssMb, settings);
        await waitUntilQuiet(stack.pid);
      }
    }
  }
  return samples;
}

function logRun(round, scenario, stack, result, rssMb, settings) {
  const shown =
    scenario.id === "burst"
      ? `p99 idle ${result.idle.p99.toFixed(1)} ms, during logins ${result.during.p99.toFixed(1)} ms, logins ${result.logins.rps.toFixed(1)}/s`
      : `${result.rps.toFixed(0)} req/s, ${result.cpuUs === undefined ? "" : `${result.cpuUs?.toFixed(0) ?? "-"} µs CPU/request, `}p99 ${result.p99.toFixed(1)} ms, ${result.errors} errors`;
  log(
    `round ${round + 1}/${settings.rounds} ${scenario.id.padEnd(14)} ${stack.id.padEnd(12)} ${shown}, RSS ${rssMb?.toFixed(0)} MB`,
  );
}
