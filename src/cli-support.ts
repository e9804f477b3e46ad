// What every CLI command shares: exit statuses, the usage error, strict option parsing, and the
// server's services built for one command and closed after it.
import { parseArgs } from "node:util";

import { BadUserInputError } from "./errors.js";
import { loadConfig } from "./load-config.js";
import { createLogger } from "./logger.js";
import { createServices, type Services } from "./services.js";

/** Exit statuses: success, a refused or failed operation, a command line that could not be understood. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A command line that cannot be understood: reported with a hint to `help`, exit status 2. */
export class UsageError extends Error {}

type OptionSpec = NonNullable<Parameters<typeof parseArgs>[0]>["options"];

/** parseArgs in strict mode, with its complaints turned into usage errors. */
export function parseCommand<T extends OptionSpec>(args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Runs `act` with the server's services, built from the configuration like the server's (without its
 * background work, so a command changes and audits exactly as the API would) and closed afterwards.
 */
export async function withServices(act: (services: Services) => Promise<number>): Promise<number> {
  const config = loadConfig();
  const services = await createServices(config, { logger: createLogger(config, process.stderr), background: false });
  try {
    return await act(services);
  } finally {
    await services.close();
  }
}

/** Each refused field of a BAD_USER_INPUT on its own stderr line: `<prefix> <field> (<rule>): <message>`. */
export function reportFields(error: BadUserInputError, prefix: string): number {
  for (const field of error.fields)
    process.stderr.write(`${prefix} ${field.field} (${field.rule}): ${field.message}\n`);
  return EXIT_FAILED;
}
