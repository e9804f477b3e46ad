// The size budget of the code: files over 300 lines and functions over 60, each with its line
// count, then a summary. Functions are found with the TypeScript compiler's parser (declarations,
// methods, constructors, accessors, arrow functions and function expressions, nested ones
// counted on their own), and lines are counted as eslint's max-lines and max-lines-per-function
// count them in eslint.config.js: every line, blank and comment lines included, from the line a
// function starts on (its decorators included) to the line it ends on.
//
//   node scripts/sizes.mjs            src/
//   node scripts/sizes.mjs --bench    src/ and bench/
//
// src/db/migrations.ts is left out of the function rule: a migration is the schema's history,
// written once and never edited, and each step reads best as one function. Exits with 1 when
// anything is over a limit.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import ts from "typescript";

export const MAX_FILE_LINES = 300;
export const MAX_FUNCTION_LINES = 60;
export const FUNCTION_RULE_EXCEPTIONS = ["src/db/migrations.ts"];

const root = fileURLToPath(new URL("..", import.meta.url));
const sourceExtensions = /\.(ts|mts|cts|js|mjs|cjs)$/;

function listSources(directory) {
  const found = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "results" && entry.name !== "node_modules") found.push(...listSources(path));
    } else if (sourceExtensions.test(entry.name) && !entry.name.endsWith(".d.ts")) {
      found.push(path);
    }
  }
  return found.sort();
}

/** Lines as eslint's max-lines counts them: a final line break does not start another line. */
function countFileLines(text) {
  const lines = text.split(/\r\n|[\r\n\u2028\u2029]/);
  if (lines.length > 1 && lines.at(-1) === "") lines.pop();
  return lines.length;
}

function scriptKindOf(path) {
  return /\.(ts|mts|cts)$/.test(path) ? ts.ScriptKind.TS : ts.ScriptKind.JS;
}

function textOfName(name) {
  if (!name) return undefined;
  if (ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteral(name)) return name.text;
  if (ts.isNumericLiteral(name)) return name.text;
  return `[${name.getText()}]`;
}

function classNameOf(node) {
  const owner = node.parent;
  if (owner && (ts.isClassDeclaration(owner) || ts.isClassExpression(owner))) {
    return owner.name?.text ?? "(class)";
  }
  return undefined;
}

function calleeText(call) {
  const text = call.expression.getText().replace(/\s+/g, " ");
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** A readable name for a function: its own, or the variable, property or call it is given to. */
function nameOf(node) {
  if (ts.isConstructorDeclaration(node)) return `${classNameOf(node)}.constructor`;
  const own = "name" in node ? textOfName(node.name) : undefined;
  if (ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) {
    const kind = ts.isGetAccessorDeclaration(node) ? "get " : ts.isSetAccessorDeclaration(node) ? "set " : "";
    const owner = classNameOf(node);
    return `${kind}${owner ? `${owner}.` : ""}${own}`;
  }
  if (own) return own;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return textOfName(parent.name);
  }
  if (ts.isBinaryExpression(parent) && parent.right === node) return parent.left.getText();
  if (ts.isCallExpression(parent)) {
    return parent.expression === node ? "(immediately invoked)" : `(passed to ${calleeText(parent)})`;
  }
  if (ts.isExportAssignment(parent)) return "(default export)";
  return "(anonymous)";
}

function isFunctionWithBody(node) {
  return (
    (ts.isFunctionDeclaration(node) ||
      ts.isFunctionExpression(node) ||
      ts.isArrowFunction(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node)) &&
    node.body !== undefined
  );
}

/** Every function of a source text with its first line, last line and length in lines. */
export function measureFunctions(path, text) {
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, scriptKindOf(path));
  const functions = [];
  const visit = (node) => {
    if (isFunctionWithBody(node)) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      functions.push({ name: nameOf(node), start, end, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return functions;
}

/** Measures the files of the given folders (relative to the repository) against both limits. */
export function measure(folders) {
  const report = { files: 0, functions: 0, longFiles: [], longFunctions: [], excepted: [] };
  for (const folder of folders) {
    for (const absolute of listSources(join(root, folder))) {
      const path = relative(root, absolute).split("\\").join("/");
      const text = readFileSync(absolute, "utf8");
      const lines = countFileLines(text);
      report.files += 1;
      if (lines > MAX_FILE_LINES) report.longFiles.push({ path, lines });
      const functions = measureFunctions(path, text);
      report.functions += functions.length;
      const long = functions.filter((fn) => fn.lines > MAX_FUNCTION_LINES).map((fn) => ({ path, ...fn }));
      if (FUNCTION_RULE_EXCEPTIONS.includes(path)) report.excepted.push(...long);
      else report.longFunctions.push(...long);
    }
  }
  report.longFiles.sort((a, b) => b.lines - a.lines);
  report.longFunctions.sort((a, b) => b.lines - a.lines);
  return report;
}

function print(folders, report) {
  const where = folders.map((folder) => `${folder}/`).join(" and ");
  console.log(`Files over ${MAX_FILE_LINES} lines in ${where}:`);
  for (const file of report.longFiles) console.log(`  ${String(file.lines).padStart(5)}  ${file.path}`);
  if (report.longFiles.length === 0) console.log("  none");
  console.log(
    `Functions over ${MAX_FUNCTION_LINES} lines in ${where} (${FUNCTION_RULE_EXCEPTIONS.join(", ")} excepted):`,
  );
  for (const fn of report.longFunctions) {
    console.log(`  ${String(fn.lines).padStart(5)}  ${fn.path}:${fn.start}  ${fn.name}`);
  }
  if (report.longFunctions.length === 0) console.log("  none");
  if (report.excepted.length > 0) {
    console.log(`Excepted (migrations), over ${MAX_FUNCTION_LINES} lines but not counted:`);
    for (const fn of report.excepted)
      console.log(`  ${String(fn.lines).padStart(5)}  ${fn.path}:${fn.start}  ${fn.name}`);
  }
  console.log(
    `Summary: ${report.files} files, ${report.longFiles.length} over ${MAX_FILE_LINES} lines; ` +
      `${report.functions} functions, ${report.longFunctions.length} over ${MAX_FUNCTION_LINES} lines.`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const unknown = process.argv.slice(2).filter((arg) => arg !== "--bench");
  if (unknown.length > 0) {
    console.error(`Unknown argument ${unknown[0]}. Usage: node scripts/sizes.mjs [--bench]`);
    process.exit(2);
  }
  const folders = process.argv.includes("--bench") ? ["src", "bench"] : ["src"];
  const report = measure(folders);
  print(folders, report);
  if (report.longFiles.length > 0 || report.longFunctions.length > 0) process.exitCode = 1;
}
