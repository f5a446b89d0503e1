import {
  chmodSync, closeSync, constants, copyFileSync, fstatSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync,
  openSync, readdirSync, readlinkSync, renameSync, symlinkSync, utimesSync, type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { log } from '@berth/cli-kit';
import { at, CopyPathError, O_DIR, openRegularFile, RootDir } from './cp-path.ts';
import { EngineError } from './errors.ts';
import { removeTreeNoFollow } from './volume-store.ts';

/**
 * What a volume gets from the first container that mounts it, as podman
 * does it: the image's files at the mount point copied in (copy-up, only
 * into an empty volume), and _data given the owner, mode and times of the
 * image's directory there, or the container user's when the image has none.
 *
 * The image side is read through cp-path's RootDir: the mount point is
 * resolved inside the rootfs (a symlink in the image such as /var/run ->
 * /run is followed there, never on the host) and every file is opened by
 * descriptor with O_NOFOLLOW. The volume side is never written through:
 * the copy is built in a hidden directory beside _data that no container
 * sees, and each top-level entry is then renamed into _data, which replaces
 * whatever a container may have put there meanwhile and follows nothing.
 * Everything here is synchronous, because a rootless rootfs is mounted only
 * in the calling thread's private mount namespace (berth-bundle's
 * withRootfsMounted).
 */
export interface PrepareRequest {
  /** The container's rootfs as mounted on the host (or in this thread's namespace). */
  rootfs: string;
  destination: string;
  /** ROOT/volumes/NAME: _data and the hidden copy directory live here. */
  volumeDir: string;
  copyUp: boolean;
  /** The container's user, for a volume still without an owner; undefined once it has one. */
  chown?: { uid: number; gid: number };
  /**
   * Called between the copy and the renames into _data: the moment a
   * container sharing the volume could plant links. Tests plant them here.
   */
  beforeRename?: (data: string) => void;
}

/** Returns whether anything was copied in. */
export function prepareVolumeSync(req: PrepareRequest): boolean {
  const data = join(req.volumeDir, '_data');
  const root = new RootDir(req.rootfs, 'in the image');
  try {
    let source: Stats | undefined;
    let parent = root.fd;
    let name = '.';
    try {
      const loc = root.locate(req.destination, { followLast: true });
      if (loc.st?.isDirectory()) ({ st: source, parent, name } = loc);
    } catch (err) {
      // Not in the image, or not a directory on the way there: nothing to copy, the runtime makes the mount point.
      if (!(err instanceof CopyPathError)) throw err;
    }
    let copied = false;
    if (req.copyUp && source && readdirSync(data).length === 0) copied = copyUp(root, parent, name, req.volumeDir, data, req.beforeRename);
    if (req.chown) {
      // chown first: it clears set-id bits, which the mode then sets again; times last.
      safeChown(data, req.chown.uid, req.chown.gid);
      if (source) {
        safeChown(data, source.uid, source.gid);
        chmodSync(data, source.mode & 0o7777);
        utimesSync(data, source.atime, source.mtime);
      }
    }
    return copied;
  } finally {
    root.close();
  }
}

function copyUp(root: RootDir, parent: number, name: string, volumeDir: string, data: string, beforeRename?: (data: string) => void): boolean {
  const from = name === '.' ? root.fd : root.openDir(parent, name);
  const stage = mkdtempSync(join(volumeDir, '.copyup-'));
  try {
    const entries = readdirSync(at(from));
    const links = new Map<string, string>();
    for (const e of entries) copyEntry(from, e, join(stage, e), links);
    beforeRename?.(data);
    // Into _data one top-level name at a time: rename(2) never follows the name it replaces.
    for (const e of readdirSync(stage)) {
      try {
        renameSync(join(stage, e), join(data, e));
      } catch (err) {
        // A container sharing the volume made this name meanwhile as another kind (a directory, or a link where a directory goes): its entry stays.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
        log.warn(`volume copy-up: ${e} was created in the volume while the image's files were copied; keeping it`);
      }
    }
    return entries.length > 0;
  } catch (err) {
    throw new EngineError('E_VOLUME_COPYUP', `copying the image's content into volume ${volumeDir}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (from !== root.fd) root.release(from);
    removeTreeNoFollow(stage);
  }
}

/** One entry of the image, recursively; owners, modes and times kept, hard links kept as links. */
function copyEntry(dirFd: number, name: string, dest: string, links: Map<string, string>): void {
  const st = lstatSync(at(dirFd, name));
  if (st.isDirectory()) {
    mkdirSync(dest, 0o700);
    const fd = openSync(at(dirFd, name), O_DIR);
    try {
      for (const e of readdirSync(at(fd))) copyEntry(fd, e, join(dest, e), links);
    } finally {
      closeSync(fd);
    }
    finish(dest, st);
    return;
  }
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(at(dirFd, name)), dest);
    safeChown(dest, st.uid, st.gid);
    lutimesSync(dest, st.atime, st.mtime);
    return;
  }
  if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first) { linkSync(first, dest); return; }
    const opened = openRegularFile(at(dirFd, name));
    if (!opened) throw new Error(`${name} changed into a non-file while being copied`);
    const { fd } = opened;
    try {
      // The descriptor's magic link: the file opened with O_NOFOLLOW, whatever its name points to now.
      copyFileSync(`/proc/self/fd/${fd}`, dest, constants.COPYFILE_EXCL);
    } finally {
      closeSync(fd);
    }
    finish(dest, st);
    if (st.nlink > 1) links.set(key, dest);
    return;
  }
  log.warn(`volume copy-up: skipping ${name}: berth copies files, directories and symbolic links, not devices, FIFOs or sockets`);
}

function finish(path: string, st: Stats): void {
  safeChown(path, st.uid, st.gid);
  chmodSync(path, st.mode & 0o7777);
  utimesSync(path, st.atime, st.mtime);
}

/**
 * lchown, except for an id this namespace does not map (an image file of a
 * uid beyond an ordinary user's range shows as nobody and cannot be given
 * back): the copy then keeps the namespace's root, as podman's does.
 */
function safeChown(path: string, uid: number, gid: number): void {
  try {
    lchownSync(path, uid, gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  }
}
