// The memory settings `npm start` runs the server with, in one place: package.json's start script
// spells them out (test/memory-defaults.test.ts keeps the two equal) and the bench starts the
// server with them next to a run with Node's defaults (docs/performance.md#memory).
//
// Why these: under load V8 lets old space fill with promoted garbage to about four times the live
// heap (~35 MB) before a full collection, and grows the young generation to 32 MB; glibc gives each
// thread that allocates its own malloc arena. Capping old space at 96 MB and each semi-space at
// 4 MB, and glibc at two arenas, keeps the resident size near 150 MB instead of 300 MB.
// `--max-old-space-size=64` alone collapsed throughput to a third, so the cap stays well above the
// live heap.

/** Node flags, put in front of the caller's NODE_OPTIONS: a flag there given again wins. */
export const NODE_FLAGS = ["--max-old-space-size=96", "--max-semi-space-size=4"];

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
