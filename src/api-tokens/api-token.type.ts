import "reflect-metadata";

import { ArrayMaxSize, ArrayMinSize, Length, Matches } from "class-validator";
import { ArgsType, Field, ID, InputType, ObjectType } from "type-graphql";

import { API_TOKEN_LENGTH } from "../access/api-tokens.js";
import { Scope } from "../access/scopes.js";
import { FIRST_MAX, OFFSET_MAX, pageArgs } from "../graphql/pagination.js";
import { Bounded } from "../graphql/query-cost.js";
import { HasNoNul, IsNotBlank } from "../graphql/validation.js";

export const API_TOKEN_NAME_MAX = 100;
/** How many live API tokens one account may hold; one more is BAD_USER_INPUT. */
export const API_TOKENS_PER_USER_MAX = 50;
export const API_TOKEN_DEFAULT_EXPIRES_IN = "90d";

@ObjectType("ApiToken", {
  description:
    "A scoped token for scripts and services, sent as `Authorization: Bearer gta_…`. It acts for its owner with at most its scopes; the token itself is shown only once, by createApiToken.",
})
export class ApiToken {
  @Field(() => ID)
  id!: string;

  @Field({ description: "What the owner called it, to tell tokens apart." })
  @Bounded(API_TOKEN_NAME_MAX)
  name!: string;

  @Field(() => [Scope], { description: "What it may be used for." })
  scopes!: Scope[];

  @Field()
  createdAt!: Date;

  @Field({ description: "After this it is refused (HTTP 401, reason TOKEN_EXPIRED)." })
  expiresAt!: Date;

  @Field(() => Date, {
    nullable: true,
    description: "When it was last used, to within about five minutes; null when never used.",
  })
  lastUsedAt!: Date | null;
}

@ObjectType("CreatedApiToken", { description: "A new API token: the only time its secret is shown." })
export class CreatedApiToken {
  @Field({ description: "The token, `gta_…`. Store it now: only its hash is kept, so it cannot be shown again." })
  @Bounded(API_TOKEN_LENGTH)
  token!: string;

  @Field(() => ApiToken)
  apiToken!: ApiToken;
}

@InputType("CreateApiTokenInput")
export class CreateApiTokenInput {
  @Field({ description: `1 to ${API_TOKEN_NAME_MAX} characters, not blank.` })
  @Length(1, API_TOKEN_NAME_MAX, { message: `must be 1 to ${API_TOKEN_NAME_MAX} characters` })
  @IsNotBlank()
  @HasNoNul()
  name!: string;

  @Field(() => [Scope], {
    description:
      "At least one. Each narrows the token: PROFILE_READ, POSTS_WRITE, ADMIN; OPERATIONS_ANY and INTROSPECT (an ADMIN's) grant no field.",
  })
  @ArrayMinSize(1, { message: "must name at least one scope" })
  // As many as there are scopes: a longer list repeats one.
  @ArrayMaxSize(Object.values(Scope).length, { message: "must name each scope at most once" })
  scopes!: Scope[];

  @Field({
    defaultValue: API_TOKEN_DEFAULT_EXPIRES_IN,
    description: "Lifetime with a unit (`3600s`, `30m`, `12h`, `90d`), at most 365 days.",
  })
  @Matches(/^\d{1,9}[smhd]$/, { message: "must be a number with a unit: s, m, h or d (for example 90d)" })
  expiresIn!: string;
}

/** A page of `apiTokens` holds every live token by default: an account holds at most 50. */
export const API_TOKENS_DEFAULT = API_TOKENS_PER_USER_MAX;

/** `apiTokens`: nullable with defaults, so null means the default. */
@ArgsType()
export class ApiTokensArgs extends pageArgs({
  defaultFirst: API_TOKENS_DEFAULT,
  nullable: true,
  describe: {
    first: `How many tokens, 1 to ${FIRST_MAX} (null means ${API_TOKENS_DEFAULT}, every live token).`,
    offset: `How many of the newest tokens to skip, 0 to ${OFFSET_MAX} (null means 0); 0 when \`after\` is given.`,
    after:
      "The id of the last token of the previous page: this page is your live tokens after it, newest first (it may have been revoked since). BAD_USER_INPUT when it is not one of your tokens.",
  },
}) {}
