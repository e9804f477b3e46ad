// The harness of test/abuse/: the server as `npm start` runs it (the bundle, with npm start's memory
// flags from scripts/memory-defaults.mjs), a bystander that keeps asking a cheap query while an
// attack runs and records each answer's latency, and the peak resident size of the server process.
import { readFileSync } from "node:fs";

import { ServerProcess } from "./app.js";
import { createTestDatabase, type DatabaseKind, type TestDatabase } from "./databases.js";

/** A server process on a fresh database, started as `npm start` starts it, and how to end both. */
export interface AbuseServer {
  readonly server: ServerProcess;
  readonly database: TestDatabase;
  /** The server's resident set size now, in MB (from /proc), or undefined once it has exited. */
  rssMb(): number | undefined;
  /** SIGTERM (SIGKILL when it does not stop), then drop the database. */
  stop(): Promise<void>;
}

/**
 * Starts `node dist/bundle/main.js` with exactly `env` on top of a fresh database and npm start's
 * memory flags (`--max-old-space-size=160 …`, so an unbounded allocation ends the process as it
 * would in production instead of merely slowing it down), in development mode unless `env` says otherwise.
 */
export async function startAbuseServer(kind: DatabaseKind, env: Record<string, string> = {}): Promise<AbuseServer> {
  const database = createTestDatabase(kind);
  // scripts/memory-defaults.mjs, shared with package.json's start script and the bench (dist/test/helpers -> the repository).
  const { startEnv } = (await import(new URL("../../../scripts/memory-defaults.mjs", import.meta.url).href)) as {
    startEnv: (env: Record<string, string>) => Record<string, string>;
  };
  const base = startEnv({ PATH: process.env.PATH ?? "" });
  const server = await ServerProcess.start(
    { ...base, NODE_ENV: "development", LOG_LEVEL: "info", ...database.env, ...env },
    database.dataDir,
  );
  return {
    server,
    database,
    rssMb: () => residentMb(server.child.pid),
    stop: async () => {
      if (server.child.exitCode === null && server.child.signalCode === null)
        await server.stop().catch(() => server.child.kill("SIGKILL"));
      await database.drop();
    },
  };
}

/** VmRSS of `pid` in MB, or undefined when the process is gone. */
export function residentMb(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** What the bystander saw while it ran. */
export interface BystanderReport {
  /** Answers that were a 200 with the expected data. */
  readonly ok: number;
  /** Anything else: a connection failure, a 5xx, a timeout, wrong data. */
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The largest RSS of the server seen between the bystander's requests, in MB. */
  readonly peakRssMb: number;
}

/**
 * A well-behaved client asking `{ __typename }` of `server` one request after another (each with a
 * `timeoutMs` deadline) until `stop()`; `stop()` resolves with the latencies it saw and the peak RSS
 * of `abuse`'s process sampled after each answer.
 */
export function startBystander(abuse: AbuseServer, timeoutMs = 10_000): { stop(): Promise<BystanderReport> } {
  let running = true;
  const latencies: number[] = [];
  let failed = 0;
  let peakRssMb = abuse.rssMb() ?? 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        const response = await fetch(abuse.server.graphqlUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: '{"query":"{ __typename }"}',
          signal: AbortSignal.timeout(timeoutMs),
        });
        const body = (await response.json()) as { data?: { __typename?: string } };
        if (response.status === 200 && body.data?.__typename === "Query") latencies.push(performance.now() - started);
        else failed++;
      } catch {
        failed++;
        // A dead server answers at once: do not spin.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      peakRssMb = Math.max(peakRssMb, abuse.rssMb() ?? 0);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      const at = (q: number) =>
        sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
      return { ok: sorted.length, failed, p50Ms: at(0.5), p99Ms: at(0.99), peakRssMb };
    },
  };
}

/** Whether the server process is still running (it did not run out of heap or crash). */
export function isAlive(abuse: AbuseServer): boolean {
  return abuse.server.child.exitCode === null && abuse.server.child.signalCode === null;
}
