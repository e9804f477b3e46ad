import {
  type ArgumentNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  getNamedType,
  getNullableType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLSchema,
  isCompositeType,
  isInputType,
  isInterfaceType,
  isListType,
  isObjectType,
  isScalarType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  typeFromAST,
  valueFromAST,
  type ValueNode,
} from "graphql";
import { Extensions } from "type-graphql";

import { FIRST_MAX } from "./pagination.js";

/**
 * What one value in a response costs: an object (any field with a selection) 2, a scalar or enum 1,
 * and text one unit per started `textCharacters` of its declared maximum length ({@link Bounded}),
 * so text of up to 1,000 characters costs 1 like any scalar and a post body (20,000) costs 20. A
 * response key (a field's alias) adds one unit for each full `keyCharacters`, since an alias is
 * repeated in the answer for every item of the lists around it; the schema's own names are shorter.
 */
export const COST_WEIGHTS = Object.freeze({ object: 2, scalar: 1, textCharacters: 1000, keyCharacters: 100 });

/** The field extension {@link Bounded} records a text field's maximum length in. */
export const MAX_LENGTH_EXTENSION = "maxLength";

/**
 * The longest text each custom scalar of the schema serialises to, declared where the cost reads it
 * since the scalars are not ours: `DateTimeISO` is `Date.prototype.toISOString()`, 24 characters,
 * 27 for years beyond 9999. test/graphql/query-cost.test.ts fails on a custom scalar missing here.
 */
export const SCALAR_MAX_LENGTHS: Readonly<Record<string, number>> = Object.freeze({ DateTimeISO: 27 });

/**
 * Declares the most characters a `String` field of an object type can return, next to its
 * `@Field`; {@link operationCost} prices the field by it. Declare the bound the data is held to
 * (an input rule, a cap where it is stored, a fixed format), not a guess:
 * test/graphql/query-cost.test.ts fails on a String field without one.
 */
export function Bounded(maxLength: number): MethodDecorator & PropertyDecorator {
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`Bounded(${maxLength}): a positive whole number`);
  return Extensions({ [MAX_LENGTH_EXTENSION]: maxLength });
}

/** A field's declared maximum length ({@link Bounded}), or its scalar's; undefined when neither is known. */
export function maxLengthOf(field: GraphQLField<unknown, unknown>): number | undefined {
  const declared = field.extensions?.[MAX_LENGTH_EXTENSION];
  if (typeof declared === "number") return declared;
  const type = getNamedType(field.type);
  return isScalarType(type) ? SCALAR_MAX_LENGTHS[type.name] : undefined;
}

/** What a text of at most `maxLength` characters costs: {@link COST_WEIGHTS} `scalar`, or one unit per started 1,000 characters. */
export function textCost(maxLength: number): number {
  return Math.max(COST_WEIGHTS.scalar, Math.ceil(maxLength / COST_WEIGHTS.textCharacters));
}

/** The operation to price, as Apollo has it once the operation is resolved. */
export interface CostInput {
  readonly schema: GraphQLSchema;
  readonly document: DocumentNode;
  readonly operation: OperationDefinitionNode;
  /** The request's variables as the client sent them (not yet coerced); missing means none. */
  readonly variables?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * An upper bound on what the operation can return, objects counting {@link COST_WEIGHTS} `object`,
 * scalars `scalar` and text by its declared maximum length ({@link textCost}), so that the cost
 * bounds the answer's size as well as its count of values. A list field counts as its `first`
 * times its own cost: the literal when one is written, the variable's value when `first` is a
 * variable (the variable's default in the operation when the request leaves it out), and the
 * argument's schema default when `first` is not given or is null. A `first` over {@link FIRST_MAX}
 * counts as that: every list refuses more with BAD_USER_INPUT before anything under it runs
 * (test/lists.test.ts holds each one to it), and that error names the argument where a cost refusal
 * would not. So `users { posts { id } }` costs 50 × (2 + 20 × (2 + 1)) = 3,100 and
 * `posts(first: 100) { body }` 100 × (2 + 20) = 2,200 whatever the data, and
 * `posts(first: $n) { author { posts(first: $n) { … } } }` grows as n² however it is written. A
 * list without a `first` argument counts once. `@skip`/`@include` are not evaluated (the field
 * counts either way) and fragments count where they are spread, each priced once. Introspection
 * (`__schema`, `__type`) is free, so Apollo Sandbox always works; `__typename` is a scalar.
 */
export function operationCost({ schema, document, operation, variables = {} }: CostInput): number {
  const root = schema.getRootType(operation.operation);
  return root ? new CostWalk(schema, document, operation, variables).selectionSetCost(operation.selectionSet, root) : 0;
}

/** One pricing of one operation: its fragments, each priced once, and its variables' values. */
class CostWalk {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  private readonly fragmentCosts = new Map<string, number>();
  private readonly variableDefaults = new Map<string, { type: GraphQLInputType; value: ValueNode }>();

  constructor(
    private readonly schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    private readonly variables: Readonly<Record<string, unknown>>,
  ) {
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(definition.name.value, definition);
    }
    for (const definition of operation.variableDefinitions ?? []) {
      const type = typeFromAST(schema, definition.type);
      if (definition.defaultValue && isInputType(type))
        this.variableDefaults.set(definition.variable.name.value, { type, value: definition.defaultValue });
    }
  }

  selectionSetCost(set: SelectionSetNode, parent: GraphQLNamedType): number {
    let total = 0;
    for (const selection of set.selections) {
      switch (selection.kind) {
        case Kind.FIELD:
          total += this.fieldCost(selection, parent);
          break;
        case Kind.INLINE_FRAGMENT: {
          const type = selection.typeCondition ? this.schema.getType(selection.typeCondition.name.value) : parent;
          if (type) total += this.selectionSetCost(selection.selectionSet, type);
          break;
        }
        case Kind.FRAGMENT_SPREAD:
          total += this.fragmentCost(selection.name.value);
          break;
      }
    }
    return total;
  }

  private fragmentCost(name: string): number {
    const known = this.fragmentCosts.get(name);
    if (known !== undefined) return known;
    // Validation refuses fragment cycles before this runs; should one get here, it ends at zero.
    this.fragmentCosts.set(name, 0);
    const fragment = this.fragments.get(name);
    const type = fragment && this.schema.getType(fragment.typeCondition.name.value);
    const cost = fragment && type ? this.selectionSetCost(fragment.selectionSet, type) : 0;
    this.fragmentCosts.set(name, cost);
    return cost;
  }

  private fieldCost(node: FieldNode, parent: GraphQLNamedType): number {
    const name = node.name.value;
    // The key the value is answered under: a 100 KB alias would be 100 KB in every item of a list.
    const key = Math.floor((node.alias?.value ?? name).length / COST_WEIGHTS.keyCharacters);
    if (name === "__typename") return COST_WEIGHTS.scalar + key;
    if (name === "__schema" || name === "__type") return 0;
    if (!isObjectType(parent) && !isInterfaceType(parent)) return 0;
    const field = parent.getFields()[name];
    // Unknown fields never get here: validation refuses them first.
    if (!field) return 0;
    const type = getNamedType(field.type);
    const maxLength = maxLengthOf(field);
    const own =
      isCompositeType(type) && node.selectionSet
        ? COST_WEIGHTS.object + this.selectionSetCost(node.selectionSet, type)
        : maxLength === undefined
          ? COST_WEIGHTS.scalar
          : textCost(maxLength);
    return (own + key) * this.listSize(node, field);
  }

  private listSize(node: FieldNode, field: GraphQLField<unknown, unknown>): number {
    if (!isListType(getNullableType(field.type))) return 1;
    const first = field.args.find((arg) => arg.name === "first");
    if (!first) return 1;
    const value = this.argumentValue(
      node.arguments?.find((arg) => arg.name.value === "first"),
      first,
    );
    // Outside 1 to FIRST_MAX the resolver refuses the field, so nothing under it runs.
    if (typeof value === "number" && Number.isFinite(value)) return Math.min(Math.max(0, value), FIRST_MAX);
    return typeof first.defaultValue === "number" ? Math.min(first.defaultValue, FIRST_MAX) : 1;
  }

  private argumentValue(given: ArgumentNode | undefined, argument: GraphQLArgument): unknown {
    if (!given) return undefined;
    if (given.value.kind !== Kind.VARIABLE) return valueFromAST(given.value, argument.type);
    const name = given.value.name.value;
    if (Object.hasOwn(this.variables, name)) return this.variables[name];
    const fallback = this.variableDefaults.get(name);
    return fallback ? valueFromAST(fallback.value, fallback.type) : undefined;
  }
}
