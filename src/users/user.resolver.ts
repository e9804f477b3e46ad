import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";

import { Requires } from "../auth/requires.js";
import type { Context } from "../context.js";
import type { PostService } from "../posts/post.service.js";
import { Post } from "../posts/post.type.js";
import { Role } from "./role.js";
import type { UserService } from "./user.service.js";
import { User } from "./user.type.js";

@Resolver(() => User)
export class UserResolver {
  constructor(
    private readonly userService: UserService,
    private readonly postService: PostService,
  ) {}

  @Query(() => User, { description: "The signed-in user." })
  @Requires()
  me(@Ctx() ctx: Context): Promise<User> {
    return this.userService.me(ctx.principal!);
  }

  @Query(() => [User], { description: "Every user, oldest first." })
  @Requires(Role.ADMIN)
  users(): Promise<User[]> {
    return this.userService.list();
  }

  @Mutation(() => User, {
    description: "Replace a user's roles. Takes effect at once, also for tokens minted before the change.",
  })
  @Requires(Role.ADMIN)
  setUserRoles(
    @Arg("userId", () => ID) userId: string,
    @Arg("roles", () => [Role]) roles: Role[],
    @Ctx() ctx: Context,
  ): Promise<User> {
    return this.userService.setRoles(ctx.principal!, userId, roles, { ip: ctx.ip, userAgent: ctx.userAgent });
  }

  @FieldResolver(() => [Post], { description: "This user's posts, newest first." })
  posts(@Root() user: User): Promise<Post[]> {
    return this.postService.listByAuthor(user.id);
  }
}
