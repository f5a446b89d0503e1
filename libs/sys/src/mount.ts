/**
 * Mounts: mount(2), umount2(2), pivot_root(2), and the new mount API calls
 * open_tree(2) + mount_setattr(2) that make a detached read-only bind mount
 * (used to run the runtime's own binary from a mount a container cannot write).
 */
import { check, fn, syscallNumber } from './libc.ts';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_I_VERSION = 0x800000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

export const MNT_FORCE = 1;
export const MNT_DETACH = 2;

/** mount(2). `data` is the filesystem's own option string. */
export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  const f = fn<(s: string | null, t: string, f: string | null, fl: number, d: string | null) => number>(
    'mount', 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
  check(f(source, target, fstype, flags, data), `mount ${fstype ?? (flags & MS_BIND ? 'bind' : 'none')}${source ? ' ' + source : ''} on`, target);
}

export function umount2(target: string, flags = 0): void {
  const f = fn<(t: string, fl: number) => number>('umount2', 'int umount2(const char *target, int flags)');
  check(f(target, flags), 'umount2', target);
}

/** pivot_root(2); glibc has no wrapper, so it goes through syscall(2). */
export function pivotRoot(newRoot: string, putOld: string): void {
  const f = fn<(n: number, a: string, b: string) => number>('syscall_pivot_root', 'long syscall(long n, const char *a, const char *b)');
  check(f(syscallNumber('pivot_root'), newRoot, putOld), 'pivot_root', newRoot);
}

export function chroot(path: string): void {
  const f = fn<(p: string) => number>('chroot', 'int chroot(const char *path)');
  check(f(path), 'chroot', path);
}

const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const MOUNT_ATTR_RDONLY = 0x1;

/**
 * A detached, read-only bind mount of `path` (open_tree(OPEN_TREE_CLONE) then
 * mount_setattr(MOUNT_ATTR_RDONLY)). The returned fd is close-on-exec; the mount
 * exists only while some fd or process refers to it, so nothing is left behind.
 */
export function openReadonlyClone(path: string): number {
  const openTree = fn<(n: number, dfd: number, p: string, fl: number) => number>(
    'syscall_open_tree', 'long syscall(long n, int dfd, const char *path, unsigned int flags)');
  const fd = check(openTree(syscallNumber('open_tree'), AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), 'open_tree', path);
  const setattr = fn<(n: number, dfd: number, p: string, fl: number, attr: Buffer, size: number) => number>(
    'syscall_mount_setattr', 'long syscall(long n, int dfd, const char *path, unsigned int flags, void *attr, size_t size)');
  // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd; }
  const attr = Buffer.alloc(32);
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY), 0);
  check(setattr(syscallNumber('mount_setattr'), fd, '', AT_EMPTY_PATH, attr, 32), 'mount_setattr', path);
  return fd;
}
