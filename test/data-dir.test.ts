// DATA_DIR is the server's alone: every file it keeps there is mode 0600 and every folder 0700,
// from a fresh start (the SQLite database, its -wal and -shm, the generated secret and keys, the
// development mail) and
// after an older version left them 0644, while nothing else in DATA_DIR is touched.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";

import SqliteDatabase from "better-sqlite3";

import { DEV_SECRET_FILE, KEYS_DIR, rotateGeneratedKey } from "../src/access/keys.js";
import { SQLITE_FILE } from "../src/db/database.js";
import { loadConfig } from "../src/load-config.js";
import { MAIL_DIR } from "../src/mail/index.js";
import { startTestApp, type TestApp } from "./helpers/app.js";
import type { TestDatabase } from "./helpers/databases.js";
import { enqueue, eventually, testMail } from "./helpers/outbox.js";

/** Every file and folder under `dir` (not `dir` itself), with its permission bits, by relative path. */
function modesUnder(dir: string): Map<string, { folder: boolean; mode: number }> {
  const found = new Map<string, { folder: boolean; mode: number }>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      found.set(relative(dir, path), { folder: entry.isDirectory(), mode: statSync(path).mode & 0o777 });
      if (entry.isDirectory()) walk(path);
    }
  };
  walk(dir);
  return found;
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

function octal(mode: number): string {
  return `0${mode.toString(8)}`;
}

/** An app on `dataDir`, SQLite, with the development secret generated there (no JWT_SECRET_KEY). */
function startOn(dataDir: string): Promise<TestApp> {
  const database: TestDatabase = { env: { DATA_DIR: dataDir }, dataDir, drop: async () => undefined };
  return startTestApp("sqlite", { database, env: { JWT_SECRET_KEY: "" } });
}

/** A mail through the app's outbox, which development writes to DATA_DIR/mail; resolves once the file is there. */
async function mailOne(t: TestApp, dataDir: string): Promise<void> {
  await enqueue(t.app, testMail());
  const folder = join(dataDir, MAIL_DIR);
  await eventually(
    () => existsSync(folder) && readdirSync(folder).some((name) => name.endsWith(".eml")),
    "a mail file",
  );
}

/** `npm run cli -- keys rotate` on `dataDir`: a generated key in DATA_DIR/keys. */
function rotateKey(dataDir: string): void {
  rotateGeneratedKey(loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir }));
}

describe("files under DATA_DIR", () => {
  let root: string;
  let umask: number;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "gta-data-dir-"));
    // The usual umask, which lets others read what is created: the modes below must not owe it anything.
    umask = process.umask(0o022);
  });
  after(() => {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  });

  it("are 0600, and its folders 0700, on a fresh start: the database with its -wal and -shm, the secret, the keys", async () => {
    const dataDir = join(root, "fresh", "data");
    const t = await startOn(dataDir);
    try {
      await t.register("modes");
      await mailOne(t, dataDir);
      rotateKey(dataDir);
      const modes = modesUnder(dataDir);
      const names = [...modes.keys()].sort();
      for (const name of [
        SQLITE_FILE,
        `${SQLITE_FILE}-wal`,
        `${SQLITE_FILE}-shm`,
        DEV_SECRET_FILE,
        KEYS_DIR,
        MAIL_DIR,
      ]) {
        assert.ok(modes.has(name), `${name} is among ${names.join(", ")}`);
      }
      assert.ok(
        names.some((name) => name.startsWith(`${KEYS_DIR}/`) && name.endsWith(".json")),
        names.join(", "),
      );
      for (const [name, { folder, mode }] of modes) {
        if (folder) assert.equal(octal(mode), "0700", name);
        else assert.equal(mode & 0o077, 0, `${name} is ${octal(mode)}`);
      }
      assert.equal(octal(modeOf(dataDir)), "0700", "DATA_DIR, created by the app");
      assert.equal(octal(modeOf(join(root, "fresh"))), "0700", "and the parent it created");
    } finally {
      await t.close();
    }
  });

  it("are tightened at start when an older version left them 0644, and nothing else in DATA_DIR is touched", async () => {
    const dataDir = join(root, "older", "data");
    const first = await startOn(dataDir);
    await first.register("older");
    await mailOne(first, dataDir);
    await first.close();
    rotateKey(dataDir);
    // What older versions left: the SQLite files 0644, here everything of the app's, and DATA_DIR 0755.
    for (const [name, { folder }] of modesUnder(dataDir)) chmodSync(join(dataDir, name), folder ? 0o755 : 0o644);
    chmodSync(dataDir, 0o755);
    // A -wal and -shm of an older version's process, still open: created with the database's 0644.
    const holder = new SqliteDatabase(join(dataDir, SQLITE_FILE));
    holder.pragma("journal_mode = WAL");
    holder.exec("create table if not exists left_by_an_older_version (id integer)");
    assert.equal(octal(modeOf(join(dataDir, `${SQLITE_FILE}-wal`))), "0644");
    // Not the app's: left as they are.
    writeFileSync(join(dataDir, "notes.txt"), "the operator's\n", { mode: 0o644 });
    mkdirSync(join(dataDir, "backup"), { mode: 0o755 });
    writeFileSync(join(dataDir, "backup", "app.db"), "", { mode: 0o644 });
    chmodSync(join(dataDir, "backup"), 0o755);

    const t = await startOn(dataDir);
    try {
      await t.register("older2");
      const modes = modesUnder(dataDir);
      const ours = [...modes.keys()].filter((name) => name !== "notes.txt" && !name.startsWith("backup"));
      assert.ok(ours.includes(`${SQLITE_FILE}-wal`) && ours.includes(`${SQLITE_FILE}-shm`), ours.join(", "));
      for (const name of ours) {
        const { folder, mode } = modes.get(name)!;
        assert.equal(octal(mode), folder ? "0700" : "0600", name);
      }
      assert.equal(octal(modes.get("notes.txt")!.mode), "0644");
      assert.equal(octal(modes.get("backup")!.mode), "0755");
      assert.equal(octal(modes.get("backup/app.db")!.mode), "0644");
      assert.equal(octal(modeOf(dataDir)), "0755", "DATA_DIR itself is its operator's choice");
      // Said once, naming what it changed.
      const lines = t.logs.map((line) => JSON.parse(line)).filter((line) => String(line.msg).startsWith("DATA_DIR:"));
      assert.equal(lines.length, 1, JSON.stringify(lines));
      assert.deepEqual(
        [...lines[0].paths].map((path: string) => relative(dataDir, path)).sort(),
        ours.filter((name) => name !== `${SQLITE_FILE}-journal`).sort(),
      );
    } finally {
      await t.close();
      holder.close();
    }
  });
});
