/**
 * Resolve a path inside the rootfs the way the container will see it: each
 * symlink is followed with the rootfs as "/", and ".." stops at the rootfs, so
 * a mount destination that is (or passes through) a symlink cannot point the
 * runtime at a host path outside the rootfs.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { BerthError } from '@berth/cli-kit';

export function secureJoin(root: string, unsafe: string): string {
  const parts = unsafe.split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const host = root + '/' + candidate.join('/');
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      // Missing components are fine: the caller creates them.
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++links > 255) throw new BerthError('E_SYMLINK', `${unsafe}: too many levels of symbolic links inside the rootfs`);
    const target = readlinkSync(host);
    const targetParts = target.split('/').filter((p) => p !== '' && p !== '.');
    if (target.startsWith('/')) resolved.length = 0;
    parts.unshift(...targetParts);
  }
  return resolved.length === 0 ? root : root + '/' + resolved.join('/');
}
