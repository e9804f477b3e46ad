import "reflect-metadata";

import { ConfiguredKeysError, loadKeyRing, NoKeysError, rotateGeneratedKey } from "./access/keys.js";
import { Role } from "./access/roles.js";
import { createTokenService, decodeUnverified, TokenError } from "./access/tokens.js";
import { API_TOKENS_USAGE, createApiToken, revokeApiToken } from "./cli-api-tokens.js";
import {
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  parseCommand,
  reportFields,
  UsageError,
  withServices,
} from "./cli-support.js";
import { ConfigError } from "./config.js";
import { BadUserInputError } from "./errors.js";
import { loadConfig } from "./load-config.js";
import type { Services } from "./services.js";
import type { User } from "./users/index.js";

const USAGE = `Usage: npm run cli -- <command> [options]

Commands:
  users create --username <name> (--password <password> | --password-stdin) [--role USER|ADMIN]...
      Creates a user with the same rules as register. --role may be repeated; every user
      has USER. --password-stdin reads the password from standard input (keeps it out of
      shell history). Prints {"id","username","roles"} as JSON.
  users revoke-sessions --username <name>
      Ends every session of the user, on every running instance within a second (their
      access tokens get 401, their refresh tokens stop). Audited like revokeUserSessions,
      by CLI. Prints {"ended": <how many sessions ended>} as JSON.
  users disable --username <name>
  users enable --username <name>
      Disables an account (ending every session and API token of it on every running
      instance within a second; the right password then gets ACCOUNT_DISABLED) or enables
      it again. The last active ADMIN cannot be disabled. Audited like setUserDisabled, by
      CLI. Prints {"id","username","disabled"} as JSON.
  users reset-link --username <name>
      Prints a one-time password reset link for the user (PASSWORD_RESET_URL with a new
      token, valid for PASSWORD_RESET_TOKEN_EXPIRES; the user's earlier links stop working),
      for an operator to hand over when mail cannot reach them. Audited as
      PASSWORD_RESET_REQUESTED, by CLI.
  users reset-mfa --username <name>
      Like resetUserMfa: removes every second factor, ends every session (audited, by CLI).
${API_TOKENS_USAGE}  token decode <jwt>
      Prints the token's header and payload as JSON WITHOUT verifying anything.
  token verify <jwt>
      Verifies the token with the configured key, issuer and audience and prints its
      claims as JSON, or prints "invalid: <REASON>: <message>" and exits 1.
      Whether the token's session is still active is not checked.
  keys rotate
      Adds a new generated signing key for JWT_ALGORITHM in DATA_DIR/keys and prints its kid.
      Running servers sign with it within a minute (at once on SIGHUP); the old key keeps
      verifying until the tokens it signed have expired, then leaves the JWKS. Keys given by
      JWT_SECRET_KEY or JWT_PRIVATE_KEY_FILE rotate by changing the configuration instead.
  help
      Shows this text.

Configuration is read like the server's, from the environment or a .env file
(DATA_DIR, DATABASE_URL, DATABASE_SCHEMA, JWT_*, LOG_LEVEL). Logs go to standard error.
Exit status: 0 done, 1 failed or refused, 2 command line not understood.
`;

/**
 * Runs one CLI command given its arguments (without `node cli.js`) and resolves to the exit status.
 * Results go to stdout, everything else (notes, errors, logs) to stderr.
 */
async function runCli(args: readonly string[]): Promise<number> {
  const [group, action, ...rest] = args;
  try {
    if (group === undefined || group === "help" || group === "--help" || group === "-h") {
      process.stdout.write(USAGE);
      return EXIT_OK;
    }
    if (group === "users" && action === "create") return await createUser(rest);
    if (group === "users" && action === "revoke-sessions") return await revokeSessions(rest);
    if (group === "users" && (action === "disable" || action === "enable")) {
      return await setDisabled(rest, action === "disable");
    }
    if (group === "users" && action === "reset-link") return await resetLink(rest);
    if (group === "users" && action === "reset-mfa") return await resetMfa(rest);
    if (group === "api-tokens" && action === "create") return await createApiToken(rest);
    if (group === "api-tokens" && action === "revoke") return await revokeApiToken(rest);
    if (group === "token" && action === "decode") return decodeToken(rest);
    if (group === "token" && action === "verify") return await verifyToken(rest);
    if (group === "keys" && action === "rotate") return rotateKeys(rest);
    throw new UsageError(`unknown command: ${[group, action].filter((word) => word !== undefined).join(" ")}`);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`);
      return EXIT_FAILED;
    }
    throw error;
  }
}

/** `users create`: validates like `register`, stores the user, prints it (never the password). */
async function createUser(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommand(args, {
    username: { type: "string" },
    password: { type: "string" },
    "password-stdin": { type: "boolean" },
    role: { type: "string", multiple: true },
  });
  // Not echoed: a stray argument may well be a password typed in the wrong place.
  if (positionals.length > 0)
    throw new UsageError("users create takes only options (--username, --password, --password-stdin, --role)");
  if (values.username === undefined) throw new UsageError("users create needs --username");
  if ((values.password === undefined) === (values["password-stdin"] !== true)) {
    throw new UsageError("users create needs exactly one of --password or --password-stdin");
  }
  const roles = new Set<Role>([Role.USER]);
  for (const name of values.role ?? []) {
    const role = Object.values(Role).find((r) => r === (name.toUpperCase() as Role));
    if (role === undefined) {
      process.stderr.write(`unknown role ${JSON.stringify(name)}: use ${Object.values(Role).join(" or ")}\n`);
      return EXIT_FAILED;
    }
    roles.add(role);
  }
  const password = values.password ?? (await readPasswordFromStdin());
  const username = values.username;
  // The same services as the server's, so the account is checked and audited like a registration.
  return withServices(async (services) => {
    try {
      const user = await services.users.create({ username, password, roles: [...roles], by: "CLI" });
      process.stdout.write(`${JSON.stringify({ id: user.id, username: user.username, roles: user.roles })}\n`);
      return EXIT_OK;
    } catch (error) {
      if (!(error instanceof BadUserInputError)) throw error;
      return reportFields(error, "invalid");
    }
  });
}

/**
 * A command of the form `<command> --username <name>`: runs `act` on that user with the server's
 * services, and says so on stderr with exit 1 when there is no such user or the service refuses
 * (BAD_USER_INPUT). `act` prints the result.
 */
function onNamedUser(
  command: string,
  args: readonly string[],
  act: (services: Services, user: User) => Promise<void>,
): Promise<number> {
  const { values, positionals } = parseCommand(args, { username: { type: "string" } });
  if (positionals.length > 0) throw new UsageError(`${command} takes only --username`);
  const username = values.username;
  if (username === undefined) throw new UsageError(`${command} needs --username`);
  return withServices(async (services) => {
    try {
      const user = await services.users.findByUsername(username);
      if (!user) {
        process.stderr.write(`no user named ${JSON.stringify(username)}\n`);
        return EXIT_FAILED;
      }
      await act(services, user);
      return EXIT_OK;
    } catch (error) {
      if (!(error instanceof BadUserInputError)) throw error;
      for (const field of error.fields) process.stderr.write(`refused: ${field.message}\n`);
      return EXIT_FAILED;
    }
  });
}

/** `users revoke-sessions`: ends every session of one user, through the same service as revokeUserSessions. */
function revokeSessions(args: readonly string[]): Promise<number> {
  return onNamedUser("users revoke-sessions", args, async (services, user) => {
    const ended = await services.accounts.revokeAllOfUser(user.id, "CLI");
    process.stdout.write(`${JSON.stringify({ ended })}\n`);
  });
}

/** `users disable` and `users enable`: through the same service as setUserDisabled. */
function setDisabled(args: readonly string[], disabled: boolean): Promise<number> {
  return onNamedUser(disabled ? "users disable" : "users enable", args, async (services, user) => {
    const changed = await services.accounts.setDisabled("CLI", user.id, disabled);
    process.stdout.write(
      `${JSON.stringify({ id: changed.id, username: changed.username, disabled: changed.disabled })}\n`,
    );
  });
}

/** `users reset-link`: a reset link minted like a mailed one, printed instead of mailed. */
function resetLink(args: readonly string[]): Promise<number> {
  return onNamedUser("users reset-link", args, async (services, user) => {
    const link = await services.passwordResets.linkFor(user.username);
    if (link === undefined) throw new Error(`user ${user.username} vanished`);
    process.stdout.write(`${link}\n`);
  });
}

/** `users reset-mfa`: through the same service as resetUserMfa. */
function resetMfa(args: readonly string[]): Promise<number> {
  return onNamedUser("users reset-mfa", args, async (services, user) => {
    const mfaReset = await services.mfa.resetUser("CLI", user.id);
    process.stdout.write(`${JSON.stringify({ id: user.id, username: user.username, mfaReset })}\n`);
  });
}

/** `token decode`: header and payload as they are written, with a loud note that nothing was checked. */
function decodeToken(args: readonly string[]): number {
  const token = singleToken(args, "token decode");
  const decoded = decodeUnverified(token);
  if (!decoded) {
    process.stderr.write("not a JWT: expected three base64url segments whose first two are JSON objects\n");
    return EXIT_FAILED;
  }
  process.stderr.write("NOT verified: signature, expiry, issuer and audience were not checked (use `token verify`)\n");
  process.stdout.write(`${JSON.stringify(decoded, null, 2)}\n`);
  return EXIT_OK;
}

/** `token verify`: the same checks as the server applies to every request, with the configured key. */
async function verifyToken(args: readonly string[]): Promise<number> {
  const token = singleToken(args, "token verify");
  const config = loadConfig();
  let keys;
  try {
    // Never generate here: a new key could verify nothing and would leave a file behind.
    keys = loadKeyRing(config, () => undefined, Date.now, { create: false });
  } catch (error) {
    if (!(error instanceof NoKeysError)) throw error;
    process.stderr.write(`cannot verify: ${error.message}\n`);
    return EXIT_FAILED;
  }
  const tokens = createTokenService(config, keys);
  try {
    const claims = tokens.verifyAccessToken(token);
    process.stdout.write(`${JSON.stringify(claims, null, 2)}\n`);
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    process.stderr.write(`invalid: ${error.reason}: ${error.message}\n`);
    return EXIT_FAILED;
  }
}

/** `keys rotate`: a new generated signing key; the previous ones keep verifying for a grace period. */
function rotateKeys(args: readonly string[]): number {
  if (args.length > 0) throw new UsageError("keys rotate takes no arguments");
  const config = loadConfig();
  try {
    const { kid, alg } = rotateGeneratedKey(config);
    process.stdout.write(`${JSON.stringify({ kid, alg })}\n`);
    process.stderr.write("new signing key added; running servers use it within a minute, or at once after SIGHUP\n");
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof ConfiguredKeysError)) throw error;
    process.stderr.write(`cannot rotate: ${error.message}\n`);
    return EXIT_FAILED;
  }
}

function singleToken(args: readonly string[], command: string): string {
  const { positionals } = parseCommand(args, {});
  const [token] = positionals;
  if (token === undefined || positionals.length !== 1) throw new UsageError(`${command} needs exactly one token`);
  return token.trim();
}

/** Reads standard input to its end; one trailing line break (from `echo` or a here-string) is dropped. */
async function readPasswordFromStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("password (end with Enter, then Ctrl-D): ");
  let text = "";
  process.stdin.setEncoding("utf8");
  for await (const chunk of process.stdin) text += chunk;
  return text.replace(/\r?\n$/, "");
}

runCli(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
