import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import { freePort, waitForExit } from "./processes.js";

// What `npm start` runs: the bundle next to the compiled tests (dist/bundle/main.js).
const MAIN = new URL("../../bundle/main.js", import.meta.url);

/** Longest wait for "server ready", so that a hung start fails its test instead of hanging CI. */
export const START_TIMEOUT_MS = 30_000;

export type LogLine = Record<string, any> & { level?: number; msg?: string; reqId?: string };

const running = new Set<ServerProcess>();
process.on("exit", () => {
  for (const server of running) server.child.kill("SIGKILL");
});

/**
 * `node dist/bundle/main.js` as a real process on a free loopback port with exactly `env` (nothing
 * inherited), and everything it wrote. Any process still running when the test process exits is
 * killed. (test/main.test.ts has its own copy of this; the two can be merged.)
 */
export class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";

  private constructor(
    env: Record<string, string>,
    readonly port: number,
    cwd: string,
  ) {
    this.child = spawn(process.execPath, [fileURLToPath(MAIN)], { env: { HOST: "127.0.0.1", ...env, PORT: String(port) }, cwd, stdio: "pipe" });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    running.add(this);
    this.child.on("exit", () => running.delete(this));
  }

  /** Spawns the server and resolves once it logged "server ready"; rejects when it exits first or after START_TIMEOUT_MS. */
  static async start(env: Record<string, string>, cwd: string): Promise<ServerProcess> {
    const server = new ServerProcess(env, await freePort(), cwd);
    await server.waitForLog((line) => line.msg === "server ready");
    return server;
  }

  /** The JSON log lines written to stdout so far (a last, incomplete line is left out). */
  logs(): LogLine[] {
    const complete = this.stdout.slice(0, this.stdout.lastIndexOf("\n") + 1);
    return complete
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** Resolves with the first log line matching `predicate`; rejects when the process exits first or after `timeoutMs`. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = START_TIMEOUT_MS): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.logs().find(predicate);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`server exited with ${code} before the expected log line; stderr: ${this.stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout.off("data", check);
        this.child.off("exit", onExit);
      };
      this.child.stdout.on("data", check);
      this.child.on("exit", onExit);
      check();
    });
  }

  /** Sends `signal` and resolves with the exit status, or rejects after `timeoutMs`. */
  async signal(signal: NodeJS.Signals, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const exited = waitForExit(this.child, timeoutMs);
    this.child.kill(signal);
    return exited;
  }

  get graphqlUrl(): string {
    return `http://127.0.0.1:${this.port}/graphql`;
  }

  /** POSTs a GraphQL operation and returns status and parsed body (the body must be JSON). */
  async gql(query: string, variables?: Record<string, unknown>, token?: string): Promise<{ status: number; body: any }> {
    const response = await fetch(this.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(START_TIMEOUT_MS),
    });
    return { status: response.status, body: await response.json() };
  }
}

/** The code of a connection-level failure of `fetch` (refused, reset, closed by the peer), or undefined for anything else. */
export function connectionFailure(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === "string" ? cause.code : undefined;
  return code !== undefined && ["ECONNREFUSED", "ECONNRESET", "EPIPE", "UND_ERR_SOCKET"].includes(code) ? code : undefined;
}
