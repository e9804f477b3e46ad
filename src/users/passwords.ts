import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

import type { PasswordAnswer, PasswordJob } from "./password-worker.js";

// A hash of a random value nobody knows, with the same parameters, so that a login for an unknown
// username costs one full verification just like a wrong password does.
const DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$Yw5ZnXf2VAjvcNgmmIQfbw$4xxqW9ptg2g4VxMDjzTPGWyr0dHMV30sovHkDohsOfs";

const WORKER_URL = new URL("./password-worker.js", import.meta.url);

interface QueuedJob {
  job: PasswordJob;
  resolve(answer: PasswordAnswer): void;
  reject(error: Error): void;
}

/**
 * Hashes and checks passwords. Callers apply the length rules first.
 *
 * The work runs in at most `concurrency` worker threads (default: one fewer than the cores, at
 * least one); further jobs wait their turn. Each thread lowers its own priority to nice 19 on
 * Linux, so the event loop wins the CPU whenever both want it: a burst of logins then slows logins,
 * not the other requests. The parameters are never weakened for speed.
 *
 * Threads start on first use (not at server start). An idle thread never keeps the process alive;
 * `close()` stops them all. A thread that dies fails its job with an Error and is replaced by the
 * next job.
 */
export class PasswordHasher {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, QueuedJob>();
  private readonly waiting: QueuedJob[] = [];
  private closed = false;

  constructor(private readonly concurrency = Math.max(1, availableParallelism() - 1)) {}

  /** Returns an encoded argon2id hash (salt and parameters included). */
  async hash(password: string): Promise<string> {
    return (await this.run({ op: "hash", password })) as string;
  }

  /**
   * True when `password` matches `encoded`; false for a corrupt `encoded`. With `encoded` undefined
   * (unknown user) it verifies against a dummy hash and returns false, spending the same time as a
   * real check. Rejects (never resolves true) when the thread doing the check died.
   */
  async verify(encoded: string | undefined, password: string): Promise<boolean> {
    const ok = await this.run({ op: "verify", encoded: encoded ?? DUMMY_HASH, password });
    return encoded !== undefined && ok === true;
  }

  /** Jobs running now, and waiting for a thread (diagnostics and tests). */
  get load(): { running: number; waiting: number } {
    return { running: this.busy.size, waiting: this.waiting.length };
  }

  /** Stops every thread. Unfinished jobs reject, and so do later calls. */
  async close(): Promise<void> {
    this.closed = true;
    const workers = [...this.idle.splice(0), ...this.busy.keys()];
    for (const queued of [...this.busy.values(), ...this.waiting.splice(0)])
      queued.reject(new Error("the password hasher was closed"));
    this.busy.clear();
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private run(job: PasswordJob): Promise<PasswordAnswer> {
    if (this.closed) return Promise.reject(new Error("the password hasher was closed"));
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  /** Hands waiting jobs to idle threads, starting threads up to the limit. */
  private dispatch(): void {
    while (this.waiting.length > 0) {
      const worker = this.idle.pop() ?? (this.busy.size < this.concurrency ? this.startWorker() : undefined);
      if (!worker) return;
      const queued = this.waiting.shift()!;
      this.busy.set(worker, queued);
      // A thread with a job keeps the process alive until the answer (as libuv's pool would).
      worker.ref();
      worker.postMessage(queued.job);
    }
  }

  private startWorker(): Worker {
    const worker = new Worker(WORKER_URL);
    let failure: Error | undefined;
    worker.on("message", (answer: PasswordAnswer) => {
      const queued = this.busy.get(worker);
      if (!queued) return; // closed meanwhile
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      queued.resolve(answer);
      this.dispatch();
    });
    worker.on("error", (error) => (failure = error));
    worker.on("exit", (code) => {
      const queued = this.busy.get(worker);
      this.busy.delete(worker);
      const index = this.idle.indexOf(worker);
      if (index >= 0) this.idle.splice(index, 1);
      // The error names what went wrong in the thread; never the job, which holds a password.
      queued?.reject(new Error(`the password worker stopped (exit code ${code})`, { cause: failure }));
      if (!this.closed) this.dispatch();
    });
    return worker;
  }
}
