import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageLayout } from '@berth/content';
import { lsetxattr, applyLayer } from '@berth/archive';
import { mountAll, unmountAll } from '@berth/snapshots';
import { busyboxEntries, writeImage, type WrittenImage } from '../helpers/images.ts';
import { runTool } from '../helpers/run.ts';
import { compareTrees, snapshotTree } from './tree.ts';
import { richLayer, tempRoot } from './fixtures.ts';

/**
 * `berth-store diff` turns a container's changes into a layer: applied on
 * the snapshot's parent, that layer must give back the snapshot's tree.
 */
describe('berth-store diff', () => {
  const t = tempRoot();
  const store = join(t.root, 'images');
  let base: WrittenImage;
  beforeAll(async () => {
    base = await writeImage(store, 'localhost/base:latest', { layers: [busyboxEntries(), richLayer()] });
  });
  afterAll(() => t.cleanup());

  it('re-applied on the parent, the diff layer gives the same tree as the snapshot', async () => {
    const prep = runTool('berth-store', ['--root', t.root, 'prepare', 'work', '--image', 'localhost/base:latest']);
    expect(prep.code, prep.stderr).toBe(0);
    const mnt = join(t.root, 'mnt');
    mkdirSync(mnt);
    const m = runTool('berth-store', ['--root', t.root, 'mount', 'work', mnt]);
    expect(m.code, m.stderr).toBe(0);
    try {
      // What a container does: add, modify, delete, chmod/chown, replace a directory, links, xattrs.
      writeFileSync(join(mnt, 'etc/motd'), 'welcome\n');
      writeFileSync(join(mnt, 'etc/passwd'), readFileSync(join(mnt, 'etc/passwd'), 'utf8') + 'app:x:2000:2000::/app:/bin/sh\n');
      rmSync(join(mnt, 'etc/os-release'));
      rmSync(join(mnt, 'usr/lib'), { recursive: true });
      mkdirSync(join(mnt, 'usr/lib'));
      writeFileSync(join(mnt, 'usr/lib/only'), 'only');
      chmodSync(join(mnt, 'home/tux/notes'), 0o640);
      mkdirSync(join(mnt, 'app/data'), { recursive: true });
      writeFileSync(join(mnt, 'app/data/a'), Buffer.alloc(300_000, 3));
      linkSync(join(mnt, 'app/data/a'), join(mnt, 'app/data/b'));
      symlinkSync('data/a', join(mnt, 'app/link'));
      lsetxattr(join(mnt, 'app/data/a'), 'user.note', Buffer.from([0xff, 0x00, 0x80]));
      renameSync(join(mnt, 'bin/suid'), join(mnt, 'bin/suid2'));
      rmSync(join(mnt, 'dev/fifo'));
    } finally {
      const u = runTool('berth-store', ['--root', t.root, 'unmount', mnt]);
      expect(u.code, u.stderr).toBe(0);
    }

    const d = runTool('berth-store', ['--root', t.root, 'diff', 'work']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.json).toMatchObject({ kind: 'layer', mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: expect.stringMatching(/^sha256:/), diffID: expect.stringMatching(/^sha256:/) });
    const layout = new ImageLayout(store);
    const blob = await layout.readBlob(d.json.digest);
    expect(blob.length).toBe(d.json.size);

    // Apply the diff alone: whiteouts and opaque markers are there.
    const alone = join(t.root, 'alone');
    mkdirSync(alone);
    const res = await applyLayer(layout.openBlob(d.json.digest), alone, { mediaType: d.json.mediaType, diffId: d.json.diffID });
    expect(res.diffId).toBe(d.json.diffID);
    const aloneTree = snapshotTree(alone);
    expect(aloneTree.get('etc/os-release')).toMatchObject({ type: 'char', rdev: 0 });
    expect(aloneTree.get('usr/lib')?.xattrs?.['trusted.overlay.opaque']).toBe(Buffer.from('y').toString('base64'));

    // The parent image plus the diff layer, as a new image, mounted as a view...
    const next = await writeImage(store, 'localhost/next:latest', {
      layers: [
        ...(await Promise.all(base.layers.map(async (l, i) => ({ blob: await layout.readBlob(l.digest), digest: l.digest, diffId: base.diffIds[i]!, mediaType: l.mediaType, size: l.size })))),
        { blob, digest: d.json.digest, diffId: d.json.diffID, mediaType: d.json.mediaType, size: d.json.size },
      ],
    });
    expect(next.layers.length).toBe(3);
    const v = runTool('berth-store', ['--root', t.root, 'prepare', 'check', '--image', 'localhost/next:latest', '--readonly']);
    expect(v.code, v.stderr).toBe(0);
    const a = join(t.root, 'a');
    const b = join(t.root, 'b');
    mkdirSync(a);
    mkdirSync(b);
    await mountAll(v.json.mounts, a);
    const again = runTool('berth-store', ['--root', t.root, 'mount', 'work', b]);
    expect(again.code, again.stderr).toBe(0);
    try {
      // ...equals the snapshot itself, mounted again.
      const want = snapshotTree(b);
      const got = snapshotTree(a);
      expect(compareTrees(got, want, ['parent+diff', 'snapshot'])).toEqual([]);
      expect(got.get('app/data/b')?.size).toBe(300_000);
      expect(got.has('etc/os-release')).toBe(false);
      expect(got.has('bin/suid')).toBe(false);
      expect(got.get('bin/suid2')?.mode).toBe('4755');
      expect([...got.keys()].filter((k) => k.startsWith('usr/lib/'))).toEqual(['usr/lib/only']);
      expect(got.get('app/data/a')?.xattrs?.['user.note']).toBe(Buffer.from([0xff, 0x00, 0x80]).toString('base64'));
    } finally {
      await unmountAll(a);
      await unmountAll(b);
    }
  });

  it('refuses to diff a view or an unknown key', () => {
    const v = runTool('berth-store', ['--root', t.root, 'prepare', 'aview', '--image', 'localhost/base:latest', '--readonly']);
    expect(v.code, v.stderr).toBe(0);
    const r = runTool('berth-store', ['--root', t.root, 'diff', 'aview']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/snapshot "aview" is view: diff takes an active snapshot/);
    const u = runTool('berth-store', ['--root', t.root, 'diff', 'nope']);
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/snapshot "nope" does not exist/);
  });
});
