import { availableParallelism } from "node:os";

import { hash, verify } from "@node-rs/argon2";

/**
 * argon2id with OWASP's Password Storage Cheat Sheet parameters: 19 MiB of memory, 2 passes,
 * parallelism 1. `@node-rs/argon2` runs each hash on libuv's thread pool, off the event loop.
 */
export const ARGON2_OPTIONS = {
  algorithm: 2, // Algorithm.Argon2id (a const enum in the library's typings)
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

// A hash of a random value nobody knows, with the same parameters, so that a login for an unknown
// username costs one full verification just like a wrong password does.
const DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$Yw5ZnXf2VAjvcNgmmIQfbw$4xxqW9ptg2g4VxMDjzTPGWyr0dHMV30sovHkDohsOfs";

/**
 * Hashes and checks passwords. Callers apply the length rules first.
 * At most `concurrency` hashes run at once (default: one fewer than the cores, at least one), the
 * rest wait their turn: a burst of logins then queues instead of taking every core from the event
 * loop, so other requests keep being answered. The parameters are never weakened for speed.
 */
export class PasswordHasher {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly concurrency = Math.max(1, availableParallelism() - 1)) {}

  /** Returns an encoded argon2id hash (salt and parameters included). */
  hash(password: string): Promise<string> {
    return this.limit(() => hash(password, ARGON2_OPTIONS));
  }

  /**
   * True when `password` matches `encoded`. With `encoded` undefined (unknown user) it verifies
   * against a dummy hash and returns false, spending the same time as a real check.
   */
  async verify(encoded: string | undefined, password: string): Promise<boolean> {
    try {
      const ok = await this.limit(() => verify(encoded ?? DUMMY_HASH, password));
      return encoded !== undefined && ok;
    } catch {
      // A corrupt stored hash must not become a 500 nor a way in.
      return false;
    }
  }

  /** Hashes running now, and waiting for a turn (diagnostics and tests). */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private async limit<T>(work: () => Promise<T>): Promise<T> {
    // A finishing hash hands its slot straight to the next waiter, so the count never exceeds the limit.
    if (this.running >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running += 1;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
