/**
 * Namespaces: unshare(2) and setns(2). The kernel refuses CLONE_NEWUSER (both)
 * in a multi-threaded process, and setns into a mount namespace while the
 * fs_struct is shared with other threads; unshare(CLONE_FS) first gives the
 * calling thread its own fs_struct, after which setns(CLONE_NEWNS) works from
 * Node's main thread. See namespaces(7), setns(2).
 */
import { check, fn } from './libc.ts';

export const CLONE_FS = 0x200;
export const CLONE_NEWNS = 0x20000;
export const CLONE_NEWCGROUP = 0x2000000;
export const CLONE_NEWUTS = 0x4000000;
export const CLONE_NEWIPC = 0x8000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWTIME = 0x80;

export function unshare(flags: number): void {
  const f = fn<(fl: number) => number>('unshare', 'int unshare(int flags)');
  check(f(flags), 'unshare', `0x${flags.toString(16)}`);
}

export function setns(fd: number, nstype: number, what = `fd ${fd}`): void {
  const f = fn<(fd: number, t: number) => number>('setns', 'int setns(int fd, int nstype)');
  check(f(fd, nstype), 'setns', what);
}

/** Join the mount namespace open at `fd` from a threaded process (see above). */
export function joinMountNamespace(fd: number, what?: string): void {
  unshare(CLONE_FS);
  setns(fd, CLONE_NEWNS, what);
}
