import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  gql,
  HttpLink,
  InMemoryCache,
  ServerError,
  type TypedDocumentNode,
} from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";

import { startTestApp, type TestApp } from "./helpers/app.js";
import { DATABASES } from "./helpers/databases.js";

interface UserFields {
  id: string;
  username: string;
  roles: string[];
}
interface PostFields {
  id: string;
  title: string;
  body: string;
}
type Credentials = { input: { username: string; password: string } };

const REGISTER: TypedDocumentNode<
  { register: { accessToken: string; tokenType: string; expiresIn: number; user: UserFields } },
  Credentials
> = gql`
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      accessToken
      tokenType
      expiresIn
      user {
        id
        username
        roles
      }
    }
  }
`;

const LOGIN: TypedDocumentNode<{ login: { accessToken: string; user: Omit<UserFields, "roles"> } }, Credentials> = gql`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      accessToken
      user {
        id
        username
      }
    }
  }
`;

const ME: TypedDocumentNode<
  { me: UserFields & { posts: Array<Omit<PostFields, "body">> } },
  Record<string, never>
> = gql`
  query Me {
    me {
      id
      username
      roles
      posts {
        id
        title
      }
    }
  }
`;

const CREATE_POST: TypedDocumentNode<
  { createPost: PostFields & { author: Omit<UserFields, "roles"> } },
  { input: { title: string; body: string } }
> = gql`
  mutation CreatePost($input: CreatePostInput!) {
    createPost(input: $input) {
      id
      title
      body
      author {
        id
        username
      }
    }
  }
`;

const POSTS: TypedDocumentNode<
  { posts: Array<Omit<PostFields, "body"> & { author: { username: string } }> },
  { first?: number; offset?: number }
> = gql`
  query Posts($first: Int, $offset: Int) {
    posts(first: $first, offset: $offset) {
      id
      title
      author {
        username
      }
    }
  }
`;

const POST: TypedDocumentNode<{ post: PostFields | null }, { id: string }> = gql`
  query Post($id: ID!) {
    post(id: $id) {
      id
      title
      body
    }
  }
`;

/** What the error link saw of a failed operation's HTTP response. */
interface FailedResponse {
  operationName: string | undefined;
  status: number | undefined;
  wwwAuthenticate: string | null | undefined;
}

/**
 * A client as an application would build one: an error link that notes the HTTP status of failed
 * operations (where an app would send the user to sign in again), an auth link that reads the
 * current token from a variable on every request, and an HttpLink on the global fetch.
 * `accept` overrides the Accept header, as a client of a plain-JSON GraphQL server would send it.
 */
function createClient(url: string, options: { accept?: string } = {}) {
  let token: string | undefined;
  const failures: FailedResponse[] = [];
  const noteFailure = new ErrorLink(({ operation }) => {
    const response = operation.getContext().response as Response | undefined;
    failures.push({
      operationName: operation.operationName,
      status: response?.status,
      wwwAuthenticate: response?.headers.get("www-authenticate"),
    });
  });
  const auth = new SetContextLink((prevContext) => ({
    headers: { ...prevContext.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
  }));
  const http = new HttpLink({ uri: url, fetch, ...(options.accept ? { headers: { accept: options.accept } } : {}) });
  const client = new ApolloClient({ link: ApolloLink.from([noteFailure, auth, http]), cache: new InMemoryCache() });
  return {
    client,
    failures,
    setToken(next: string | undefined) {
      token = next;
    },
  };
}

for (const kind of DATABASES) {
  describe(`the API driven by Apollo Client 4 (${kind})`, () => {
    let t: TestApp;
    let app: ReturnType<typeof createClient>;
    let userId: string;

    before(async () => {
      t = await startTestApp(kind);
      app = createClient(t.url);
    });
    after(async () => {
      app?.client.stop();
      await t?.close();
      await t?.database.drop();
    });

    it("registers through a mutation and receives a bearer token for a USER", async () => {
      const result = await app.client.mutate({
        mutation: REGISTER,
        variables: { input: { username: "dora", password: "correct horse battery" } },
      });
      assert.equal(result.error, undefined);
      const payload = result.data!.register;
      assert.equal(payload.tokenType, "Bearer");
      assert.equal(payload.expiresIn, 900);
      assert.equal(payload.user.username, "dora");
      assert.deepEqual(payload.user.roles, ["USER"]);
      assert.equal(typeof payload.accessToken, "string");
      userId = payload.user.id;
    });

    it("logs in and then answers me for that user, sending the token from the auth link", async () => {
      const login = await app.client.mutate({
        mutation: LOGIN,
        variables: { input: { username: "DORA", password: "correct horse battery" } },
      });
      assert.equal(login.error, undefined);
      assert.equal(login.data!.login.user.id, userId);
      app.setToken(login.data!.login.accessToken);

      const me = await app.client.query({ query: ME, fetchPolicy: "no-cache" });
      assert.equal(me.error, undefined);
      assert.deepEqual(me.data, {
        me: { __typename: "User", id: userId, username: "dora", roles: ["USER"], posts: [] },
      });
    });

    it("creates a post that the post and posts queries then return", async () => {
      const created = await app.client.mutate({
        mutation: CREATE_POST,
        variables: { input: { title: "From Apollo", body: "Sent by a real client" } },
      });
      assert.equal(created.error, undefined);
      const post = created.data!.createPost;
      assert.deepEqual(post, {
        __typename: "Post",
        id: post.id,
        title: "From Apollo",
        body: "Sent by a real client",
        author: { __typename: "User", id: userId, username: "dora" },
      });

      const one = await app.client.query({ query: POST, variables: { id: post.id }, fetchPolicy: "no-cache" });
      assert.deepEqual(one.data, {
        post: { __typename: "Post", id: post.id, title: "From Apollo", body: "Sent by a real client" },
      });
      const list = await app.client.query({
        query: POSTS,
        variables: { first: 10, offset: 0 },
        fetchPolicy: "no-cache",
      });
      assert.deepEqual(list.data, {
        posts: [
          { __typename: "Post", id: post.id, title: "From Apollo", author: { __typename: "User", username: "dora" } },
        ],
      });
      const me = await app.client.query({ query: ME, fetchPolicy: "no-cache" });
      assert.deepEqual(me.data?.me.posts, [{ __typename: "Post", id: post.id, title: "From Apollo" }]);
    });

    it("gives an anonymous client's me a GraphQL error with code UNAUTHENTICATED over HTTP 200", async () => {
      const anonymous = createClient(t.url);
      try {
        await assert.rejects(anonymous.client.query({ query: ME, fetchPolicy: "no-cache" }), (error: unknown) => {
          assert.ok(CombinedGraphQLErrors.is(error), `expected CombinedGraphQLErrors, got ${String(error)}`);
          assert.deepEqual(
            error.errors.map((e) => e.extensions?.code),
            ["UNAUTHENTICATED"],
          );
          assert.deepEqual(error.errors[0]?.path, ["me"]);
          return true;
        });
        assert.deepEqual(anonymous.failures, [{ operationName: "Me", status: 200, wwwAuthenticate: null }]);

        const settled = await anonymous.client.query({ query: ME, fetchPolicy: "no-cache", errorPolicy: "all" });
        assert.ok(CombinedGraphQLErrors.is(settled.error));
        assert.deepEqual(
          settled.error.errors.map((e) => e.extensions?.code),
          ["UNAUTHENTICATED"],
        );
        assert.equal(settled.data, null);
      } finally {
        anonymous.client.stop();
      }
    });

    // Apollo Client 4 asks for application/graphql-response+json first, and Apollo Server answers a
    // refused token in that media type; per GraphQL over HTTP such a body is a well-formed GraphQL
    // response whatever the status, so the client raises CombinedGraphQLErrors, not ServerError.
    // The 401 itself is on the response, which links can read from the operation's context.
    it("surfaces a bad token to a default client as UNAUTHENTICATED, with HTTP 401 and the Bearer challenge visible to links", async () => {
      const forged = createClient(t.url);
      forged.setToken("not.a.jwt");
      try {
        await assert.rejects(forged.client.query({ query: ME, fetchPolicy: "no-cache" }), (error: unknown) => {
          assert.ok(CombinedGraphQLErrors.is(error), `expected CombinedGraphQLErrors, got ${String(error)}`);
          assert.deepEqual(
            error.errors.map((e) => e.extensions?.code),
            ["UNAUTHENTICATED"],
          );
          assert.equal(error.data, undefined, "nothing was executed");
          return true;
        });
        assert.deepEqual(forged.failures, [
          {
            operationName: "Me",
            status: 401,
            wwwAuthenticate: 'Bearer error="invalid_token", error_description="TOKEN_INVALID"',
          },
        ]);
      } finally {
        forged.client.stop();
      }
    });

    it("surfaces a bad token to a client that accepts only application/json as a ServerError with statusCode 401", async () => {
      const forged = createClient(t.url, { accept: "application/json" });
      forged.setToken("not.a.jwt");
      try {
        await assert.rejects(forged.client.query({ query: ME, fetchPolicy: "no-cache" }), (error: unknown) => {
          assert.ok(ServerError.is(error), `expected ServerError, got ${String(error)}`);
          assert.equal(error.statusCode, 401);
          assert.equal(
            error.response.headers.get("www-authenticate"),
            'Bearer error="invalid_token", error_description="TOKEN_INVALID"',
          );
          const body = JSON.parse(error.bodyText) as { errors: Array<{ extensions: { code: string } }> };
          assert.deepEqual(
            body.errors.map((e) => e.extensions.code),
            ["UNAUTHENTICATED"],
          );
          return true;
        });
        assert.deepEqual(forged.failures, [
          {
            operationName: "Me",
            status: 401,
            wwwAuthenticate: 'Bearer error="invalid_token", error_description="TOKEN_INVALID"',
          },
        ]);
      } finally {
        forged.client.stop();
      }
    });
  });
}
