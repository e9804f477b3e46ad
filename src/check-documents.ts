// `npm run documents:check -- [FILE]`: a manifest checked as the server checks TRUSTED_DOCUMENTS at
// start-up, before it is deployed (docs/trusted-documents.md).
import "reflect-metadata";

import { resolve } from "node:path";

import { ConfigError } from "./config.js";
import { loadTrustedDocuments, manifestCheckOf } from "./graphql/trusted-documents.js";
import { loadConfig } from "./load-config.js";
import { buildAppSchema } from "./schema.js";

const USAGE = `Usage: npm run documents:check -- [FILE]

Checks a trusted documents manifest (Apollo's persisted query manifest or graphql-codegen's
persisted-documents.json) as the server checks TRUSTED_DOCUMENTS when it starts: every id the
SHA-256 of its text, every document parsed within QUERY_MAX_TOKENS, validated against this
version's schema with the query limits and production's rules (no introspection), and able to
run within QUERY_MAX_COST (SUBSCRIPTION_MAX_COST for a subscription). FILE defaults to
TRUSTED_DOCUMENTS. The limits are read like the server's, from the environment or a .env file.
Exit status: 0 the manifest would load (prints how many documents), 1 it would not (prints each
problem), 2 no file given.`;

/**
 * Checks the manifest `args[0]` (default: TRUSTED_DOCUMENTS of `env`) and returns the exit status,
 * writing the count or each problem to `out`/`err`. The schema is built without services, as
 * `npm run schema` builds it: it is the same under every configuration.
 */
export async function checkDocuments(
  args: readonly string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  if (args.length > 1 || args[0] === "--help" || args[0] === "-h") {
    err(USAGE);
    return 2;
  }
  try {
    // The limits as configured, but production's rules whatever NODE_ENV says: a manifest is for
    // production, and production's other requirements (JWT_SECRET_KEY…) do not matter here.
    const config = loadConfig({ ...env, NODE_ENV: "development" });
    const file = args[0] === undefined ? config.surface.trustedDocuments : resolve(args[0]);
    if (file === undefined) {
      err(USAGE);
      return 2;
    }
    const check = { ...manifestCheckOf(config, await buildAppSchema()), isProduction: true };
    const set = loadTrustedDocuments(file, check);
    out(`${file}: ${set.size} documents, each would load`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) err(`error: ${problem}`);
    return 1;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await checkDocuments(
    process.argv.slice(2),
    process.env,
    (line) => process.stdout.write(`${line}\n`),
    (line) => process.stderr.write(`${line}\n`),
  );
}
