/**
 * Every place the app decides something from a library's error *message text*, rather than from a
 * class, a code or a return value. Message text is no library's API: an upgrade may reword it and
 * silently change what the app does (an outage turns into a masked internal error, a wrong audience
 * into "malformed"). So each pattern lives here, once, with the call that produces the message and
 * what the app does with it, and test/library-messages.test.ts provokes every one from the real
 * library and fails when the text no longer matches.
 *
 * Rules for this module:
 * - No imports: it only describes other libraries' text.
 * - A RegExp is used with `.test()`/`.exec()` and carries its own anchors (`^…$` for an exact
 *   message, `^…` for a prefix, `…$` for a suffix). Never the `g` or `y` flag: those make `.test()`
 *   remember where it stopped. A string is used as stated in its comment (`===`, `lastIndexOf`).
 * - Matching on an `instanceof` or an error `code` (SQLSTATE, SQLITE_BUSY, ECONNRESET, FST_ERR_…,
 *   jsonwebtoken's TokenExpiredError and NotBeforeError) is not message text and stays where it is.
 * - Every entry has a test with the same name (`GROUP.entry`); the test file checks that too.
 */

/** graphql-js 16 (`parse`, `validate`, `execute`'s variable and argument coercion). */
export const GRAPHQL_MESSAGES = {
  /**
   * `parse(source, { maxTokens })` when the document has more tokens than the limit (the parser stops
   * at the first token over it). graphql 16 spells it "more that"; later versions may fix the typo,
   * hence `tha[nt]`. Group 1 is the limit. Used by `createErrorFormatter`: a GRAPHQL_PARSE_FAILED
   * with this message becomes GRAPHQL_VALIDATION_FAILED like the other query limits, saying "Query is
   * too complex." in production (and without the location, which would reveal the limit).
   */
  tokenLimit: /^Syntax Error: Document contains more tha[nt] (\d+) tokens\. Parsing aborted\.$/,

  /**
   * The " Did you mean …?" that `validate` (unknown field, argument, type) and variable coercion
   * (unknown input field, enum value) end their messages with. Used with `.replace(…, "")` by
   * `createErrorFormatter` without `revealInternals`, so BAD_USER_INPUT messages do not list schema
   * names (Apollo's own hiding covers validation errors only).
   */
  didYouMean: / ?Did you mean(.+?)\?$/,

  /**
   * The start of every variable-coercion error from `execute`/`getVariableValues`:
   * `Variable "$input" got invalid value { …the whole value… }; <reason>`. Group 1 is the part kept.
   * Used by `withoutVariableValue`, which drops the value (it may hold a password).
   */
  variableInvalidValue: /^(Variable "\$[^"]+" got invalid value)/,

  /**
   * What separates the printed value from the reason in those same messages. `withoutVariableValue`
   * keeps only what follows its *last* occurrence (`message.lastIndexOf(…)`), so nothing of the value
   * survives even when the value itself contains "; ".
   */
  variableValueSeparator: "; ",

  /**
   * `execute`'s argument coercion (`getArgumentValues`): a nullable variable's explicit `null` for a
   * non-null argument with a default (which validation lets through), a required argument that is
   * missing, or a value it cannot coerce. Group 1 is the argument name, group 2 the problem. The
   * error has no code and would be masked as INTERNAL_SERVER_ERROR; `createErrorFormatter` (via
   * `clientErrorWithoutCode`) makes it BAD_USER_INPUT with `fields: [{ field: <group 1>, rule: "type" }]`,
   * choosing the field message from how group 2 ends ("must not be null", "was not provided", else
   * "has an invalid value").
   */
  argumentProblem:
    /^Argument "([^"]+)" (of non-null type "[^"]+" must not be null|of required type "[^"]+" was not provided|has invalid value .*)\.$/s,

  /**
   * `execute`'s variable coercion gives up after 50 errors and adds this one, with no code and no
   * node. Compared with `===` (an `error.message` with no code and no original error); becomes
   * BAD_USER_INPUT in `clientErrorWithoutCode` instead of a masked internal error.
   */
  variableErrorLimit: "Too many errors processing variables, error limit reached. Execution aborted.",
} as const satisfies Record<string, RegExp | string>;

/** @escape.tech/graphql-armor 3 (its max-depth, max-aliases and max-directives validation rules). */
export const GRAPHQL_ARMOR_MESSAGES = {
  /**
   * The prefix armor's rules put on the GraphQLError they pass to `onReject` ("Syntax Error: Query
   * depth limit of 1 exceeded, found 2."). Used with `.replace(…, "")` by the `onReject` in
   * `createQueryLimits`, which reports the rest through the validation context, so the refusal
   * reads like any other validation error.
   */
  syntaxErrorPrefix: /^Syntax Error: /,
} as const satisfies Record<string, RegExp | string>;

/**
 * jsonwebtoken 9 (`jwt.verify`), every one a plain `JsonWebTokenError` told apart only by its message.
 * Used by `mapLibraryError` in the token check to give each rejection its reason (logged and
 * audited; the client always sees the one invalid-token message). Anything unmatched is MALFORMED.
 */
export const JSONWEBTOKEN_MESSAGES = {
  /** `verify` with `issuer` when `iss` differs ("jwt issuer invalid. expected: …"). Prefix. ISSUER_MISMATCH. */
  issuerInvalid: /^jwt issuer invalid/,
  /** `verify` with `audience` when `aud` differs ("jwt audience invalid. expected: …"). Prefix. AUDIENCE_MISMATCH. */
  audienceInvalid: /^jwt audience invalid/,
  /** `verify` with `algorithms` when the header's `alg` is not in the list. Exact. ALGORITHM_NOT_ALLOWED. */
  algorithmInvalid: /^invalid algorithm$/,
  /** `verify` when the signature does not match the key. Exact. SIGNATURE_INVALID. */
  signatureInvalid: /^invalid signature$/,
  /** `verify` with a key when the token's third segment is empty. Exact. SIGNATURE_INVALID. */
  signatureRequired: /^jwt signature is required$/,
  /**
   * `verify` with `subject` when `sub` differs ("jwt subject invalid. expected: …"). Prefix.
   * CLAIM_INVALID. The app passes no `subject`, so today this never fires; it is matched in case.
   */
  subjectInvalid: /^jwt subject/,
  /**
   * `verify` with `jwtid` when `jti` differs ("jwt jwtid invalid. expected: …"). Prefix. CLAIM_INVALID.
   * The app passes no `jwtid` either. (tokens.ts also tests the prefix "jwt id", which no message of
   * jsonwebtoken 9 starts with; it is left out here.)
   */
  jwtidInvalid: /^jwt jwtid/,
  /**
   * `verify`'s option checks ("clockTimestamp must be a number", the only one in jsonwebtoken 9).
   * Suffix. CLAIM_INVALID ("a time claim is not a number"). The app always passes a whole number.
   */
  optionMustBeNumber: /must be a number$/,
  /** `verify` when the payload's `exp` is present but not a number. Exact. CLAIM_INVALID. */
  expInvalid: /^invalid exp value$/,
  /** `verify` when the payload's `nbf` is present but not a number. Exact. CLAIM_INVALID. */
  nbfInvalid: /^invalid nbf value$/,
} as const satisfies Record<string, RegExp | string>;

/**
 * node-postgres 8 (pg and pg-pool) raises these as plain `Error`s with no code, so their text is all
 * there is to go on. Each means the database or the network to it did not answer: used by
 * `isDatabaseUnavailable` (any entry matching the message of the error or of what it wraps), which
 * makes the request's error SERVICE_UNAVAILABLE (503 with Retry-After when nothing ran) instead of a
 * masked INTERNAL_SERVER_ERROR. `Object.values(POSTGRES_MESSAGES)` is the list it checks.
 */
export const POSTGRES_MESSAGES = {
  /** pg-pool `connect()`/`query()`: no pooled client became free within `connectionTimeoutMillis`. */
  poolCheckoutTimeout: /^timeout exceeded when trying to connect$/,
  /** pg-pool: a new client did not finish connecting (TCP and startup) within `connectionTimeoutMillis`. */
  connectTimeout: /^Connection terminated due to connection timeout$/,
  /** pg Client `query()` with `query_timeout`: no answer in time (a frozen server or network). */
  queryReadTimeout: /^Query read timeout$/,
  /**
   * pg Client: the socket closed under a running or queued query; "Connection terminated
   * unexpectedly" when the server or network went away, "Connection terminated" when the client was
   * being ended (`end()`) at the time.
   */
  connectionTerminated: /^Connection terminated( unexpectedly)?$/,
  /** pg Client `query()` on a client whose connection already failed. */
  notQueryableAfterError: /^Client has encountered a connection error and is not queryable$/,
  /** pg Client `query()` on a client that has been ended. */
  notQueryableAfterEnd: /^Client was closed and is not queryable$/,
} as const satisfies Record<string, RegExp | string>;

/** better-sqlite3 12 (SQLite's own error text, through Kysely's migrator). */
export const SQLITE_MESSAGES = {
  /**
   * SQLite when a migration's CREATE TABLE or CREATE INDEX finds the object already there ("table
   * users already exists"). Unanchored. Used by `migrateToLatest` on SQLite: another process on the
   * same file won the race to migrate, so it waits and retries (up to 50 times) instead of failing.
   */
  alreadyExists: /already exists/,
} as const satisfies Record<string, RegExp | string>;
