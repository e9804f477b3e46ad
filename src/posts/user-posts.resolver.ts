import "reflect-metadata";

import { Args, Ctx, FieldResolver, Resolver, Root } from "type-graphql";

import type { Context } from "../access/principal.js";
import { User } from "../users/index.js";
import { UserPostsArgs } from "./post.input.js";
import type { PostService } from "./post.service.js";
import { Post } from "./post.type.js";

/** `User.posts`: owned by posts/, so that users/ knows nothing of posts. */
@Resolver(() => User)
export class UserPostsResolver {
  constructor(private readonly postService: PostService) {}

  @FieldResolver(() => [Post], { description: "This user's posts, newest first, a page at a time." })
  posts(@Root() user: User, @Args() page: UserPostsArgs, @Ctx() ctx: Context): Promise<Post[]> {
    return this.postService.listByAuthorInRequest(ctx, user.id, page);
  }
}
