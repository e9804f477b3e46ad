// Micro-benchmark: what the guard costs per guarded field, without HTTP. The guard is
// type-graphql's @Authorized middleware chain (added by @Requires, src/access/requires.ts) plus our
// auth checker (src/access/auth-checker.ts).
//
// Two schemas are built by the same buildAppSchema (src/schema.ts) on the same services and
// resolvers: the app's own, and one built while type-graphql's record of @Authorized fields is
// empty, so that no field gets the auth middleware. Nothing else differs: the same resolvers, the
// same checker passed in (never called), the same extensions and descriptions. Both execute one
// document, parsed and validated once, of many aliased `me { id }` fields (answered from the
// principal, no database) with graphql-js `execute`, against a context with a valid session
// principal. The difference in time, divided by the guarded fields executed, is the guard's cost;
// it includes that a guarded field resolves through promises where the unguarded one returns at
// once, which is part of what the guard costs. Rounds alternate (which schema goes first rotates);
// every execution's result is checked (no errors, every alias with the principal's id), and before
// timing both schemas are checked to be what they claim: the guarded one refuses an API token
// without the PROFILE_READ scope, the other answers it.
//
// Run after a build: node bench/guard-cost.mjs [--json] [--fields N] [--executions N] [--rounds N]
// It prints one summary line; with --json, one JSON object on stdout instead (bench/run.mjs reads it).
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { execute, parse, validate } from "graphql";
import pino from "pino";
import { getMetadataStorage } from "type-graphql";

import { Role } from "../dist/src/access/roles.js";
import { loadConfig } from "../dist/src/load-config.js";
import { buildAppSchema } from "../dist/src/schema.js";
import { createServices } from "../dist/src/services.js";

const HELP = `Usage: node bench/guard-cost.mjs [--json] [--fields N] [--executions N] [--rounds N]

The cost of the guard (@Requires: type-graphql's @Authorized middleware and our auth checker) per
guarded field, from graphql-js execute of { a0: me { id } a1: me { id } ... } with and without it.

  --fields N       aliased guarded fields in the document [100]
  --executions N   executions of the document per schema and round [2000]
  --rounds N       interleaved rounds; the median and range are reported [7]
  --json           print one JSON object instead of the summary line`;

function parseArgs(argv) {
  const options = { json: false, fields: 100, executions: 2000, rounds: 7 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (arg === "--json") options.json = true;
    else if (["--fields", "--executions", "--rounds"].includes(arg)) {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value <= 0) {
        console.error(`${arg} needs a positive integer\n\n${HELP}`);
        process.exit(2);
      }
      options[arg.slice(2)] = value;
    } else {
      console.error(`unknown argument: ${arg}\n\n${HELP}`);
      process.exit(2);
    }
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));

/** The app's schema with every @Authorized record hidden from type-graphql while it is built. */
async function buildUnguardedSchema(services) {
  const storage = getMetadataStorage();
  const saved = { fields: storage.authorizedFields, resolvers: storage.authorizedResolver };
  storage.authorizedFields = [];
  storage.authorizedResolver = [];
  try {
    return await buildAppSchema(services);
  } finally {
    storage.authorizedFields = saved.fields;
    storage.authorizedResolver = saved.resolvers;
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const dataDir = mkdtempSync(join(tmpdir(), "gta-bench-guard-"));
const config = loadConfig(
  { NODE_ENV: "test", LOG_LEVEL: "silent", JWT_SECRET_KEY: randomBytes(48).toString("base64url") },
  dataDir,
);
const services = await createServices(config, { logger: pino({ level: "silent" }), background: false });
try {
  const guarded = await buildAppSchema(services);
  const unguarded = await buildUnguardedSchema(services);

  const aliases = Array.from({ length: options.fields }, (_, i) => `a${i}`);
  const document = parse(`{ ${aliases.map((a) => `${a}: me { id }`).join(" ")} }`);
  for (const schema of [guarded, unguarded]) {
    const errors = validate(schema, document);
    if (errors.length > 0) throw new Error(`the document does not validate: ${errors[0].message}`);
  }

  // What src/http/server.ts's context gives a request with a valid session access token.
  const userId = randomUUID();
  const principal = {
    kind: "session",
    userId,
    roles: [Role.USER],
    sessionId: randomUUID(),
    tokenId: randomUUID(),
    fresh: false,
  };
  const contextOf = (p) => ({ principal: p, requestId: "guard-cost", ip: "127.0.0.1", userAgent: undefined });
  const contextValue = contextOf(principal);

  const check = (result, label) => {
    if (result.errors?.length) throw new Error(`${label}: ${result.errors[0].message}`);
    const data = result.data;
    for (const alias of aliases) {
      if (data?.[alias]?.id !== userId) throw new Error(`${label}: ${alias} is ${JSON.stringify(data?.[alias])}`);
    }
  };

  // The two schemas are what they claim: only the guarded one consults the checker.
  const unscoped = contextOf({ kind: "api_token", userId, roles: [Role.USER], apiTokenId: randomUUID(), scopes: [] });
  const refused = await execute({ schema: guarded, document, contextValue: unscoped });
  // `me` is non-null: the first refusal nulls the whole answer.
  if (
    !refused.errors?.length ||
    refused.data !== null ||
    refused.errors.some((e) => e.extensions?.code !== "FORBIDDEN")
  ) {
    throw new Error(
      `the guarded schema did not refuse an unscoped API token: ${JSON.stringify(refused).slice(0, 300)}`,
    );
  }
  check(await execute({ schema: unguarded, document, contextValue: unscoped }), "unguarded schema, unscoped API token");

  /** Microseconds per execution of the document, each result checked. */
  async function time(schema, label, executions) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < executions; i++) check(await execute({ schema, document, contextValue }), label);
    return Number(process.hrtime.bigint() - start) / 1000 / executions;
  }

  // Warm-up: both paths optimised before the first round.
  for (let i = 0; i < 3; i++) {
    await time(guarded, "warm-up, guarded", Math.ceil(options.executions / 4));
    await time(unguarded, "warm-up, unguarded", Math.ceil(options.executions / 4));
  }

  const rounds = [];
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? ["guarded", "unguarded"] : ["unguarded", "guarded"];
    const us = {};
    for (const which of order) {
      us[which] = await time(which === "guarded" ? guarded : unguarded, which, options.executions);
    }
    rounds.push({
      guardedUsPerExecution: us.guarded,
      unguardedUsPerExecution: us.unguarded,
      usPerGuardedField: (us.guarded - us.unguarded) / options.fields,
    });
  }

  const perField = rounds.map((r) => r.usPerGuardedField);
  const report = {
    usPerGuardedField: median(perField),
    min: Math.min(...perField),
    max: Math.max(...perField),
    guardedUsPerExecution: median(rounds.map((r) => r.guardedUsPerExecution)),
    unguardedUsPerExecution: median(rounds.map((r) => r.unguardedUsPerExecution)),
    fields: options.fields,
    executions: options.executions,
    rounds,
    node: process.version,
  };
  if (options.json) {
    console.log(JSON.stringify(report));
  } else {
    console.log(
      `guard: ${report.usPerGuardedField.toFixed(2)} µs per guarded field (rounds ${report.min.toFixed(2)} to ${report.max.toFixed(2)}, median of ${options.rounds}); ` +
        `${options.fields} × me { id } per execution: ${report.guardedUsPerExecution.toFixed(0)} µs with the guard, ` +
        `${report.unguardedUsPerExecution.toFixed(0)} µs without; ${options.executions} executions per schema and round, every result checked`,
    );
  }
} finally {
  await services.close();
  rmSync(dataDir, { recursive: true, force: true });
}
