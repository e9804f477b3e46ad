/* global process, setInterval */
// Preloaded into the server by bench/worst-case.mjs (NODE_OPTIONS --require, with --expose-gc):
// on SIGUSR2 it collects garbage twice and writes the live heap, the resident size and the largest
// heap used since the last signal (sampled every 20 ms) to GC_OUT as JSON.
const fs = require("node:fs");
let peak = 0;
setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().heapUsed);
}, 20).unref();
process.on("SIGUSR2", () => {
  global.gc();
  global.gc();
  const m = process.memoryUsage();
  fs.writeFileSync(process.env.GC_OUT, JSON.stringify({ heapUsed: m.heapUsed, rss: m.rss, peak }));
  peak = 0;
});
