import { type Logger, pino } from "pino";

import type { Config } from "./config.js";

/**
 * Paths that may carry a credential. Nothing in this service logs them on purpose; redaction is the
 * second line of defence should one ever be passed to a log call by mistake.
 */
export const REDACTED_PATHS = [
  "password",
  "*.password",
  "*.*.password",
  "newPassword",
  "*.newPassword",
  "currentPassword",
  "*.currentPassword",
  "token",
  "*.token",
  "accessToken",
  "*.accessToken",
  "refreshToken",
  "*.refreshToken",
  "secret",
  "*.secret",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  "variables",
  "*.variables",
];

/** Structured JSON logs at LOG_LEVEL, written to `destination` (default stdout). */
export function createLogger(config: Pick<Config, "logLevel">, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        // The path only: a query string could carry GraphQL variables over GET.
        req: (req: { method: string; url: string; ip?: string }) => ({
          method: req.method,
          path: req.url.split("?")[0],
          ip: req.ip,
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}
