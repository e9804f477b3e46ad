import type { ApolloServerPlugin } from "@apollo/server";
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";

import { MFA_PENDING_FIELDS } from "../access/assurance.js";
import { mfaRequiredError, owesSecondFactor } from "../access/auth-checker.js";
import type { Context } from "../access/principal.js";

/** The one root field outside MFA_PENDING_FIELDS a session that owes its second factor may select: it names the root type and runs nothing. */
const TYPENAME = "__typename";

/**
 * Whether every root field `operation` selects is in `allowed` (or is `__typename`), looking
 * through aliases, inline fragments and fragment spreads, and counting a field whatever its
 * `@skip`/`@include` say (at worst one is counted that would not run). The document has passed
 * validation: every spread names a fragment, and none spreads itself.
 */
export function selectsOnlyRootFields(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  allowed: ReadonlySet<string>,
): boolean {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const visited = new Set<string>();
  const within = (set: SelectionSetNode): boolean =>
    set.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value === TYPENAME || allowed.has(selection.name.value);
      if (selection.kind === Kind.INLINE_FRAGMENT) return within(selection.selectionSet);
      const name = selection.name.value;
      // A fragment spread twice was looked at the first time.
      if (visited.has(name)) return true;
      visited.add(name);
      const fragment = fragments.get(name);
      return fragment !== undefined && within(fragment.selectionSet);
    });
  return within(operation.selectionSet);
}

/**
 * The multi-factor gate over HTTP (Apollo plugin): a session that owes its user's second factor
 * (the token's `mfa_pending`) may run only operations whose root fields are all in
 * MFA_PENDING_FIELDS (`me`, `verifyMfa`, `verifyMfaWithPasskey`, `logout`, `refreshToken`). Any
 * other root field, guarded or public, a query or a mutation, refuses the whole operation before
 * anything runs: FORBIDDEN, reason MFA_REQUIRED, HTTP 200 like every FORBIDDEN. Requests of any
 * other caller get no listener at all, so the gate costs them one property read. The WebSocket
 * transport refuses such a token at `connection_init` (http/ws/token.ts), and the auth checker
 * holds the same rule for guarded fields.
 */
export function mfaGatePlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart({ contextValue }) {
      if (!owesSecondFactor(contextValue.principal)) return undefined;
      let refused = false;
      return {
        async didResolveOperation({ document, operation }) {
          // No operation to run (graphql-js refuses it at execution): nothing to gate.
          if (!operation || selectsOnlyRootFields(document, operation, MFA_PENDING_FIELDS)) return;
          refused = true;
          throw mfaRequiredError();
        },
        async willSendResponse({ response }) {
          // Apollo answers an error thrown before execution with 500 unless told otherwise.
          if (refused) response.http.status = 200;
        },
      };
    },
  };
}
