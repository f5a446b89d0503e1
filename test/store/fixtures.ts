import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unmountAll, mountPoints } from '@berth/snapshots';
import type { LayerEntry } from '../helpers/images.ts';

/** A data root for one test file; cleanup unmounts whatever is left below it, then removes it. */
export function tempRoot(prefix = 'berth-store-'): { root: string; cleanup: () => Promise<void> } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return {
    root,
    cleanup: async () => {
      for (const p of (await mountPoints()).filter((m) => m.startsWith(root + '/')).sort((x, y) => y.length - x.length)) await unmountAll(p);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Every tar entry type, owners, special modes, xattrs (binary security.capability), long names. */
export function richLayer(): LayerEntry[] {
  const long = 'd'.repeat(120);
  // A real capability blob: VFS_CAP_REVISION_2, cap_net_bind_service permitted+effective.
  const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).toString('latin1');
  return [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/hosts', content: '127.0.0.1 localhost\n' },
    { path: 'bin/', type: 'dir' },
    { path: 'bin/suid', content: '#!/bin/sh\n', mode: 0o4755, uid: 0, gid: 0 },
    { path: 'bin/sgid', content: '#!/bin/sh\n', mode: 0o2755, uid: 1000, gid: 50 },
    { path: 'bin/ping', content: 'ELF', mode: 0o755, xattrs: { 'security.capability': cap } },
    { path: 'bin/arping', content: 'ELF', mode: 0o755, xattrs: { 'security.capability': cap } },
    { path: 'tmp/', type: 'dir', mode: 0o1777 },
    { path: 'home/', type: 'dir' },
    { path: 'home/tux/', type: 'dir', uid: 1000, gid: 1000, mode: 0o700 },
    { path: 'home/tux/notes', content: 'hello', uid: 1000, gid: 1000, mode: 0o600, xattrs: { 'user.origin': 'berth-test' } },
    { path: 'usr/', type: 'dir' },
    { path: 'usr/lib/', type: 'dir' },
    { path: `usr/lib/${long}/`, type: 'dir' },
    { path: `usr/lib/${long}/${'f'.repeat(110)}`, content: 'long name' },
    { path: 'usr/lib/libx.so', type: 'symlink', linkname: `${long}/${'f'.repeat(110)}` },
    { path: 'usr/lib/hard', type: 'hardlink', linkname: 'etc/hosts' },
    { path: 'dev/', type: 'dir' },
    { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { path: 'dev/loop9', type: 'block', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
    { path: 'dev/fifo', type: 'fifo', mode: 0o644 },
    { path: 'abs-link', type: 'symlink', linkname: '/etc/hosts' },
  ];
}

/** Deletions over busyboxEntries() + richLayer(): a whiteout (etc/hosts) and an opaque usr/lib with one new file. */
export function deletionsLayer(): LayerEntry[] {
  return [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/.wh.hosts' },
    { path: 'usr/', type: 'dir' },
    { path: 'usr/lib/', type: 'dir' },
    { path: 'usr/lib/.wh..wh..opq' },
    { path: 'usr/lib/fresh', content: 'after opaque' },
  ];
}
