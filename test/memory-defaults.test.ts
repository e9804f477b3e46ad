// `npm start`'s memory settings (scripts/memory-defaults.mjs): package.json's start script gives
// the server exactly those Node flags and that environment, an operator's own values win, and the
// bench's startEnv() starts the server the same way. The script is run by sh, as npm runs it, with
// only the final `node dist/bundle/main.js` swapped for a probe that prints what it got.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const START = "node dist/bundle/main.js";

interface Probe {
  heapLimitMb: number;
  mallocArenaMax: string | null;
}
interface MemoryDefaults {
  NODE_FLAGS: string[];
  ENV_DEFAULTS: Record<string, string>;
  startEnv(env: Record<string, string | undefined>): Record<string, string>;
}

describe("npm start's memory defaults", async () => {
  const defaults = (await import(pathToFileURL(join(root, "scripts", "memory-defaults.mjs")).href)) as MemoryDefaults;
  const script = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { start: string } })
    .scripts.start;
  const dir = mkdtempSync(join(tmpdir(), "gta-memory-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const probe = join(dir, "probe.cjs");
  writeFileSync(
    probe,
    `process.stdout.write(JSON.stringify({ heapLimitMb: require("node:v8").getHeapStatistics().heap_size_limit / 2 ** 20, mallocArenaMax: process.env.MALLOC_ARENA_MAX ?? null }));`,
  );
  const base = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

  /** What the server would get from `npm start` in the environment `env`. */
  function viaStartScript(env: Record<string, string>): Probe {
    assert.ok(script.endsWith(` ${START}`), `the start script ends with "${START}": ${script}`);
    const probing = `${script.slice(0, -START.length)}node ${JSON.stringify(probe)}`;
    return JSON.parse(execFileSync("sh", ["-c", probing], { env: { ...base, ...env }, encoding: "utf8" })) as Probe;
  }
  function direct(env: Record<string, string | undefined>): Probe {
    return JSON.parse(execFileSync(process.execPath, [probe], { env: env, encoding: "utf8" })) as Probe;
  }

  it("spells out exactly the flags and environment of scripts/memory-defaults.mjs", () => {
    for (const flag of defaults.NODE_FLAGS) assert.ok(script.includes(flag), `${flag} in ${script}`);
    for (const [name, value] of Object.entries(defaults.ENV_DEFAULTS)) {
      assert.ok(script.includes(`${name}=\${${name}:-${value}}`), `${name} defaults to ${value} in ${script}`);
    }
  });

  it("caps the heap at about 172 MB (160 MB old space, three 4 MB semi-spaces) and sets MALLOC_ARENA_MAX=2", () => {
    const started = viaStartScript({});
    assert.deepEqual(started, { heapLimitMb: 172, mallocArenaMax: "2" });
    assert.ok(direct(base).heapLimitMb > 500, "Node's own default is far larger");
    assert.equal(direct(base).mallocArenaMax, null);
  });

  it("lets the operator's NODE_OPTIONS and MALLOC_ARENA_MAX win", () => {
    assert.deepEqual(viaStartScript({ NODE_OPTIONS: "--max-old-space-size=256", MALLOC_ARENA_MAX: "8" }), {
      heapLimitMb: 268,
      mallocArenaMax: "8",
    });
  });

  it("replaces its shell with node (exec), so a SIGTERM to npm's child reaches the server", async () => {
    const pidProbe = join(dir, "pid.cjs");
    writeFileSync(pidProbe, "process.stdout.write(String(process.pid));");
    const probing = `${script.slice(0, -START.length)}node ${JSON.stringify(pidProbe)}`;
    const child = spawn("sh", ["-c", probing], { env: base, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    await new Promise((resolve) => child.on("close", resolve));
    assert.equal(Number(out), child.pid, "node runs as the shell's own process");
  });

  it("is what the bench's startEnv() gives the server too", () => {
    assert.deepEqual(direct(defaults.startEnv(base)), viaStartScript({}));
    assert.deepEqual(
      direct(defaults.startEnv({ ...base, NODE_OPTIONS: "--max-old-space-size=256", MALLOC_ARENA_MAX: "8" })),
      viaStartScript({ NODE_OPTIONS: "--max-old-space-size=256", MALLOC_ARENA_MAX: "8" }),
    );
  });
});
