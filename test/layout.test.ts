// The layout's rules: imports run one way, down the layers docs/development.md lists ("Imports run
// one way", read here as test data, so the page and the code cannot drift apart). No file imports
// itself back through others, no folder of src/ imports another that imports it back (a file
// directly in src/ counts as a module of its own), no module imports one of a layer above it, and
// no file outside a feature folder imports anything of it but its face, its index.ts.
// Type-only imports count too: they couple the code just the same.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const srcDir = join(root, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [relative(srcDir, path).split("\\").join("/")] : [];
  });
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*["'](\.{1,2}\/[^"']+)["']|(?:^|\n)\s*import\s*["'](\.{1,2}\/[^"']+)["']|\bimport\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)|new URL\(\s*["'](\.{1,2}\/[^"']+)["']/g;

/** The files of src/ each file imports, by path relative to src/. */
function importGraph(): Map<string, Set<string>> {
  const files = sourceFiles(srcDir);
  const known = new Set(files);
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const text = readFileSync(join(srcDir, file), "utf8");
    const targets = new Set<string>();
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? match[3] ?? match[4]!;
      const target = posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, ".ts");
      assert.ok(known.has(target), `${file} imports ${specifier}, which is not a file of src/`);
      targets.add(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** Strongly connected components with more than one member, or a member that imports itself. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const lowlinks = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    lowlinks.set(node, index);
    index += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        lowlinks.set(node, Math.min(lowlinks.get(node)!, lowlinks.get(next)!));
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node)!, indices.get(next)!));
      }
    }
    if (lowlinks.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.has(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

/** `access/keys.ts` belongs to `access/`; `config.ts` is a module of its own. */
function moduleOf(file: string): string {
  const slash = file.indexOf("/");
  return slash < 0 ? file : `${file.slice(0, slash)}/`;
}

/** One layer of docs/development.md's list: its modules, and whether they are in order among themselves. */
export interface Layer {
  readonly modules: readonly string[];
  /** "each using only those after it": a module may import only the layer's modules listed after it. */
  readonly ordered: boolean;
  /** "only through its face": other modules may import only each folder's index.ts. */
  readonly faced: boolean;
}

/**
 * The numbered list under "### Imports run one way" in `markdown`, top layer first: each item's
 * backticked names that are modules (`main.ts`, `http/`).
 */
export function layersOf(markdown: string): Layer[] {
  const section = markdown.split("### Imports run one way")[1]?.split(/\n#{2,3} /)[0] ?? "";
  // The list is the section's first paragraph that starts with "1. "; an item runs to the next one.
  const list = section.split(/\n\s*\n/).find((paragraph) => paragraph.trim().startsWith("1. ")) ?? "";
  const items = list.split(/\n(?=\d+\. )/);
  return items.map((item) => ({
    // A module named again in an item's prose (`app.ts` in "the server that `app.ts` builds") counts once.
    modules: [...new Set([...item.matchAll(/`([\w.-]+(?:\.ts|\/))`/g)].map((m) => m[1]!))],
    ordered: item.includes("each using only those after it"),
    faced: item.includes("only through its face"),
  }));
}

/** Each import from one module to another that goes up the layers (or back within an ordered layer). */
export function upwardImports(modules: Map<string, Set<string>>, layers: readonly Layer[]): string[] {
  const rank = new Map<string, [layer: number, position: number]>();
  layers.forEach((layer, i) => layer.modules.forEach((name, j) => rank.set(name, [i, layer.ordered ? j : 0])));
  const found: string[] = [];
  for (const [from, targets] of modules) {
    const [fromLayer, fromPosition] = rank.get(from) ?? [NaN, NaN];
    for (const to of targets) {
      const [toLayer, toPosition] = rank.get(to) ?? [NaN, NaN];
      const down = toLayer > fromLayer || (toLayer === fromLayer && toPosition >= fromPosition);
      if (!down) found.push(`${from} imports ${to}`);
    }
  }
  return found.sort();
}

/** The face of a folder of src/ (`posts/` has `posts/index.ts`). */
function faceOf(folder: string): string {
  return `${folder}index.ts`;
}

/**
 * Each import, from a file outside one of the `faced` folders, of a file of that folder other than
 * its face: how a folder's inner files would become other folders' dependencies.
 */
export function innerImports(graph: Map<string, Set<string>>, faced: readonly string[]): string[] {
  const found: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const folder = moduleOf(target);
      if (faced.includes(folder) && moduleOf(file) !== folder && target !== faceOf(folder))
        found.push(`${file} imports ${target}: outside ${folder} import only its face, ${faceOf(folder)}`);
    }
  }
  return found.sort();
}

/** The folder-and-root-file graph of `graph`: which module imports which other. */
function moduleGraph(graph: Map<string, Set<string>>): Map<string, Set<string>> {
  const modules = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const from = moduleOf(file);
    const edges = modules.get(from) ?? new Set<string>();
    for (const target of targets) if (moduleOf(target) !== from) edges.add(moduleOf(target));
    modules.set(from, edges);
  }
  return modules;
}

describe("the layout of src/", () => {
  const graph = importGraph();
  const layers = layersOf(readFileSync(join(root, "docs", "development.md"), "utf8"));

  it("has no import cycle between files", () => {
    assert.deepEqual(cycles(graph), []);
  });

  it("has no import cycle between folders (a root file counts as a module of its own)", () => {
    assert.deepEqual(cycles(moduleGraph(graph)), []);
  });

  it("names every module of src/ in exactly one layer of docs/development.md's list", () => {
    const listed = layers.flatMap((layer) => layer.modules);
    const modules = [...new Set([...graph.keys()].map(moduleOf))].sort();
    assert.deepEqual(
      [...listed].sort(),
      modules,
      "docs/development.md, 'Imports run one way', must list each module once",
    );
  });

  it("imports only down the layers, and within the features only those listed after", () => {
    assert.deepEqual(upwardImports(moduleGraph(graph), layers), []);
  });

  it("finds an upward import when there is one, so the check above can fail", () => {
    const layers: Layer[] = [
      { modules: ["main.ts"], ordered: false, faced: false },
      { modules: ["auth/", "users/"], ordered: true, faced: true },
      { modules: ["db/", "config.ts"], ordered: false, faced: false },
    ];
    const modules = new Map([
      ["main.ts", new Set(["auth/"])],
      ["auth/", new Set(["users/", "db/"])],
      ["users/", new Set(["auth/", "config.ts"])],
      ["db/", new Set(["config.ts", "main.ts"])],
      ["config.ts", new Set(["db/"])],
    ]);
    assert.deepEqual(upwardImports(modules, layers), ["db/ imports main.ts", "users/ imports auth/"]);
    assert.deepEqual(
      layersOf(
        "### Imports run one way\n\n1. `a.ts`, `b/`;\n2. features, each using only those after it and only through its face: `c/`,\n   `d/`;\n\n## Next",
      ),
      [
        { modules: ["a.ts", "b/"], ordered: false, faced: false },
        { modules: ["c/", "d/"], ordered: true, faced: true },
      ],
    );
  });

  it("finds a cycle when there is one, so the checks above can fail", () => {
    const looped = new Map([
      ["a.ts", new Set(["b/x.ts"])],
      ["b/x.ts", new Set(["c/y.ts"])],
      ["c/y.ts", new Set(["a.ts"])],
      ["d.ts", new Set(["a.ts"])],
    ]);
    assert.deepEqual(cycles(looped), [["a.ts", "b/x.ts", "c/y.ts"]]);
  });

  it("reads every kind of relative import: named, type-only, side effect, re-export, dynamic and worker URL", () => {
    // The parser is the regular expression above; each form must give one specifier.
    const forms = [
      'import { a } from "./a.js";',
      'import type { B } from "../b.js";',
      'import "./c.js";',
      'export { d } from "./d.js";',
      'const e = await import("./e.js");',
      'const f = new URL("./f.js", import.meta.url);',
      "import {\n  g,\n  h,\n} from './g.js';",
    ].join("\n");
    const specifiers = [...forms.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3] ?? m[4]);
    assert.deepEqual(specifiers, ["./a.js", "../b.js", "./c.js", "./d.js", "./e.js", "./f.js", "./g.js"]);
  });
});

describe("the faces of the feature folders", () => {
  const graph = importGraph();
  const layers = layersOf(readFileSync(join(root, "docs", "development.md"), "utf8"));

  it("imports a feature folder from outside only through its face (index.ts)", () => {
    const faced = layers.filter((layer) => layer.faced).flatMap((layer) => layer.modules);
    assert.ok(faced.length > 0, "docs/development.md's list names no layer whose folders are used through their faces");
    assert.deepEqual(
      faced.filter((folder) => !graph.has(faceOf(folder))),
      [],
      "every feature folder has a face, its index.ts",
    );
    assert.deepEqual(
      innerImports(graph, faced),
      [],
      "a file outside a feature folder imports that folder's inner file: import what it needs from its index.ts, " +
        "exporting it there if it is not yet (a test may import inner files; src/ may not)",
    );
  });

  it("finds an import of a feature folder's inner file when there is one, so the check above can fail", () => {
    const graph = new Map([
      ["app.ts", new Set(["posts/index.ts", "db/database.ts"])],
      ["posts/index.ts", new Set(["posts/post.service.ts", "users/index.ts"])],
      ["posts/post.service.ts", new Set(["users/user.store.ts", "posts/post.store.ts"])],
      ["users/index.ts", new Set(["users/user.store.ts"])],
      ["db/database.ts", new Set(["config.ts"])],
      ["http/server.ts", new Set(["db/database.ts", "posts/post.type.ts"])],
    ]);
    assert.deepEqual(innerImports(graph, ["posts/", "users/"]), [
      "http/server.ts imports posts/post.type.ts: outside posts/ import only its face, posts/index.ts",
      "posts/post.service.ts imports users/user.store.ts: outside users/ import only its face, users/index.ts",
    ]);
  });
});
