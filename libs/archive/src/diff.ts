import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '@berth/cli-kit';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type EntryType, type WriteHeader } from './tar.ts';
import { lgetxattr, readXattrs } from './xattr.ts';

/**
 * The changes an overlayfs upper directory holds, as a layer tar (the inverse
 * of applyLayer): what the container wrote is in the upper directory; a
 * deleted name is a 0/0 character device there (or, with userxattr, an empty
 * file carrying user.overlay.whiteout) and becomes `.wh.NAME`; a directory
 * that replaced a lower one is opaque (trusted.overlay.opaque=y) and gets a
 * `.wh..wh..opq` entry. Files sharing an inode become one file and hardlinks.
 * Entries come in sorted order, parents before children, so the tar is
 * reproducible for the same tree.
 */
export async function* diffTar(upper: string): AsyncGenerator<Buffer> {
  const inodes = new Map<string, string>();
  yield* walk(upper, '', inodes);
  yield END_OF_ARCHIVE;
}

async function* walk(dir: string, rel: string, inodes: Map<string, string>): AsyncGenerator<Buffer> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    const entryName = rel === '' ? name : `${rel}/${name}`;
    const st = await lstat(path);
    const whiteoutHere = (st.isCharacterDevice() && st.rdev === 0)
      || (st.isFile() && st.size === 0 && lgetxattr(path, 'user.overlay.whiteout') !== undefined);
    if (whiteoutHere) {
      const wh = rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`;
      yield encodeHeader({ name: wh, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: st.mtimeMs / 1000 });
      continue;
    }
    const all = readXattrs(path);
    for (const k of ['trusted.overlay.redirect', 'trusted.overlay.metacopy', 'user.overlay.redirect', 'user.overlay.metacopy']) {
      // A redirect or metacopy entry points at lower content a layer tar cannot carry.
      if (all.has(k)) throw new BerthError('E_DIFF', `${path} carries ${k}: the overlay was mounted with redirect_dir/metacopy on, and such an upper directory is not a layer; remount with redirect_dir=off,metacopy=off`);
    }
    const xattrs = new Map([...all].filter(([k]) => !k.startsWith('trusted.overlay.') && !k.startsWith('user.overlay.')));
    const base: Omit<WriteHeader, 'type' | 'size'> = { name: entryName, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), xattrs };
    if (st.isDirectory()) {
      yield encodeHeader({ ...base, name: entryName + '/', type: 'directory', size: 0 });
      const opaque = lgetxattr(path, 'trusted.overlay.opaque') ?? lgetxattr(path, 'user.overlay.opaque');
      if (opaque?.toString() === 'y') {
        yield encodeHeader({ name: `${entryName}/.wh..wh..opq`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: base.mtime });
      }
      yield* walk(path, entryName, inodes);
      continue;
    }
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? inodes.get(key) : undefined;
      if (first !== undefined) {
        yield encodeHeader({ ...base, type: 'hardlink', size: 0, linkname: first });
        continue;
      }
      if (st.nlink > 1) inodes.set(key, entryName);
      yield encodeHeader({ ...base, type: 'file', size: st.size });
      let written = 0;
      for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
        // A file that grows while we read must not corrupt the tar framing.
        const room = st.size - written;
        if (room <= 0) break;
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        written += part.length;
        yield part;
      }
      if (written < st.size) yield Buffer.alloc(st.size - written);
      yield paddingFor(st.size);
      continue;
    }
    let type: EntryType;
    let linkname: string | undefined;
    if (st.isSymbolicLink()) { type = 'symlink'; linkname = await readlink(path); }
    else if (st.isCharacterDevice()) type = 'char';
    else if (st.isBlockDevice()) type = 'block';
    else if (st.isFIFO()) type = 'fifo';
    else continue; // sockets do not belong in a layer
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >>> 12) & 0xfff00);
    yield encodeHeader({ ...base, type, size: 0, linkname, devmajor: type === 'char' || type === 'block' ? major : 0, devminor: type === 'char' || type === 'block' ? minor : 0 });
  }
}
