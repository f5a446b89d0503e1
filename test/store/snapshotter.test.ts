import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Snapshotter, mountAll, unmountAll, isMountPoint, type Mount } from '@berth/snapshots';
import { lgetxattr } from '@berth/archive';
import { tempRoot } from './fixtures.ts';

/**
 * A conformance suite in the spirit of containerd's SnapshotterSuite, run
 * against real overlay mounts: prepare/commit/view/remove/walk/usage,
 * deletions and opaque directories carried by committed children, and a
 * 128-layer stack.
 */
describe('overlay snapshotter', () => {
  // A deep root makes the 128-layer options overflow the mount page unless shortened.
  const t = tempRoot('berth-snapshotter-with-a-rather-long-directory-name-');
  const s = new Snapshotter(t.root);
  let n = 0;
  const target = (): string => {
    const d = join(t.root, 'mnt', String(n++));
    mkdirSync(d, { recursive: true });
    return d;
  };
  afterAll(() => t.cleanup());

  /** Prepare KEY on PARENT, let `fill` change the mounted tree, commit it as NAME. */
  async function layer(name: string, parent: string | undefined, fill: (dir: string) => void): Promise<void> {
    const key = `${name}-active`;
    const mounts = await s.prepare(key, parent);
    const dir = target();
    await mountAll(mounts, dir);
    try { fill(dir); } finally { await unmountAll(dir); }
    await s.commit(name, key);
  }

  async function withView<T>(parent: string, fn: (dir: string, mounts: Mount[]) => T): Promise<T> {
    const key = `view-${n}`;
    const mounts = await s.prepare(key, parent, { readonly: true });
    const dir = target();
    await mountAll(mounts, dir);
    try { return fn(dir, mounts); } finally { await unmountAll(dir); await s.remove(key); }
  }

  it('prepare without parent, commit, and view: the committed files are there, read-only', async () => {
    await layer('base', undefined, (d) => {
      mkdirSync(join(d, 'etc'));
      writeFileSync(join(d, 'etc/hostname'), 'base\n');
      mkdirSync(join(d, 'data/old'), { recursive: true });
      writeFileSync(join(d, 'data/old/a'), 'a');
      writeFileSync(join(d, 'data/keep'), 'k');
      writeFileSync(join(d, 'gone'), 'soon deleted');
    });
    expect((await s.stat('base')).kind).toBe('committed');
    await withView('base', (d, mounts) => {
      expect(mounts).toEqual([{ type: 'bind', source: expect.stringMatching(/\/fs$/), options: ['rbind', 'ro'] }]);
      expect(readFileSync(join(d, 'etc/hostname'), 'utf8')).toBe('base\n');
      expect(() => writeFileSync(join(d, 'new'), 'x')).toThrow(/EROFS/);
    });
  });

  it('a child that deletes files and replaces a directory hides them in every view of it', async () => {
    await layer('child', 'base', (d) => {
      rmSync(join(d, 'gone'));
      // Replace data/ wholesale: overlayfs makes the new directory opaque.
      rmSync(join(d, 'data'), { recursive: true });
      mkdirSync(join(d, 'data'));
      writeFileSync(join(d, 'data/new'), 'n');
      writeFileSync(join(d, 'etc/hostname'), 'child\n');
    });
    const childUpper = join(s.root, (await s.stat('child')).id, 'fs');
    expect(lstatSync(join(childUpper, 'gone')).isCharacterDevice()).toBe(true);
    expect(lgetxattr(join(childUpper, 'data'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    await layer('grandchild', 'child', (d) => writeFileSync(join(d, 'g'), 'g'));
    await withView('grandchild', (d, mounts) => {
      expect(mounts[0]!.type).toBe('overlay');
      expect(existsSync(join(d, 'gone'))).toBe(false);
      expect(readdirSync(join(d, 'data'))).toEqual(['new']);
      expect(readFileSync(join(d, 'etc/hostname'), 'utf8')).toBe('child\n');
      expect(readFileSync(join(d, 'g'), 'utf8')).toBe('g');
    });
    // The parent is untouched by its child.
    await withView('base', (d) => {
      expect(readFileSync(join(d, 'gone'), 'utf8')).toBe('soon deleted');
      expect(readdirSync(join(d, 'data')).sort()).toEqual(['keep', 'old']);
    });
  });

  it('walk lists every snapshot with kind and parent; views and actives are not parents', async () => {
    await s.prepare('active-1', 'grandchild');
    await s.prepare('view-1', 'grandchild', { readonly: true });
    const all = Object.fromEntries((await s.list()).map((i) => [i.name, i]));
    expect(all.base).toMatchObject({ kind: 'committed' });
    expect(all.base!.parent).toBeUndefined();
    expect(all.child).toMatchObject({ kind: 'committed', parent: 'base' });
    expect(all['active-1']).toMatchObject({ kind: 'active', parent: 'grandchild' });
    expect(all['view-1']).toMatchObject({ kind: 'view', parent: 'grandchild' });
    await expect(s.prepare('x', 'active-1')).rejects.toThrow(/only a committed snapshot can be a parent/);
    await expect(s.prepare('active-1', 'base')).rejects.toThrow(/already exists/);
    await expect(s.commit('c', 'view-1')).rejects.toThrow(/only an active snapshot can be committed/);
    await expect(s.mounts('base')).rejects.toThrow(/is committed/);
    await expect(s.prepare('y', 'nope')).rejects.toThrow(/does not exist/);
  });

  it('remove is refused while children exist, then works leaf first and leaves no directory', async () => {
    await expect(s.remove('grandchild')).rejects.toThrow(/has children \(active-1, view-1\)/);
    const dir = join(s.root, (await s.stat('active-1')).id);
    await s.remove('active-1');
    await s.remove('view-1');
    expect(existsSync(dir)).toBe(false);
    await s.remove('grandchild');
    await expect(s.stat('grandchild')).rejects.toThrow(/does not exist/);
    expect(await s.orphans()).toEqual([]);
  });

  it('usage counts the snapshot itself, not its parents', async () => {
    const mounts = await s.prepare('u1', 'child');
    const d = target();
    await mountAll(mounts, d);
    try {
      writeFileSync(join(d, 'big'), Buffer.alloc(1 << 20, 1));
      for (let i = 0; i < 10; i++) writeFileSync(join(d, `small-${i}`), 'x');
    } finally { await unmountAll(d); }
    const u = await s.usage('u1');
    // the upper root + big + 10 small files (+ copied-up nothing)
    expect(u.inodes).toBe(12);
    expect(u.size).toBeGreaterThanOrEqual(1 << 20);
    expect(u.size).toBeLessThan((1 << 20) + 64 * 4096);
    const base = await s.usage('base');
    expect(base.inodes).toBeLessThan(10);
    await s.remove('u1');
  });

  it('stacks 128 layers and mounts them, active and as a view', async () => {
    let parent: string | undefined;
    for (let i = 0; i < 128; i++) {
      const tmp = await s.tempDir('layer');
      writeFileSync(join(tmp, 'fs', `f${i}`), String(i));
      // Every layer also overwrites one shared file: the top one must win.
      writeFileSync(join(tmp, 'fs', 'top'), String(i));
      await s.commitDirectory(tmp, `l${i}`, parent);
      parent = `l${i}`;
    }
    const mounts = await s.prepare('tall', 'l127');
    expect(mounts[0]!.options.join(',').length).toBeGreaterThan(4096);
    const d = target();
    await mountAll(mounts, d);
    try {
      expect(await isMountPoint(d)).toBe(true);
      const names = readdirSync(d);
      expect(names.filter((x) => x.startsWith('f')).length).toBe(128);
      expect(readFileSync(join(d, 'top'), 'utf8')).toBe('127');
      writeFileSync(join(d, 'written'), 'w');
    } finally { await unmountAll(d); }
    expect(await isMountPoint(d)).toBe(false);
    await withView('l127', (v) => expect(readFileSync(join(v, 'f0'), 'utf8')).toBe('0'));
    await s.remove('tall');
  });
});
