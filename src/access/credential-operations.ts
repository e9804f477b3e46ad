import {
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  OperationTypeNode,
  parse,
  type SelectionSetNode,
} from "graphql";
import { Extensions } from "type-graphql";

import { requirementOf } from "./requires.js";

/** What a credential mutation declares with {@link CredentialMutation}. */
export interface CredentialDeclaration {
  /**
   * The mutation never uses the caller's identity: its credential (a password or a refresh token)
   * is in its arguments, so an operation made only of such mutations is never refused for its
   * Authorization header. A client's auth link may then keep attaching an expired access token to
   * the very refresh that replaces it (urql's exchange-auth does, by design). Default false: the
   * mutation checks a credential of a signed-in caller (changePassword needs the caller's token).
   */
  readonly ignoresAuthorization?: boolean;
}

/** The schema extension a {@link CredentialMutation} is recorded under. */
export const CREDENTIAL_EXTENSION = "credential";

/**
 * Declares a mutation that checks or issues a credential (a password, a refresh token). Both lists
 * that matter are read off the built schema ({@link credentialFieldsOf}), never kept by hand: at
 * most one such mutation per operation (graphql/single-auth-field.rule.ts, against brute force by
 * aliases), and, with `ignoresAuthorization`, the mutations whose operations run anonymously
 * whatever the Authorization header holds (bearer.ts).
 */
export function CredentialMutation(declaration: CredentialDeclaration = {}): MethodDecorator & PropertyDecorator {
  return Extensions({ [CREDENTIAL_EXTENSION]: { ignoresAuthorization: declaration.ignoresAuthorization === true } });
}

/** The credential mutations of a schema, as {@link CredentialMutation} declared them. */
export interface CredentialFields {
  /** Every credential mutation: at most one of them in one operation. */
  readonly all: ReadonlySet<string>;
  /** Those declared `ignoresAuthorization`: an operation of only these runs anonymously. */
  readonly ignoringAuthorization: ReadonlySet<string>;
}

const bySchema = new WeakMap<GraphQLSchema, CredentialFields>();

/**
 * The mutations of `schema` declared with {@link CredentialMutation}, read once per schema. Throws
 * for a mutation declared `ignoresAuthorization` that is also guarded by `@Requires`: it would need
 * the very caller it runs without.
 */
export function credentialFieldsOf(schema: GraphQLSchema): CredentialFields {
  const known = bySchema.get(schema);
  if (known) return known;
  const all = new Set<string>();
  const ignoringAuthorization = new Set<string>();
  for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const declaration = field.extensions[CREDENTIAL_EXTENSION] as CredentialDeclaration | undefined;
    if (!declaration) continue;
    all.add(field.name);
    if (!declaration.ignoresAuthorization) continue;
    if (requirementOf(field.extensions)) {
      throw new Error(`Mutation.${field.name} ignores the Authorization header but is guarded by @Requires`);
    }
    ignoringAuthorization.add(field.name);
  }
  const fields = { all, ignoringAuthorization };
  bySchema.set(schema, fields);
  return fields;
}

/**
 * Whether a GraphQL request body is an operation whose root fields are all in `fields` (the
 * schema's {@link CredentialFields.ignoringAuthorization}), through fragments too. Called only when
 * a request's token is refused, so the extra parse costs nothing on the usual path; `maxTokens`
 * bounds it like the real parse. Anything that does not parse, names no single operation, or
 * selects any other root field (even `__typename`) is not.
 */
export function isCredentialOnlyOperation(body: unknown, maxTokens: number, fields: ReadonlySet<string>): boolean {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return false;
  const { query, operationName } = body as { query?: unknown; operationName?: unknown };
  if (typeof query !== "string") return false;
  let document;
  try {
    document = parse(query, { maxTokens, noLocation: true });
  } catch {
    return false;
  }
  const operations = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  const operation =
    typeof operationName === "string" && operationName !== ""
      ? operations.find((o) => o.name?.value === operationName)
      : operations.length === 1
        ? operations[0]
        : undefined;
  if (operation === undefined || operation.operation !== OperationTypeNode.MUTATION) return false;
  const fragments = new Map(
    document.definitions.flatMap((d) =>
      d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet] as const] : [],
    ),
  );
  const seen = new Set<string>();
  const onlyCredentialFields = (selections: SelectionSetNode): boolean =>
    selections.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) return fields.has(selection.name.value);
      if (selection.kind === Kind.INLINE_FRAGMENT) return onlyCredentialFields(selection.selectionSet);
      const name = selection.name.value;
      const fragment = fragments.get(name);
      // An unknown fragment fails validation later anyway; a cycle is refused by validation too.
      if (fragment === undefined || seen.has(name)) return false;
      seen.add(name);
      return onlyCredentialFields(fragment);
    });
  return operation.selectionSet.selections.length > 0 && onlyCredentialFields(operation.selectionSet);
}
