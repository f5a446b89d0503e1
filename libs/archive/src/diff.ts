import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { BerthError } from '@berth/cli-kit';
import { at, O_DIR, openRegularFile } from './fd-path.ts';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type EntryType, type WriteHeader } from './tar.ts';
import { lgetxattr, readXattrs } from './xattr.ts';

/**
 * One name of an overlayfs upper directory, read the way overlayfs reads it:
 * a `whiteout` is a deleted name (a 0/0 character device, or with userxattr
 * an empty file carrying user.overlay.whiteout); an `opaque` directory
 * replaced the lower one of the same name (trusted.overlay.opaque=y, or
 * user.overlay.opaque=y); anything else is an `entry` the upper holds.
 */
export interface UpperEntry {
  /** The path below the walked directory, without a leading slash ("etc/hosts"). */
  rel: string;
  /**
   * Where to reach it for a syscall while the walk stands on it:
   * /proc/self/fd/N/NAME, N the walk's descriptor of its directory (see walkUpper).
   */
  path: string;
  st: Stats;
  kind: 'whiteout' | 'opaque' | 'entry';
}

export interface WalkOptions {
  /**
   * false: the directory is a plain tree (a mounted rootfs), not an upper
   * directory: no name is read as a whiteout or an opaque marker.
   */
  overlay?: boolean;
  /**
   * Do not descend into a directory on another filesystem than the walked
   * one (a mount point), as tar --one-file-system. overlayfs reports its own
   * device for every directory, so this tells its mount points apart.
   */
  oneFileSystem?: boolean;
}

/** File data is read and handed on in pieces of at most this size. */
const READ_CHUNK = 1 << 20;

/** A name that went away (or changed kind) between readdir and the next call: a live container's churn. */
function vanished(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR';
}

/**
 * Every name under `dir`, sorted, parents before their children: the one
 * walk behind diffTar (a container's changes as a layer), `berth diff` (the
 * same changes as a list) and `berth export` (a whole rootfs as a tar).
 * A whiteout or an opaque marker in an upper directory is recognised here
 * and nowhere else, so the three cannot disagree about what changed.
 *
 * The tree may belong to a running container, which can swap a directory
 * for a symlink to / at any moment. So no path below `dir` is ever resolved
 * by the kernel from the top: each directory is held open (O_NOFOLLOW) and
 * its names are reached as /proc/self/fd/N/NAME (Node has no openat), so a
 * symlink the container plants is read as a symlink, never followed to the
 * host. A name that disappears during the walk is left out.
 */
export async function* walkUpper(dir: string, opts: WalkOptions = {}): AsyncGenerator<UpperEntry> {
  const overlay = opts.overlay ?? true;
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const rootDev = opts.oneFileSystem ? fstatSync(fd).dev : undefined;
    yield* walkDir(fd, '', overlay, rootDev);
  } finally {
    closeSync(fd);
  }
}

async function* walkDir(fd: number, rel: string, overlay: boolean, rootDev: number | undefined): AsyncGenerator<UpperEntry> {
  // Synchronous calls: each is a few microseconds on the main thread, where
  // an async one would wait for a hop through libuv's thread pool.
  const names = readdirSync(at(fd)).sort();
  for (const name of names) {
    const path = at(fd, name);
    const entryRel = rel === '' ? name : `${rel}/${name}`;
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (err) {
      if (vanished(err)) continue;
      throw err;
    }
    if (overlay && ((st.isCharacterDevice() && st.rdev === 0)
      || (st.isFile() && st.size === 0 && lgetxattr(path, 'user.overlay.whiteout') !== undefined))) {
      yield { rel: entryRel, path, st, kind: 'whiteout' };
      continue;
    }
    if (!st.isDirectory()) {
      yield { rel: entryRel, path, st, kind: 'entry' };
      continue;
    }
    let child: number;
    try {
      child = openSync(path, O_DIR);
    } catch (err) {
      if (vanished(err)) continue;
      throw err;
    }
    try {
      // What is open is what gets described and walked, even if the name moved on.
      st = fstatSync(child);
      // "N/." is the directory itself; the bare magic link would be a symlink to the l*xattr calls.
      const self = at(child, '.');
      const opaque = overlay && (lgetxattr(self, 'trusted.overlay.opaque') ?? lgetxattr(self, 'user.overlay.opaque'))?.toString() === 'y';
      yield { rel: entryRel, path: self, st, kind: opaque ? 'opaque' : 'entry' };
      if (rootDev === undefined || st.dev === rootDev) yield* walkDir(child, entryRel, overlay, rootDev);
    } finally {
      closeSync(child);
    }
  }
}

/**
 * The changes an overlayfs upper directory holds, as a layer tar (the inverse
 * of applyLayer): what the container wrote is in the upper directory; a
 * deleted name becomes `.wh.NAME`; a directory that replaced a lower one gets
 * a `.wh..wh..opq` entry. Files sharing an inode become one file and
 * hardlinks. Entries come in sorted order, parents before children, so the
 * tar is reproducible for the same tree.
 */
export async function* diffTar(upper: string): AsyncGenerator<Buffer> {
  yield* entriesTar(upper, walkUpper(upper), true);
}

/**
 * A whole directory tree as a tar, as `podman export` writes a container's
 * rootfs: names relative to the root ("etc/passwd", directories with a
 * trailing slash), no entry for the root itself, owners, modes, times,
 * xattrs (overlayfs's own left out), hardlinks and device nodes kept;
 * sockets left out. Nothing is read as a whiteout: `dir` is a mounted tree.
 */
export async function* treeTar(dir: string, opts: TreeTarOptions = {}): AsyncGenerator<Buffer> {
  const scratch = opts.reuseBuffers ? Buffer.allocUnsafe(READ_CHUNK) : undefined;
  yield* entriesTar(dir, walkUpper(dir, { overlay: false, oneFileSystem: opts.oneFileSystem }), false, scratch);
}

export interface TreeTarOptions {
  /** Stop at mount points (see WalkOptions). */
  oneFileSystem?: boolean;
  /**
   * File data comes in one buffer, refilled for the next piece: a chunk is
   * valid only until the consumer asks for the next one. Saves a fresh
   * megabyte (and its page faults) per megabyte of file for a consumer that
   * writes each chunk out before it moves on.
   */
  reuseBuffers?: boolean;
}

async function* entriesTar(root: string, entries: AsyncIterable<UpperEntry>, upper: boolean, scratch?: Buffer): AsyncGenerator<Buffer> {
  const inodes = new Map<string, string>();
  for await (const e of entries) yield* entryTar(root, e, upper, inodes, scratch);
  yield END_OF_ARCHIVE;
}

async function* entryTar(root: string, { rel, path, st, kind }: UpperEntry, upper: boolean, inodes: Map<string, string>, scratch: Buffer | undefined): AsyncGenerator<Buffer> {
  const slash = rel.lastIndexOf('/');
  if (kind === 'whiteout') {
    const wh = slash < 0 ? `.wh.${rel}` : `${rel.slice(0, slash)}/.wh.${rel.slice(slash + 1)}`;
    yield encodeHeader({ name: wh, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: st.mtimeMs / 1000 });
    return;
  }
  let all: Map<string, Buffer>;
  let linkname: string | undefined;
  try {
    all = readXattrs(path);
    if (st.isSymbolicLink()) linkname = readlinkSync(path);
  } catch (err) {
    if (vanished(err)) return;
    throw err;
  }
  if (upper) {
    for (const k of ['trusted.overlay.redirect', 'trusted.overlay.metacopy', 'user.overlay.redirect', 'user.overlay.metacopy']) {
      // A redirect or metacopy entry points at lower content a layer tar cannot carry.
      if (all.has(k)) throw new BerthError('E_DIFF', `${root}/${rel} carries ${k}: the overlay was mounted with redirect_dir/metacopy on, and such an upper directory is not a layer; remount with redirect_dir=off,metacopy=off`);
    }
  }
  const xattrs = new Map([...all].filter(([k]) => !k.startsWith('trusted.overlay.') && !k.startsWith('user.overlay.')));
  const base: Omit<WriteHeader, 'type' | 'size'> = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), xattrs };
  if (st.isDirectory()) {
    yield encodeHeader({ ...base, name: rel + '/', type: 'directory', size: 0 });
    if (kind === 'opaque') yield encodeHeader({ name: `${rel}/.wh..wh..opq`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: base.mtime });
    return;
  }
  if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? inodes.get(key) : undefined;
    if (first !== undefined) {
      yield encodeHeader({ ...base, type: 'hardlink', size: 0, linkname: first });
      return;
    }
    let opened: ReturnType<typeof openRegularFile>;
    try {
      opened = openRegularFile(path);
    } catch (err) {
      if (vanished(err)) return;
      throw err;
    }
    // No longer a regular file (a device or FIFO swapped in is never opened): left out.
    if (!opened) return;
    const { fd, st: real } = opened;
    // The size of what was opened: a file the container truncates or swaps meanwhile cannot bend the header.
    // One it replaced (rename over) since the lstat is taken as it is now, owner and mode included.
    const head = real.ino === st.ino ? base : { ...base, mode: real.mode & 0o7777, uid: real.uid, gid: real.gid, mtime: Math.floor(real.mtimeMs / 1000) };
    if (real.nlink > 1) inodes.set(`${real.dev}:${real.ino}`, rel);
    yield encodeHeader({ ...head, type: 'file', size: real.size });
    let written = 0;
    try {
      // Exactly the size the header announced, even if the file grows meanwhile.
      while (written < real.size) {
        const want = Math.min(READ_CHUNK, real.size - written);
        const buf = scratch ? scratch.subarray(0, want) : Buffer.allocUnsafe(want);
        const n = readSync(fd, buf, 0, buf.length, written);
        if (n === 0) break;
        written += n;
        yield n === buf.length ? buf : buf.subarray(0, n);
      }
    } finally {
      closeSync(fd);
    }
    if (written < real.size) yield Buffer.alloc(real.size - written);
    yield paddingFor(real.size);
    return;
  }
  let type: EntryType;
  if (st.isSymbolicLink()) type = 'symlink';
  else if (st.isCharacterDevice()) type = 'char';
  else if (st.isBlockDevice()) type = 'block';
  else if (st.isFIFO()) type = 'fifo';
  else return; // sockets do not belong in a layer
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((st.rdev >>> 12) & 0xfff00);
  yield encodeHeader({ ...base, type, size: 0, linkname, devmajor: type === 'char' || type === 'block' ? major : 0, devminor: type === 'char' || type === 'block' ? minor : 0 });
}
