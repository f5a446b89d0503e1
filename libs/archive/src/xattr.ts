import { constants } from 'node:os';
import { errnoName, fn, koffi } from '@berth/sys/libc';

/**
 * Extended attributes (xattr(7)) and mknod(2) through koffi: Node has neither.
 * Layers carry xattrs as PAX records `SCHILY.xattr.NAME` (security.capability
 * for file capabilities, user.* for anything), and overlayfs reads its own
 * markers (trusted.overlay.opaque) as xattrs. The l* calls never follow a
 * symlink: an xattr meant for a link must not land on what it points to.
 *
 * The bindings go through @berth/sys's one libc handle, bound on first use,
 * so CLI commands that never touch xattrs (--help, list) start without koffi.
 */
interface Libc {
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  fsetxattr(fd: number, name: string, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer | null, size: number): number;
  mknod(path: string, mode: number, dev: number): number;
  errno(): number;
}

let bound: Libc | undefined;

function load(): Libc {
  if (bound) return bound;
  const lsetxattr = fn<(p: string, n: string, v: Buffer, s: number, f: number) => number>('lsetxattr', 'int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
  const fsetxattr = fn<(fd: number, n: string, v: Buffer, s: number, f: number) => number>('fsetxattr', 'int fsetxattr(int fd, const char *name, const void *value, size_t size, int flags)');
  const lgetxattr = fn<(p: string, n: string, v: Buffer | null, s: number) => number | bigint>('lgetxattr', 'intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');
  const llistxattr = fn<(p: string, l: Buffer | null, s: number) => number | bigint>('llistxattr', 'intptr_t llistxattr(const char *path, _Out_ char *list, size_t size)');
  const mknod = fn<(p: string, m: number, d: number) => number>('mknod', 'int mknod(const char *path, uint32_t mode, uint64_t dev)');
  bound = {
    lsetxattr,
    fsetxattr,
    lgetxattr: (p, n, v, s) => Number(lgetxattr(p, n, v, s)),
    llistxattr: (p, l, s) => Number(llistxattr(p, l, s)),
    mknod,
    errno: () => koffi().errno(),
  };
  return bound;
}

/** An Error shaped like Node's fs errors (code = 'EPERM' ...), so callers can test codes alike. */
export function errnoError(call: string, path: string, errno: number): NodeJS.ErrnoException {
  const code = errnoName(errno);
  const err = new Error(`${call} ${path}: ${code}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = errno;
  err.syscall = call;
  err.path = path;
  return err;
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  const c = load();
  if (c.lsetxattr(path, name, value, value.length, 0) !== 0) throw errnoError(`lsetxattr ${name}`, path, c.errno());
}

export function fsetxattr(fd: number, name: string, value: Buffer, pathForErrors: string): void {
  const c = load();
  if (c.fsetxattr(fd, name, value, value.length, 0) !== 0) throw errnoError(`fsetxattr ${name}`, pathForErrors, c.errno());
}

/** The value of one xattr, or undefined when the file does not carry it. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const c = load();
  for (let attempt = 0; attempt < 4; attempt++) {
    const size = c.lgetxattr(path, name, null, 0);
    if (size < 0) {
      const e = c.errno();
      if (e === constants.errno.ENODATA) return undefined;
      throw errnoError(`lgetxattr ${name}`, path, e);
    }
    const buf = Buffer.alloc(size);
    if (size === 0) return buf;
    const got = c.lgetxattr(path, name, buf, size);
    if (got >= 0) return buf.subarray(0, got);
    // ERANGE: it grew between the two calls; ask again.
    if (c.errno() !== constants.errno.ERANGE) throw errnoError(`lgetxattr ${name}`, path, c.errno());
  }
  throw errnoError(`lgetxattr ${name}`, path, constants.errno.ERANGE);
}

/** The names of a file's xattrs (the caller may only see the namespaces it may read). */
export function llistxattr(path: string): string[] {
  const c = load();
  for (let attempt = 0; attempt < 4; attempt++) {
    const size = c.llistxattr(path, null, 0);
    if (size < 0) throw errnoError('llistxattr', path, c.errno());
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const got = c.llistxattr(path, buf, size);
    if (got >= 0) return buf.subarray(0, got).toString('utf8').split('\0').filter((n) => n !== '');
    if (c.errno() !== constants.errno.ERANGE) throw errnoError('llistxattr', path, c.errno());
  }
  throw errnoError('llistxattr', path, constants.errno.ERANGE);
}

/** All xattrs of a file as name -> value. */
export function readXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of llistxattr(path)) {
    const v = lgetxattr(path, name);
    if (v !== undefined) out.set(name, v);
  }
  return out;
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** glibc's makedev(3): the 64-bit dev_t layout of Linux. */
export function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) + (minor & 0xff) + (minor & ~0xff) * 4096 + (major - (major & 0xfff)) * 2 ** 32;
}

export function mknod(path: string, mode: number, dev: number): void {
  const c = load();
  if (c.mknod(path, mode, dev) !== 0) throw errnoError('mknod', path, c.errno());
}
