// Environment variables declared with zod: the kinds of value a setting takes (each read from the
// environment's text with its own message), the declaration of a variable, and reading a declared
// schema from an environment. config.ts (and its groups, in config-groups.ts) declares the service's
// variables with these.
import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";

import { z } from "zod";

import { parseDuration, parseDurationMs } from "./durations.js";

/** A default, or a function giving it when the variable is unset (a default another module owns). */
export type Default<T> = T | (() => T);
const valueOf = <T>(value: Default<T>): T => (typeof value === "function" ? (value as () => T)() : value);

/** One environment variable: `name`, parsed by `schema` (with its default), meaning `description`. */
export function variable<S extends z.ZodType>(name: string, schema: S, description: string): S {
  return schema.meta({ env: name, description });
}

/** An object of variables given as `key: [name, description]`, each parsed by `parser(key)`. */
export function group<T extends Record<string, readonly [string, string]>, S extends z.ZodType>(
  table: T,
  parser: (key: string) => S,
) {
  const entries = Object.entries(table).map(([key, [name, description]]) => [
    key,
    variable(name, parser(key), description),
  ]);
  return z.object(Object.fromEntries(entries) as { [K in keyof T]: S });
}

/** Text, undefined when unset or blank. */
export const optionalText = () =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? undefined : v));

/** Text that must not be empty, with a default. */
export const text = (defaultValue: string) => z.string().min(1).default(defaultValue);

/** Optional text, refused with `rule`'s reason (undefined: accepted). */
export const checkedText = (rule: (value: string) => string | undefined) =>
  optionalText().superRefine((v, ctx) => {
    const problem = v === undefined ? undefined : rule(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** Optional text that must match `pattern`. */
export const matching = (pattern: RegExp, message: string) =>
  optionalText().refine((v) => v === undefined || pattern.test(v), message);

/** Optional text read by `read`, which gives the value and one line per problem. */
export const readWith = <T>(read: (text: string | undefined) => { value: T; problems: readonly string[] }) =>
  optionalText().transform((text, ctx) => {
    const { value, problems } = read(text);
    for (const message of problems) ctx.addIssue({ code: "custom", message });
    return problems.length > 0 ? z.NEVER : value;
  });

/** A comma-separated list, empty when unset; `rule` refuses an entry with its reason, one problem each. */
export const list = (rule: (entry: string) => string | undefined = () => undefined) =>
  z
    .string()
    .optional()
    .transform((v) =>
      (v ?? "")
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== ""),
    )
    .superRefine((entries, ctx) => {
      for (const message of entries.map(rule).filter((m) => m !== undefined)) ctx.addIssue({ code: "custom", message });
    });

/** A TCP port from 0 up, with a default. */
export const port = (defaultValue: string, message: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, message)
    .default(defaultValue)
    .transform(Number)
    .refine((n) => n <= 65535, message);

/** A positive whole number, with a default. */
export const count = (defaultValue: Default<number>) =>
  z
    .string()
    .default(() => String(valueOf(defaultValue)))
    .refine((v) => /^\d{1,9}$/.test(v.trim()) && Number(v) > 0, "must be a whole number from 1 to 999999999")
    .transform((v) => Number(v));

/** `true` or `false`, with a default. */
export const flag = (defaultValue: boolean) =>
  z
    .enum(["true", "false"], { message: "must be true or false" })
    .default(defaultValue ? "true" : "false")
    .transform((v) => v === "true");

/** A whole number from 0 (switched off) up, with a default. */
export const countOrOff = (defaultValue: number) =>
  z
    .string()
    .default(String(defaultValue))
    .refine((v) => /^\d{1,9}$/.test(v.trim()), "must be a whole number from 0 (off) to 999999999")
    .transform((v) => Number(v));

/** A duration in seconds (`900s`, `15m`, `1h`, `30d`), with a default. */
export const seconds = (defaultValue: string) =>
  z
    .string()
    .default(defaultValue)
    .transform((value, ctx) => {
      const parsed = parseDuration(value);
      if (parsed !== undefined) return parsed;
      ctx.addIssue({
        code: "custom",
        message: /^\d+$/.test(value.trim())
          ? "must have a unit (for example 900s, 15m, 1h or 30d); a bare number is ambiguous"
          : "must be a positive duration with a unit: s, m, h or d (for example 15m)",
      });
      return z.NEVER;
    });

/** Milliseconds of a duration (`500ms`, `5s`) up to `maxMs`; with `zeroAllowed`, `0s` switches the setting off. */
function durationMs(value: string, maxMs: number, ctx: z.RefinementCtx, zeroAllowed: boolean): number {
  if (zeroAllowed && /^0+(ms|s|m|h|d)$/.test(value.trim())) return 0;
  const ms = parseDurationMs(value);
  if (ms !== undefined && ms <= maxMs) return ms;
  ctx.addIssue({
    code: "custom",
    message:
      ms !== undefined
        ? `must be at most ${maxMs / 1000}s`
        : /^\d+$/.test(value.trim())
          ? "must have a unit (for example 500ms, 5s or 1m); a bare number is ambiguous"
          : `must be a ${zeroAllowed ? "" : "positive "}duration with a unit: ms, s, m, h or d (for example 5s${zeroAllowed ? ", or 0s for off" : ""})`,
  });
  return z.NEVER;
}

/**
 * A duration in milliseconds up to `maxMs`, with a default (a duration text, or milliseconds);
 * with `zeroAllowed`, `0s` switches the setting off.
 */
export const milliseconds = (defaultValue: Default<number> | string, maxMs: number, zeroAllowed = false) =>
  z
    .string()
    .default(() => (typeof defaultValue === "string" ? defaultValue : `${valueOf(defaultValue)}ms`))
    .transform((value, ctx) => durationMs(value, maxMs, ctx, zeroAllowed));

/** Like {@link milliseconds}, but undefined when unset: the default depends on another setting. */
export const optionalMilliseconds = (maxMs: number, zeroAllowed = false) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => (value === undefined ? undefined : durationMs(value, maxMs, ctx, zeroAllowed)));

/** Readonly all the way down, arrays included. */
export type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** A declared variable: its name, its description, where the parsed object holds it, and its parser. */
export interface EnvVariable {
  readonly name: string;
  readonly description: string;
  readonly path: readonly string[];
  readonly schema: z.ZodType;
}

/**
 * Every variable of `schema` (objects of {@link variable}s, nested, each object perhaps piped into a
 * transform), in declaration order, with its place in the parsed object.
 */
export function variablesOf(schema: z.ZodType, path: readonly string[] = []): EnvVariable[] {
  const meta = schema.meta();
  if (typeof meta?.env === "string") return [{ name: meta.env, description: meta.description ?? "", path, schema }];
  const object = schema instanceof z.ZodPipe ? (schema.in as z.ZodType) : schema;
  if (!(object instanceof z.ZodObject)) throw new Error(`setting ${path.join(".")} names no variable`);
  return Object.entries(object.shape as Record<string, z.ZodType>).flatMap(([key, inner]) =>
    variablesOf(inner, [...path, key]),
  );
}

/**
 * Parses `env` with `schema`: each variable's text is placed where the schema holds it, and each
 * problem is one line that starts with the variable's name. `value` is undefined when there is one.
 */
export function readEnv<S extends z.ZodType>(
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
): { value: z.output<S> | undefined; problems: string[] } {
  const variables = variablesOf(schema);
  const input: Record<string, unknown> = {};
  for (const { name, path } of variables) {
    let node = input;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path.at(-1)!] = env[name];
  }
  const parsed = schema.safeParse(input);
  if (parsed.success) return { value: parsed.data, problems: [] };
  const nameAt = new Map(variables.map((v) => [v.path.join("."), v.name]));
  const problems = parsed.error.issues.map((issue) => {
    const at = issue.path.join(".");
    return `${nameAt.get(at) ?? at} ${issue.message}`;
  });
  return { value: undefined, problems };
}

/** `value`, frozen with everything it holds. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The variables of a `.env` file, none when there is no such file. */
export function readDotEnv(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, "utf8")) as Record<string, string>;
}
