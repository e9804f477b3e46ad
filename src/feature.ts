import type { Logger } from "pino";
import type { ClassType } from "type-graphql";

import type { Config } from "./config.js";
import type { DatabaseHandle } from "./db/database.js";
import type { Replay } from "./graphql/replay.js";
import type { Closer, Housekeeping } from "./lifecycle.js";
import type { Metrics } from "./metrics.js";

/**
 * What the core lends every feature's build. The rest of the core (keys, tokens, revocations,
 * counters, passwords, audit, events, mailer) a feature names in its own needs, with the types its
 * face or access/ exports; the composition checks the names and types against what it holds.
 */
export interface Basics {
  readonly config: Config;
  readonly logger: Logger;
  /** Milliseconds since the epoch; tests freeze it. */
  readonly now: () => number;
  /** True in the server: keep timers and listeners. False in a CLI command, which runs one thing and exits. */
  readonly background: boolean;
  readonly database: DatabaseHandle;
  readonly metrics: Metrics;
  /** Where the feature registers the stop of anything it opens (a listener, a timer). */
  readonly closer: Closer;
  /** Where the feature adds its recurring chores (pruning); they start once everything is built. */
  readonly housekeeping: Housekeeping;
}

/** What a feature's build returns. */
export interface Built<Gives> {
  /** Its services, by the names later features, the app and the CLI read them under. */
  readonly services: Gives;
  /** One instance of each of its resolver classes, built on those services. */
  readonly resolvers: readonly object[];
  /** The topics of its subscriptions a client can resume (`postCreated(after)`), by topic. */
  readonly replays?: Readonly<Record<string, Replay>>;
}

/**
 * A feature as its face exports it and the features list in `features.ts` holds it. `Needs` is what
 * its build reads: the core's parts and the services of features built before it, by name.
 */
export interface Feature<Needs, Gives extends object, Name extends string = string> {
  /** Its folder, for messages. */
  readonly name: Name;
  /** Its resolver classes: the schema is made of every feature's (and is printed without building any). */
  readonly resolvers: readonly ClassType[];
  readonly build: (needs: Needs) => Promise<Built<Gives>>;
}

/** Declares a feature; the identity, there so that its types are checked and inferred in the face. */
export function defineFeature<Needs, Gives extends object, const Name extends string>(
  feature: Feature<Needs, Gives, Name>,
): Feature<Needs, Gives, Name> {
  return feature;
}
