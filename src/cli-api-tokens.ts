// The CLI's `api-tokens` commands. With TRUSTED_DOCUMENTS, an ADMIN's session can send createApiToken
// only if some client's manifest lists it; the operator at the machine mints and revokes tokens here,
// through the api-tokens feature's service, whatever the manifest lists.
import { parseScopes, Scope } from "./access/scopes.js";
import { EXIT_FAILED, EXIT_OK, parseCommand, reportFields, UsageError, withServices } from "./cli-support.js";
import { BadUserInputError, ForbiddenError, NotFoundError } from "./errors.js";

/** The commands' part of the usage text, in its layout. */
export const API_TOKENS_USAGE = `  api-tokens create --username <name> --name <label> --scope <SCOPE> [--scope <SCOPE>]...
                    [--expires-in <lifetime>]
      Creates an API token for the user with createApiToken's rules: --scope (repeatable) is
      one of ${Object.values(Scope).join(", ")};
      ADMIN, OPERATIONS_ANY and INTROSPECT only for a user with the ADMIN role; a lifetime
      like 30d, at most 365d, default 90d; at most 50 live tokens. No session's step-up is
      asked: this is the way to get OPERATIONS_ANY or INTROSPECT whatever a TRUSTED_DOCUMENTS
      manifest lists. Audited as API_TOKEN_CREATED, by CLI. Prints
      {"id","token","scopes","expiresAt"} as JSON: the token is shown this once, nowhere else.
  api-tokens revoke --id <token id>
      Revokes any user's API token like revokeApiToken: refused on every running instance
      within a second. Audited as API_TOKEN_REVOKED, by CLI. Prints {"id","revoked"} as JSON
      (revoked is false when it was revoked already).
`;

/** `api-tokens create`: a token for a named, active user, printed once on stdout. */
export async function createApiToken(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    username: { type: "string" },
    name: { type: "string" },
    scope: { type: "string", multiple: true },
    "expires-in": { type: "string" },
  });
  if (positionals.length > 0)
    throw new UsageError("api-tokens create takes only options (--username, --name, --scope, --expires-in)");
  const { username, name } = values;
  if (username === undefined) throw new UsageError("api-tokens create needs --username");
  if (name === undefined) throw new UsageError("api-tokens create needs --name");
  if (values.scope === undefined) throw new UsageError("api-tokens create needs at least one --scope");
  const scopes = parseScopeNames(values.scope);
  if (!Array.isArray(scopes)) {
    process.stderr.write(`unknown scope ${JSON.stringify(scopes.unknown)}: use ${Object.values(Scope).join(", ")}\n`);
    return EXIT_FAILED;
  }
  return withServices(async (services) => {
    const user = await services.users.findByUsername(username);
    if (!user) return failed(`no user named ${JSON.stringify(username)}`);
    if (user.disabled)
      return refuse(`user ${JSON.stringify(user.username)} is disabled: enable it first (users enable)`);
    try {
      const created = await services.apiTokens.createByOperator(user.id, {
        name,
        scopes,
        expiresIn: values["expires-in"],
      });
      const { id, scopes: granted, expiresAt } = created.apiToken;
      process.stdout.write(`${JSON.stringify({ id, token: created.token, scopes: granted, expiresAt })}\n`);
      return EXIT_OK;
    } catch (error) {
      return reportRefusal(error);
    }
  });
}

/** `api-tokens revoke`: any user's token, by its id. */
export async function revokeApiToken(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, { id: { type: "string" } });
  if (positionals.length > 0) throw new UsageError("api-tokens revoke takes only --id");
  const { id } = values;
  if (id === undefined) throw new UsageError("api-tokens revoke needs --id");
  return withServices(async (services) => {
    try {
      const revoked = await services.apiTokens.revokeByOperator(id);
      process.stdout.write(`${JSON.stringify({ id, revoked })}\n`);
      return EXIT_OK;
    } catch (error) {
      if (error instanceof NotFoundError) return failed(`no API token with the id ${JSON.stringify(id)}`);
      throw error;
    }
  });
}

/** The scopes named (in any letter case), or the first name that is none. */
function parseScopeNames(names: readonly string[]): Scope[] | { unknown: string } {
  const scopes: Scope[] = [];
  for (const name of names) {
    const scope = parseScopes([name.toUpperCase()]);
    if (scope === undefined) return { unknown: name };
    scopes.push(...scope);
  }
  return scopes;
}

/** What the service refused, on stderr: each invalid field, or the refusal's message (a scope without its role). */
function reportRefusal(error: unknown): number {
  if (error instanceof BadUserInputError) return reportFields(error, "invalid");
  if (error instanceof ForbiddenError || error instanceof NotFoundError) return refuse(error.message);
  throw error;
}

function refuse(message: string): number {
  return failed(`refused: ${message}`);
}

function failed(line: string): number {
  process.stderr.write(`${line}\n`);
  return EXIT_FAILED;
}
