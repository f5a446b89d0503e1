import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';

/**
 * Reaching names below a directory held open, without letting the kernel
 * follow a symlink in front of them: Node has no openat(2), so a name is
 * spelt /proc/self/fd/N/NAME, N the directory's descriptor. The overlay walk
 * here, `berth cp` and volume copy-up all read trees a running container may
 * be changing under them, and share these.
 */

/** A directory, never through a symlink. */
export const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** open(2)'s O_PATH (Linux): a handle on the inode that opens nothing (no device, FIFO or tty side effects). */
const O_PATH = 0o10000000;

/**
 * The path of NAME inside the directory that fd holds. Without NAME it is
 * the magic link itself (readdir follows it; O_NOFOLLOW would refuse it,
 * which is why '.' is spelt out for an open).
 */
export function at(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/**
 * Open `path` for reading only if it is a regular file now: it is first
 * pinned with O_PATH|O_NOFOLLOW, which opens no device, FIFO or terminal
 * (a container can swap one in between a walk's lstat and this open; a
 * watchdog or a tty must not see an open from berth), then checked with
 * fstat, and only a regular file is reopened for reading through its
 * descriptor, which resolves no name again. undefined: not a regular file
 * (or a symlink) any more. ENOENT and the like are thrown for the caller.
 */
export function openRegularFile(path: string): { fd: number; st: Stats } | undefined {
  const pinned = openSync(path, O_PATH | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(pinned);
    if (!st.isFile()) return undefined;
    const fd = openSync(at(pinned), constants.O_RDONLY | constants.O_NOCTTY);
    return { fd, st: fstatSync(fd) };
  } finally {
    closeSync(pinned);
  }
}
