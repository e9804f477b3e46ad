// The example's pages: a sign-in form (sign-up with an optional e-mail address) and a "forgot
// password" form when signed out; when signed in, who you are and whether your address is verified,
// a form for new posts, the live feed and the posts a page at a time. The links in the mails open the
// server's own pages (/verify-email, /reset-password). A password sign-in of an account with a
// second factor goes through the challenge step (Security.tsx), and signed in, the account's second
// factors are set up there too; a passkey signs in from the form. Errors show in role="alert"
// elements, neutral news (signed out, reconnecting, a mail sent) in role="status" ones.
import { useMutation, useQuery } from "@apollo/client/react";
import { type FormEvent, useEffect, useState, useSyncExternalStore } from "react";

import { currentSession, passkeySignIn, sessionEvents, signIn, signOut } from "./auth";
import { client } from "./client";
import { followFeed } from "./feed";
import {
  CreatePostDocument,
  MeDocument,
  type PostFieldsFragment,
  PostsDocument,
  RequestEmailVerificationDocument,
  RequestPasswordResetDocument,
} from "./gql/graphql";
import { explain, explainApollo, signedOutMessage } from "./messages";
import { SecondFactorPrompt, SecuritySettings } from "./Security";

const PAGE_SIZE = 5;

function onSessionChange(listener: () => void) {
  sessionEvents.addEventListener("change", listener);
  return () => sessionEvents.removeEventListener("change", listener);
}

export function App() {
  const session = useSyncExternalStore(onSessionChange, currentSession);
  // Nothing one user saw may stay in the cache for the next.
  useEffect(() => {
    if (session.status === "signed-out") void client.clearStore();
  }, [session.status]);
  if (session.status === "starting") return <p role="status">Loading…</p>;
  if (session.status === "signed-out") return <SignedOut reason={session.reason} />;
  if (session.status === "second-factor") return <SecondFactorPrompt />;
  return <SignedIn assurance={session.assurance} />;
}

function SignedOut({ reason }: { reason?: string }) {
  const [forgot, setForgot] = useState(false);
  return forgot ? (
    <ForgotPassword back={() => setForgot(false)} />
  ) : (
    <SignInForm reason={reason} forgot={() => setForgot(true)} />
  );
}

function SignInForm({ reason, forgot }: { reason?: string; forgot: () => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [email, setEmail] = useState("");
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const withPasskey = async () => {
    setProblem(undefined);
    setBusy(true);
    try {
      const refusal = await passkeySignIn({ secondFactor: false, username: username || undefined });
      if (refusal) setProblem(explain(refusal));
    } catch {
      setProblem(explain({ message: "", extensions: { reason: "PASSKEY_CANCELLED" } }));
    } finally {
      setBusy(false);
    }
  };
  const submit = (newAccount: boolean) => async (event: FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    setBusy(true);
    try {
      const refusal = await signIn({ username, password, email: email || undefined }, newAccount);
      if (refusal) setProblem(explain(refusal));
    } catch {
      setProblem(signedOutMessage("NETWORK"));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(event) => void submit(false)(event)}>
      <h1>Sign in</h1>
      {reason && (
        <p id="signed-out" role="status" data-reason={reason}>
          {signedOutMessage(reason)}
        </p>
      )}
      <label>
        Username <input id="username" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        Password <input id="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      <label>
        E-mail (optional, when signing up: we send a link to verify it){" "}
        <input id="email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <button id="sign-in" type="submit" disabled={busy}>
        Sign in
      </button>
      <button id="sign-up" type="button" disabled={busy} onClick={(event) => void submit(true)(event)}>
        Sign up
      </button>
      <button id="passkey-sign-in" type="button" disabled={busy} onClick={() => void withPasskey()}>
        Sign in with a passkey
      </button>
      <button id="forgot-password" type="button" onClick={forgot}>
        Forgot your password?
      </button>
      {problem && <p role="alert">{problem}</p>}
    </form>
  );
}

/** The same message for every address: whether an account has it is not the page's to say. */
const RESET_REQUESTED = "If an account has this verified address, a link is on its way.";

function ForgotPassword({ back }: { back: () => void }) {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const [request, { error, loading }] = useMutation(RequestPasswordResetDocument);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSent(false);
    const { data } = await request({ variables: { email } }).catch(() => ({ data: undefined }));
    setSent(data?.requestPasswordReset === true);
  };
  return (
    <form onSubmit={(event) => void submit(event)}>
      <h1>Forgot your password?</h1>
      <label>
        Your account&apos;s verified e-mail address{" "}
        <input
          id="reset-email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
      </label>
      <button id="send-reset-link" type="submit" disabled={loading}>
        Send me a link
      </button>
      <button id="back-to-sign-in" type="button" onClick={back}>
        Back to sign-in
      </button>
      {sent && (
        <p id="reset-requested" role="status">
          {RESET_REQUESTED}
        </p>
      )}
      {error && <p role="alert">{explainApollo(error)}</p>}
    </form>
  );
}

function SignedIn({ assurance }: { assurance?: string }) {
  const me = useQuery(MeDocument);
  return (
    <main>
      <header>
        {me.data && <span id="me">Signed in as {me.data.me.username}</span>}
        {me.error && <span role="alert">{explainApollo(me.error)}</span>}{" "}
        <button id="sign-out" onClick={() => void signOut()}>
          Sign out
        </button>
        {me.data?.me.email && <EmailState email={me.data.me.email} verified={me.data.me.emailVerified} />}
      </header>
      <SecuritySettings assurance={assurance} />
      <NewPost />
      <LiveFeed />
      <Posts />
    </main>
  );
}

/** The signed-in user's address: verified or not, and a button for a new link while it is not. */
function EmailState({ email, verified }: { email: string; verified: boolean }) {
  const [request, { data, error, loading }] = useMutation(RequestEmailVerificationDocument);
  return (
    <p id="email-state" data-verified={verified}>
      {email} {verified ? "(verified)" : "(not verified: open the link we mailed you)"}{" "}
      {!verified && (
        <button id="resend-verification" disabled={loading} onClick={() => void request().catch(() => undefined)}>
          Send verification again
        </button>
      )}
      {data?.requestEmailVerification && (
        <span id="verification-sent" role="status">
          A new link is on its way to {email}.
        </span>
      )}
      {error && <span role="alert">{explainApollo(error)}</span>}
    </p>
  );
}

function NewPost() {
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [createPost, { error, loading }] = useMutation(CreatePostDocument);
  const publish = async (event: FormEvent) => {
    event.preventDefault();
    const { data } = await createPost({ variables: { input: { title, body } } }).catch(() => ({ data: undefined }));
    if (data) {
      setTitle("");
      setBody("");
    }
  };
  return (
    <form onSubmit={(event) => void publish(event)}>
      <h2>New post</h2>
      <input id="title" placeholder="Title" value={title} onChange={(e) => setTitle(e.target.value)} />
      <textarea id="body" placeholder="Text" value={body} onChange={(e) => setBody(e.target.value)} />
      <button id="publish" type="submit" disabled={loading}>
        Publish
      </button>
      {error && <p role="alert">{explainApollo(error)}</p>}
    </form>
  );
}

function LiveFeed() {
  const [posts, setPosts] = useState<PostFieldsFragment[]>([]);
  const [live, setLive] = useState(false);
  const [problem, setProblem] = useState<string>();
  useEffect(
    () =>
      followFeed(client, {
        post: (post) => {
          setPosts((shown) => [post, ...shown]);
          setProblem(undefined);
        },
        live: setLive,
        refused: setProblem,
      }),
    [],
  );
  return (
    <section>
      <h2>
        Live{" "}
        <small id="feed-status" role="status">
          {live ? "live" : "reconnecting…"}
        </small>
      </h2>
      {problem && <p role="alert">The live feed was refused: {problem}</p>}
      <ul id="feed">
        {posts.map((post) => (
          <PostItem key={post.id} post={post} />
        ))}
      </ul>
    </section>
  );
}

function Posts() {
  const { data, error, fetchMore } = useQuery(PostsDocument, { variables: { first: PAGE_SIZE } });
  const [more, setMore] = useState(true);
  const posts = data?.posts ?? [];
  const older = async () => {
    const page = await fetchMore({ variables: { after: posts[posts.length - 1]?.id } });
    setMore(page.data?.posts.length === PAGE_SIZE);
  };
  return (
    <section>
      <h2>Posts</h2>
      {error && <p role="alert">{explainApollo(error)}</p>}
      <ul id="posts">
        {posts.map((post) => (
          <PostItem key={post.id} post={post} />
        ))}
      </ul>
      {data && more && posts.length >= PAGE_SIZE && (
        <button id="older" onClick={() => void older()}>
          Older posts
        </button>
      )}
    </section>
  );
}

function PostItem({ post }: { post: PostFieldsFragment }) {
  return (
    <li data-id={post.id}>
      <strong>{post.title}</strong> by {post.author.username}: {post.body}
    </li>
  );
}
