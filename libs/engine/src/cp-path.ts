import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, type Stats } from 'node:fs';
import { at, O_DIR, openRegularFile } from '@berth/archive';
import { EngineError } from './errors.ts';

/**
 * Paths inside a container, resolved the way the container itself would
 * resolve them, but by berth on the host: without ever letting the kernel
 * follow a symbolic link the container controls.
 *
 * Every step is relative to a directory file descriptor, through the
 * /proc/self/fd/N/NAME form (Node has no openat): the magic link jumps to the
 * directory the descriptor holds, and only NAME is looked up in it. A name is
 * first lstat()ed; a directory is then opened with O_NOFOLLOW|O_DIRECTORY, so
 * a container that swaps it for a symlink between the two calls makes the
 * open fail (the step is retried) instead of sending berth to the host. A
 * symlink is never followed by the kernel: its text is read and walked again
 * from the container's root (absolute) or the current directory (relative),
 * and `..` pops a stack of directories that never goes above the root. This
 * is openat2(RESOLVE_IN_ROOT)'s contract, done step by step in user space;
 * /proc magic links inside the container are mere text to it too.
 */

// The descriptor-relative names are @berth/archive's (fd-path.ts), shared with its overlay walk.
export { at, O_DIR, openRegularFile };

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Where a path ended up: its parent directory (held open), the last name, and what is there (undefined: nothing). */
export interface Located {
  parent: number;
  name: string;
  st: Stats | undefined;
  /** The path as resolved inside the root, for messages and for the name a copy takes. */
  resolved: string;
}

const MAX_LINKS = 40;
const MAX_RACES = 100;

/**
 * A directory tree (a container's root, or a directory a tar is unpacked
 * into) that berth reads and writes only through descriptors. Every
 * descriptor it opens is closed by close().
 */
export class RootDir {
  private readonly fds = new Set<number>();
  readonly fd: number;

  /** root: a path berth trusts (the container's mounted rootfs, /proc/PID/root). label names it in errors. */
  constructor(root: string, readonly label: string) {
    this.fd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
    this.fds.add(this.fd);
  }

  /** Open a directory below one of ours without following a symlink; the descriptor is ours to close. */
  openDir(parent: number, name: string): number {
    const fd = openSync(at(parent, name), O_DIR);
    this.fds.add(fd);
    return fd;
  }

  release(fd: number): void {
    if (fd === this.fd || !this.fds.delete(fd)) return;
    closeSync(fd);
  }

  close(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds.clear();
  }

  /**
   * Resolve `path` inside the root. Every component but the last is followed
   * (symlinks re-walked inside the root); the last one too when followLast.
   * A missing last component is fine (st undefined); a missing directory on
   * the way is an error naming it.
   */
  locate(path: string, opts: { followLast: boolean; noSymlinks?: boolean }): Located {
    const stack: Array<{ fd: number; name: string }> = [];
    const top = () => stack.at(-1)?.fd ?? this.fd;
    const shown = () => '/' + stack.map((s) => s.name).join('/');
    let queue = split(path);
    let links = 0;
    let races = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === '..') {
        const d = stack.pop();
        if (d) this.release(d.fd);
        continue;
      }
      const last = queue.length === 0;
      let st: Stats;
      try {
        st = lstatSync(at(top(), c));
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' && last) return { parent: top(), name: c, st: undefined, resolved: join(shown(), c) };
        if (errnoOf(err) === 'ENOENT') throw new CopyPathError('ENOENT', `${join(shown(), c)}: no such file or directory`);
        throw err;
      }
      if (st.isSymbolicLink() && (!last || opts.followLast)) {
        if (opts.noSymlinks) throw new CopyPathError('ESYMLINK', `${join(shown(), c)} is a symbolic link; refusing to write through it`);
        if (++links > MAX_LINKS) throw new CopyPathError('ELOOP', `${path}: too many levels of symbolic links`);
        let target: string;
        try {
          target = readlinkSync(at(top(), c));
        } catch (err) {
          // Gone since the lstat, or a /proc link that names nothing in this root.
          throw new CopyPathError(errnoOf(err) ?? 'EIO', `${join(shown(), c)}: cannot read the symbolic link (${errnoOf(err) ?? String(err)})`);
        }
        if (target.startsWith('/')) {
          for (const d of stack.splice(0)) this.release(d.fd);
        }
        queue = [...split(target), ...queue];
        continue;
      }
      if (last) return { parent: top(), name: c, st, resolved: join(shown(), c) };
      if (!st.isDirectory()) throw new CopyPathError('ENOTDIR', `${join(shown(), c)}: not a directory`);
      let fd: number;
      try {
        fd = this.openDir(top(), c);
      } catch (err) {
        // Swapped for a symlink or a file since the lstat: look at it again.
        if ((errnoOf(err) === 'ELOOP' || errnoOf(err) === 'ENOTDIR' || errnoOf(err) === 'ENOENT') && ++races < MAX_RACES) {
          queue.unshift(c);
          continue;
        }
        throw err;
      }
      stack.push({ fd, name: c });
    }
    // The path named a directory we hold (the root, or one reached through `..` or a symlink's text).
    const d = stack.pop();
    if (!d) return { parent: this.fd, name: '.', st: fstatSync(this.fd), resolved: '/' };
    return { parent: top(), name: d.name, st: fstatSync(d.fd), resolved: join(shown(), d.name) };
  }
}

/** A path inside the root that is not there or cannot be walked; the caller adds which container or host. */
export class CopyPathError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'CopyPathError';
  }
}

export function split(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function engineErrorFor(err: unknown, where: string): EngineError {
  if (err instanceof CopyPathError) return new EngineError('E_CP_PATH', `${err.message} ${where}`);
  // Node names the /proc/self/fd/N/... path it was given; the name after it is what a user knows.
  const message = ((err as Error | undefined)?.message ?? String(err)).replace(/'\/proc\/self\/fd\/\d+\/?([^']*)'/g, (_, rest: string) => `'${rest.replace(/^\.berth-cp-[^/]*$/, 'a temporary file')}'`);
  return new EngineError('E_CP', `${message} ${where}`.trim(), { cause: err });
}
