import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMountPoint, mountAll, unmountAll } from '@berth/snapshots';
import { busyboxEntries, writeImage, type WrittenImage } from '../helpers/images.ts';
import { runTool } from '../helpers/run.ts';
import { compareTrees, snapshotTree } from './tree.ts';
import { richLayer, tempRoot } from './fixtures.ts';

describe('berth-store commands', () => {
  const t = tempRoot();
  const store = join(t.root, 'images');
  const store_ = (...args: string[]) => runTool('berth-store', ['--root', t.root, ...args]);
  let busybox: WrittenImage;
  beforeAll(async () => {
    busybox = await writeImage(store, 'docker.io/library/busybox:latest', { layers: [busyboxEntries()] });
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      await writeImage(store, `localhost/rich-${c}:latest`, { layers: [busyboxEntries(), richLayer()], compression: c });
    }
  });
  afterAll(() => t.cleanup());

  it('prepare --image with a short name prints the rootfs document of the contract', () => {
    const r = store_('prepare', 'c1', '--image', 'busybox');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      kind: 'rootfs', snapshot: 'c1', root: t.root, store,
      image: { reference: 'docker.io/library/busybox:latest', manifest: { digest: busybox.manifest.digest }, config: { digest: busybox.config.digest } },
    });
    expect(r.json.mounts).toHaveLength(1);
    expect(r.json.mounts[0].type).toBe('overlay');
    expect(r.json.mounts[0].options).toEqual(expect.arrayContaining([expect.stringMatching(/^lowerdir=/), expect.stringMatching(/^upperdir=/), expect.stringMatching(/^workdir=/)]));
    expect(store_('mounts', 'c1').json).toEqual(r.json);
  });

  it('reads berth-pull\'s document from stdin for -', () => {
    const doc = JSON.stringify({ kind: 'image', reference: 'docker.io/library/busybox:latest', store, manifest: busybox.manifest, config: busybox.config, layers: busybox.layers });
    const u = runTool('berth-store', ['--root', t.root, 'unpack', '-'], { input: doc });
    expect(u.code, u.stderr).toBe(0);
    expect(u.json.layers).toHaveLength(1);
    expect(u.json.layers[0]).toMatchObject({ digest: busybox.layers[0]!.digest, diffID: busybox.diffIds[0], unpacked: false });
    const p = runTool('berth-store', ['--root', t.root, 'prepare', 'c2', '--image', '-'], { input: doc });
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.image.manifest.digest).toBe(busybox.manifest.digest);
    const wrong = runTool('berth-store', ['--root', t.root, 'unpack', '-'], { input: JSON.stringify({ kind: 'bundle' }) });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/of kind "bundle", expected "image"/);
  });

  it('mount, write, unmount, commit, and build on the committed snapshot', async () => {
    const mnt = join(t.root, 'm1');
    mkdirSync(mnt);
    expect(store_('mount', 'c1', mnt).code).toBe(0);
    expect(await isMountPoint(mnt)).toBe(true);
    const busy = store_('remove', 'c1');
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(new RegExp(`snapshot "c1" is mounted at ${mnt}: unmount it first`));
    writeFileSync(join(mnt, 'etc/added'), 'added');
    expect(store_('unmount', mnt).code).toBe(0);
    expect(await isMountPoint(mnt)).toBe(false);
    const c = store_('commit', 'mine', 'c1');
    expect(c.code, c.stderr).toBe(0);
    expect(c.json).toMatchObject({ kind: 'snapshot', name: 'mine', snapshotKind: 'committed' });
    const v = store_('prepare', 'v1', '--parent', 'mine', '--readonly');
    expect(v.code, v.stderr).toBe(0);
    const mnt2 = join(t.root, 'm2');
    mkdirSync(mnt2);
    await mountAll(v.json.mounts, mnt2);
    try {
      expect(readFileSync(join(mnt2, 'etc/added'), 'utf8')).toBe('added');
      expect(readFileSync(join(mnt2, 'etc/passwd'), 'utf8')).toMatch(/^root:/);
    } finally { await unmountAll(mnt2); }
    const rm = store_('remove', 'mine');
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(/snapshot "mine" has children \(v1\): remove them first/);
    expect(store_('remove', 'v1').code).toBe(0);
    expect(store_('remove', 'mine').code).toBe(0);
    const u = store_('usage', 'c2');
    expect(u.json).toMatchObject({ kind: 'usage', snapshot: 'c2', inodes: 1 });
  });

  it('gzip, zstd and uncompressed layers unpack to the same tree', async () => {
    const trees = [];
    for (const c of ['gzip', 'zstd', 'none']) {
      const r = store_('prepare', `cmp-${c}`, '--image', `localhost/rich-${c}:latest`, '--readonly');
      expect(r.code, r.stderr).toBe(0);
      const mnt = join(t.root, `cmp-${c}`);
      mkdirSync(mnt);
      await mountAll(r.json.mounts, mnt);
      try { trees.push(snapshotTree(mnt)); } finally { await unmountAll(mnt); }
    }
    expect(trees[0]!.get('bin/arping')?.xattrs?.['security.capability']).toBeDefined();
    expect(compareTrees(trees[0]!, trees[1]!, ['gzip', 'zstd'])).toEqual([]);
    expect(compareTrees(trees[0]!, trees[2]!, ['gzip', 'none'])).toEqual([]);
  });

  it('says what is wrong: unknown image, bad flags, unknown snapshot', () => {
    const r = store_('unpack', 'nosuch');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/image "nosuch" is not in the image store .*images \(tried nosuch, docker.io\/library\/nosuch:latest/);
    expect(r.stdout).toBe('');
    expect(store_('prepare', 'x').code).toBe(2);
    const both = store_('prepare', 'x', '--image', 'busybox', '--parent', 'y');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/exactly one of --image/);
    const m = store_('mounts', 'ghost');
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/snapshot "ghost" does not exist/);
    const e = store_('unpack', '--explain', 'x');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/chainID/);
  });
});
