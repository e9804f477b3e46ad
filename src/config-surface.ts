// The production-surface settings group of config.ts (config-groups.ts holds most others; this one
// has a file of its own to keep both within the size budget): the trusted-documents manifest and the
// budget of token introspection, and the compiled lane that serves known (and trusted) documents.
import { existsSync } from "node:fs";

import { z } from "zod";

import { countOrOff, flag, optionalText, variable } from "./env-schema.js";

/**
 * TRUSTED_DOCUMENTS and INTROSPECTION_MAX_PER_TOKEN: the manifest of the documents anonymous callers
 * and session tokens may run (unset: any document), and how often one API token may ask
 * POST /oauth/introspect; GRAPHQL_COMPILED_LANE, whether known query documents (every trusted one
 * among them) run compiled (graphql/compiled-lane.ts). `path` resolves a relative file against the
 * working directory.
 */
export const surfaceSettings = (path: (p: string) => string) =>
  z.object({
    trustedDocuments: variable(
      "TRUSTED_DOCUMENTS",
      optionalText()
        .refine((v) => v === undefined || existsSync(v), "must name an existing manifest file")
        .transform((v) => (v === undefined ? undefined : path(v))),
      "the trusted-documents manifest (Apollo's or graphql-codegen's); unset: any document runs",
    ),
    introspectionPerTokenPerMinute: variable(
      "INTROSPECTION_MAX_PER_TOKEN",
      countOrOff(600),
      "POST /oauth/introspect calls per API token per minute",
    ),
    compiledLane: variable(
      "GRAPHQL_COMPILED_LANE",
      flag(true),
      "known query documents run compiled (graphql-jit) without Apollo's per-request pipeline",
    ),
  });
