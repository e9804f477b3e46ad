// The thread a PasswordHasher runs argon2id in; started by passwords.ts, one job at a time.
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";

import { hashSync, verifySync } from "@node-rs/argon2";

/**
 * argon2id with OWASP's Password Storage Cheat Sheet parameters: 19 MiB of memory, 2 passes,
 * parallelism 1. Applied here, off the event loop; passwords.ts keeps a dummy hash with the same parameters.
 */
export const ARGON2_OPTIONS = {
  algorithm: 2, // Algorithm.Argon2id (a const enum in the library's typings)
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

/** What passwords.ts sends: one job. */
export type PasswordJob = { op: "hash"; password: string } | { op: "verify"; encoded: string; password: string };

/** What this thread answers to each job: the hash, or whether the password matched. */
export type PasswordAnswer = string | boolean;

/**
 * Lowers this thread's scheduling priority to the lowest (nice 19), leaving the rest of the
 * process as it is: on Linux, setpriority with a thread id affects that thread only. Elsewhere
 * (no /proc/thread-self) the thread keeps the normal priority.
 */
function lowerThisThreadsPriority(): void {
  try {
    const threadId = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(threadId) && threadId > 0) setPriority(threadId, 19);
  } catch {
    // Not Linux, or no /proc: hashing still works, it just competes with the event loop as an equal.
  }
}

function run(job: PasswordJob): PasswordAnswer {
  if (job.op === "hash") return hashSync(job.password, ARGON2_OPTIONS);
  try {
    return verifySync(job.encoded, job.password);
  } catch {
    // A corrupt stored hash must not become a 500 nor a way in.
    return false;
  }
}

if (parentPort) {
  const port = parentPort;
  lowerThisThreadsPriority();
  // An exception from run() is uncaught on purpose: the thread exits and its job is rejected.
  port.on("message", (job: PasswordJob) => port.postMessage(run(job)));
}
