import { chownSync, lstatSync, mkdirSync, readlinkSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { BerthError, isErrno } from '@berth/cli-kit';

/**
 * Paths inside a container's rootfs, resolved the way the container would see
 * them: a symlink is followed relative to the rootfs, never to the host's /,
 * so an image whose /etc/passwd is a link to /../../host/etc/shadow reads the
 * rootfs' own file (or nothing). This is what securejoin does for runc.
 */
export function resolveInRoot(root: string, path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') { resolved.pop(); continue; }
    const candidate = posix.join(root, ...resolved, part);
    let target: string | undefined;
    try {
      if (lstatSync(candidate).isSymbolicLink()) target = readlinkSync(candidate);
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
    }
    if (target === undefined) { resolved.push(part); continue; }
    if (++links > 40) throw new BerthError('E_ROOTFS', `resolve ${path} in ${root}: too many levels of symbolic links`);
    // An absolute link restarts at the rootfs; a relative one continues from the link's directory.
    if (target.startsWith('/')) resolved.length = 0;
    parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return posix.join(root, ...resolved);
}

/** Read a file of the rootfs, or undefined when it does not exist. */
export function readRootFile(root: string, path: string): string | undefined {
  try {
    return readFileSync(resolveInRoot(root, path), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw new BerthError('E_ROOTFS', `read ${path} in rootfs ${root}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * Create a directory (and its parents) inside the rootfs, following symlinks
 * within it. podman creates a missing working directory the same way, so an
 * image whose WorkingDir was never created still starts; the new directory
 * belongs to the container's user, who is about to work in it.
 */
export function mkdirInRoot(root: string, path: string, owner?: { uid: number; gid: number }): void {
  const target = resolveInRoot(root, path);
  try {
    if (lstatSync(target).isDirectory()) return;
    throw new BerthError('E_ROOTFS', `working directory ${path} exists in the rootfs but is not a directory`);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  try {
    mkdirSync(target, { recursive: true, mode: 0o755 });
    if (owner) chownSync(target, owner.uid, owner.gid);
  } catch (err) {
    throw new BerthError('E_ROOTFS', `mkdir ${path} in rootfs ${root}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
