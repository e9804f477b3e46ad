// The example web app (examples/web/) built with Vite for a test server, as files a StaticServer
// serves: the browser suites of the example build it once each.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import type { StaticFile } from "./browser.js";

const run = promisify(execFile);

/** The repository (the compiled helper is dist/test/helpers/example-web.js). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const EXAMPLE = join(ROOT, "examples/web");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** Builds the example for the API at `apiUrl` into a temporary folder and returns its files by URL path. */
export async function buildExample(apiUrl: string): Promise<Record<string, StaticFile>> {
  const outDir = mkdtempSync(join(tmpdir(), "example-web-"));
  try {
    const vite = join(ROOT, "node_modules/vite/bin/vite.js");
    // The native loader imports vite.config.mjs as it is, writing no bundled copy under node_modules.
    const args = [
      "build",
      EXAMPLE,
      "--configLoader",
      "native",
      "--outDir",
      outDir,
      "--emptyOutDir",
      "--logLevel",
      "warn",
    ];
    await run(process.execPath, [vite, ...args], { env: { ...process.env, VITE_API_URL: apiUrl } });
    const files: Record<string, StaticFile> = {};
    for (const path of listFiles(outDir)) {
      const contentType = CONTENT_TYPES[extname(path)] ?? "application/octet-stream";
      files[`/${relative(outDir, path)}`] = { contentType, body: readFileSync(path, "utf8") };
    }
    const index = files["/index.html"];
    assert.ok(index, "the build wrote index.html");
    return { ...files, "/": index };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}
