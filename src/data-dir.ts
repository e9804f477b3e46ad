// DATA_DIR holds what only this server may read: the SQLite database with its -wal and -shm, the
// generated secret and keys. Its files are mode 0600 and its folders 0700: each owner creates them
// so, and at start the app tightens those an older version left wider (the SQLite files were 0644).
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Read and write for the server's user, nothing for anybody else. */
export const PRIVATE_FILE_MODE = 0o600;
/** The same for folders (x to enter them). */
export const PRIVATE_FOLDER_MODE = 0o700;

/**
 * Creates `folder`, and any missing parent, 0700 (the umask can only take more away). A folder
 * that already exists is left as it is: DATA_DIR may be a volume its operator set up.
 */
export function makePrivateFolder(folder: string): void {
  mkdirSync(folder, { recursive: true, mode: PRIVATE_FOLDER_MODE });
}

/**
 * Creates `file` empty and 0600 unless it exists. SQLite gives a database's -wal and -shm the
 * database file's mode, so a database created this way before SQLite opens it keeps all three
 * private from their first byte.
 */
export function createPrivateFile(file: string): void {
  closeSync(openSync(file, "a", PRIVATE_FILE_MODE));
}

/** What of DATA_DIR the app owns, by name: nothing else there is ever touched. */
export interface DataDirEntries {
  /** Files directly in DATA_DIR (those missing are skipped). */
  readonly files: readonly string[];
  /** Folders the app owns whole: they, and every folder and file in them at any depth. */
  readonly folders: readonly string[];
}

/** What {@link tightenDataDir} did: the paths it tightened, and those it could not (another user's). */
export interface Tightened {
  readonly tightened: string[];
  readonly notOwned: string[];
}

/**
 * Takes from the named entries of `dataDir` every permission beyond 0600 (files) or 0700 (folders),
 * adding none: what an older version created 0644 becomes 0600. Only the named entries are touched,
 * never DATA_DIR itself (its operator's choice, like the folder above it) nor anything else in it,
 * so a DATA_DIR that points at a shared folder by mistake loses nothing of others; symbolic links
 * are not followed. A path whose owner is another user (a CLI command run as someone else) is
 * reported, not changed.
 */
export function tightenDataDir(dataDir: string, entries: DataDirEntries): Tightened {
  const result: Tightened = { tightened: [], notOwned: [] };
  for (const name of entries.files) tighten(join(dataDir, name), false, result);
  for (const name of entries.folders) tighten(join(dataDir, name), true, result);
  return result;
}

const UNREACHABLE = new Set(["ENOENT", "ENOTDIR", "EACCES"]);

function tighten(path: string, whole: boolean, result: Tightened): void {
  let stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    // Missing, or where this user cannot look: nothing there this process could read either.
    if (UNREACHABLE.has((error as NodeJS.ErrnoException).code ?? "")) return;
    throw error;
  }
  if (stats.isSymbolicLink()) return;
  const folder = stats.isDirectory();
  const limit = folder ? PRIVATE_FOLDER_MODE : PRIVATE_FILE_MODE;
  const mode = stats.mode & 0o7777;
  if ((mode & ~limit) !== 0) {
    try {
      chmodSync(path, mode & limit);
      result.tightened.push(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error;
      result.notOwned.push(path);
    }
  }
  if (folder && whole) for (const name of readdirSync(path)) tighten(join(path, name), true, result);
}
