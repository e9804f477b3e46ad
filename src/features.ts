import { accountsFeature } from "./accounts/index.js";
import { apiTokensFeature } from "./api-tokens/index.js";
import { auditFeature } from "./audit/index.js";
import { authFeature } from "./auth/index.js";
import type { Core } from "./core.js";
import { emailFeature } from "./email/index.js";
import type { Feature } from "./feature.js";
import type { Replay } from "./graphql/replay.js";
import { mailFeature } from "./mail/index.js";
import { mfaFeature } from "./mfa/index.js";
import { passkeysFeature } from "./passkeys/index.js";
import { postsFeature } from "./posts/index.js";
import { rateLimitsFeature } from "./rate-limits/index.js";
import { sessionsFeature } from "./sessions/index.js";
import { usersFeature } from "./users/index.js";

/**
 * Every feature of the app, in the order they are built: each one's build reads the core and the
 * services of the features above it here, by name. A new feature is one line in this list (and its
 * folder, migration and catalogue entries); its resolvers join the schema from here.
 */
export const FEATURES = [
  auditFeature,
  mailFeature,
  rateLimitsFeature,
  usersFeature,
  postsFeature,
  apiTokensFeature,
  sessionsFeature,
  emailFeature,
  mfaFeature,
  authFeature,
  accountsFeature,
  passkeysFeature,
] as const;

/** Any feature, whatever it needs and gives. */
export type AnyFeature = Feature<never, object>;
type NeedsOf<F> = F extends Feature<infer Needs, object> ? Needs : never;
type GivesOf<F> = F extends Feature<never, infer Gives> ? Gives : never;

/**
 * What `Registry` holds once the features `Fs` are built on it, in order. A feature listed before
 * what it needs makes the result an error type naming it and the names it lacks, which fails the
 * compilation wherever the registry is read.
 */
type Assembled<Registry, Fs> = Fs extends readonly [infer F extends AnyFeature, ...infer Rest]
  ? Registry extends NeedsOf<F>
    ? Assembled<Registry & GivesOf<F>, Rest>
    : { unmetFeature: F["name"]; missing: Exclude<keyof NeedsOf<F>, keyof Registry> }
  : Registry;

/** `R`, which must hold the core: an {@link Assembled} error type fails here, naming the feature and what it lacks. */
type CoreAndMore<R extends Core> = R;

/** The core and every service the features built, by name. */
export type Registry = CoreAndMore<Assembled<Core, typeof FEATURES>>;

/** The built features: the registry, every resolver instance the schema is made of, and the resumable topics. */
export interface BuiltFeatures {
  readonly registry: Registry;
  readonly resolvers: readonly object[];
  readonly replays: Readonly<Record<string, Replay>>;
}

/**
 * Builds every feature in list order on `core`. Whatever a feature opens it registers with the
 * core's closer, so a failure part way leaves the caller one thing to close.
 */
export async function buildFeatures(core: Core): Promise<BuiltFeatures> {
  const { registry, resolvers, replays } = await assemble(core, FEATURES);
  return { registry: registry as unknown as Registry, resolvers, replays };
}

/**
 * Builds `features` in order, each on `start` and the services of those before it; the untyped
 * half of {@link buildFeatures}. Refuses a feature that gives a name the registry already holds.
 */
export async function assemble(
  start: object,
  features: readonly AnyFeature[],
): Promise<{ registry: Record<string, unknown>; resolvers: object[]; replays: Record<string, Replay> }> {
  const registry: Record<string, unknown> = { ...start };
  const resolvers: object[] = [];
  const replays: Record<string, Replay> = {};
  for (const feature of features) {
    const built = await feature.build(registry as never);
    for (const [name, service] of Object.entries(built.services)) {
      // Two parts giving one name would silently hand later features the wrong one.
      if (name in registry) throw new Error(`feature ${feature.name} gives ${name}, which the registry already has`);
      registry[name] = service;
    }
    resolvers.push(...built.resolvers);
    Object.assign(replays, built.replays);
  }
  return { registry, resolvers, replays };
}

/** Every resolver class of every feature, in list order: what the schema is made of. */
export function resolverClasses() {
  return FEATURES.flatMap((feature) => feature.resolvers);
}
