import { execFileSync } from 'node:child_process';
import { createReadStream, lstatSync, utimesSync, linkSync, mkdirSync, symlinkSync, writeFileSync, chownSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyLayer, lsetxattr } from '@berth/archive';
import { compareTrees, snapshotTree } from './tree.ts';
import { tempRoot } from './fixtures.ts';

/**
 * The tar reader against GNU tar itself: a tree written by `tar` in GNU
 * format (long names as 'L'/'K' entries) and in POSIX format with xattrs
 * (PAX records, binary values) extracts to the same tree.
 */
describe('applyLayer reads what GNU tar writes', () => {
  const t = tempRoot();
  const src = join(t.root, 'src');
  beforeAll(() => {
    const deep = join(src, 'a'.repeat(90), 'b'.repeat(90));
    mkdirSync(deep, { recursive: true });
    const long = join(deep, 'c'.repeat(150));
    writeFileSync(long, 'long name');
    symlinkSync('x'.repeat(200), join(src, 'long-target-link'));
    linkSync(long, join(src, 'hard-to-long'));
    writeFileSync(join(src, 'owned'), 'o');
    chownSync(join(src, 'owned'), 4242, 4343);
    writeFileSync(join(src, 'big'), Buffer.alloc(3 * 1024 * 1024 + 17, 9));
    writeFileSync(join(src, 'sgid'), '');
    chmodSync(join(src, 'sgid'), 0o2711);
    mkdirSync(join(src, 'sticky'));
    chmodSync(join(src, 'sticky'), 0o1777);
    execFileSync('mkfifo', [join(src, 'fifo')]);
    // Old, distinct times, so a time taken from "now" cannot pass for the right one.
    utimesSync(join(src, 'big'), 1_000_000_000, 1_000_000_000);
    utimesSync(join(src, 'sticky'), 1_100_000_000, 1_100_000_000);
    lsetxattr(join(src, 'owned'), 'user.bin', Buffer.from([0, 0xff, 0x80, 0x7f, 0xc3]));
    lsetxattr(join(src, 'owned'), 'security.capability', Buffer.from([1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  });
  afterAll(() => t.cleanup());

  for (const format of ['gnu', 'posix'] as const) {
    it(`extracts tar --format=${format}${format === 'posix' ? ' --xattrs' : ''} to the same tree`, async () => {
      const tarFile = join(t.root, `${format}.tar`);
      const xattrs = format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : [];
      execFileSync('tar', [`--format=${format}`, ...xattrs, '--numeric-owner', '-C', src, '-cf', tarFile, '.']);
      const dest = join(t.root, `out-${format}`);
      mkdirSync(dest);
      const res = await applyLayer(createReadStream(tarFile), dest, { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
      expect(res.compression).toBe('none');
      const want = snapshotTree(src, { ignoreXattrs: () => format === 'gnu' });
      const got = snapshotTree(dest, { ignoreXattrs: () => format === 'gnu' });
      expect(compareTrees(got, want, ['applyLayer', 'source'])).toEqual([]);
      expect(got.get('owned')).toMatchObject({ uid: 4242, gid: 4343 });
      expect(got.get('sgid')?.mode).toBe('2711');
      // mtimes too, directories included (they are set last, after their contents were written).
      const mtimes = (root: string) => [...want.keys()].map((p) => `${p} ${Math.floor(lstatSync(join(root, p)).mtimeMs / 1000)}`);
      expect(mtimes(dest)).toEqual(mtimes(src));
      if (format === 'posix') expect(got.get('owned')?.xattrs?.['user.bin']).toBe(Buffer.from([0, 0xff, 0x80, 0x7f, 0xc3]).toString('base64'));
    });
  }
});
