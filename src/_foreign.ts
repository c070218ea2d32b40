/**
 * Foreign objects at larder's names: a symlink, directory, FIFO or device
 * where larder keeps a file, or anything but a directory where it keeps a
 * directory. Larder did not write them, so it never deletes them: it moves
 * them aside to `<name>.foreign-<n>` in the same directory (n from 1, the
 * first name free), where they stay until someone removes them. Open does
 * this for the files it must replace; check-store reports them as
 * `FOREIGN_OBJECT` and `--repair` moves them aside.
 *
 * @module
 */
import { ForeignFileError, IOError } from "./errors.ts";
import { type FileIO, readWhole } from "./io.ts";

/** Most `.foreign-<n>` names tried for one path. */
const MAX_ASIDE = 1000;

/**
 * Renames `dir/rel` to `dir/rel.foreign-<n>` and syncs its directory.
 * @returns the new relative path.
 * @throws {IOError} when every name up to `.foreign-1000` is taken.
 */
export function moveAside(io: FileIO, dir: string, rel: string): string {
  for (let n = 1; n <= MAX_ASIDE; n++) {
    const to = `${rel}.foreign-${n}`;
    if (io.kind(`${dir}/${to}`) !== "missing") continue;
    io.rename(`${dir}/${rel}`, `${dir}/${to}`);
    const at = `${dir}/${rel}`;
    io.syncDir(at.slice(0, at.lastIndexOf("/")));
    return to;
  }
  throw new IOError(
    `Cannot move ${dir}/${rel} aside: ${MAX_ASIDE} foreign objects are already beside it`,
  );
}

/**
 * Reads root file `name` of the store in `dir` whole, as `readWhole`; a
 * foreign object at its name is moved aside and reads as missing, so the
 * caller rebuilds or rewrites the file as it would a lost one.
 */
export function readRootFile(
  io: FileIO,
  dir: string,
  name: string,
): Uint8Array | undefined {
  try {
    return readWhole(io, `${dir}/${name}`);
  } catch (err) {
    if (!(err instanceof ForeignFileError)) throw err;
    moveAside(io, dir, name);
    return undefined;
  }
}
