import { type GraphQLResolveInfo, Kind, type SelectionSetNode } from "graphql";

/**
 * True when the field being resolved asks its result for no field outside `allowed`, looking
 * through fragments and counting a field whatever its `@skip`/`@include` say (so a field is never
 * missed, at worst one is counted that will not run). Validation has already refused fragment
 * cycles, and the query limits bound the depth, so the walk ends.
 */
export function selectsOnly(info: GraphQLResolveInfo, allowed: ReadonlySet<string>): boolean {
  const within = (set: SelectionSetNode | undefined): boolean =>
    set === undefined ||
    set.selections.every((selection) => {
      switch (selection.kind) {
        case Kind.FIELD:
          return allowed.has(selection.name.value);
        case Kind.INLINE_FRAGMENT:
          return within(selection.selectionSet);
        case Kind.FRAGMENT_SPREAD: {
          const fragment = info.fragments[selection.name.value];
          return fragment !== undefined && within(fragment.selectionSet);
        }
      }
    });
  return info.fieldNodes.every((node) => within(node.selectionSet));
}
