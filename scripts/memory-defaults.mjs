// The memory settings `npm start` runs the server with, in one place: package.json's start script
// spells them out (test/memory-defaults.test.ts keeps the two equal) and the bench starts the
// server with them next to a run with Node's defaults (docs/performance.md#memory).
//
// Why these: the old-space cap is chosen from the worst case the budgets of docs/limits.md allow,
// not from idle memory. At the default caps the live heap peaks at about 67 MB (1,000 WebSocket
// connections holding 2,000 subscriptions near SUBSCRIPTION_MAX_COST, over the app's own 27 MB),
// and V8 needs room above the live heap to collect without stalling: with 96 MB of old space that
// worst case stayed up but thrashed (a bystander's p99 3.1 s, requests timing out, an eighth of the
// events delivered in a minute); with 160 MB it ran as with 1 GB (p99 0.2 s, every event delivered,
// peak resident size 203 MB against 244 MB with 1 GB). Under ordinary load V8 lets old space fill
// with promoted garbage before a full collection, so the cap also keeps the resident size well
// below Node's defaults (180 to 300 MB). Each semi-space is capped at 4 MB and glibc at two arenas
// (each thread that allocates would otherwise get its own).
// Measured with `node bench/worst-case.mjs dist/bundle/main.js <old-space MB>`.
// Issue 28 checked them again beside Node's defaults (docs/performance.md#memory): idle 113 -> 132 MB
// against 131 -> 176 MB, the abuse suite's largest 147 against 256 MB, the worst case 216 against
// 470 MB with a live heap of at most 71 MB; kept.

/** Node flags, put in front of the caller's NODE_OPTIONS: a flag there given again wins. */
export const NODE_FLAGS = ["--max-old-space-size=160", "--max-semi-space-size=4"];

/** Environment defaults; a value the caller already set wins. */
export const ENV_DEFAULTS = { MALLOC_ARENA_MAX: "2" };

/**
 * The environment `npm start` gives the server for a caller's environment `env`: NODE_OPTIONS
 * with the memory flags in front of the caller's own (so `NODE_OPTIONS=--max-old-space-size=256`
 * overrides the cap), and each default of ENV_DEFAULTS the caller did not set.
 */
export function startEnv(env = process.env) {
  const out = { ...env };
  for (const [name, value] of Object.entries(ENV_DEFAULTS)) if (!out[name]) out[name] = value;
  out.NODE_OPTIONS = [...NODE_FLAGS, out.NODE_OPTIONS ?? ""].join(" ").trim();
  return out;
}
