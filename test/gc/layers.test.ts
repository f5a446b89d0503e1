import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageLayout } from '@berth/content';
import { chainIds } from '@berth/digest';
import { Snapshotter, resolveImage, unpackImage } from '@berth/snapshots';
import { writeImage } from '../helpers/images.ts';
import { runTool, tempDir } from '../helpers/run.ts';
import { smallLayer, verifyImage } from './helpers.ts';

// Pins berth-gc on berth-store's layer store and snapshotter (libs/snapshots):
// extracted layers no image or snapshot uses go, child before parent; what an
// image or a container's active snapshot stands on stays and still reads.

describe('berth-gc on the layer store and snapshots', () => {
  const dirs: Array<{ cleanup: () => void }> = [];
  afterAll(() => { for (const d of dirs) d.cleanup(); });

  it('keeps layers of tagged images and of active snapshots, removes the rest child first', async () => {
    const d = tempDir('berth-gc-layers-');
    dirs.push(d);
    const root = d.path;
    const images = join(root, 'images');
    const [base, top1, top2] = await Promise.all([smallLayer('base'), smallLayer('top1'), smallLayer('top2')]);
    const app1 = await writeImage(images, 'localhost/app:1', { layers: [base, top1] });
    const app2 = await writeImage(images, 'localhost/app:2', { layers: [base, top2] });
    const layout = new ImageLayout(images);
    const snap = new Snapshotter(root);
    for (const ref of ['localhost/app:1', 'localhost/app:2']) await unpackImage(snap, layout, await resolveImage(layout, ref));
    const [cBase, c1] = chainIds(app1.diffIds);
    const [, c2] = chainIds(app2.diffIds);
    // A container's rootfs on app:2, and a committed build result on app:1 that nothing names.
    await snap.prepare('ctr-1', c2);
    await snap.prepare('build-1', c1);
    await snap.commit('built-image-rootfs', 'build-1');
    mkdirSync(join(snap.root, '999', 'fs'), { recursive: true });

    await layout.untag('localhost/app:2');
    const first = runTool('berth-gc', ['--root', root, '--grace', '0s']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.json).toMatchObject({ blobsRemoved: 3, layersRemoved: 0, snapshotsRemoved: 1, tempFilesRemoved: 1 });
    const names = async () => Object.keys((await snap.read()).snapshots).sort();
    expect(await names()).toEqual([cBase, c1, c2, 'ctr-1'].sort());
    expect(existsSync(join(snap.root, '999'))).toBe(false);

    // The container goes: now nothing stands on app:2's top layer.
    await snap.remove('ctr-1');
    const second = runTool('berth-gc', ['--root', root, '--grace', '0s']);
    expect(second.json).toMatchObject({ blobsRemoved: 0, layersRemoved: 1, snapshotsRemoved: 0 });
    expect(second.json.bytesReclaimed).toBeGreaterThan(0);
    expect(await names()).toEqual([cBase, c1].sort());
    expect(await snap.orphans()).toEqual([]);
    // What app:1 needs is intact: its layers read, and a container can start on it.
    const info = await snap.stat(c1!);
    expect(readFileSync(join(snap.fsDir(info), 'data', 'top1'), 'utf8')).toMatch(/^top1/);
    expect(readFileSync(join(snap.fsDir(await snap.stat(cBase!)), 'data', 'base'), 'utf8')).toMatch(/^base/);
    expect(await snap.prepare('ctr-2', c1)).toHaveLength(1);

    // Untag app:1 too: its blobs go, but the active snapshot ctr-2 keeps both layers, parent after child.
    await layout.untag('localhost/app:1');
    const dry = runTool('berth-gc', ['--root', root, '--grace', '0s', '--dry-run']);
    const third = runTool('berth-gc', ['--root', root, '--grace', '0s']);
    expect(third.json).toMatchObject({ blobsRemoved: 4, layersRemoved: 0 });
    expect({ ...dry.json, dryRun: false }).toEqual(third.json);
    await snap.remove('ctr-2');
    const last = runTool('berth-gc', ['--root', root, '--grace', '0s']);
    expect(last.json).toMatchObject({ blobsRemoved: 0, layersRemoved: 2 });
    expect(await names()).toEqual([]);
  });

  it('keeps a freshly committed layer within the grace period (an unpack in progress)', async () => {
    const d = tempDir('berth-gc-layers-');
    dirs.push(d);
    const images = join(d.path, 'images');
    await writeImage(images, 'localhost/app:1', { layers: [await smallLayer('fresh')] });
    const layout = new ImageLayout(images);
    await unpackImage(new Snapshotter(d.path), layout, await resolveImage(layout, 'localhost/app:1'));
    await layout.untag('localhost/app:1');
    expect(runTool('berth-gc', ['--root', d.path]).json).toMatchObject({ blobsRemoved: 0, layersRemoved: 0 });
    expect(runTool('berth-gc', ['--root', d.path, '--grace', '0s']).json).toMatchObject({ blobsRemoved: 3, layersRemoved: 1 });
  });

  it('never untags or sweeps the image a container (berth-store prepare) was made from', async () => {
    const d = tempDir('berth-gc-layers-');
    dirs.push(d);
    const images = join(d.path, 'images');
    const used = await writeImage(images, 'localhost/used:1', { layers: [await smallLayer('used')] });
    await writeImage(images, 'localhost/idle:1', { layers: [await smallLayer('idle')] });
    const prep = runTool('berth-store', ['--root', d.path, 'prepare', 'ctr-1', '--image', 'localhost/used:1']);
    expect(prep.code, prep.stderr).toBe(0);
    const r = runTool('berth-gc', ['--root', d.path, '--all', '--grace', '0s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.untagged).toEqual(['localhost/idle:1']);
    expect(r.json.blobsRemoved).toBe(3);
    await verifyImage(images, 'localhost/used:1');
    // Untagged by hand, the container's image keeps its blobs while the container exists.
    await new ImageLayout(images).untag('localhost/used:1');
    expect(runTool('berth-gc', ['--root', d.path, '--grace', '0s']).json.blobsRemoved).toBe(0);
    for (const b of [used.manifest, used.config, ...used.layers]) expect(existsSync(join(images, 'blobs', 'sha256', b.digest.slice(7)))).toBe(true);
    await new Snapshotter(d.path).remove('ctr-1');
    expect(runTool('berth-gc', ['--root', d.path, '--grace', '0s']).json).toMatchObject({ blobsRemoved: 3, layersRemoved: 1 });
  });
});
