import { GraphQLError, Kind, OperationTypeNode, type SelectionSetNode, type ValidationRule } from "graphql";

import { credentialFieldsOf } from "../access/credential-operations.js";

/**
 * The message of the validation error, also quoted in docs/errors.md. It names the schema's
 * credential mutations; test/access/credential-operations.test.ts fails when they differ.
 */
export const SINGLE_AUTH_FIELD_MESSAGE =
  "An operation may contain at most one of login, register, refreshToken, changePassword, resetPassword, verifyEmail, finishPasskeySignIn and verifyMfaWithPasskey (aliases and fragments count too). Send each in its own request.";

/**
 * A graphql-js validation rule (for Apollo Server's `validationRules`): refuses, before anything
 * runs, a mutation that selects more than one of the schema's credential mutations (declared with
 * `@CredentialMutation`, read off the schema being validated), counting aliases and fields reached
 * through fragment spreads and inline fragments. Apollo answers it with HTTP 400 and
 * GRAPHQL_VALIDATION_FAILED. Login throttling counts every executed `login` anyway; this rule keeps
 * one HTTP request from being many password guesses (or registrations) in the first place.
 */
export const singleAuthFieldRule: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    if (operation.operation !== OperationTypeNode.MUTATION) return;
    const credentialFields = credentialFieldsOf(context.getSchema()).all;
    // How many auth fields each fragment holds, computed once: a document that spreads fragments
    // into each other many times over must not make this rule exponential.
    const perFragment = new Map<string, number>();
    const expanding = new Set<string>();
    const count = (selectionSet: SelectionSetNode): number => {
      let n = 0;
      for (const selection of selectionSet.selections) {
        if (selection.kind === Kind.FIELD) {
          if (credentialFields.has(selection.name.value)) n += 1;
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          n += count(selection.selectionSet);
        } else {
          const name = selection.name.value;
          let inFragment = perFragment.get(name);
          // A cycle is refused by graphql-js's own NoFragmentCycles rule; here it only must not loop.
          if (inFragment === undefined && !expanding.has(name)) {
            const fragment = context.getFragment(name);
            expanding.add(name);
            inFragment = fragment ? count(fragment.selectionSet) : 0;
            expanding.delete(name);
            perFragment.set(name, inFragment);
          }
          n += inFragment ?? 0;
        }
      }
      return n;
    };
    if (count(operation.selectionSet) > 1) {
      context.reportError(new GraphQLError(SINGLE_AUTH_FIELD_MESSAGE, { nodes: operation }));
    }
  },
});
