import "reflect-metadata";

import type { GraphQLResolveInfo } from "graphql";
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from "type-graphql";

import { CurrentPrincipal } from "../access/current-principal.js";
import { clientOf, type Context, type Principal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { Role } from "../access/roles.js";
import { Scope } from "../access/scopes.js";
import { ErrorReason, ForbiddenError, UnauthenticatedError } from "../errors.js";
import { selectsOnly } from "../graphql/selection.js";
import { UsersArgs } from "./user.input.js";
import type { UserService } from "./user.service.js";
import { User } from "./user.type.js";

/** The fields of `me` that need no stored data: the id comes from the token, `posts` needs only it. */
const FIELDS_KNOWN_FROM_TOKEN: ReadonlySet<string> = new Set(["__typename", "id", "posts"]);

@Resolver(() => User)
export class UserResolver {
  constructor(private readonly userService: UserService) {}

  @Query(() => User, { description: "The signed-in user." })
  @Requires({ scope: Scope.PROFILE_READ })
  me(@CurrentPrincipal() principal: Principal, @Info() info: GraphQLResolveInfo): User | Promise<User> {
    // The verified, unrevoked token already says who this is: `{ me { id } }` (and `posts`, which
    // needs only the id) is answered without reading the account.
    if (selectsOnly(info, FIELDS_KNOWN_FROM_TOKEN)) return Object.assign(new User(), { id: principal.userId });
    return this.userService.me(principal);
  }

  @Query(() => [User], { description: "The users, oldest first, a page at a time." })
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN })
  users(@Args() page: UsersArgs): Promise<User[]> {
    return this.userService.list(page);
  }

  @Mutation(() => User, {
    description: "Replace a user's roles. Takes effect at once, also for tokens minted before the change.",
  })
  @Requires({ role: Role.ADMIN, scope: Scope.ADMIN })
  setUserRoles(
    @Arg("userId", () => ID) userId: string,
    @Arg("roles", () => [Role]) roles: Role[],
    @CurrentPrincipal() principal: Principal,
    @Ctx() ctx: Context,
  ): Promise<User> {
    return this.userService.setRoles(principal, userId, roles, clientOf(ctx));
  }

  @FieldResolver(() => Boolean, {
    description:
      "Whether an ADMIN disabled the account (setUserDisabled). Only the user and ADMINs may read it: anyone else gets " +
      "FORBIDDEN with reason OWNERSHIP, a request without a token UNAUTHENTICATED.",
  })
  disabled(@Root() user: User, @Ctx() ctx: Context): boolean {
    // The field is reached through guarded or public parents (me, users, Post.author, AuthPayload.user);
    // the scopes were checked there, so what is left is whose account it is.
    if (user.signedInByThisResponse) return user.disabled;
    const principal = ctx.principal;
    if (!principal) throw new UnauthenticatedError(ErrorReason.NOT_SIGNED_IN);
    if (principal.userId !== user.id && !principal.roles.includes(Role.ADMIN)) {
      throw new ForbiddenError(
        ErrorReason.OWNERSHIP,
        "Only the user and ADMINs can see whether an account is disabled.",
      );
    }
    return user.disabled;
  }

  @FieldResolver(() => String, {
    nullable: true,
    description:
      "The account's e-mail address, verified or not (see emailVerified; a changed address shows here only once " +
      "verified). Only the user and ADMINs see it: null to anyone else.",
  })
  email(@Root() user: User, @Ctx() ctx: Context): string | null {
    return mayReadOwnFields(user, ctx) ? user.email : null;
  }

  @FieldResolver(() => Boolean, {
    description:
      "Whether the e-mail address is verified (verifyEmail). Only a verified address signs in and receives " +
      "reset links. Only the user and ADMINs see it: false to anyone else.",
  })
  emailVerified(@Root() user: User, @Ctx() ctx: Context): boolean {
    return mayReadOwnFields(user, ctx) && user.emailVerified;
  }
}

/** Whether the caller is the user (or was just signed in as them by this response) or an ADMIN. */
function mayReadOwnFields(user: User, ctx: Context): boolean {
  if (user.signedInByThisResponse) return true;
  const principal = ctx.principal;
  return !!principal && (principal.userId === user.id || principal.roles.includes(Role.ADMIN));
}
