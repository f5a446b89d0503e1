import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { readXattrs } from '@berth/archive';

/**
 * A file tree as comparable facts: for every path its type, mode (with
 * setuid/setgid/sticky), owner, size (regular files), link target, device
 * numbers and xattrs. mtimes are left out: umoci and overlay copy-up differ
 * there legitimately.
 */
export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  link?: string;
  rdev?: number;
  xattrs?: Record<string, string>;
}

export function snapshotTree(root: string, opts: { ignoreXattrs?: (name: string) => boolean } = {}): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p);
      const type: TreeEntry['type'] = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char'
        : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'file';
      const e: TreeEntry = { type, mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
      if (type === 'symlink') { e.link = readlinkSync(p); delete (e as Partial<TreeEntry>).mode; }
      if (type === 'file') e.size = st.size;
      if (type === 'char' || type === 'block') e.rdev = st.rdev;
      const x = [...readXattrs(p)].filter(([k]) => !(opts.ignoreXattrs?.(k) ?? false));
      if (x.length > 0) e.xattrs = Object.fromEntries(x.map(([k, v]) => [k, v.toString('base64')]));
      out.set(r, e);
      if (type === 'dir') walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

/** Differences between two trees, one line each (empty when equal). */
export function compareTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, names = ['a', 'b']): string[] {
  const diffs: string[] = [];
  for (const [p, ea] of a) {
    const eb = b.get(p);
    if (!eb) { diffs.push(`${p}: only in ${names[0]}`); continue; }
    const ja = JSON.stringify(ea);
    const jb = JSON.stringify(eb);
    if (ja !== jb) diffs.push(`${p}: ${names[0]} ${ja} != ${names[1]} ${jb}`);
  }
  for (const p of b.keys()) if (!a.has(p)) diffs.push(`${p}: only in ${names[1]}`);
  return diffs;
}
