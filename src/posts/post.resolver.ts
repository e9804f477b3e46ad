import "reflect-metadata";

import {
  Arg,
  Args,
  Ctx,
  FieldResolver,
  ID,
  Mutation,
  Query,
  Resolver,
  Root,
  type SubscribeResolverData,
  Subscription,
  type SubscriptionHandlerData,
} from "type-graphql";

import { CurrentPrincipal } from "../access/current-principal.js";
import type { Context, Principal } from "../access/principal.js";
import { Requires } from "../access/requires.js";
import { Scope } from "../access/scopes.js";
import { NotFoundError } from "../errors.js";
import { ResumeAfter } from "../graphql/replay.js";
import { User, type UserService } from "../users/index.js";
import { CreatePostInput, PostsArgs, UpdatePostInput } from "./post.input.js";
import type { PostService } from "./post.service.js";
import { Post } from "./post.type.js";
import { PostTopic } from "./post-events.js";

@Resolver(() => Post)
export class PostResolver {
  constructor(
    private readonly postService: PostService,
    private readonly userService: UserService,
  ) {}

  @Query(() => [Post], { description: "Posts, newest first. Public." })
  posts(@Args() page: PostsArgs): Promise<Post[]> {
    return this.postService.list(page);
  }

  @Query(() => Post, { nullable: true, description: "One post, or null when it does not exist. Public." })
  post(@Arg("id", () => ID) id: string): Promise<Post | undefined> {
    return this.postService.get(id);
  }

  @Mutation(() => Post, {
    description:
      "Write a post as the signed-in user. After CREATE_POST_MAX_PER_USER posts within an hour, RATE_LIMITED with `extensions.retryAfter` (seconds).",
  })
  @Requires({ scope: Scope.POSTS_WRITE })
  createPost(@Arg("input") input: CreatePostInput, @CurrentPrincipal() principal: Principal): Promise<Post> {
    return this.postService.create(principal, input);
  }

  @Mutation(() => Post, { description: "Change a post. Only its author or an ADMIN may (otherwise FORBIDDEN)." })
  @Requires({ scope: Scope.POSTS_WRITE })
  updatePost(
    @Arg("id", () => ID) id: string,
    @Arg("input") input: UpdatePostInput,
    @CurrentPrincipal() principal: Principal,
  ): Promise<Post> {
    return this.postService.update(principal, id, input);
  }

  @Mutation(() => Boolean, { description: "Delete a post. Only its author or an ADMIN may (otherwise FORBIDDEN)." })
  @Requires({ scope: Scope.POSTS_WRITE })
  deletePost(@Arg("id", () => ID) id: string, @CurrentPrincipal() principal: Principal): Promise<boolean> {
    return this.postService.delete(principal, id);
  }

  @Subscription(() => Post, {
    topics: PostTopic.CREATED,
    // With `after`, the bus replays what was missed before the live events (graphql/replay.ts).
    topicId: ({ args }: SubscribeResolverData<unknown, { after?: string | null }, Context>) =>
      args.after ? new ResumeAfter(args.after) : undefined,
    // The connection's principal is read again at every event (see http/ws/operation.ts):
    // null once its session has ended or its token expired, so no event reaches it after that.
    filter: ({ context }: SubscriptionHandlerData<Post, object, Context>) => context.principal !== null,
    description:
      "Every post created from now on, on any instance, as it is created. With `after`, the id of the last post this client saw (after a reconnect), first every post created after that one, oldest first and at most 100, then the live ones: no gap and no duplicate between the two. BAD_USER_INPUT (as this subscription's error) when no post has that id; a client away for more than 100 posts reloads `posts` instead.",
  })
  @Requires({ scope: Scope.PROFILE_READ })
  postCreated(
    @Arg("after", () => ID, { nullable: true, description: "The id of the last post this client received." })
    _after: string | null,
    @Root() post: Post,
  ): Post {
    return post;
  }

  @Subscription(() => Post, {
    topics: PostTopic.UPDATED,
    topicId: ({ args }: SubscribeResolverData<unknown, { id: string }, Context>) => args.id,
    description: "The post with this id, each time it is changed. Public.",
  })
  postUpdated(@Arg("id", () => ID) _id: string, @Root() post: Post): Post {
    return post;
  }

  @FieldResolver(() => User)
  async author(@Root() post: Post, @Ctx() ctx: Context): Promise<User> {
    const user = await this.userService.findByIdInRequest(ctx, post.authorId);
    // The foreign key cascades deletes, so a post without its author means the data is broken.
    if (!user) throw new NotFoundError("User", post.authorId);
    return user;
  }
}
