// The scenarios, each a load one stack gets in every round, and the phases that run after the
// rounds; which of them BENCH_SCENARIOS selects, which stacks each runs on, and the one checked
// answer every stack gives to every scenario before any load.
import { setTimeout as sleep } from "node:timers/promises";

import { checks, graphqlBody, loginRequests, ME, ME_POSTS, startLoad, summarise, TYPENAME } from "./load.mjs";
import { cpuNanoseconds, waitUntilQuiet } from "./processes.mjs";
import { steadyLoad } from "./steady-load.mjs";

/** What runs after the rounds: `me` at 3 × the connections on this server, and guard-cost.mjs. */
export const PHASES = ["overload", "guard"];

/**
 * The scenarios, in table order; `stacks` limits one to the stacks it applies to (and a stack's
 * `scenarios` limits it to those); `probe` is the one checked answer asked of every stack before
 * the load (query, check, whether with the token); `run(stack, seconds)` is one measured run.
 */
export function allScenarios(settings) {
  // One query at settings.connections, with the stack's token or without, every answer checked.
  const queryScenario = ({ query, check, token = false, ...scenario }) => ({
    ...scenario,
    probe: { query, check, token },
    run: (s, d) =>
      startLoad({
        url: s.url,
        query,
        token: token ? s.token : undefined,
        connections: settings.connections,
        duration: d,
        verifyBody: check,
      }).done.then(summarise),
  });
  return [
    queryScenario({ id: "typename", label: "{ __typename }, no token", query: TYPENAME, check: checks.typename }),
    // The peers verify the token on every request too (an onRequest hook, a Yoga plugin, Apollo's
    // context); bare-http ignores it.
    queryScenario({
      id: "typename-token",
      label: "{ __typename }, Bearer token",
      query: TYPENAME,
      check: checks.typename,
      token: true,
    }),
    queryScenario({ id: "me", label: "{ me { id } }, Bearer token", query: ME, check: checks.me, token: true }),
    queryScenario({
      id: "me-posts",
      label: "{ me { id username posts { id } } } (database)",
      stacks: ["this"],
      query: ME_POSTS,
      check: checks.mePosts,
      token: true,
    }),
    fixedRateScenario(settings),
    {
      id: "login",
      label: `login (argon2id), ${settings.loginUsers} users`,
      stacks: ["this"],
      run: (s, d) =>
        startLoad({
          url: s.url,
          requests: loginRequests(s.url, s.usernames),
          connections: settings.connections,
          duration: d,
          timeout: 60,
          verifyBody: checks.login,
        }).done.then(summarise),
    },
    {
      id: "burst",
      label: `me at ${settings.burstRate}/s: idle, then during ${settings.burstLogins} concurrent logins`,
      stacks: ["this"],
      probe: { query: ME, check: checks.me, token: true },
      run: (stack, duration) => runBurst(stack, duration, settings),
    },
  ];
}

/** `me-cpu`: this server with the compiled lane on and off, and Mercurius, at one fixed rate. */
function fixedRateScenario(settings) {
  return {
    id: "me-cpu",
    label: `{ me { id } }, Bearer token, CPU at ${settings.cpuRate}/s`,
    stacks: ["this", "this-lane-off", "mercurius"],
    probe: { query: ME, check: checks.me, token: true },
    run: (stack, duration) => runFixedRate(stack, duration, settings),
  };
}

/**
 * `me` at the same fixed rate for every stack (open loop, steady-load.mjs), and the server
 * process's CPU time over the run (all its threads, from /proc) divided by the requests it
 * answered: CPU per request, steadier on a shared machine than requests per second, which also
 * count what the load generator and the neighbours took from the same cores.
 */
async function runFixedRate(stack, duration, settings) {
  const before = cpuNanoseconds(stack.pid);
  const result = await steadyLoad({
    url: stack.url,
    body: graphqlBody(ME),
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
    rate: settings.cpuRate,
    durationSeconds: duration,
    connections: settings.connections,
    verifyBody: checks.me,
  });
  const after = cpuNanoseconds(stack.pid);
  const answered = result.requests - result.errors;
  const cpuUs = before === null || after === null || answered === 0 ? null : (after - before) / 1000 / answered;
  return { ...result, cpuUs };
}

/**
 * `me` at a steady rate below capacity (so latency is not just queueing), first with nothing else
 * going on, then while `burstLogins` connections log in back to back. See steady-load.mjs for why
 * this is not autocannon's rate limit.
 */
async function runBurst(stack, duration, settings) {
  const me = () =>
    steadyLoad({
      url: stack.url,
      body: graphqlBody(ME),
      headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
      rate: settings.burstRate,
      durationSeconds: duration,
      connections: settings.connections,
      verifyBody: checks.me,
    });
  const idle = await me();
  await waitUntilQuiet(stack.pid);
  const logins = startLoad({
    url: stack.url,
    requests: loginRequests(stack.url, stack.usernames),
    connections: settings.burstLogins,
    duration: duration + 30,
    timeout: 60,
    verifyBody: checks.login,
  });
  await sleep(1000); // every login connection busy before `me` is measured
  const during = await me();
  logins.stop();
  return { idle, during, logins: summarise(await logins.done) };
}

/**
 * The scenarios of `filter` (every one when it is empty), whether a phase runs, and whether the
 * run is complete (only then are results written); exits 2 on an id that is neither.
 */
export function selectScenarios(scenarios, filter) {
  const knownIds = [...scenarios.map((s) => s.id), ...PHASES];
  const unknownScenarios = filter.filter((id) => !knownIds.includes(id));
  if (unknownScenarios.length > 0) {
    console.error(`BENCH_SCENARIOS: unknown scenario ${unknownScenarios.join(", ")}; known: ${knownIds.join(", ")}`);
    process.exit(2);
  }
  return {
    scenarios: filter.length === 0 ? scenarios : scenarios.filter((s) => filter.includes(s.id)),
    runPhase: (id) => filter.length === 0 || filter.includes(id),
    completeRun: filter.length === 0,
  };
}

/** The stacks a scenario runs on, of `stacks` (running or not), in table order. */
export function stacksOf(scenario, stacks) {
  return stacks.filter(
    (s) => (!scenario.stacks || scenario.stacks.includes(s.id)) && (!s.scenarios || s.scenarios.includes(scenario.id)),
  );
}

/** One checked answer per stack and scenario, so a broken stack fails here, not as a fast row. */
export async function probeStacks(scenarios, stacks) {
  for (const scenario of scenarios) {
    for (const stack of stacksOf(scenario, stacks)) {
      const { query, check, token } = scenario.probe ?? {};
      if (!query) continue;
      const response = await fetch(stack.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${stack.token}` } : {}) },
        body: graphqlBody(query),
      });
      const body = await response.text();
      if (response.status !== 200 || !check(body))
        throw new Error(`${stack.id} answered ${scenario.id} with ${response.status}: ${body.slice(0, 300)}`);
    }
  }
}
