import { Kind, type OperationDefinitionNode, OperationTypeNode, type SelectionSetNode, parse } from "graphql";

/**
 * The mutations that never use the caller's identity: they take credentials (a password or a
 * refresh token) in their arguments. An operation made only of these is never refused because of
 * its Authorization header, so a client's auth link may keep attaching an expired access token to
 * the very refresh that replaces it (urql's exchange-auth does, by design).
 */
export const CREDENTIAL_FIELDS: ReadonlySet<string> = new Set(["login", "register", "refreshToken"]);

/**
 * Whether a GraphQL request body is an operation whose root fields are all {@link CREDENTIAL_FIELDS}
 * (through fragments too). Called only when a request's token is refused, so the extra parse costs
 * nothing on the usual path; `maxTokens` bounds it like the real parse. Anything that does not
 * parse, names no single operation, or selects any other root field (even `__typename`) is not.
 */
export function isCredentialOnlyOperation(body: unknown, maxTokens: number): boolean {
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
      if (selection.kind === Kind.FIELD) return CREDENTIAL_FIELDS.has(selection.name.value);
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
