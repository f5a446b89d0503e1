import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxEntries, writeImage } from '../helpers/images.ts';
import { runTool } from '../helpers/run.ts';
import { mountAll, unmountAll } from '@berth/snapshots';
import { compareTrees, snapshotTree } from './tree.ts';
import { deletionsLayer, richLayer, tempRoot } from './fixtures.ts';

/**
 * The swap DESIGN.md promises: `umoci unpack` instead of berth-store gives
 * the same rootfs. The same images, unpacked by both, compared entry by
 * entry (type, mode, owner, size, link target, device, xattrs).
 */
describe('berth-store vs umoci unpack', () => {
  const t = tempRoot();
  const store = join(t.root, 'images');
  beforeAll(async () => {
    await writeImage(store, 'localhost/busybox:latest', { layers: [busyboxEntries()] });
    // Every entry type, with no deletions on top: hardlinks, devices, long names survive.
    await writeImage(store, 'localhost/plain-rich:latest', { layers: [busyboxEntries(), richLayer()] });
    await writeImage(store, 'localhost/rich:latest', {
      layers: [
        busyboxEntries(),
        richLayer(),
        [
          // Deletions, an opaque directory, a file replaced by a directory, a directory by a file.
          ...deletionsLayer(),
          { path: 'bin/ping/', type: 'dir' },
          { path: 'bin/ping/inside', content: 'now a dir' },
          { path: 'home/tux', content: 'now a file', uid: 1000, gid: 1000 },
          { path: 'bin/new', content: 'x', mode: 0o700 },
          { path: 'bin/.wh.new' },
        ],
      ],
      compression: 'gzip',
    });
  });
  afterAll(() => t.cleanup());

  for (const ref of ['localhost/busybox:latest', 'localhost/rich:latest', 'localhost/plain-rich:latest']) {
    it(`mounts the same tree as umoci for ${ref}`, async () => {
      const r = runTool('berth-store', ['--root', t.root, 'prepare', `ctr-${ref.length}`, '--image', ref, '--readonly']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.kind).toBe('rootfs');
      const target = join(t.root, `mnt-${ref.length}`);
      mkdirSync(target, { recursive: true });
      await mountAll(r.json.mounts, target);
      try {
        const bundle = join(t.root, `umoci-${ref.length}`);
        try { execFileSync("umoci", ["unpack", "--image", `${store}:${ref}`, bundle], { stdio: "pipe" }); } catch (e) { throw new Error(String((e as { stderr?: Buffer }).stderr)); }
        const ours = snapshotTree(target);
        const theirs = snapshotTree(join(bundle, 'rootfs'));
        expect(compareTrees(ours, theirs, ['berth', 'umoci'])).toEqual([]);
        expect(ours.size).toBeGreaterThan(10);
        if (ref === 'localhost/plain-rich:latest') expect(ours.get('usr/lib/hard')).toMatchObject({ type: 'file', size: 20 });
        if (ref === 'localhost/rich:latest') {
          // The comparison above is only as good as what the trees hold: pin a few facts.
          expect(ours.get('bin/suid')?.mode).toBe('4755');
          expect(ours.get('tmp')?.mode).toBe('1777');
          expect(ours.get('bin/arping')?.xattrs?.['security.capability']).toBeDefined();
          expect(ours.get('dev/null')).toMatchObject({ type: 'char', rdev: 0x103 });
          expect(ours.has('etc/hosts')).toBe(false);
          expect(ours.has('usr/lib/libx.so')).toBe(false);
          expect(ours.get('usr/lib/fresh')?.type).toBe('file');
          expect(ours.get('home/tux')).toMatchObject({ type: 'file', uid: 1000 });
          expect(ours.has('bin/new')).toBe(true);
        }
      } finally {
        await unmountAll(target);
      }
    });
  }
});
