import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";

import { ErrorCode, ServiceUnavailableError } from "../../src/errors.js";
import { defaultPasswordThreads, PASSWORD_QUEUE_FULL_MESSAGE, PasswordHasher } from "../../src/users/passwords.js";
import { runNode } from "../helpers/processes.js";

const PARAMETERS_PREFIX = "$argon2id$v=19$m=19456,t=2,p=1$";
const HAS_THREAD_PRIORITIES = process.platform === "linux" && existsSync("/proc/thread-self");

/** Nice value of every thread of this process, by thread id (Linux: field 19 of /proc/self/task/<tid>/stat). */
function threadNiceValues(): Map<number, number> {
  const values = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended between the listing and the read
    }
    // Fields after the parenthesised name start at field 3 (state); nice is field 19.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    values.set(Number(tid), Number(fields[19 - 3]));
  }
  return values;
}

function nicedThreads(): number[] {
  return [...threadNiceValues()].filter(([, nice]) => nice === 19).map(([tid]) => tid);
}

/**
 * The niced threads once their count has settled at `expected`, or after 2 s: a terminated worker's
 * OS thread can outlive the promise that reported its end by a few milliseconds.
 */
async function nicedThreadsSettled(expected: number): Promise<number> {
  const deadline = Date.now() + 2000;
  while (nicedThreads().length !== expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return nicedThreads().length;
}

/** The thread running a job right now (the pool's internals; tests only). */
function busyWorker(hasher: PasswordHasher): Worker {
  const [worker] = (hasher as unknown as { busy: Map<Worker, unknown> }).busy.keys();
  assert.ok(worker, "a job should be running");
  return worker;
}

describe("PasswordHasher", () => {
  const hasher = new PasswordHasher(1);
  after(() => hasher.close());

  it("hashes with argon2id at the OWASP parameters and verifies the same password, not another", async () => {
    const encoded = await hasher.hash("correct horse battery staple");
    assert.ok(encoded.startsWith(PARAMETERS_PREFIX), encoded);
    assert.equal(await hasher.verify(encoded, "correct horse battery staple"), true);
    assert.equal(await hasher.verify(encoded, "correct horse battery stapler"), false);
  });

  it("answers false for an unknown user (no stored hash), even with an empty password", async () => {
    assert.equal(await hasher.verify(undefined, "any password at all"), false);
    assert.equal(await hasher.verify(undefined, ""), false);
  });

  it("answers false, not an error, for a corrupt stored hash", async () => {
    const encoded = await hasher.hash("correct horse battery staple");
    assert.equal(await hasher.verify("not a hash", "correct horse battery staple"), false);
    assert.equal(await hasher.verify(encoded.slice(0, -10), "correct horse battery staple"), false);
  });

  it("never runs more jobs at once than its limit, and runs that many in parallel", async () => {
    const threadsBefore = HAS_THREAD_PRIORITIES ? nicedThreads().length : 0;
    const limited = new PasswordHasher(2);
    let mostRunning = 0;
    let mostThreads = 0;
    const sample = setInterval(() => {
      mostRunning = Math.max(mostRunning, limited.load.running);
      if (HAS_THREAD_PRIORITIES) mostThreads = Math.max(mostThreads, nicedThreads().length - threadsBefore);
    }, 1);
    try {
      const jobs = Array.from({ length: 6 }, (_, i) => limited.hash(`password number ${i}`));
      assert.deepEqual(limited.load, { running: 2, waiting: 4 });
      const encoded = await Promise.all(jobs);
      assert.equal(mostRunning, 2);
      if (HAS_THREAD_PRIORITIES) assert.equal(mostThreads, 2, "two threads started, no more");
      assert.deepEqual(limited.load, { running: 0, waiting: 0 });
      assert.equal(new Set(encoded).size, 6, "each hash has its own salt");
    } finally {
      clearInterval(sample);
      await limited.close();
    }
  });
});

/** Asserts `promise` rejects at once with the queue's SERVICE_UNAVAILABLE (503 with Retry-After). */
async function assertRefused(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ServiceUnavailableError);
    assert.equal(error.message, PASSWORD_QUEUE_FULL_MESSAGE);
    assert.deepEqual(error.extensions, { code: ErrorCode.SERVICE_UNAVAILABLE, retryAfter: 5 });
    return true;
  });
}

describe("PasswordHasher's queue (PASSWORD_QUEUE_MAX)", () => {
  it("refuses a job at once when maxWaiting wait already, never answering false, and finishes the jobs under the bound", async () => {
    let refused = 0;
    const hasher = new PasswordHasher(1, { maxWaiting: 2, onRefused: () => refused++ });
    try {
      const encoded = await hasher.hash("correct horse battery staple");
      const accepted = [1, 2, 3].map(() => hasher.verify(encoded, "correct horse battery staple"));
      assert.deepEqual(hasher.load, { running: 1, waiting: 2 });
      await assertRefused(hasher.verify(encoded, "correct horse battery staple"));
      await assertRefused(hasher.hash("another password"));
      assert.equal(refused, 2);
      assert.deepEqual(hasher.load, { running: 1, waiting: 2 }, "a refusal takes no place in the queue");
      assert.deepEqual(await Promise.all(accepted), [true, true, true]);
      assert.deepEqual(hasher.load, { running: 0, waiting: 0 });
    } finally {
      await hasher.close();
    }
  });

  it("gives every place back after refusals and failed jobs: the full bound is accepted again", async () => {
    let refused = 0;
    const hasher = new PasswordHasher(1, { maxWaiting: 1, onRefused: () => refused++ });
    try {
      // A crashing job (not a string) and one waiting behind it; a third is refused.
      const crashing = assert.rejects(hasher.hash(42 as unknown as string), /password worker stopped/);
      const behind = hasher.hash("second password");
      await assertRefused(hasher.hash("third password"));
      await crashing;
      assert.ok((await behind).startsWith(PARAMETERS_PREFIX));
      assert.deepEqual(hasher.load, { running: 0, waiting: 0 });
      for (let round = 0; round < 3; round++) {
        const jobs = [hasher.hash(`round ${round} a`), hasher.hash(`round ${round} b`)];
        assert.deepEqual(hasher.load, { running: 1, waiting: 1 }, "one running and one waiting, as at first");
        await assertRefused(hasher.hash(`round ${round} c`));
        for (const job of await Promise.all(jobs)) assert.ok(job.startsWith(PARAMETERS_PREFIX));
      }
      assert.equal(refused, 4);
    } finally {
      await hasher.close();
    }
  });

  it("refuses nothing while a thread is free, whatever the bound", async () => {
    const hasher = new PasswordHasher(2, { maxWaiting: 1 });
    try {
      const jobs = ["a", "b", "c"].map((p) => hasher.hash(`password ${p}`));
      assert.deepEqual(hasher.load, { running: 2, waiting: 1 });
      await assertRefused(hasher.hash("password d"));
      assert.equal((await Promise.all(jobs)).length, 3);
    } finally {
      await hasher.close();
    }
  });

  it("sizes its pool at half the cores, at least one thread", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 8, 64].map((cores) => defaultPasswordThreads(cores)),
      [1, 1, 1, 2, 4, 32],
    );
  });
});

describe("PasswordHasher's threads", { skip: !HAS_THREAD_PRIORITIES && "needs Linux thread priorities" }, () => {
  it("hash at nice 19 while the main thread keeps its priority", async () => {
    const before = threadNiceValues();
    const mainBefore = before.get(process.pid);
    const hasher = new PasswordHasher(1);
    try {
      const pending = hasher.hash("correct horse battery staple");
      let niced: number[] = [];
      while (hasher.load.running === 1 && niced.length === 0) {
        niced = nicedThreads().filter((tid) => !before.has(tid));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      assert.equal(niced.length, 1, "one new thread at nice 19 while the hash runs");
      assert.notEqual(niced[0], process.pid);
      assert.equal(threadNiceValues().get(process.pid), mainBefore, "the main thread's nice value is unchanged");
      assert.ok((await pending).startsWith(PARAMETERS_PREFIX));
    } finally {
      await hasher.close();
    }
  });

  it("are gone after close(), which fails the running job; the closed hasher refuses new jobs", async () => {
    const before = nicedThreads().length;
    const hasher = new PasswordHasher(2);
    await Promise.all([hasher.hash("first password"), hasher.hash("second password")]);
    assert.equal(nicedThreads().length, before + 2);
    const running = assert.rejects(hasher.hash("third password"), /closed/);
    await hasher.close();
    await running;
    assert.equal(await nicedThreadsSettled(before), before);
    await assert.rejects(hasher.hash("fourth password"), /closed/);
    await assert.rejects(hasher.verify(undefined, "fourth password"), /closed/);
  });
});

describe("PasswordHasher when a thread dies", () => {
  it("rejects a verification whose thread was killed, never answering true, and the next job runs on a new thread", async () => {
    const hasher = new PasswordHasher(1);
    try {
      const encoded = await hasher.hash("correct horse battery staple");
      // Killed before it can answer: the job goes to a thread whose termination has been requested.
      const [killed] = (hasher as unknown as { idle: Worker[] }).idle;
      assert.ok(killed);
      const exited = killed.terminate();
      const verifying = assert.rejects(
        hasher.verify(encoded, "correct horse battery staple"),
        /password worker stopped/,
      );
      assert.equal(busyWorker(hasher), killed);
      await Promise.all([verifying, exited]);
      assert.deepEqual(hasher.load, { running: 0, waiting: 0 });

      const hashing = hasher.hash("another password");
      assert.notEqual(busyWorker(hasher), killed);
      assert.equal(await hasher.verify(await hashing, "another password"), true);
      assert.equal(await hasher.verify(encoded, "correct horse battery staple"), true);
    } finally {
      await hasher.close();
    }
  });

  it("rejects a job that crashes its thread, with the thread's error as the cause, and runs the jobs waiting behind it", async () => {
    const hasher = new PasswordHasher(1);
    try {
      // Not a string: the library throws inside the thread, which exits.
      const crashing = assert.rejects(hasher.hash(42 as unknown as string), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(error.message, /password worker stopped \(exit code 1\)/);
        assert.ok(error.cause instanceof Error);
        return true;
      });
      const waiting = hasher.hash("second password");
      assert.deepEqual(hasher.load, { running: 1, waiting: 1 });
      await crashing;
      assert.ok((await waiting).startsWith(PARAMETERS_PREFIX));
    } finally {
      await hasher.close();
    }
  });
});

describe("PasswordHasher in a process of its own", () => {
  const dir = mkdtempSync(join(tmpdir(), "passwords-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the process alive while a hash runs, and lets it exit when idle without close()", async () => {
    const script = join(dir, "hash-once.mjs");
    const module = new URL("../../src/users/passwords.js", import.meta.url).href;
    writeFileSync(
      script,
      `import { PasswordHasher } from ${JSON.stringify(module)};
const hasher = new PasswordHasher();
const encoded = await hasher.hash("correct horse battery staple");
process.stdout.write(String(await hasher.verify(encoded, "correct horse battery staple")));
`,
    );
    const result = await runNode(pathToFileURL(script), [], { env: {}, cwd: dir, timeoutMs: 15_000 });
    assert.deepEqual(
      { code: result.code, stdout: result.stdout, stderr: result.stderr },
      { code: 0, stdout: "true", stderr: "" },
    );
  });
});
