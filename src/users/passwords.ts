import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";

import { ServiceUnavailableError } from "../errors.js";
import type { PasswordAnswer, PasswordJob } from "./password-worker.js";

// A hash of a random value nobody knows, with the same parameters, so that a login for an unknown
// username costs one full verification just like a wrong password does.
const DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$Yw5ZnXf2VAjvcNgmmIQfbw$4xxqW9ptg2g4VxMDjzTPGWyr0dHMV30sovHkDohsOfs";

const WORKER_URL = new URL("./password-worker.js", import.meta.url);

/**
 * PASSWORD_QUEUE_MAX's default: a burst of 50 logins at once fits with room to spare. One check
 * takes about 9 ms on one thread (50 in 444 ms, measured on 2 cores), so the last of 64 waits
 * about 0.6 s on one thread; beyond that a client is better told to come back than kept waiting.
 */
export const DEFAULT_PASSWORD_QUEUE_MAX = 64;

/** What a client is told when the queue of password checks is full. */
export const PASSWORD_QUEUE_FULL_MESSAGE =
  "The service is busy checking other passwords (PASSWORD_QUEUE_MAX). Try again shortly.";

/**
 * The default number of threads: half the cores, at least one. Issue 28 measured one argon2 thread
 * as right on 2 cores. The earlier default, one fewer than the cores, gave the same one thread there
 * but on 4 or more cores let a burst of logins take every core but the event loop's, leaving the
 * database, the system and other processes none; half keeps a core for each of them.
 */
export function defaultPasswordThreads(cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / 2));
}

/** The waiting room of {@link PasswordHasher}. */
export interface PasswordQueueLimits {
  /** Jobs that may wait for a thread (PASSWORD_QUEUE_MAX); past it a job is refused at once. */
  readonly maxWaiting?: number;
  /** Called once per refused job (the app counts it under PASSWORD_QUEUE_MAX). */
  readonly onRefused?: () => void;
}

interface QueuedJob {
  job: PasswordJob;
  resolve(answer: PasswordAnswer): void;
  reject(error: Error): void;
}

/**
 * Hashes and checks passwords. Callers apply the length rules first.
 *
 * The work runs in at most `concurrency` worker threads (default: {@link defaultPasswordThreads});
 * further jobs wait their turn, at most `maxWaiting` of them (default
 * {@link DEFAULT_PASSWORD_QUEUE_MAX}): a job past that is refused at once with a
 * {@link ServiceUnavailableError}, never answered false, so a busy server never says "wrong
 * password" and its waiting room (memory, and the time a client waits) stays bounded. Each thread
 * lowers its own priority to nice 19 on Linux, so the event loop wins the CPU whenever both want
 * it: a burst of logins then slows logins, not the other requests. The parameters are never
 * weakened for speed.
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

  private readonly maxWaiting: number;
  private readonly onRefused: () => void;

  constructor(
    private readonly concurrency = defaultPasswordThreads(),
    limits: PasswordQueueLimits = {},
  ) {
    this.maxWaiting = limits.maxWaiting ?? DEFAULT_PASSWORD_QUEUE_MAX;
    this.onRefused = limits.onRefused ?? (() => undefined);
  }

  /** Returns an encoded argon2id hash (salt and parameters included). */
  async hash(password: string): Promise<string> {
    return (await this.run({ op: "hash", password })) as string;
  }

  /**
   * True when `password` matches `encoded`; false for a corrupt `encoded`. With `encoded` undefined
   * (unknown user) it verifies against a dummy hash and returns false, spending the same time as a
   * real check. Rejects (never resolves true) when the thread doing the check died, and with a
   * {@link ServiceUnavailableError} when the queue is full.
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
    // dispatch() leaves jobs waiting only while every thread is busy, so a full queue means no room.
    const threadFree = this.idle.length > 0 || this.busy.size < this.concurrency;
    if (!threadFree && this.waiting.length >= this.maxWaiting) {
      this.onRefused();
      return Promise.reject(new ServiceUnavailableError(PASSWORD_QUEUE_FULL_MESSAGE));
    }
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
