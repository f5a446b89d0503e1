import { lstat, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { isErrno } from '@berth/cli-kit';

/**
 * Resolve an absolute container path to a host path inside `root`, following
 * symlinks as the container would see them: an absolute link target is
 * taken from the container's root, `..` never climbs above it (the
 * securejoin idea). Components that do not exist yet are appended as they are.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const pending = posix.normalize('/' + path).split('/').filter((p) => p !== '');
  const done: string[] = [];
  let links = 0;
  let missing = false;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    if (missing) { done.push(part); continue; }
    const host = posix.join(root, ...done, part);
    let st;
    try {
      st = await lstat(host);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) { missing = true; done.push(part); continue; }
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) throw Object.assign(new Error(`too many symlinks resolving ${path}`), { code: 'ELOOP' });
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((p) => p !== ''));
      continue;
    }
    done.push(part);
  }
  return posix.join(root, ...done);
}
