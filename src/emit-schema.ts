import "reflect-metadata";

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";

import { printSchema } from "graphql";

import { buildAppSchema } from "./schema.js";

/** Header of schema/schema.graphql; the rest is `printSchema` of the built schema. */
export const SCHEMA_HEADER = "# Generated from the resolvers by `npm run schema`. Do not edit by hand.\n\n";

/** The text schema/schema.graphql must hold. */
export async function renderSchemaFile(): Promise<string> {
  return SCHEMA_HEADER + printSchema(await buildAppSchema()) + "\n";
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = resolve(process.argv[2] ?? "schema/schema.graphql");
  writeFileSync(target, await renderSchemaFile());
  console.log(`wrote ${target}`);
}
