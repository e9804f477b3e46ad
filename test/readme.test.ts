// The README is the front door and docs/ the reference; this keeps both in step with the code:
// every code, reason, variable, audit event, package and source file the code has is documented
// on its page, the README stays short, and every relative link and #anchor leads somewhere.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

import { REJECTION_REASONS } from "../src/access/bearer.js";
import { AuditEventType } from "../src/audit/audit.type.js";
import { CONFIG_VARIABLES, configVariables } from "../src/config.js";
import type { EnvVariable } from "../src/env-schema.js";
import { ErrorCode, ErrorReason, ProtocolErrorCode } from "../src/errors.js";
import { SETTING_RULES } from "../src/load-config.js";
import { LIMITS, RATE_LIMITS } from "../src/metrics.js";

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found above the test file");
    dir = parent;
  }
  return dir;
}

const root = repositoryRoot();
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** README.md and every page of docs/, by path relative to the repository. */
const pages = new Map<string, string>([
  ["README.md", read("README.md")],
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name): [string, string] => [`docs/${name}`, read(`docs/${name}`)]),
]);

function page(path: string): string {
  const text = pages.get(path);
  assert.ok(text !== undefined, `${path} is missing`);
  return text;
}

/** The text outside fenced code blocks, line by line (a `# comment` in a shell block is no heading). */
function proseLines(markdown: string): string[] {
  let fenced = false;
  return markdown.split("\n").filter((line) => {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

function documentedInTable(path: string, name: string): boolean {
  return proseLines(page(path)).some((line) => line.startsWith("| ") && line.includes(`\`${name}\``));
}

/** GitHub's heading anchor: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`/g, "")
    .trim();
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a page's headings give, with GitHub's `-1`, `-2` for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(markdown)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = githubSlug(heading[1]!);
    const count = seen.get(slug) ?? 0;
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return anchors;
}

/** Relative link targets of a page: `[text](target)` and images, outside code. */
function relativeLinks(markdown: string): string[] {
  const links: string[] = [];
  for (const line of proseLines(markdown)) {
    const withoutCode = line.replace(/`[^`]*`/g, "");
    for (const match of withoutCode.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
      links.push(target);
    }
  }
  return links;
}

/** What is wrong with the relative links of `pageText` (at `pagePath`), as readable lines. */
function brokenLinks(pagePath: string, pageText: string, readPage: (path: string) => string | undefined): string[] {
  const problems: string[] = [];
  for (const link of relativeLinks(pageText)) {
    const hash = link.indexOf("#");
    const pathPart = hash < 0 ? link : link.slice(0, hash);
    const anchor = hash < 0 ? undefined : decodeURIComponent(link.slice(hash + 1));
    const target =
      pathPart === ""
        ? pagePath
        : relative(root, resolve(root, dirname(pagePath), pathPart))
            .split("\\")
            .join("/");
    const text = readPage(target);
    if (text === undefined && !existsSync(join(root, target))) {
      problems.push(`${pagePath}: ${link} -> no file ${target}`);
      continue;
    }
    if (anchor === undefined || !target.endsWith(".md")) continue;
    if (!anchorsOf(text ?? readFileSync(join(root, target), "utf8")).has(anchor)) {
      problems.push(`${pagePath}: ${link} -> no heading #${anchor} in ${target}`);
    }
  }
  return problems;
}

/**
 * The variables of `markdown`'s table rows whose documented default is a plain value (`` `15m` ``,
 * `` `4194304` (4 MiB) ``, or one value per variable of a row like `` `PORT`, `HOST` ``), each with
 * that value; rows whose default depends on something (`unset: …`, `production: …`) are left out.
 */
export function documentedDefaults(markdown: string): Map<string, string> {
  const defaults = new Map<string, string>();
  for (const line of proseLines(markdown)) {
    const cells = line.split(" | ");
    if (!line.startsWith("| ") || cells.length < 3) continue;
    const names = [...cells[0]!.slice(2).matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
    const plain = /^(`[^`]*`(, `[^`]*`)*)( \([^)]*\))?$/.exec(cells[1]!.trim());
    const values = plain ? [...plain[1]!.matchAll(/`([^`]*)`/g)].map((m) => m[1]!) : [];
    if (names.length > 0 && values.length === names.length) names.forEach((name, i) => defaults.set(name, values[i]!));
  }
  return defaults;
}

/** Each variable whose documented default does not parse to what its schema gives when it is unset. */
export function wrongDefaults(documented: Map<string, string>, variables: readonly EnvVariable[]): string[] {
  return variables.flatMap(({ name, schema }) => {
    const text = documented.get(name);
    if (text === undefined) return [];
    const asDocumented = schema.safeParse(text);
    const unset = schema.safeParse(undefined);
    const same = asDocumented.success && unset.success && isDeepStrictEqual(asDocumented.data, unset.data);
    return same ? [] : [`${name}: documented \`${text}\`, default ${JSON.stringify(unset.data)}`];
  });
}

/** Every "Requires: …" a page quotes, with its whitespace (line breaks included) collapsed. */
function requiresQuotes(markdown: string): string[] {
  return [...markdown.matchAll(/"(Requires:[^"]*)"/g)].map((match) => match[1]!.replace(/\s+/g, " ").trim());
}

/** The sentences "Requires: …" that schema/schema.graphql gives guarded fields. */
function requiresSentences(schemaText: string): Set<string> {
  return new Set([...schemaText.matchAll(/^\s*(Requires: .*?)\s*$/gm)].map((match) => match[1]!));
}

/**
 * The quotes of `quotes` that no field's sentence in `sentences` says: a quote must be a whole
 * sentence, or, ending in "…", the start of one ("Requires: …" alone stands for any of them).
 */
function staleRequiresQuotes(quotes: readonly string[], sentences: ReadonlySet<string>): string[] {
  return quotes.filter((quote) => {
    if (!quote.endsWith("…")) return !sentences.has(quote);
    const start = quote.slice(0, -1).trim();
    return start !== "Requires:" && ![...sentences].some((sentence) => sentence.startsWith(start));
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The files the project layout in docs/development.md names, as `src/...` paths. */
function filesInLayout(): string[] {
  const text = page("docs/development.md");
  const section = text.slice(text.indexOf("## Project layout"));
  const block = /```\n(src\/\n[\s\S]*?)```/.exec(section);
  assert.ok(block, "docs/development.md has no layout block starting with src/");
  const files: string[] = [];
  let folder = "";
  for (const line of block[1]!.split("\n").slice(1)) {
    const entry = /^( +)(\S+)/.exec(line);
    if (!entry) continue;
    const [, indent, name] = entry;
    if (indent!.length === 2) {
      if (name!.endsWith("/")) folder = name!;
      else {
        folder = "";
        files.push(`src/${name}`);
      }
    } else if (name!.endsWith(".ts")) {
      files.push(`src/${folder}${name}`);
    }
  }
  return files;
}

describe("the README and docs/ stay in step with the code", () => {
  it("documents every error code the service can produce, in a table of docs/errors.md", () => {
    const missing = [...Object.values(ErrorCode), ...Object.values(ProtocolErrorCode)].filter(
      (code) => !documentedInTable("docs/errors.md", code),
    );
    assert.deepEqual(missing, [], "add these codes to the tables of docs/errors.md");
  });

  it("documents every extensions.reason a client can receive, in the reasons table of docs/errors.md", () => {
    const section = page("docs/errors.md").split("## What a client does next")[1]?.split("\n## ")[0] ?? "";
    const missing = Object.values(ErrorReason).filter(
      (reason) => !section.split("\n").some((line) => line.startsWith("|") && line.includes(`\`${reason}\``)),
    );
    assert.deepEqual(missing, [], "add these reasons to the table under 'What a client does next' in docs/errors.md");
  });

  it("documents every reason an access token is refused for, in a table of docs/errors.md", () => {
    const reasons: readonly string[] = REJECTION_REASONS;
    assert.ok(
      reasons.length >= 10 && reasons.includes("SESSION_ENDED"),
      `too few reasons found: ${reasons.join(", ")}`,
    );
    const missing = reasons.filter((reason) => !documentedInTable("docs/errors.md", reason));
    assert.deepEqual(missing, [], "add these reasons to the token reasons table of docs/errors.md");
  });

  it("documents every configuration variable the service reads, in a table of docs/configuration.md", () => {
    const missing = CONFIG_VARIABLES.filter((name) => !documentedInTable("docs/configuration.md", name));
    assert.deepEqual(missing, [], "add these variables to docs/configuration.md");
  });

  it("describes every variable in the schema, and documents the default the schema gives where it is a plain value", () => {
    const variables = configVariables(SETTING_RULES);
    assert.deepEqual(
      variables.filter((v) => v.description.trim() === "").map((v) => v.name),
      [],
      "give these variables a description in src/config.ts or src/config-groups.ts",
    );
    const documented = documentedDefaults(page("docs/configuration.md"));
    assert.ok(documented.size >= 50, `only ${documented.size} plain defaults found in docs/configuration.md`);
    assert.deepEqual(wrongDefaults(documented, variables), [], "docs/configuration.md and src/config.ts disagree");
  });

  it("finds a documented default that is not the schema's", () => {
    const table = "| variable | default | notes |\n| --- | --- | --- |\n| `PORT`, `HOST` | `4000`, `127.0.0.1` | |\n";
    const found = wrongDefaults(documentedDefaults(table), configVariables(SETTING_RULES));
    assert.deepEqual(found, ['HOST: documented `127.0.0.1`, default "0.0.0.0"']);
  });

  it("lists every budget a client can run into, rate limits included, in the table of docs/limits.md", () => {
    const missing = [...LIMITS, ...RATE_LIMITS].filter((name) => !documentedInTable("docs/limits.md", name));
    assert.deepEqual(missing, [], "add a row for these limits to docs/limits.md");
  });

  it("documents every audit event type, in the table of docs/audit-log.md", () => {
    const missing = Object.values(AuditEventType).filter((type) => !documentedInTable("docs/audit-log.md", type));
    assert.deepEqual(missing, [], "add these event types to docs/audit-log.md");
  });

  it("justifies every dependency in one line of docs/development.md", () => {
    const pkg = JSON.parse(read("package.json")) as Record<string, Record<string, string>>;
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})];
    const documented = (name: string) => documentedInTable("docs/development.md", name);
    const missing = names.filter(
      (name) => !documented(name) && !(name.startsWith("@types/") && documented("@types/*")),
    );
    assert.deepEqual(missing, [], "add a line for these packages to the dependency table of docs/development.md");
  });

  it("names every source file, and only those, in the project layout of docs/development.md", () => {
    assert.deepEqual(filesInLayout().sort(), sourceFiles("src").sort());
  });

  it("keeps the README a front door: at most 250 lines", () => {
    const lines = page("README.md").split("\n").length;
    assert.ok(lines <= 250, `README.md has ${lines} lines; move reference text into docs/`);
  });

  it("gives the set-up and test commands in the README", () => {
    const lines = page("README.md")
      .split("\n")
      .map((line) => line.trim());
    for (const command of ["npm install", "npm start", "npm test"])
      assert.ok(lines.includes(command), `README.md should show \`${command}\` on a line of its own`);
  });

  it('quotes, in the README and docs/, only the "Requires: …" sentences schema/schema.graphql gives fields', () => {
    const sentences = requiresSentences(read("schema/schema.graphql"));
    assert.ok(sentences.size >= 4, `only ${sentences.size} Requires sentences in the schema`);
    const quoted = [...pages].flatMap(([path, text]) => requiresQuotes(text).map((quote) => ({ path, quote })));
    assert.ok(quoted.length >= 5, `only ${quoted.length} quotes found`);
    const stale = quoted.filter(({ quote }) => staleRequiresQuotes([quote], sentences).length > 0);
    assert.deepEqual(
      stale.map(({ path, quote }) => `${path}: "${quote}"`),
      [],
      "quote these as the schema's descriptions say them",
    );
  });

  it('finds a "Requires: …" quote the schema does not say, so the check above can fail', () => {
    const sentences = new Set(["Requires: ADMIN; scope ADMIN.", "Requires: signed in with a fresh session token (…)."]);
    const quotes = requiresQuotes(
      'as "Requires: ADMIN." or "Requires: ADMIN; scope\nADMIN." or "Requires: signed in with a fresh …" or "Requires: …" or "Requires: signed in …"',
    );
    assert.deepEqual(quotes, [
      "Requires: ADMIN.",
      "Requires: ADMIN; scope ADMIN.",
      "Requires: signed in with a fresh …",
      "Requires: …",
      "Requires: signed in …",
    ]);
    assert.deepEqual(staleRequiresQuotes(quotes, sentences), ["Requires: ADMIN."]);
  });

  it("links every page of docs/ from the README", () => {
    const linked = new Set(relativeLinks(page("README.md")).map((link) => link.split("#")[0]));
    const orphans = [...pages.keys()].filter((path) => path.startsWith("docs/") && !linked.has(path));
    assert.deepEqual(orphans, [], "link these pages from the README");
  });

  it("has every relative link point to an existing file, and every #anchor to an existing heading", () => {
    const problems = [...pages].flatMap(([path, text]) => brokenLinks(path, text, (p) => pages.get(p)));
    assert.deepEqual(problems, []);
  });

  it("finds broken links and anchors when there are some, so the check above can fail", () => {
    const fixture = [
      "# Title",
      "## Keys, kid and the JWKS",
      "## Redis is down or frozen (REDIS_URL set)",
      "## Keys, kid and the JWKS",
      "```sh",
      "# not a heading",
      "[not a link](nowhere.md)",
      "```",
      "[ok](#keys-kid-and-the-jwks) [ok](#keys-kid-and-the-jwks-1) [ok](#redis-is-down-or-frozen-redis_url-set)",
      "[ok](../package.json) [web](https://example.com/x.md) `[code](nowhere.md)`",
      "[bad](#not-a-heading) [bad](missing.md) [bad](../README.md#no-such-heading)",
    ].join("\n");
    const problems = brokenLinks("docs/fixture.md", fixture, (p) => (p === "docs/fixture.md" ? fixture : pages.get(p)));
    assert.deepEqual(problems, [
      "docs/fixture.md: #not-a-heading -> no heading #not-a-heading in docs/fixture.md",
      "docs/fixture.md: missing.md -> no file docs/missing.md",
      "docs/fixture.md: ../README.md#no-such-heading -> no heading #no-such-heading in README.md",
    ]);
  });
});
